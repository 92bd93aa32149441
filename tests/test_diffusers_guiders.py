"""diffusers' own guiders driven by a cfglab schedule w(σ): ScheduledGuidance (issue 15).

The loop is ``denoise_with_guider`` with a deterministic, row-wise float64 model, so the
batched pass of the wrapper and the per-batch passes of the stock guider agree to rounding
(~1e-15 relative); the tolerance 1e-10 leaves 10⁵ of amplification over 8 steps, while a wrong
scale or formulation moves the result by > 1e-2 (checked in each test).
"""

import math

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from diffusers import guiders as G  # noqa: E402
from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer, normalized_guidance  # noqa: E402

from cfglab import CfglabInputError  # noqa: E402
from cfglab.guidance import APG, Constant, Interval, NegativeWindow  # noqa: E402
from cfglab.noise import sigma_from_t  # noqa: E402
from cfglab.integrations.diffusers import (  # noqa: E402
    ScheduledGuidance,
    denoise_with_guider,
    guidance_scale_for,
    step_sigmas,
)

pytestmark = pytest.mark.usefixtures("float64")  # written for float64 defaults

STEPS = 8
W = 2.5


def model(x, t, cond):
    """ε-prediction of a toy conditional model, shape of ``x`` [n, C, H, W]; rows independent."""
    return torch.tanh(0.7 * x + cond[:, :, None, None]) + 1e-3 * t[:, None, None, None] * x


def _run(guider, scheduler_name="EulerDiscreteScheduler", log=None):
    scheduler = getattr(diffusers, scheduler_name)()
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 3, 4, 4, generator=gen)  # [B, C, H, W]
    cond, uncond = torch.randn(2, 3, generator=gen), torch.zeros(2, 3)
    if isinstance(guider, ScheduledGuidance):
        guider.bind_scheduler(scheduler)
    return denoise_with_guider(model, scheduler, guider, noise, {"cond": (cond, uncond)}, STEPS,
                               callback=None if log is None else log.append)


GUIDERS = {
    "cfg": lambda: G.ClassifierFreeGuidance(),
    "cfg_original": lambda: G.ClassifierFreeGuidance(use_original_formulation=True),
    "cfg_rescale": lambda: G.ClassifierFreeGuidance(guidance_rescale=0.7),
    "apg": lambda: G.AdaptiveProjectedGuidance(adaptive_projected_guidance_momentum=-0.5, eta=0.0,
                                               adaptive_projected_guidance_rescale=1.5),
    "apg_original": lambda: G.AdaptiveProjectedGuidance(adaptive_projected_guidance_momentum=-0.5, eta=0.0,
                                                        adaptive_projected_guidance_rescale=1.5,
                                                        use_original_formulation=True),
    "cfg_zero_star": lambda: G.ClassifierFreeZeroStarGuidance(zero_init_steps=1),
    "tangential": lambda: G.TangentialClassifierFreeGuidance(),
}


def _stock_at(make, w):
    """The stock guider at the scale of the paper's weight w: 1 + w, or w in the original formulation."""
    guider = make()
    guider.guidance_scale = w if guider.use_original_formulation else 1 + w
    return guider


@pytest.mark.parametrize("name", GUIDERS)
def test_constant_schedule_is_the_stock_guider_at_its_scale(name):
    make = GUIDERS[name]
    stock_guider = _stock_at(make, W)
    stock = _run(stock_guider)
    ours = _run(ScheduledGuidance(make(), Constant(W)))
    again = _run(ScheduledGuidance(make(), Constant(W)))
    assert (ours - stock).abs().max() <= 1e-10 * stock.abs().max()
    assert torch.equal(ours, again)
    other = _run(ScheduledGuidance(make(), Constant(W + 1)))
    assert (other - stock).abs().max() > 1e-2 * stock.abs().max()  # the comparison can fail


@pytest.mark.parametrize("name", ["apg", "cfg_zero_star", "tangential", "cfg_rescale"])
def test_negative_window_on_a_diffusers_guider(name):
    """Guided steps as the stock guider, then w = −1: one pass, the unconditional prediction."""
    sigmas = step_sigmas(diffusers.EulerDiscreteScheduler(), STEPS)
    window = NegativeWindow(W, -1.0, float((sigmas[4] * sigmas[5]).sqrt()))  # w = −1 on steps 5..7
    log, stock_log = [], []
    _run(ScheduledGuidance(GUIDERS[name](), window), log=log)
    _run(_stock_at(GUIDERS[name], W), log=stock_log)
    assert [e["w"] for e in log] == [W] * 5 + [-1.0] * 3
    assert [e["n_passes"] for e in log] == [2] * 5 + [1] * 3
    for a, b in zip(log[:5], stock_log[:5]):
        assert (a["latents"] - b["latents"]).abs().max() <= 1e-10 * b["latents"].abs().max()
    assert (log[-1]["latents"] - stock_log[-1]["latents"]).abs().max() > 1e-2


