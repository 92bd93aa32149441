"""Guidance schedules w(σ) (docs/schedules.md).

Weight convention (the paper's): the guided score is ``s_w = s_c + w (s_c − s_u)``;
``w = 0`` is the conditional score, ``w = −1`` the unconditional one, ``w > 0`` is CFG.
Image code bases use ``G = 1 + w`` (diffusers' ``guidance_scale``); convert there only.

Every schedule is a frozen dataclass called on σ (a float or a tensor, vectorised) and
round-trips through its string form: ``parse_schedule(str(s)) == s``, e.g.
``constant:w=2``, ``interval:w=2,lo=0.28,hi=5.42``,
``negative_window:w_pos=3,w_neg=-1,sigma_switch=0.8``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, ClassVar

from cfglab._validate import CfglabInputError, finite, guidance_weight, nonnegative, positive
from cfglab.noise import sigma_from_t, t_from_sigma


class _LazyTorch:
    """``torch``, imported on first use: parsing and checking a schedule string needs none,
    so a bad ``--schedule`` is answered before torch loads (docs/performance.md, start-up)."""

    def __getattr__(self, name: str):
        import torch as module

        globals()["torch"] = module  # later lookups in this module skip the proxy
        return getattr(module, name)


torch = _LazyTorch()

__all__ = [
    "Schedule",
    "Constant",
    "Interval",
    "Linear",
    "Cosine",
    "NegativeWindow",
    "PaperLinear",
    "PiecewiseConstant",
    "FromCallable",
    "SCHEDULES",
    "parse_schedule",
    "as_schedule",
    "sampler_inputs",
]

SIGMA_MAX_DEFAULT = sigma_from_t(6.0)  # σ at the lab's default horizon T = 6


class Schedule:
    """Base class: ``schedule(sigma) -> w`` for floats and tensors alike."""

    name: ClassVar[str] = ""

    def weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """Guidance weight at noise levels ``sigma`` (tensor, any shape)."""
        raise NotImplementedError

    def breakpoints(self) -> tuple[float, ...]:
        """Noise levels σ where w(σ) may jump or kink (default: none, w smooth in σ).

        ODE solvers integrate piecewise between them (:func:`cfglab.theory.gaussian.schedule_breakpoints`),
        so a schedule class with a jump or a kink reports it here, or the solver loses accuracy
        there.  Non-finite values are ignored.
        """
        return ()

    def __call__(self, sigma):
        if isinstance(sigma, torch.Tensor):
            return self.weight(sigma)
        return float(self.weight(torch.tensor(float(sigma), dtype=torch.float64)))

    def __str__(self) -> str:
        params = ",".join(f"{f.name}={_fmt(getattr(self, f.name))}" for f in dataclasses.fields(self))
        return f"{self.name}:{params}" if params else self.name

    def is_nonnegative(self) -> bool:
        """Whether w(σ) ≥ 0 for every σ (checked on a dense log-grid of σ)."""
        grid = torch.logspace(-4, 4, 4001, dtype=torch.float64)
        return bool((self.weight(grid) >= 0).all())


def _fmt(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x)) if abs(x) < 1e15 else repr(float(x))


def _full(sigma: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full_like(sigma, value, dtype=sigma.dtype if sigma.is_floating_point() else torch.float64)


def _progress(sigma: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """Fraction of the sampling run in OU time: 0 at ``sigma_max``, 1 at σ = 0."""
    return (1 - t_from_sigma(sigma) / t_from_sigma(sigma_max)).clamp(0, 1)


@dataclass(frozen=True)
class Constant(Schedule):
    """Constant CFG weight ``w`` at every noise level (Ho & Salimans 2022)."""

    w: float
    name: ClassVar[str] = "constant"

    def __post_init__(self):
        object.__setattr__(self, "w", guidance_weight("w", self.w))

    def weight(self, sigma):
        return _full(sigma, self.w)


@dataclass(frozen=True)
class Interval(Schedule):
    """Guidance limited to an interval (Kynkäänniemi et al. 2024): ``w`` on (lo, hi], 0 outside."""

    w: float
    lo: float
    hi: float
    name: ClassVar[str] = "interval"

    def __post_init__(self):
        object.__setattr__(self, "w", guidance_weight("w", self.w))
        lo, hi = nonnegative("lo", self.lo), positive("hi", self.hi)
        if lo >= hi:
            raise CfglabInputError(f"interval needs lo < hi, got lo={self.lo!r}, hi={self.hi!r}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def breakpoints(self) -> tuple[float, ...]:
        return (self.lo, self.hi)

    def weight(self, sigma):
        inside = (sigma > self.lo) & (sigma <= self.hi)
        return torch.where(inside, _full(sigma, self.w), _full(sigma, 0.0))


@dataclass(frozen=True)
class _Ramp(Schedule):
    """A ramp from ``start`` (at ``sigma_max`` and above) to ``end`` (at σ = 0).

    Progress is the fraction of the run in OU time, ``p = 1 − t(σ)/t(sigma_max)``.
    """

    start: float
    end: float
    sigma_max: float = SIGMA_MAX_DEFAULT

    def __post_init__(self):
        object.__setattr__(self, "start", guidance_weight("start", self.start))
        object.__setattr__(self, "end", guidance_weight("end", self.end))
        object.__setattr__(self, "sigma_max", positive("sigma_max", self.sigma_max))

    def breakpoints(self) -> tuple[float, ...]:
        return (self.sigma_max,)  # constant above, ramp below


@dataclass(frozen=True)
class Linear(_Ramp):
    """Linear ramp (Wang et al. 2024, "Analysis of CFG weight schedulers"): ``w = start + (end − start) p``."""

    name: ClassVar[str] = "linear"

    def weight(self, sigma):
        p = _progress(sigma, self.sigma_max)
        return self.start + (self.end - self.start) * p


@dataclass(frozen=True)
class Cosine(_Ramp):
    """Cosine ramp (Wang et al. 2024): ``w = end + (start − end)(1 + cos πp)/2``."""

    name: ClassVar[str] = "cosine"

    def weight(self, sigma):
        p = _progress(sigma, self.sigma_max)
        return self.end + (self.start - self.end) * 0.5 * (1 + torch.cos(math.pi * p))


@dataclass(frozen=True)
class NegativeWindow(Schedule):
    """Positive guidance early, a negative window late (the paper's §4 schedule).

    ``w = w_pos`` on (sigma_switch, sigma_hi], ``w = w_neg`` (≥ −1) for σ ≤ sigma_switch and
    0 above ``sigma_hi`` (default ∞).  The paper's Stable Diffusion runs switch to
    ``w_neg = −1`` for the last 30–50% of the steps.
    """

    w_pos: float
    w_neg: float
    sigma_switch: float
    sigma_hi: float = math.inf
    name: ClassVar[str] = "negative_window"

    def __post_init__(self):
        object.__setattr__(self, "w_pos", guidance_weight("w_pos", self.w_pos))
        object.__setattr__(self, "w_neg", guidance_weight("w_neg", self.w_neg))
        object.__setattr__(self, "sigma_switch", nonnegative("sigma_switch", self.sigma_switch))
        hi = float(self.sigma_hi)
        if math.isnan(hi) or hi <= self.sigma_switch:
            raise CfglabInputError(f"sigma_hi must exceed sigma_switch={self.sigma_switch}, got {self.sigma_hi!r}")
        object.__setattr__(self, "sigma_hi", hi)

    def __str__(self) -> str:
        s = f"{self.name}:w_pos={_fmt(self.w_pos)},w_neg={_fmt(self.w_neg)},sigma_switch={_fmt(self.sigma_switch)}"
        return s if math.isinf(self.sigma_hi) else f"{s},sigma_hi={_fmt(self.sigma_hi)}"

    def breakpoints(self) -> tuple[float, ...]:
        return (self.sigma_switch, self.sigma_hi)

    def weight(self, sigma):
        w = torch.where(sigma > self.sigma_switch, _full(sigma, self.w_pos), _full(sigma, self.w_neg))
        return torch.where(sigma > self.sigma_hi, _full(sigma, 0.0), w)


@dataclass(frozen=True)
class PaperLinear(Schedule):
    """The paper's §4.2 form: ``w = max(−1, w0 + slope · t)`` with t = t(σ) the forward OU time."""

    w0: float
    slope: float
    name: ClassVar[str] = "paper_linear"

    def __post_init__(self):
        object.__setattr__(self, "w0", finite("w0", self.w0))
        object.__setattr__(self, "slope", finite("slope", self.slope))

    def breakpoints(self) -> tuple[float, ...]:
        """The σ where the clip at −1 starts or stops (none when it never does)."""
        t = (-1 - self.w0) / self.slope if self.slope != 0 else -1.0
        return (sigma_from_t(t),) if 0 < t < 300 else ()  # beyond t = 300 no run reaches it

    def weight(self, sigma):
        return (self.w0 + self.slope * t_from_sigma(sigma)).clamp(min=-1.0)


@dataclass(frozen=True)
class PiecewiseConstant(Schedule):
    """Piecewise-constant weight in σ (random schedules of the shrinkage check, docs/schedules.md).

    ``edges`` are decreasing noise levels σ_1 > σ_2 > ... > σ_n ≥ 0 and ``weights`` has n + 1
    entries: ``weights[0]`` for σ > σ_1, ``weights[j]`` on (σ_{j+1}, σ_j] and ``weights[n]`` for
    σ ≤ σ_n.  String form ``piecewise:weights=2|0.5|-1,edges=5|1`` (``|`` separates entries).
    """

    weights: tuple
    edges: tuple = ()
    name: ClassVar[str] = "piecewise"
    tuple_fields: ClassVar[tuple[str, ...]] = ("weights", "edges")

    def __post_init__(self):
        weights = tuple(guidance_weight(f"weights[{i}]", w) for i, w in enumerate(_as_tuple(self.weights)))
        edges = tuple(nonnegative(f"edges[{i}]", e) for i, e in enumerate(_as_tuple(self.edges)))
        if len(weights) != len(edges) + 1:
            raise CfglabInputError(f"piecewise needs len(weights) = len(edges) + 1, got {len(weights)} and {len(edges)}")
        if any(hi <= lo for hi, lo in zip(edges[:-1], edges[1:])):
            raise CfglabInputError(f"piecewise edges must decrease strictly, got {edges!r}")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "edges", edges)

    def __str__(self) -> str:
        ws = "|".join(_fmt(w) for w in self.weights)
        es = "|".join(_fmt(e) for e in self.edges)
        return f"{self.name}:weights={ws},edges={es}" if es else f"{self.name}:weights={ws}"

    def breakpoints(self) -> tuple[float, ...]:
        return tuple(self.edges)

    def weight(self, sigma):
        w = _full(sigma, self.weights[0])
        for edge, value in zip(self.edges, self.weights[1:]):
            w = torch.where(sigma <= edge, _full(sigma, value), w)
        return w


