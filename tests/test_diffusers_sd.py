"""Stable Diffusion path: generate_stable_diffusion against the classic SD CFG loop (issue 5).

The text encoder needs ``transformers`` (not a cfglab dependency), so the test passes prompt
embeddings directly to a tiny UNet2DConditionModel + Euler ancestral scheduler, the paper's
real-model sampler. The reference is the loop of ``StableDiffusionPipeline.__call__``.
"""

from types import SimpleNamespace

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from diffusers.image_processor import VaeImageProcessor  # noqa: E402
from diffusers.utils.torch_utils import randn_tensor  # noqa: E402

from _tiny_pipelines import one_thread  # noqa: E402,F401  (autouse: one torch thread)

from cfglab.guidance import Constant, NegativeWindow  # noqa: E402
from cfglab.integrations.diffusers import CfglabGuidance, generate_stable_diffusion, switch_sigma  # noqa: E402

STEPS = 6


@pytest.fixture(scope="module")
def sd():
    gen = torch.Generator().manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(4, 8),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, norm_num_groups=2, attention_head_dim=2,
    ).to(torch.float32)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(p + 0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    vae = diffusers.AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4, layers_per_block=1)
    embeds = torch.randn(2, 5, 8, generator=gen, dtype=torch.float32)  # [B, tokens, dim]
    negative = torch.randn(2, 5, 8, generator=gen, dtype=torch.float32)
    pipe = SimpleNamespace(unet=unet.eval(), vae=vae.to(torch.float32).eval(), scheduler=diffusers.EulerAncestralDiscreteScheduler(),
                           vae_scale_factor=1, image_processor=VaeImageProcessor(vae_scale_factor=1))
    return pipe, embeds, negative


@torch.no_grad()
def _classic_sd_loop(pipe, embeds, negative, guidance_scale, seed):
    """The CFG loop of diffusers' StableDiffusionPipeline.__call__ (uncond first, batched)."""
    scheduler, unet = pipe.scheduler, pipe.unet
    scheduler.set_timesteps(STEPS)
    gen = torch.Generator().manual_seed(seed)
    latents = randn_tensor((2, 4, 8, 8), generator=gen, dtype=embeds.dtype) * scheduler.init_noise_sigma
    context = torch.cat([negative, embeds])
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        uncond, cond = unet(x, t, encoder_hidden_states=context).sample.chunk(2)
        eps = uncond + guidance_scale * (cond - uncond)
        latents = scheduler.step(eps, t, latents, generator=gen).prev_sample
    return latents


def _ours(pipe, embeds, negative, schedule, seed, **kw):
    return generate_stable_diffusion(pipe, None, CfglabGuidance(schedule), num_inference_steps=STEPS,
                                     generator=torch.Generator().manual_seed(seed), prompt_embeds=embeds,
                                     negative_prompt_embeds=negative, **kw)


def test_constant_schedule_reproduces_the_classic_sd_loop_with_euler_ancestral(sd):
    pipe, embeds, negative = sd
    reference = _classic_sd_loop(pipe, embeds, negative, 7.5, seed=5)
    ours = _ours(pipe, embeds, negative, Constant(6.5), seed=5, output_type="latent")
    assert (ours - reference).abs().max() < 1e-5
    assert (_classic_sd_loop(pipe, embeds, negative, 1.0, seed=5) - reference).abs().max() > 1e-2


def test_paper_negative_window_runs_one_pass_in_the_window(sd):
    pipe, embeds, negative = sd
    sigma_switch = switch_sigma(pipe.scheduler, STEPS, 0.5)  # w = -1 on the last 3 of 6 steps
    log = []
    images = _ours(pipe, embeds, negative, NegativeWindow(3.0, -1.0, sigma_switch), seed=5, output_type="np",
                   callback=log.append)
    assert [e["w"] for e in log] == [3.0] * 3 + [-1.0] * 3
    assert [e["n_passes"] for e in log] == [2] * 3 + [1] * 3
    assert images.shape == (2, 8, 8, 3) and 0 <= images.min() and images.max() <= 1
