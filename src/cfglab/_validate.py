"""Input validation at the library boundary.

Every check raises :class:`CfglabInputError` (a ``ValueError``) whose message names the
offending value in one line; the command line turns it into exit status 2.
"""

from __future__ import annotations

import math
from typing import Any


class CfglabInputError(ValueError):
    """Bad user input: the message is one line naming the bad value."""


def _finite(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CfglabInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise CfglabInputError(f"{name} must be finite, got {value!r}")
    return x


def finite(name: str, value: Any) -> float:
    """Return ``value`` as a finite float."""
    return _finite(name, value)


def positive(name: str, value: Any) -> float:
    """Return ``value`` as a finite float > 0."""
    x = _finite(name, value)
    if x <= 0:
        raise CfglabInputError(f"{name} must be > 0, got {value!r}")
    return x


def nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a finite float >= 0."""
    x = _finite(name, value)
    if x < 0:
        raise CfglabInputError(f"{name} must be >= 0, got {value!r}")
    return x


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int >= 1."""
    try:
        x = int(value)
    except (TypeError, ValueError):
        raise CfglabInputError(f"{name} must be an integer, got {value!r}") from None
    if x != value and not (isinstance(value, str) and str(x) == value.strip()):
        if not (isinstance(value, float) and value.is_integer()):
            raise CfglabInputError(f"{name} must be an integer, got {value!r}")
    if x < 1:
        raise CfglabInputError(f"{name} must be >= 1, got {value!r}")
    return x


def guidance_weight(name: str, value: Any) -> float:
    """Return a guidance weight; the paper's convention requires ``w >= -1``."""
    x = _finite(name, value)
    if x < -1:
        raise CfglabInputError(f"{name} must be >= -1 (w = -1 is the unconditional score), got {value!r}")
    return x
