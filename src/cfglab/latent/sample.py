"""Guided samplers in σ for the latent model, k-diffusion style (Karras et al. 2022, Alg. 1–2).

Samplers are stateless functions ``sample_*(model, x, sigmas, *, schedule, cond, uncond,
generator, callback)``: ``model(x, sigma, cond=...)`` is a denoiser, guidance is composition
``D_w = D_c + w(σ) (D_c − D_u)`` (cfglab's convention; :class:`cfglab.guidance.denoiser.CFGDenoiser`,
which skips the unconditional pass where w = 0), and ``callback`` receives
``dict(i, sigma, w, x, denoised)`` at every step.  The σ grid is Karras' ρ = 7 grid
(:func:`karras_sigmas`), ending at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.guidance.denoiser import CFGDenoiser
from cfglab.guidance.schedules import as_schedule, sampler_inputs

__all__ = [
    "SAMPLERS",
    "generate",
    "karras_sigmas",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "sigma_at_fraction",
]

Callback = Callable[[dict], None] | None


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """Karras et al. 2022 eq. 5 grid ``[σ_max, …, σ_min, 0]``, shape [steps + 1], float64."""
    steps = positive_int("steps", steps)
    lo, hi = positive("sigma_min", sigma_min), positive("sigma_max", sigma_max)
    if lo >= hi:
        raise CfglabInputError(f"sigma_min={sigma_min!r} must be below sigma_max={sigma_max!r}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def sigma_at_fraction(sigmas: torch.Tensor, fraction: float) -> float:
    """σ with ``σ_i ≤ σ`` exactly for the last ``round(fraction · steps)`` steps of ``sigmas``."""
    if not 0 <= fraction <= 1:
        raise CfglabInputError(f"step fraction must lie in [0, 1], got {fraction!r}")
    n = len(sigmas) - 1
    return float(sigmas[n - int(round(fraction * n))])


def _guided(model, schedule, cond, uncond):
    cfg = CFGDenoiser(model, as_schedule(schedule))
    return lambda x, sigma: cfg(x, sigma, cond=cond, uncond=uncond), cfg


def _report(callback: Callback, cfg: CFGDenoiser, i: int, sigma: float, x, denoised) -> None:
    if callback is not None:
        callback(
            {"i": i, "sigma": sigma, "w": float(cfg.schedule(sigma)), "x": x, "denoised": denoised}
        )


@torch.no_grad()
def sample_euler(
    model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    schedule=0.0,
    cond=None,
    uncond=None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> torch.Tensor:
    """Euler for the probability-flow ODE ``dx/dσ = (x − D_w(x; σ))/σ`` (Karras et al. 2022 eq. 4).

    x : [N, ...] at σ = sigmas[0] (already scaled by it); returns [N, ...] at sigmas[-1].
    ``generator`` is unused (deterministic sampler).
    """
    denoise, cfg = _guided(model, sampler_inputs(x, sigmas, schedule, generator), cond, uncond)
    for i, (s, s_next) in enumerate(zip(sigmas[:-1].tolist(), sigmas[1:].tolist())):
        denoised = denoise(x, s)
        _report(callback, cfg, i, s, x, denoised)
        x = x + (x - denoised) / s * (s_next - s)
    return x


@torch.no_grad()
def sample_heun(
    model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    schedule=0.0,
    cond=None,
    uncond=None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> torch.Tensor:
    """Heun's 2nd-order method for the probability-flow ODE (Karras et al. 2022, Alg. 1)."""
    denoise, cfg = _guided(model, sampler_inputs(x, sigmas, schedule, generator), cond, uncond)
    for i, (s, s_next) in enumerate(zip(sigmas[:-1].tolist(), sigmas[1:].tolist())):
        denoised = denoise(x, s)
        _report(callback, cfg, i, s, x, denoised)
        d = (x - denoised) / s  # [N, ...]
        x_euler = x + d * (s_next - s)
        if s_next == 0:
            x = x_euler
            continue
        d_next = (x_euler - denoise(x_euler, s_next)) / s_next
        x = x + 0.5 * (d + d_next) * (s_next - s)
    return x


@torch.no_grad()
def sample_euler_ancestral(
    model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    schedule=0.0,
    cond=None,
    uncond=None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> torch.Tensor:
    """Ancestral Euler (k-diffusion, η = 1): Euler step to σ_down, then fresh noise of std σ_up."""
    denoise, cfg = _guided(model, sampler_inputs(x, sigmas, schedule, generator), cond, uncond)
    for i, (s, s_next) in enumerate(zip(sigmas[:-1].tolist(), sigmas[1:].tolist())):
        denoised = denoise(x, s)
        _report(callback, cfg, i, s, x, denoised)
        s_up = min(s_next, math.sqrt(max(s_next**2 * (s**2 - s_next**2) / s**2, 0.0)))
        s_down = math.sqrt(s_next**2 - s_up**2)
        x = x + (x - denoised) / s * (s_down - s)
        if s_next > 0:
            x = x + s_up * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x


SAMPLERS = {"euler": sample_euler, "heun": sample_heun, "euler_ancestral": sample_euler_ancestral}


def generate(
    model,
    labels: torch.Tensor,
    schedule,
    *,
    steps: int = 32,
    sampler: str = "heun",
    seed: int = 0,
    batch: int = 1000,
    callback: Callback = None,
    sigmas: torch.Tensor | None = None,
    return_latents: bool = False,
):
    """Images [N, C, H, W] in [−1, 1] of classes ``labels`` [N] from a :class:`LatentModel`.

    Latent noise ``σ_max · z`` and ancestral noise come from one ``torch.Generator(seed)``.
    ``sigmas`` (decreasing, ending at 0) replaces the Karras grid of ``steps``; with
    ``return_latents`` the result is ``(images, final latents [N, c, h, w])``.
    """
    if sampler not in SAMPLERS:
        raise CfglabInputError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    sigmas = karras_sigmas(steps) if sigmas is None else sigmas
    gen = torch.Generator().manual_seed(int(seed))
    net = model.denoiser
    fn = SAMPLERS[sampler]
    out, latents = [], []
    for chunk in labels.split(positive_int("batch", batch)):
        x = float(sigmas[0]) * torch.randn(
            (len(chunk), *model.latent_shape), generator=gen, dtype=torch.float32
        )  # [n, c, h, w]
        null = torch.full_like(chunk, net.null_class)
        z = fn(
            lambda x, sigma, cond: net(x, sigma, cond),
            x,
            sigmas,
            schedule=schedule,
            cond=chunk,
            uncond=null,
            generator=gen,
            callback=callback,
        )
        out.append(model.decode(z))
        latents.append(z)
    images = torch.cat(out)
    return (images, torch.cat(latents)) if return_latents else images
