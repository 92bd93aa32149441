"""cfglab guidance in real diffusers pipelines built from tiny components (issue 15).

A real ``StableDiffusionPipeline`` (CLIP text encoder from a ``CLIPTextConfig``, tokenizer from
a vocabulary written here) against its own ``__call__``, and a real modular SDXL pipeline with
``CfglabGuidance`` as its guider component, run twice.
"""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import _tiny_pipelines as tiny  # noqa: E402
from _tiny_pipelines import one_thread  # noqa: E402,F401  (autouse: one torch thread)

from cfglab import CfglabInputError  # noqa: E402
from cfglab.guidance import Constant, NegativeWindow  # noqa: E402
from cfglab.integrations.diffusers import CfglabGuidance, generate_stable_diffusion, switch_sigma  # noqa: E402

pytestmark = pytest.mark.usefixtures("float64")  # written for float64 defaults

STEPS = 6
PROMPTS = ["a cat", "an astronaut"]


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return tiny.sd_pipeline(tmp_path_factory.mktemp("sd"))


def _gen():
    return torch.Generator().manual_seed(5)


def _stock_sd(pipe, guidance_scale):
    return pipe(PROMPTS, guidance_scale=guidance_scale, num_inference_steps=STEPS, generator=_gen(),
                output_type="latent").images


def _ours_sd(pipe, schedule, **kw):
    return generate_stable_diffusion(pipe, PROMPTS, CfglabGuidance(schedule), num_inference_steps=STEPS,
                                     generator=_gen(), output_type="latent", **kw)


def test_real_stable_diffusion_pipeline_constant_schedule_is_stock_cfg(sd):
    """Float64 so batch order (stock: uncond first) cannot matter beyond ~1e-12; CFG moves latents by > 1."""
    sd.to(torch.float64)
    try:
        for w in (0.0, 6.5):
            stock = _stock_sd(sd, 1.0 + w)  # guidance_scale 1: the stock pipeline runs the conditional pass only
            ours = _ours_sd(sd, Constant(w))
            assert ours.dtype == torch.float64 and (ours - stock).abs().max() < 1e-9 * stock.abs().max()
        assert (_stock_sd(sd, 1.0) - stock).abs().max() > 1.0  # the comparison can fail
    finally:
        sd.to(torch.float32)


def test_real_stable_diffusion_pipeline_negative_window(sd):
    sigma_switch = switch_sigma(sd.scheduler, STEPS, 0.5)
    log = []
    images = generate_stable_diffusion(sd, PROMPTS, CfglabGuidance(NegativeWindow(3.0, -1.0, sigma_switch)),
                                       num_inference_steps=STEPS, generator=_gen(), output_type="np",
                                       callback=log.append)
    assert [e["n_passes"] for e in log] == [2] * 3 + [1] * 3
    assert images.shape == (2, 8, 8, 3)


def test_height_and_width_must_be_divisible_by_8(sd):
    with pytest.raises(CfglabInputError, match="height=12, width=8"):
        generate_stable_diffusion(sd, PROMPTS, CfglabGuidance(Constant(1.0)), height=12, width=8)
    with pytest.raises(ValueError, match="divisible by 8"):  # the stock pipeline refuses the same
        sd(PROMPTS, height=12, width=8, num_inference_steps=1)


def _modular_latents(pipe):
    return pipe(prompt=PROMPTS, num_inference_steps=STEPS, generator=_gen(), height=8, width=8, output="latents")


def test_modular_sdxl_runs_twice_with_a_negative_window_guider(tmp_path):
    """After a run that ends at w = −1 the guider must still ask for the negative prompt (issue 15 defect 1)."""
    scheduler = diffusers.EulerDiscreteScheduler()
    sigmas = __import__("cfglab.integrations.diffusers", fromlist=["step_sigmas"]).step_sigmas(scheduler, STEPS)
    guider = CfglabGuidance(NegativeWindow(2.0, -1.0, float((sigmas[2] * sigmas[3]).sqrt())), scheduler=scheduler)
    pipe = tiny.sdxl_modular(tmp_path, guider, scheduler)
    rows = []
    pipe.unet.register_forward_pre_hook(lambda m, args, kw: rows.append(len(args[0] if args else kw["sample"])),
                                        with_kwargs=True)
    first = _modular_latents(pipe)
    assert guider.w == -1.0
    second = _modular_latents(pipe)
    assert torch.equal(first, second)
    assert sum(rows) == 2 * len(PROMPTS) * (3 * 2 + 3)  # two runs of 3 two-pass + 3 one-pass steps


def test_modular_sdxl_constant_schedule_is_diffusers_cfg(tmp_path):
    scheduler = diffusers.EulerDiscreteScheduler()
    pipe = tiny.sdxl_modular(tmp_path, CfglabGuidance(Constant(4.0), scheduler=scheduler), scheduler)
    ours = [_modular_latents(pipe) for _ in range(2)]
    pipe.update_components(guider=diffusers.guiders.ClassifierFreeGuidance(guidance_scale=5.0))
    stock = _modular_latents(pipe)
    pipe.update_components(guider=diffusers.guiders.ClassifierFreeGuidance(guidance_scale=2.0))
    other = _modular_latents(pipe)
    for latents in ours:  # same model calls and the same combination: equal to float32 rounding
        torch.testing.assert_close(latents, stock, rtol=1e-5, atol=1e-5 * float(stock.abs().max()))
    assert (other - stock).abs().max() > 1e-2 * stock.abs().max()


def test_modular_sdxl_with_a_scheduled_diffusers_guider(tmp_path):
    """ScheduledGuidance(APG) as the guider component: the stock APG at constant w, twice."""
    from cfglab.integrations.diffusers import ScheduledGuidance

    def apg(**kw):
        return diffusers.guiders.AdaptiveProjectedGuidance(adaptive_projected_guidance_momentum=-0.5, eta=0.0, **kw)

    scheduler = diffusers.EulerDiscreteScheduler()
    pipe = tiny.sdxl_modular(tmp_path, ScheduledGuidance(apg(), Constant(3.0), scheduler=scheduler), scheduler)
    ours = [_modular_latents(pipe) for _ in range(2)]
    pipe.update_components(guider=apg(guidance_scale=4.0))
    stock = _modular_latents(pipe)
    for latents in ours:
        torch.testing.assert_close(latents, stock, rtol=1e-5, atol=1e-5 * float(stock.abs().max()))
