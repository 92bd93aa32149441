"""Sampling loops that take a guider as a call argument: class-conditional DiT and Stable Diffusion.

The stock ``DiTPipeline`` computes CFG inline (and only for ``guidance_scale > 1``); these
functions re-implement its loop around any diffusers guider, most usefully
:class:`~cfglab.integrations.diffusers.CfglabGuidance`. The guider is an argument, never a
registered pipeline module, so the pipeline still saves and loads as the stock class.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from diffusers.guiders.guider_utils import BaseGuidance
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from cfglab._validate import CfglabInputError, positive_int
from cfglab.integrations.diffusers.guider import CfglabGuidance

__all__ = ["denoise_with_guider", "generate_dit", "generate_stable_diffusion"]


def _check_guider(guider) -> None:
    if not isinstance(guider, BaseGuidance):
        raise CfglabInputError(
            f"guider must be a diffusers BaseGuidance (e.g. CfglabGuidance), got {type(guider).__name__}")


def _timestep_batch(t, n: int, device) -> torch.Tensor:
    t = torch.as_tensor(t, device=device)
    return (t[None] if t.ndim == 0 else t).expand(n)  # [n]


def _predict(model_fn, guider, x: torch.Tensor, t, inputs: dict[str, Any], denoiser) -> list:
    """Run the batches the guider asks for; one model call when the guider allows batching."""
    batches = guider.prepare_inputs(inputs)
    if isinstance(guider, CfglabGuidance):  # no model patching: evaluate all batches at once
        for _ in batches:
            guider.prepare_models(denoiser)
        kw = {k: torch.cat([getattr(b, k) for b in batches]) for k in inputs}
        xs = torch.cat([x] * len(batches))  # [n_batches * B, ...]
        preds = model_fn(xs, _timestep_batch(t, len(xs), x.device), **kw).chunk(len(batches))
        for b, pred in zip(batches, preds):
            b.noise_pred = pred
        return batches
    for b in batches:  # generic guiders may patch the model per batch (PAG, SLG, ...)
        guider.prepare_models(denoiser)
        b.noise_pred = model_fn(x, _timestep_batch(t, len(x), x.device), **{k: getattr(b, k) for k in inputs})
        guider.cleanup_models(denoiser)
    return batches


def denoise_with_guider(
    model_fn: Callable[..., torch.Tensor],
    scheduler,
    guider: BaseGuidance,
    noise: torch.Tensor,
    inputs: dict[str, Any],
    num_inference_steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
    denoiser: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Generic diffusers sampling loop with a guider (the modular-pipeline protocol), in latent space.

    Parameters
    ----------
    model_fn : callable
        ``model_fn(x, t, **inputs) -> prediction`` with ``x`` of shape ``[n, C, H, W]`` and ``t``
        of shape ``[n]``; returns the prediction the scheduler expects, shape ``[n, C, H, W]``.
    scheduler : diffusers scheduler
        Its timesteps are set here; a :class:`CfglabGuidance` is bound to it.
    guider : BaseGuidance
    noise : Tensor, shape [B, C, H, W]
        Unit Gaussian noise; scaled by ``scheduler.init_noise_sigma``.
    inputs : dict
        ``{name: (cond, uncond)}`` conditioning tensors of batch ``B`` (or a shared tensor).
    callback : callable, optional
        Called after every step with ``dict(i, t, sigma, w, n_passes, latents)``.
    denoiser : torch.nn.Module, optional
        The network behind ``model_fn``, handed to ``guider.prepare_models`` (guiders that patch
        the model, e.g. PAG, need it). Diffusers guiders other than :class:`CfglabGuidance` run
        one model call per batch, as in diffusers' modular pipelines.

    Returns
    -------
    Tensor, shape [B, C, H, W]
        The final latents.
    """
    _check_guider(guider)
    steps = positive_int("num_inference_steps", num_inference_steps)
    scheduler.set_timesteps(steps, device=noise.device)
    if isinstance(guider, CfglabGuidance):
        guider.bind_scheduler(scheduler)
    step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    latents = noise * scheduler.init_noise_sigma  # [B, C, H, W]
    timesteps = scheduler.timesteps
    for i, t in enumerate(timesteps):
        guider.set_state(step=i, num_inference_steps=len(timesteps), timestep=t)
        x_in = scheduler.scale_model_input(latents, t)  # [B, C, H, W]
        batches = _predict(model_fn, guider, x_in, t, inputs, denoiser)
        pred = guider(batches).pred  # [B, C, H, W]
        latents = scheduler.step(pred, t, latents, **step_kwargs).prev_sample
        if callback is not None:
            callback({"i": i, "t": t, "sigma": getattr(guider, "sigma", None), "w": getattr(guider, "w", None),
                      "n_passes": len(batches), "latents": latents})
    return latents


def _decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """VAE decode to images in [0, 1], shape [B, 3, H, W] (as the stock DiT pipeline does)."""
    images = vae.decode(latents / vae.config.scaling_factor).sample
    return (images / 2 + 0.5).clamp(0, 1)


