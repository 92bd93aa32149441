"""Guidance: schedules w(σ) and the rules that combine conditional and unconditional scores."""

from cfglab.guidance.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    FromCallable,
    Interval,
    Linear,
    NegativeWindow,
    PaperLinear,
    Schedule,
    as_schedule,
    parse_schedule,
)

__all__ = [
    "SCHEDULES", "Constant", "Cosine", "FromCallable", "Interval", "Linear", "NegativeWindow",
    "PaperLinear", "Schedule", "as_schedule", "parse_schedule",
]
