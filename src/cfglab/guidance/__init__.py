"""Guidance primitives: schedules w(σ) and the rules that combine s_c and s_u.

The theory-calibrated window is an experiment: :func:`cfglab.experiments.calibrate.calibrate`
(also ``cfglab.calibrate``).
"""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.guidance.combine": ("GuidedScore", "cfg", "cfg_force"),
    "cfglab.guidance.denoiser": ("CFGDenoiser",),
    "cfglab.guidance.rules": ("APG", "CFG", "PowerLawCFG"),
    "cfglab.guidance.schedules": ("SCHEDULES", "Constant", "Cosine", "FromCallable", "Interval", "Linear",
        "NegativeWindow", "PaperLinear", "PiecewiseConstant", "Schedule", "as_schedule", "parse_schedule"),
})

__all__ = [
    "SCHEDULES", "Constant", "Cosine", "FromCallable", "Interval", "Linear", "NegativeWindow",
    "PaperLinear", "PiecewiseConstant", "Schedule", "as_schedule", "parse_schedule",
    "APG", "CFG", "PowerLawCFG", "CFGDenoiser", "GuidedScore", "cfg", "cfg_force",
]
