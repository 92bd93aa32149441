"""Guidance: schedules w(σ), the rules that combine s_c and s_u, and theory-calibrated windows."""

from cfglab.guidance.calibrate import Calibration, calibrate
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
    "APG", "CFG", "PowerLawCFG", "Calibration", "calibrate",
]
