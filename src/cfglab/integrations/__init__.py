"""Integrations with other diffusion code bases (optional extras).

* :mod:`cfglab.integrations.diffusers` — Hugging Face ``diffusers`` guider and DiT / Stable
  Diffusion loops (extra ``cfglab[diffusers]``); :class:`CFGDenoiser` (the k-diffusion-style
  guided denoiser, needs only torch) lives in :mod:`cfglab.guidance.denoiser` and is
  re-exported here.

Importing this package imports no optional dependency.
"""

from cfglab.integrations.diffusers import CFGDenoiser

__all__ = ["CFGDenoiser"]
