"""The one classifier-free-guidance combination (paper eq. for s_w; docs/design.md).

``s_w = s_c + w (s_c − s_u)``: ``w = 0`` is the conditional score, ``w = −1`` the
unconditional one, ``w > 0`` is CFG.  For a shared σ the same combination holds for scores,
denoised predictions and ε-predictions, so every caller (the lab's ensembles, the guidance
rules, :class:`~cfglab.guidance.denoiser.CFGDenoiser`, the diffusers guider) uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["GuidedScore", "cfg", "cfg_force", "guided_score"]


def cfg_force(cond: torch.Tensor, uncond: torch.Tensor, w) -> torch.Tensor:
    """The CFG force ``w (cond − uncond)`` (``w`` a number or a tensor broadcasting to ``cond``)."""
    return w * (cond - uncond)


def cfg(cond: torch.Tensor, uncond: torch.Tensor, w) -> torch.Tensor:
    """Guided prediction ``cond + w (cond − uncond)``, shape of ``cond``."""
    return cond + cfg_force(cond, uncond, w)


@dataclass(frozen=True)
class GuidedScore:
    """Guided score at one step, with what a trajectory recorder needs."""

    score: torch.Tensor  # [N, d]  s_w
    cfg_force: torch.Tensor  # [N, d]  s_w − s_c (w (s_c − s_u) for plain CFG)
    log_pi_target: torch.Tensor | None  # [N]  log π_c(x, t); None in the infinite-class limit


def guided_score(s_c: torch.Tensor, force: torch.Tensor, log_pi_target: torch.Tensor | None) -> GuidedScore:
    """:class:`GuidedScore` ``s_c + force`` for a force computed by any guidance rule."""
    return GuidedScore(score=s_c + force, cfg_force=force, log_pi_target=log_pi_target)
