"""``cfglab reproduce``: every claim of the paper as a report with figures (docs/sweeps.md).

Each section runs its experiments through the resumable sweep engine, then writes figures,
numbers and one sentence whose verdict is computed from the measured numbers.
"""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.report.base": ("Figure", "Section", "SectionResult"),
    "cfglab.report.profiles": ("PROFILES", "Profile", "get_profile"),
    "cfglab.report.runner": ("reproduce",),
})

__all__ = ["Figure", "Section", "SectionResult", "PROFILES", "Profile", "get_profile", "reproduce"]
