"""Class-conditional DiT path with CfglabGuidance against the stock DiTPipeline (issue 5).

Tiny models are built in code (diffusers' get_dummy_components style); nothing is downloaded.
Weights are re-drawn at scale 0.3 so the conditional and unconditional predictions differ
(adaLN-zero initialisation would otherwise make them equal and the tests vacuous).
"""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

import _tiny_pipelines as tiny  # noqa: E402
from _tiny_pipelines import one_thread  # noqa: E402,F401  (autouse: one torch thread)

from cfglab.guidance import Constant, Interval, NegativeWindow  # noqa: E402
from cfglab.integrations.diffusers import CfglabGuidance, generate_dit, scheduler_sigmas  # noqa: E402

LABELS = [1, 7]
STEPS = 8


@pytest.fixture(scope="module")
def pipe():
    return tiny.dit_pipeline()


@pytest.fixture
def rows(pipe):
    """Count of samples the transformer evaluates (batch rows over all forward calls)."""
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(lambda m, args, kw: seen.append(len(args[0] if args else kw["hidden_states"])), with_kwargs=True)
    yield seen
    handle.remove()


def _stock(pipe, labels, guidance_scale):
    return pipe(labels, guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(3),
                num_inference_steps=STEPS, output_type="np").images


def _ours(pipe, guider, scheduler=None, callback=None, output_type="np"):
    if scheduler is not None:
        pipe.scheduler = scheduler
    return generate_dit(pipe, LABELS, guider, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(3),
                        output_type=output_type, callback=callback).images


@pytest.mark.parametrize("w", [0.5, 3.0])
def test_constant_schedule_reproduces_stock_dit_cfg(pipe, w):
    pipe.scheduler = diffusers.DDIMScheduler()
    stock = _stock(pipe, LABELS, 1 + w)
    ours = _ours(pipe, CfglabGuidance(Constant(w)))
    assert abs(ours - stock).max() < 1e-5
    assert abs(_stock(pipe, LABELS, 1.0) - stock).max() > 1e-2  # guidance changes the output: the test can fail


def test_w_zero_is_the_conditional_run_and_w_minus_one_the_unconditional_run(pipe, rows):
    pipe.scheduler = diffusers.DDIMScheduler()
    for w, labels in ((0.0, LABELS), (-1.0, [1000] * len(LABELS))):
        rows.clear()
        ours = _ours(pipe, CfglabGuidance(Constant(w)))
        assert sum(rows) == STEPS * len(LABELS)  # one pass per step
        assert abs(ours - _stock(pipe, labels, 1.0)).max() < 1e-5


@pytest.mark.parametrize("scheduler_name", ["DDIMScheduler", "EulerDiscreteScheduler"])
def test_negative_window_switches_at_the_scheduler_step_and_skips_passes(pipe, rows, scheduler_name):
    scheduler = getattr(diffusers, scheduler_name)()
    sigmas = scheduler_sigmas(scheduler, STEPS)  # [STEPS], from the scheduler's own tables
    # zero guidance on the first 2 steps, w = 2 on steps 2..4, w = -1 (uncond only) on 5..7
    schedule = NegativeWindow(w_pos=2.0, w_neg=-1.0, sigma_switch=float((sigmas[4] * sigmas[5]).sqrt()),
                              sigma_hi=float((sigmas[1] * sigmas[2]).sqrt()))
    log = []
    _ours(pipe, CfglabGuidance(schedule), scheduler, callback=log.append, output_type="latent")
    assert [e["i"] for e in log] == list(range(STEPS))
    torch.testing.assert_close(torch.tensor([e["sigma"] for e in log], dtype=torch.float64), sigmas, rtol=1e-12, atol=0)
    assert [e["w"] for e in log] == [0.0] * 2 + [2.0] * 3 + [-1.0] * 3
    assert [e["n_passes"] for e in log] == [1] * 2 + [2] * 3 + [1] * 3
    assert sum(rows) == len(LABELS) * (STEPS + 3)  # 11 passes instead of 16


def test_interval_schedule_changes_only_its_window(pipe):
    scheduler = diffusers.EulerDiscreteScheduler()
    sigmas = scheduler_sigmas(scheduler, STEPS)
    window = Interval(w=4.0, lo=float(sigmas[STEPS - 1]), hi=float(sigmas[STEPS - 2]))  # only step STEPS-2
    partial = []
    guided = _ours(pipe, CfglabGuidance(window), scheduler, callback=partial.append, output_type="latent")
    cond = []
    plain = _ours(pipe, CfglabGuidance(Constant(0.0)), scheduler, callback=cond.append, output_type="latent")
    for a, b in zip(partial[: STEPS - 2], cond[: STEPS - 2]):
        assert torch.equal(a["latents"], b["latents"])  # identical before the window
    assert (guided - plain).abs().max() > 1e-3


def test_stock_diffusers_guider_runs_through_the_same_loop(pipe):
    """diffusers' own ClassifierFreeGuidance (one call per batch) agrees with CfglabGuidance (batched).

    The two routes evaluate the transformer on batches of different shape, so in float32 the
    GEMMs may block differently and the outputs differ by rounding amplified through 8 steps
    (measured up to 1e-4). The comparison therefore runs in float64: rounding per op is
    ~1e-16, and even a 1e6-fold amplification stays below the 1e-9 tolerance, while a wrong
    guidance scale (2 vs 3) moves the latents by > 1e-2 (checked below).
    """
    pipe64 = diffusers.DiTPipeline(transformer=pipe.transformer.to(torch.float64),
                                   vae=pipe.vae.to(torch.float64), scheduler=diffusers.DDIMScheduler())
    pipe64.set_progress_bar_config(disable=True)
    try:
        ours = _ours(pipe64, CfglabGuidance(Constant(2.0)), output_type="latent")
        theirs = _ours(pipe64, diffusers.guiders.ClassifierFreeGuidance(guidance_scale=3.0), output_type="latent")
        other = _ours(pipe64, diffusers.guiders.ClassifierFreeGuidance(guidance_scale=2.0), output_type="latent")
    finally:
        pipe.transformer.to(torch.float32), pipe.vae.to(torch.float32)
    assert ours.dtype == torch.float64
    assert (ours - theirs).abs().max() < 1e-9
    assert (ours - other).abs().max() > 1e-2  # the comparison can fail