def _as_tuple(value) -> tuple:
    if isinstance(value, (int, float)):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        raise CfglabInputError(f"expected a sequence of numbers, got {value!r}") from None


@dataclass(frozen=True)
class FromCallable(Schedule):
    """Wrap a user function ``fn(sigma) -> w`` (float or tensor σ); weights must stay ≥ −1."""

    fn: Callable
    label: str = "callable"
    name: ClassVar[str] = "callable"

    def weight(self, sigma):
        try:
            w = self.fn(sigma)
        except (TypeError, RuntimeError):
            w = torch.tensor([self._number(self.fn(float(s))) for s in sigma.reshape(-1)], dtype=sigma.dtype)
            w = w.reshape(sigma.shape)
        w = self._weights_like(w, sigma)
        if not torch.isfinite(w).all() or (w < -1).any():
            raise CfglabInputError(f"schedule {self.label!r} returned a weight that is not finite or is < -1")
        return w

    def __str__(self) -> str:
        return f"callable:{self.label}"

    def _number(self, w) -> float:
        if isinstance(w, (bool, str)) or w is None:
            raise CfglabInputError(f"schedule {self.label!r} returned {w!r}, expected a number")
        try:
            return float(w)
        except (TypeError, ValueError, RuntimeError):
            raise CfglabInputError(f"schedule {self.label!r} returned {w!r}, expected a number") from None

    def _weights_like(self, w, sigma: torch.Tensor) -> torch.Tensor:
        """``w`` as a tensor of σ's shape (a number broadcasts); anything else is named."""
        if not isinstance(w, torch.Tensor):
            return torch.full_like(sigma, self._number(w), dtype=sigma.dtype)
        if w.numel() != 1 and w.shape != sigma.shape:
            raise CfglabInputError(f"schedule {self.label!r} returned shape {tuple(w.shape)} for sigma of "
                                   f"shape {tuple(sigma.shape)}")
        return w.to(dtype=sigma.dtype, device=sigma.device).expand_as(sigma)


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Constant, Interval, Linear, Cosine, NegativeWindow, PaperLinear, PiecewiseConstant)
}


