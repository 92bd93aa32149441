"""Guidance primitives: schedules w(σ) and the rules that combine s_c and s_u.

The theory-calibrated window is an experiment: :func:`cfglab.experiments.calibrate.calibrate`
(also ``cfglab.calibrate``).
"""

from cfglab.guidance.combine import GuidedScore, cfg, cfg_force
from cfglab.guidance.denoiser import CFGDenoiser
from cfglab.guidance.rules import APG, CFG, PowerLawCFG
from cfglab.guidance.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    FromCallable,
    Interval,
    Linear,
    NegativeWindow,
    PaperLinear,
    PiecewiseConstant,
    Schedule,
    as_schedule,
    parse_schedule,
)

__all__ = [
    "SCHEDULES", "Constant", "Cosine", "FromCallable", "Interval", "Linear", "NegativeWindow",
    "PaperLinear", "PiecewiseConstant", "Schedule", "as_schedule", "parse_schedule",
    "APG", "CFG", "PowerLawCFG", "CFGDenoiser", "GuidedScore", "cfg", "cfg_force",
]