def test_apg_momentum_restarts_with_each_run_even_when_step_0_is_unguided():
    """Step 0 at w = 0 skips the wrapped APG's own buffer reset (in its prepare_inputs); the wrapper resets.

    Reference: the stock APG with ``start = 1/STEPS`` (unguided step 0, momentum from step 1).
    """
    sigmas = step_sigmas(diffusers.EulerDiscreteScheduler(), STEPS)
    guider = ScheduledGuidance(GUIDERS["apg"](), Interval(W, lo=0.0, hi=float((sigmas[0] * sigmas[1]).sqrt())))
    stock = _stock_at(lambda: G.AdaptiveProjectedGuidance(adaptive_projected_guidance_momentum=-0.5, eta=0.0,
                                                          adaptive_projected_guidance_rescale=1.5, start=1 / STEPS), W)
    reference = _run(stock)
    for _ in range(2):
        assert (_run(guider) - reference).abs().max() <= 1e-10 * reference.abs().max()


def test_scale_mapping_and_bad_guiders():
    assert guidance_scale_for(G.ClassifierFreeGuidance(), 2.0) == 3.0
    assert guidance_scale_for(G.ClassifierFreeGuidance(use_original_formulation=True), 2.0) == 2.0
    with pytest.raises(CfglabInputError, match="PerturbedAttentionGuidance is not a two-pass guider"):
        ScheduledGuidance(G.PerturbedAttentionGuidance(perturbed_guidance_layers=[0]), Constant(1.0))
    with pytest.raises(CfglabInputError, match="must be a diffusers guider"):
        ScheduledGuidance(None, Constant(1.0))
    wrapped = ScheduledGuidance(G.AdaptiveProjectedGuidance(), "constant:w=2", scheduler=diffusers.DDIMScheduler())
    copy = wrapped.new(schedule="constant:w=1")
    assert copy.guider is wrapped.guider and copy._scheduler is wrapped._scheduler and copy.schedule == Constant(1.0)


def _apg_inputs(seed):
    gen = torch.Generator().manual_seed(seed)
    d_c, d_u = torch.randn(4, 32, generator=gen), torch.randn(4, 32, generator=gen)  # [N, d] denoised
    return d_c, d_u


@pytest.mark.parametrize("eta,momentum,r", [(1.0, 0.0, math.inf), (0.0, -0.5, 0.3), (0.5, -0.75, 0.05)])
def test_cfglab_apg_is_diffusers_apg_original_formulation(eta, momentum, r):
    """cfglab's APG (paper Algorithm 1) = diffusers' APG(use_original_formulation=True), scale w, threshold r√d.

    Three steps of decreasing OU time carry the momentum; cfglab works on scores
    (D = e^t (x + Δ_t s)), diffusers on denoised predictions. Float64 throughout: 1e-12.
    The default formulation at scale 1 + w anchors at pred_uncond and differs whenever η ≠ 1,
    β ≠ 0 or the threshold acts.
    """
    w, d = 2.0, 32
    rule = APG(eta=eta, momentum=momentum, threshold=r)
    buffer_orig = MomentumBuffer(momentum) if momentum else None
    buffer_default = MomentumBuffer(momentum) if momentum else None
    worst_default = 0.0
    for step, t in enumerate((1.5, 0.8, 0.3)):
        d_c, d_u = _apg_inputs(step)
        x = torch.randn(4, d, generator=torch.Generator().manual_seed(10 + step))
        var = 1 - math.exp(-2 * t)
        s_c, s_u = (d_c * math.exp(-t) - x) / var, (d_u * math.exp(-t) - x) / var  # [N, d] scores
        ours = d_c + math.exp(t) * var * rule.force(x, sigma_from_t(t), w, s_c, s_u)  # back to denoised space
        threshold = r * math.sqrt(d) if math.isfinite(r) else 0.0
        theirs = normalized_guidance(d_c, d_u, w, buffer_orig, eta, threshold, True)
        default = normalized_guidance(d_c, d_u, 1 + w, buffer_default, eta, threshold, False)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
        worst_default = max(worst_default, float((default - ours).abs().max()))
    if (eta, momentum, r) == (1.0, 0.0, math.inf):
        assert worst_default < 1e-12  # plain CFG: the two formulations agree
    else:
        assert worst_default > 0.5, worst_default
