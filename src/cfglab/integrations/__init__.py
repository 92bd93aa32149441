"""Integrations with other diffusion code bases (optional extras).

* :mod:`cfglab.integrations.diffusers` — Hugging Face ``diffusers`` guider, DiT / Stable
  Diffusion loops and the k-diffusion-style :class:`CFGDenoiser` (extra ``cfglab[diffusers]``).

Importing this package imports no optional dependency.
"""

from cfglab.integrations.diffusers import CFGDenoiser

__all__ = ["CFGDenoiser"]
