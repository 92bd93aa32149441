"""k-diffusion-style guided denoiser ``D_w(x, σ)`` for any sampler that passes σ (paper §2; docs/design.md).

Needs only torch. For a shared σ the guidance combination is the same in denoiser, ε and
score space: with ``D = x + σ² ∇log p``, ``D_c + w (D_c − D_u) = x + σ² (s_c + w (s_c − s_u))``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from cfglab._validate import CfglabInputError
from cfglab.guidance.combine import cfg
from cfglab.guidance.schedules import Schedule, as_schedule

__all__ = ["CFGDenoiser"]


def _cat(a: Any, b: Any) -> Any:
    """Concatenate two conditionings along the batch: tensors, dicts and lists of them."""
    if a is None and b is None:
        return None
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.cat([a, b])
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return {k: _cat(a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return type(a)(_cat(x, y) for x, y in zip(a, b))
    raise CfglabInputError(f"cannot batch cond of type {type(a).__name__} with uncond of type {type(b).__name__}")


class CFGDenoiser(torch.nn.Module):
    """Classifier-free guidance (Ho & Salimans 2022) on a denoiser, with a schedule ``w(σ)`` (paper eq. s_w).

    ``D_w(x, σ) = D_c + w(σ) (D_c − D_u)`` with ``D_c = model(x, σ, cond=cond)`` and
    ``D_u = model(x, σ, cond=uncond)``. σ is the VE (EDM / k-diffusion) noise level, cfglab's σ.
    Where every sample of the batch has ``w = 0`` only the conditional pass runs, where every
    sample has ``w = −1`` only the unconditional one; otherwise both run in one batched call
    (``batch_cond_uncond=True``) or two calls.

    Parameters
    ----------
    model : callable
        ``model(x, sigma, cond=..., **kwargs) -> denoised``; ``x`` shape ``[B, ...]``, ``sigma``
        shape ``[B]``. Conditionings are tensors, or dicts / lists of tensors, of batch ``B``.
    schedule : Schedule, str, number or callable
        The guidance schedule ``w(σ)`` (paper convention, ``w ≥ −1``).
    batch_cond_uncond : bool
        Evaluate the two passes as one call of batch ``2B``.
    """

    def __init__(self, model: Callable[..., torch.Tensor], schedule: Schedule | str | float | Callable,
                 *, batch_cond_uncond: bool = True):
        super().__init__()
        self.inner_model = model
        self.schedule = as_schedule(schedule)
        self.batch_cond_uncond = batch_cond_uncond

    def weight(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Per-sample guidance weight ``w(σ)``, shape ``[B]`` (float64)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1).cpu()
        return self.schedule(sigma.expand(x.shape[0]).clone())  # [B]

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, cond: Any = None, uncond: Any = None,
                **kwargs) -> torch.Tensor:
        """Guided denoised estimate ``D_w``, shape of ``x``."""
        w = self.weight(x, sigma)  # [B]
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).reshape(-1).expand(x.shape[0])  # [B]
        if bool((w == 0).all()):
            return self.inner_model(x, sigma, cond=cond, **kwargs)
        if bool((w == -1).all()):
            return self.inner_model(x, sigma, cond=uncond, **kwargs)
        if self.batch_cond_uncond:
            both = self.inner_model(torch.cat([x, x]), torch.cat([sigma, sigma]), cond=_cat(cond, uncond), **kwargs)
            d_cond, d_uncond = both.chunk(2)  # [B, ...] each
        else:
            d_cond = self.inner_model(x, sigma, cond=cond, **kwargs)
            d_uncond = self.inner_model(x, sigma, cond=uncond, **kwargs)
        w = w.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))  # [B, 1, ...]
        return cfg(d_cond, d_uncond, w)
