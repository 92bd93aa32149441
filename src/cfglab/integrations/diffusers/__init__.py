"""Apply cfglab guidance schedules w(σ) in Hugging Face ``diffusers`` (docs/latent.md; extra ``cfglab[diffusers]``).

* :class:`CFGDenoiser` — k-diffusion-style guided denoiser ``D_w(x, σ)``; needs only torch.
* :class:`CfglabGuidance` — a ``diffusers.guiders.BaseGuidance`` applying ``w(σ)``, with
  ``guidance_scale = 1 + w`` at the diffusers boundary.
* :class:`ScheduledGuidance` — any two-pass diffusers guider (APG, CFG-Zero*, TCFG, …) with its
  ``guidance_scale`` driven by ``w(σ)``.
* :func:`generate_dit`, :func:`generate_stable_diffusion`, :func:`denoise_with_guider` — sampling
  loops that take the guider as a call argument.
* :func:`scheduler_sigma`, :func:`scheduler_sigmas`, :func:`step_sigmas`, :func:`switch_sigma` — timestep → σ maps.

Importing this package does not import diffusers; the names that need it import it on first
use and raise an ``ImportError`` naming the ``cfglab[diffusers]`` extra when it is missing.
"""

from __future__ import annotations

import importlib

from cfglab.guidance.denoiser import CFGDenoiser

__all__ = [
    "CFGDenoiser", "CfglabGuidance", "ScheduledGuidance", "guidance_scale_for", "denoise_with_guider", "generate_dit", "generate_stable_diffusion",
    "scheduler_sigma", "scheduler_sigmas", "sigma_convention", "step_sigmas", "switch_sigma", "CONVENTIONS",
]

_LAZY = {
    "CfglabGuidance": "guider", "ScheduledGuidance": "scheduled", "guidance_scale_for": "scheduled",
    "denoise_with_guider": "pipelines", "generate_dit": "pipelines", "generate_stable_diffusion": "pipelines",
    "scheduler_sigma": "_sigma", "scheduler_sigmas": "_sigma", "sigma_convention": "_sigma",
    "step_sigmas": "_sigma", "switch_sigma": "_sigma", "CONVENTIONS": "_sigma",
}


def _require_diffusers() -> None:
    try:
        importlib.import_module("diffusers")
    except ImportError as err:
        raise ImportError(
            "cfglab.integrations.diffusers needs the 'diffusers' package: pip install 'cfglab[diffusers]'"
        ) from err


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _require_diffusers()
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
