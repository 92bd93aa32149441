"""Integrations with other diffusion code bases (optional extras).

* :mod:`cfglab.integrations.diffusers` — Hugging Face ``diffusers`` guider and DiT / Stable
  Diffusion loops (extra ``cfglab[diffusers]``); :class:`CFGDenoiser` (the k-diffusion-style
  guided denoiser, needs only torch) lives in :mod:`cfglab.guidance.denoiser` and is
  re-exported here.

Importing this package imports no optional dependency.
"""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.integrations.diffusers": ("CFGDenoiser",),
})

__all__ = ["CFGDenoiser"]
