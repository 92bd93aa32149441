"""Input validation at the library boundary.

Every check raises :class:`CfglabInputError` (a ``ValueError``) whose message names the
offending value in one line; the command line turns it into exit status 2.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any


class CfglabInputError(ValueError):
    """Bad user input: the message is one line naming the bad value."""


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool):  # True is an int to Python, never a number to a user
        raise CfglabInputError(f"{name} must be a number, got {value!r}")
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
    if isinstance(value, bool):
        raise CfglabInputError(f"{name} must be an integer, got {value!r}")
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


SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
T_MAX = 50.0  # OU horizon: σ(T) = sqrt(e^{2T} − 1) stays finite and e^{-T} is far below float64 resolution


def seed(name: str, value: Any) -> int:
    """Return ``value`` as a random seed, an int in [0, 2**63 − 1]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CfglabInputError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value <= SEED_MAX:
        raise CfglabInputError(f"{name} must lie in [0, 2**63 - 1], got {value!r}")
    return value


VARIANCE_RANGE = (1e-8, 1e8)  # σ², s²: beyond it e^{-2t}-weighted sums underflow against 1 − e^{-2t}


def variance(name: str, value: Any) -> float:
    """Return a class or prior variance (σ², s²) within ``VARIANCE_RANGE``."""
    x = positive(name, value)
    lo, hi = VARIANCE_RANGE
    if not lo <= x <= hi:
        raise CfglabInputError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}")
    return x


def horizon(name: str, value: Any) -> float:
    """Return an OU time horizon T in (0, ``T_MAX``] (docs/theory.md: the run starts at σ(T))."""
    x = positive(name, value)
    if x > T_MAX:
        raise CfglabInputError(f"{name} must be <= {T_MAX:g} (sigma(T) = sqrt(e^(2T) - 1) overflows), got {value!r}")
    return x


DEVICE_TYPES = ("cpu", "cuda", "mps")


def device_name(name: str, value: Any) -> str:
    """``value`` as a device string ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (a syntax check; needs no torch)."""
    text = str(value).strip()
    kind, colon, index = text.partition(":")
    if kind not in DEVICE_TYPES or (colon and not index.isdigit()):
        raise CfglabInputError(f"{name} {value!r} is not a supported device: cpu, cuda, cuda:N or mps")
    return text


def device(name: str, value: Any):
    """Return ``value`` as a ``torch.device`` that exists on this machine."""
    import torch

    dev = torch.device(device_name(name, value))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CfglabInputError(f"{name} {value!r} requested but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise CfglabInputError(f"{name} {value!r} requested but MPS is not available")
    return dev


def memory_fits(what: str, n_bytes: float, budget_bytes: float) -> None:
    """Refuse work whose largest buffer (``n_bytes``) exceeds the memory budget, naming both."""
    if n_bytes > budget_bytes:
        raise CfglabInputError(f"{what} needs {n_bytes / 2**30:.3g} GiB, over the memory budget of "
                               f"{budget_bytes / 2**30:.3g} GiB (raise --memory-gb or lower the sizes)")


def writable_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written as a file (not a folder, parent writable)."""
    path = Path(path)
    if path.is_dir():
        raise CfglabInputError(f"{what} {str(path)!r} is a folder, expected a file name")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CfglabInputError(f"{what} {str(path)!r} cannot be written ({str(parent)!r} is not a writable folder)")
    return path


def writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` is or can become a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CfglabInputError(f"{what} {str(path)!r} exists and is not a folder")
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CfglabInputError(f"{what} {str(path)!r} cannot be written ({str(parent)!r} is not a writable folder)")
    return path


def sigma_grid_values(sigmas: Any) -> list[float]:
    """A sampler's noise levels as floats: at least 2, finite, >= 0 and strictly decreasing."""
    try:
        grid = [float(s) for s in (sigmas.reshape(-1) if hasattr(sigmas, "reshape") else sigmas)]
    except (TypeError, ValueError):
        raise CfglabInputError(f"sigmas must be a sequence of numbers, got {sigmas!r}") from None
    if len(grid) < 2:
        raise CfglabInputError(f"sigmas needs at least 2 noise levels (one step), got {grid!r}")
    bad = next((s for s in grid if not math.isfinite(s) or s < 0), None)
    if bad is not None:
        raise CfglabInputError(f"sigmas must be finite and >= 0, got {bad!r}")
    if any(b >= a for a, b in zip(grid[:-1], grid[1:])):
        raise CfglabInputError(f"sigmas must decrease strictly (sampling runs from noise to data), got {grid[:6]!r}...")
    return grid


def finite_state(name: str, x: Any):
    """A sampler's start state: a floating-point tensor without NaN or inf."""
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise CfglabInputError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    if not torch.isfinite(x).all():
        raise CfglabInputError(f"{name} contains NaN or inf")
    return x


def generator(name: str, value: Any):
    """``None`` or a ``torch.Generator`` (a bare int seed is a common slip: say how to make one)."""
    import torch

    if value is not None and not isinstance(value, torch.Generator):
        raise CfglabInputError(f"{name} must be a torch.Generator or None, got {value!r} "
                               "(use torch.Generator().manual_seed(seed))")
    return value
