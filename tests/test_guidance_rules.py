"""Guidance rules on exact scores: CFG, power-law CFG, APG (reductions and invariants)."""

import math

import pytest
import torch

from cfglab.guidance.rules import APG, CFG, PowerLawCFG
from cfglab.noise import sigma_from_t
from cfglab.lab import infinite_class_mixture, random_mixture, sample_ode, sigma_grid

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64


@pytest.fixture
def model():
    return random_mixture(20, 8, sigma2=0.5, seed=1)


def _x(d=8, n=16):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.3


def test_cfg_rule_equals_the_mixture(model):
    x = _x()
    for t, w in ((0.2, 2.0), (1.5, -0.5)):
        ref, got = model.guided(x, sigma_from_t(t), w), CFG().guided(model, x, sigma_from_t(t), w)
        torch.testing.assert_close(got.score, ref.score, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got.log_pi_target, ref.log_pi_target)


def test_power_law_reduces_to_cfg_at_gamma_zero_and_scales_the_force(model):
    x, t, w = _x(), 0.7, 2.0
    torch.testing.assert_close(PowerLawCFG(gamma=0.0).guided(model, x, sigma_from_t(t), w).score, model.guided(x, sigma_from_t(t), w).score)
    s_c, s_u, _ = model.score_pair(x, sigma_from_t(t))
    delta = s_c - s_u
    rms = delta.norm(dim=1, keepdim=True) / math.sqrt(8)
    f = PowerLawCFG(gamma=-0.5).guided(model, x, sigma_from_t(t), w).cfg_force
    torch.testing.assert_close(f, w * delta / rms.sqrt())
    cos = torch.nn.functional.cosine_similarity(f, delta, dim=1)
    torch.testing.assert_close(cos, torch.ones_like(cos))  # same direction as CFG


def test_apg_reduces_to_cfg_without_projection_momentum_or_threshold(model):
    x, t, w = _x(), 0.9, 3.0
    apg = APG(eta=1.0, momentum=0.0)
    torch.testing.assert_close(apg.guided(model, x, sigma_from_t(t), w).score, model.guided(x, sigma_from_t(t), w).score, rtol=1e-10, atol=1e-10)


def test_apg_eta_zero_force_is_orthogonal_to_the_denoised_prediction(model):
    x, t, w = _x(), 0.9, 3.0
    f = APG(eta=0.0, momentum=0.0).guided(model, x, sigma_from_t(t), w).cfg_force
    s_c, _, _ = model.score_pair(x, sigma_from_t(t))
    d_c = (x + (1 - math.exp(-2 * t)) * s_c) / math.exp(-t)  # Tweedie
    torch.testing.assert_close((f * d_c).sum(1), torch.zeros(x.shape[0]), atol=1e-10, rtol=0)


def test_apg_threshold_caps_the_update_norm(model):
    x, t, w = _x(), 0.4, 1.0
    r = 0.05
    f = APG(eta=1.0, momentum=0.0, threshold=r).guided(model, x, sigma_from_t(t), w).cfg_force
    scale = (1 - math.exp(-2 * t)) / math.exp(-t)  # D_c − D_u = scale (s_c − s_u)
    assert float((scale * f).norm(dim=1).max()) <= r * math.sqrt(8) * (1 + 1e-9)


def test_apg_momentum_accumulates_until_the_caller_resets_it(model):
    x, w = _x(), 1.0
    apg = APG(eta=1.0, momentum=-0.5)
    f1 = apg.guided(model, x, sigma_from_t(1.0), w).cfg_force
    f2 = apg.guided(model, x, sigma_from_t(0.9), w).cfg_force
    g2 = APG(eta=1.0, momentum=0.0).guided(model, x, sigma_from_t(0.9), w).cfg_force
    scale1, scale2 = (1 - math.exp(-2.0)) / math.exp(-1.0), (1 - math.exp(-1.8)) / math.exp(-0.9)
    torch.testing.assert_close(f2, g2 - 0.5 * f1 * scale1 / scale2)
    apg.reset()  # explicit: the caller starts a new run
    torch.testing.assert_close(apg.guided(model, x, sigma_from_t(1.0), w).cfg_force, f1)


def test_rules_run_in_the_lab_samplers_and_a_rerun_repeats_exactly():
    m = infinite_class_mixture(6, 0.5, seed=0)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for rule in (CFG(), PowerLawCFG(), APG()):
        out = sample_ode(m, x, sigma_grid(6.0, 40), schedule=2.0, rule=rule)
        assert torch.isfinite(out).all()
        again = sample_ode(m, x, sigma_grid(6.0, 40), schedule=2.0, rule=rule)  # the sampler resets APG
        torch.testing.assert_close(again, out, rtol=0, atol=0)
    ref = sample_ode(m, x, sigma_grid(6.0, 40), schedule=2.0)  # default rule: the mixture's own CFG
    torch.testing.assert_close(sample_ode(m, x, sigma_grid(6.0, 40), schedule=2.0, rule=CFG()), ref, rtol=0, atol=0)


def _published_power_law(s_c, s_u, omega, gamma, per_coordinate=False, clip=math.inf):
    """Transcription of the published rule (arXiv 2502.07849): ω ‖Δ‖^γ Δ, or per coordinate ω min(|Δ_i|^γ, clip) Δ_i."""
    import numpy as np

    delta = (s_c - s_u).numpy()
    if per_coordinate:
        return omega * np.minimum(np.abs(delta) ** gamma, clip) * delta
    return omega * np.linalg.norm(delta, axis=1, keepdims=True) ** gamma * delta


@pytest.mark.parametrize("gamma", [-0.5, 0.3])
def test_power_law_matches_the_published_formula_on_identical_inputs(model, gamma):
    """l2 form: w = ω; cfglab's rms form: w = ω d^{γ/2}; per-coordinate variant with its clip (1e-12)."""
    x, t, omega, d = _x(), 0.7, 1.7, 8
    s_c, s_u, _ = model.score_pair(x, t)
    ref = torch.as_tensor(_published_power_law(s_c, s_u, omega, gamma))
    got_l2 = PowerLawCFG(gamma=gamma, norm="l2").guided(model, x, t, omega).cfg_force
    got_rms = PowerLawCFG(gamma=gamma).guided(model, x, t, omega * d ** (gamma / 2)).cfg_force
    torch.testing.assert_close(got_l2, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_rms, ref, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(PowerLawCFG(gamma=gamma).guided(model, x, t, omega).cfg_force, ref)  # w ≠ ω there
    clip = 2.0
    ref_c = torch.as_tensor(_published_power_law(s_c, s_u, omega, gamma, per_coordinate=True, clip=clip))
    got_c = PowerLawCFG(gamma=gamma, norm="coordinate", clip=clip).guided(model, x, t, omega).cfg_force
    torch.testing.assert_close(got_c, ref_c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(norm="linf"), dict(clip=0.0), dict(clip=float("nan"))])
def test_power_law_rejects_bad_parameters(model, kw):
    from cfglab import CfglabInputError

    with pytest.raises(CfglabInputError):
        PowerLawCFG(**kw)
