"""Shared test settings and fixtures.

``float64`` makes float64 the default dtype for the tests that request it (no test changes
it globally); ``tiny_latent_cache`` trains the tiny latent model once per session.  Slow,
large-d tests are marked ``@pytest.mark.slow``; ``CFGLAB_SLOW_SCALE=full`` runs them at full
size, anything else (CI sets ``ci``) at a reduced size.
"""

import os

import pytest
import torch

FULL = os.environ.get("CFGLAB_SLOW_SCALE") == "full"


@pytest.fixture
def float64():
    """Tensors created without a dtype are float64 for this test (modules that need it say so:
    ``pytestmark = pytest.mark.usefixtures("float64")``); restores the previous default."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def slow_scale():
    """``"full"`` or ``"ci"``: the size a slow test should run at."""
    return "full" if FULL else "ci"


@pytest.fixture(scope="session")
def tiny_latent_cache(tmp_path_factory):
    """A private ``CFGLAB_CACHE`` holding the tiny latent model, trained once per session."""
    pytest.importorskip("diffusers")
    from cfglab.latent.checkpoint import load_or_train
    from cfglab.latent.data import load_data
    from cfglab.latent.train import PROFILES, cpu_threads

    root = tmp_path_factory.mktemp("latent-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("CFGLAB_CACHE", str(root))
    with cpu_threads(1):
        load_or_train(PROFILES["tiny"], load_data())
    yield root
    mp.undo()


def _window_moments(w_pos: float, w_neg: float, sigma_switch: float, sigma_hi: float = float("inf"), *,
                    sampler: str = "sde", sigma2: float = 0.5, s2: float = 1.0, T: float = 6.0):
    """Final (m, v/σ²) of a negative window in the infinite-class limit, by direct ``solve_ivp``.

    Written here from the moment equations (docs/theory.md), independently of
    ``cfglab.theory.gaussian``: reverse time τ = T − t, x_T ~ N(0, 1) per coordinate,
    guided score ``−λ x + c μ`` with ``λ = (1 + w)/Γ_a − w/Γ_b``, ``c = (1 + w) e^{−t}/Γ_a``,
    ``Γ_v(t) = v e^{−2t} + 1 − e^{−2t}``, a = σ², b = σ² + s²; SDE: dm/dτ = (1 − 2λ) m + 2c,
    dv/dτ = 2(1 − 2λ) v + 2; ODE: dm/dτ = (1 − λ) m + c, dv/dτ = 2(1 − λ) v.  The window is
    w_pos on (σ_switch, σ_hi], w_neg below σ_switch, 0 above σ_hi; each piece is integrated
    separately so the solver never steps across a jump.
    """
    import math

    from scipy.integrate import solve_ivp

    k = 2 if sampler == "sde" else 1
    t_of = lambda s: 0.5 * math.log1p(s * s)  # noqa: E731  σ² = e^{2t} − 1
    edges = sorted({T, *(t_of(s) for s in (sigma_switch, sigma_hi) if math.isfinite(s) and t_of(s) < T), 0.0},
                   reverse=True)
    y = [0.0, 1.0]
    for hi, lo in zip(edges[:-1], edges[1:]):
        sigma_mid = math.sqrt(math.expm1(hi + lo))  # σ at the piece's midpoint, t = (hi + lo)/2
        w = 0.0 if sigma_mid > sigma_hi else (w_pos if sigma_mid > sigma_switch else w_neg)

        def rhs(tau, y, w=w):
            t = T - tau
            e2 = math.exp(-2 * t)
            ga, gb = sigma2 * e2 + 1 - e2, (sigma2 + s2) * e2 + 1 - e2
            lam, c = (1 + w) / ga - w / gb, (1 + w) * math.exp(-t) / ga
            return [(1 - k * lam) * y[0] + k * c, 2 * (1 - k * lam) * y[1] + (2.0 if k == 2 else 0.0)]

        y = solve_ivp(rhs, (T - hi, T - lo), y, method="DOP853", rtol=1e-11, atol=1e-12).y[:, -1]
    return float(y[0]), float(y[1] / sigma2)


@pytest.fixture
def window_moments():
    """:func:`_window_moments`: an independent integration of the infinite-class moment ODEs."""
    return _window_moments
