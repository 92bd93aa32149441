"""Guidance rules: plain CFG, power-law CFG and APG (paper §6 and related rules; docs/design.md).

A rule composes with a model that has ``score_pair(x, σ) -> (s_c, s_u, log π_c)`` (scores
of the OU state at noise level σ): ``rule.guided(model, x, σ, w) -> GuidedScore``; the lab's samplers take it as ``rule=`` and
any schedule w(σ) supplies ``w``.  Convention: ``s_w = s_c + F`` with the CFG force
``F = w (s_c − s_u)`` for plain CFG (w = 0 conditional, w = −1 unconditional).  Rules hold
no model; APG's momentum is explicit state that the caller clears with ``reset()`` (the
samplers do so at the start of every run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from cfglab._validate import CfglabInputError, finite, nonnegative
from cfglab.guidance.combine import GuidedScore, cfg_force, guided_score
from cfglab.noise import t_from_sigma

__all__ = ["CFG", "PowerLawCFG", "APG", "RULES"]


@dataclass
class CFG:
    """Plain classifier-free guidance (Ho & Salimans 2022): ``F = w (s_c − s_u)``."""

    def reset(self) -> None:
        """Start of a sampling run (plain CFG is stateless)."""

    def force(self, x: torch.Tensor, sigma: float, w: float, s_c: torch.Tensor, s_u: torch.Tensor) -> torch.Tensor:
        return cfg_force(s_c, s_u, w)  # [N, d]

    def guided(self, model, x: torch.Tensor, sigma: float, w: float) -> GuidedScore:
        """Guided score of ``model`` at (x, σ) with weight w."""
        s_c, s_u, log_pi = model.score_pair(x, sigma)
        return guided_score(s_c, self.force(x, sigma, w, s_c, s_u), log_pi)


@dataclass
class PowerLawCFG(CFG):
    """Power-law (non-linear) CFG (Pavasovic, Verbeek, Biroli, Mézard 2025, arXiv 2502.07849).

    The published rule is ``F = ω ‖Δ‖^γ Δ`` with ``Δ = s_c − s_u`` and the Euclidean norm per
    sample (``norm="l2"``: ``w`` is their ω).  cfglab's default (``norm="rms"``) uses the norm
    per coordinate, ``F = w (‖Δ‖/√d)^γ Δ``, so that γ acts on a d-independent magnitude; the
    two agree exactly when ``w = ω d^{γ/2}`` (docs/schedules.md).  ``norm="coordinate"`` is the
    per-coordinate variant of their d-dimensional simulations, ``F_i = w min(|Δ_i|^γ, clip) Δ_i``
    (``clip`` bounds the factor where |Δ_i| → 0 with γ < 0).  γ = 0 is plain CFG in every form.
    """

    gamma: float = -0.5
    eps: float = 1e-12
    norm: str = "rms"  # "rms" (cfglab), "l2" (published, w = ω) or "coordinate" (published per-coordinate)
    clip: float = math.inf  # per-coordinate variant only: upper bound of |Δ_i|^γ

    def __post_init__(self):
        self.gamma = finite("gamma", self.gamma)
        if self.norm not in ("rms", "l2", "coordinate"):
            raise CfglabInputError(f"unknown norm {self.norm!r}; choose rms, l2 or coordinate")
        if math.isnan(float(self.clip)) or float(self.clip) <= 0:
            raise CfglabInputError(f"clip must be > 0, got {self.clip}")

    def force(self, x, sigma, w, s_c, s_u):
        delta = s_c - s_u  # [N, d]
        if self.norm == "coordinate":
            factor = delta.abs().clamp_min(self.eps) ** self.gamma  # [N, d]
            return w * factor.clamp_max(self.clip) * delta
        norm = delta.norm(dim=1, keepdim=True)  # [N, 1]
        if self.norm == "rms":
            norm = norm / math.sqrt(delta.shape[1])
        return w * norm.clamp_min(self.eps) ** self.gamma * delta


@dataclass
class APG(CFG):
    """Adaptive projected guidance (Sadat, Hilliges, Weber 2024, arXiv 2410.02416).

    APG acts on denoised predictions.  For the OU process ``D = e^{t}(x + Δ_t s)`` (Tweedie),
    so ``D_c − D_u = e^{t} Δ_t (s_c − s_u)``.  Per sample: momentum
    ``u ← Δ + β u_prev`` (β < 0 in the paper), rescaling ``u ← u · min(1, r√d/‖u‖)``, split
    into ``u_∥`` along ``D_c`` and ``u_⊥``, and ``D_w = D_c + w (u_⊥ + η u_∥)`` (w = G − 1).
    Mapped back to scores, ``F = w e^{-t}(u_⊥ + η u_∥)/Δ_t``; with β = 0, r = ∞, η = 1 this is
    plain CFG.  ``r`` is a per-coordinate (RMS) threshold, hence the √d.

    Momentum is explicit state: the lab's samplers call ``guided`` once per step
    (Euler–Maruyama) or twice (Heun, both stages count), in decreasing σ, and call
    ``reset()`` at the start of every run; a caller driving ``guided`` itself does the same.
    """

    eta: float = 0.0
    momentum: float = -0.5
    threshold: float = math.inf
    _buffer: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        self.eta = finite("eta", self.eta)
        self.momentum = finite("momentum", self.momentum)
        if math.isnan(float(self.threshold)):
            raise CfglabInputError("threshold must be a number, got nan")
        self.threshold = float("inf") if math.isinf(float(self.threshold)) else nonnegative("threshold",
                                                                                             self.threshold)

    def reset(self) -> None:
        """Forget the momentum buffer (start of a new sampling run)."""
        self._buffer = None

    def force(self, x, sigma, w, s_c, s_u):
        t = t_from_sigma(sigma)
        decay, var = math.exp(-t), 1 - math.exp(-2 * t)
        scale = var / decay  # D_c − D_u = scale (s_c − s_u)
        u = scale * (s_c - s_u)  # [N, d]
        if self._buffer is not None and self.momentum != 0:
            u = u + self.momentum * self._buffer
        self._buffer = u
        if math.isfinite(self.threshold):
            norm = u.norm(dim=1, keepdim=True).clamp_min(1e-300)  # [N, 1]
            u = u * torch.clamp(self.threshold * math.sqrt(u.shape[1]) / norm, max=1.0)
        d_c = (x + var * s_c) / decay  # [N, d] conditional denoised prediction
        unit = d_c / d_c.norm(dim=1, keepdim=True).clamp_min(1e-300)
        par = (u * unit).sum(dim=1, keepdim=True) * unit
        return w * (u - par + self.eta * par) / scale if var > 0 else cfg_force(s_c, s_u, w)


RULES = {"cfg": CFG, "power_law": PowerLawCFG, "apg": APG}
