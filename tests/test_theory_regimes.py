"""The paper's three regime claims, measured (docs/theory.md): numbers, not assumptions."""

import pytest

from cfglab.experiments.regimes import exponential_regime, fixed_k_regime, infinite_class_regime


def test_exponential_regime_distortion_is_order_one_and_grows_with_alpha():
    rows = exponential_regime([0.1, 0.3, 0.5], schedule="constant:w=2", sampler="ode")
    kl = [r["kl_per_dim"] for r in rows]
    assert kl[0] > 0.05 and kl[0] < kl[1] < kl[2]
    assert rows[-1]["mean_overlap"] > rows[0]["mean_overlap"] > 1


@pytest.mark.slow
def test_fixed_k_distortion_decays_and_infinite_class_does_not(slow_scale):
    """(ii) K = 10 fixed: the mean shift |m − 1| falls with d; (iii) infinite class: m and v⊥ flat in d."""
    dims = (10, 40, 160) if slow_scale == "full" else (10, 80)
    kw = dict(schedule="constant:w=2", seeds=2, n_samples=500, steps=60, T=3.0)
    fixed = fixed_k_regime(10, dims, **kw)
    shifts = [abs(r["mean_overlap"] - 1) for r in fixed]
    assert shifts[-1] < 0.5 * shifts[0]
    assert all(b < a + 0.01 for a, b in zip(shifts, shifts[1:]))
    inf = infinite_class_regime(dims, **kw)
    m = [r["mean_overlap"] for r in inf]
    v = [r["var_perp_ratio"] for r in inf]
    assert max(m) - min(m) < 0.03 and min(m) > 1.3  # O(1) shift that does not decay
    assert max(v) - min(v) < 0.03 and max(v) < 0.5
