"""Conventions shared by the lab, the theory and the image models (docs/design.md, paper §2).

Forward process (Ornstein–Uhlenbeck): ``x_t = e^{-t} x_0 + sqrt(Δ_t) z`` with
``Δ_t = 1 - e^{-2t}``.  The shared time variable is the VE noise level of ``x_t / e^{-t}``,

.. math:: \\sigma(t) = \\sqrt{e^{2t} - 1}, \\qquad t(\\sigma) = \\tfrac12 \\log(1 + \\sigma^2).

Schedules are functions of σ; these helpers convert at the edges only.  The exponential
regime has ``K = ⌈e^{αd}⌉`` classes (:func:`exponential_K`).
"""

from __future__ import annotations

import math
import sys

from cfglab._validate import CfglabInputError, positive, positive_int

__all__ = ["sigma_from_t", "t_from_sigma", "ou_time_grid", "exponential_K"]


def _torch_if_tensor(x):
    """torch when ``x`` is a tensor, else None (floats never import torch: fast start-up)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None


def sigma_from_t(t):
    """VE noise level σ(t) = sqrt(e^{2t} − 1) of OU time ``t`` (float or tensor)."""
    if torch := _torch_if_tensor(t):
        return torch.sqrt(torch.expm1(2 * t))
    return math.sqrt(math.expm1(2 * t))


def t_from_sigma(sigma):
    """OU time t(σ) = log(1 + σ²) / 2 of noise level ``sigma`` (float or tensor)."""
    if torch := _torch_if_tensor(sigma):
        return 0.5 * torch.log1p(sigma**2)
    return 0.5 * math.log1p(sigma**2)


def ou_time_grid(T: float, steps: int, *, t_min: float = 0.0, dtype=None) -> "torch.Tensor":
    """Uniform OU-time grid ``[T, ..., t_min]`` with ``steps`` intervals, shape ``[steps + 1]`` (float64 by default)."""
    import torch

    T = positive("T", T)
    steps = positive_int("steps", steps)
    if not 0 <= t_min < T:
        raise CfglabInputError(f"t_min must lie in [0, T={T}), got {t_min!r}")
    return torch.linspace(T, t_min, steps + 1, dtype=torch.float64 if dtype is None else dtype)


def exponential_K(alpha: float, d: int) -> int:
    """Number of classes ``K = ceil(e^{α d})`` of the exponential regime; at most 2**62 (a count torch can index)."""
    if alpha * d > 62 * math.log(2):
        from cfglab._validate import CfglabInputError

        raise CfglabInputError(f"K = e^(alpha d) = e^{alpha * d:.4g} classes at alpha={alpha!r}, d={d!r} "
                               "is more than 2**62")
    return math.ceil(math.exp(alpha * d) - 1e-9)