def parse_schedule(text: str) -> Schedule:
    """Parse ``"name:key=value,..."`` into a schedule; a bare number means ``constant``."""
    text = str(text).strip()
    try:
        w = float(text)
    except ValueError:
        pass
    else:  # a bare number: constant w (Constant names a w < -1 or non-finite value)
        return Constant(w)
    name, _, rest = text.partition(":")
    cls = SCHEDULES.get(name.strip())
    if cls is None:
        raise CfglabInputError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise CfglabInputError(f"unknown parameter {key!r} for schedule {name!r}; expected {sorted(fields)}")
        if key in kwargs:
            raise CfglabInputError(f"schedule {text!r} sets {key!r} twice")
        try:
            parts = [float(v) for v in value.split("|")] if value.strip() else []
        except ValueError:
            raise CfglabInputError(f"schedule parameter {key}={value!r} is not a number") from None
        if key in getattr(cls, "tuple_fields", ()):
            kwargs[key] = tuple(parts)
        elif len(parts) == 1:
            kwargs[key] = parts[0]
        else:
            raise CfglabInputError(f"schedule parameter {key}={value!r} is not a number")
    try:
        return cls(**kwargs)
    except TypeError:
        missing = sorted(fields - set(kwargs))
        raise CfglabInputError(f"schedule {name!r} is missing parameter(s) {missing}") from None


def sampler_inputs(x: torch.Tensor, sigmas, schedule, generator):
    """Validate a sampler's arguments at its entry; return the schedule (:func:`as_schedule`).

    ``x`` finite, ``sigmas`` at least two finite, non-negative, strictly decreasing levels,
    ``generator`` None or a ``torch.Generator``.
    """
    from cfglab._validate import finite_state, generator as check_generator, sigma_grid_values

    finite_state("x", x)
    check_generator("generator", generator)
    sigma_grid_values(sigmas)
    return as_schedule(schedule)


def as_schedule(obj) -> Schedule:
    """Coerce a schedule, a string, a number (constant w) or a callable into a :class:`Schedule`."""
    if isinstance(obj, Schedule):
        return obj
    if isinstance(obj, (str, int, float)):
        return parse_schedule(str(obj))
    if callable(obj):
        return FromCallable(obj, getattr(obj, "__name__", "callable"))
    raise CfglabInputError(f"cannot use {obj!r} as a guidance schedule")