def _images_out(pipe, images: torch.Tensor, output_type: str, return_dict: bool):
    if output_type not in ("pil", "np", "pt"):
        raise CfglabInputError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
    if output_type != "pt":
        images = images.cpu().permute(0, 2, 3, 1).float().numpy()
        if output_type == "pil":
            images = pipe.numpy_to_pil(images)
    return ImagePipelineOutput(images=images) if return_dict else (images,)


@torch.no_grad()
def generate_dit(
    pipe,
    class_labels: list[int],
    guider: BaseGuidance,
    *,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    output_type: str = "pil",
    return_dict: bool = True,
    callback: Callable[[dict], None] | None = None,
):
    """Class-conditional DiT sampling (Peebles & Xie 2023) with a guider in place of the inline CFG.

    Works with a stock :class:`diffusers.DiTPipeline` (``transformer``, ``vae``, ``scheduler``).
    Same noise draw as the stock ``__call__`` for the same ``generator``; with a DDIM scheduler
    and ``CfglabGuidance(constant w)`` it reproduces ``pipe(class_labels, guidance_scale=1 + w)``.
    Unlike the stock loop it also scales the initial noise by ``init_noise_sigma`` and keeps the
    scheduler state unscaled, so Euler-type schedulers are correct, and it passes ``generator``
    to stochastic schedulers. The null class is ``transformer.config.num_embeds_ada_norm``.

    ``output_type`` is ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (final latents, no decode).
    """
    transformer = pipe.transformer
    channels = transformer.config.in_channels
    size = transformer.config.sample_size
    device = pipe._execution_device
    labels = torch.tensor(class_labels, device=device).reshape(-1)  # [B]
    null = torch.full_like(labels, transformer.config.num_embeds_ada_norm)  # [B]
    noise = randn_tensor((len(labels), channels, size, size), generator=generator, device=device,
                         dtype=transformer.dtype)  # [B, C, H, W]

    def eps(x, t, class_labels):  # learned-variance models: guide the ε channels only
        return transformer(x, timestep=t, class_labels=class_labels).sample[:, :channels]

    latents = denoise_with_guider(eps, pipe.scheduler, guider, noise, {"class_labels": (labels, null)},
                                  num_inference_steps, generator=generator, callback=callback, denoiser=transformer)
    if output_type == "latent":
        return ImagePipelineOutput(images=latents) if return_dict else (latents,)
    return _images_out(pipe, _decode(pipe.vae, latents), output_type, return_dict)


@torch.no_grad()
def generate_stable_diffusion(
    pipe,
    prompt: str | list[str] | None,
    guider: BaseGuidance,
    *,
    negative_prompt: str | list[str] | None = None,
    num_inference_steps: int = 30,
    height: int | None = None,
    width: int | None = None,
    generator: torch.Generator | None = None,
    prompt_embeds: torch.Tensor | None = None,
    negative_prompt_embeds: torch.Tensor | None = None,
    output_type: str = "pil",
    callback: Callable[[dict], None] | None = None,
):
    """Text-to-image Stable Diffusion 1.x/2.x sampling with a guider (the classic CFG recipe).

    Uses the pipeline's ``encode_prompt``, ``unet``, ``vae``, ``scheduler`` and ``image_processor``;
    the text encoder is skipped when ``prompt_embeds`` and ``negative_prompt_embeds`` are given.
    No safety checker is run. ``output_type`` is ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"``.
    Returns the images (a list for ``"pil"``).
    """
    unet = pipe.unet
    device = getattr(pipe, "_execution_device", unet.device)
    height = height or unet.config.sample_size * pipe.vae_scale_factor
    width = width or unet.config.sample_size * pipe.vae_scale_factor
    if height % 8 or width % 8:  # as StableDiffusionPipeline.check_inputs
        raise CfglabInputError(f"height and width must be divisible by 8, got height={height}, width={width}")
    if prompt_embeds is None or negative_prompt_embeds is None:
        prompt_embeds, negative_prompt_embeds = pipe.encode_prompt(
            prompt, device, 1, True, negative_prompt,
            prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_prompt_embeds)
    factor = pipe.vae_scale_factor
    shape = (len(prompt_embeds), unet.config.in_channels, height // factor, width // factor)
    noise = randn_tensor(shape, generator=generator, device=device, dtype=prompt_embeds.dtype)  # [B, 4, h, w]

    def eps(x, t, encoder_hidden_states):
        return unet(x, t, encoder_hidden_states=encoder_hidden_states).sample

    inputs = {"encoder_hidden_states": (prompt_embeds, negative_prompt_embeds)}
    latents = denoise_with_guider(eps, pipe.scheduler, guider, noise, inputs, num_inference_steps,
                                  generator=generator, callback=callback, denoiser=unet)
    if output_type == "latent":
        return latents
    images = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(images, output_type=output_type, do_denormalize=[True] * len(images))
