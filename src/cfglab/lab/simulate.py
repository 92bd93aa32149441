"""One guided-sampling run on an exact-score ensemble and its distortion (``cfglab simulate``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch

from cfglab._validate import CfglabInputError, device
from cfglab.guidance.schedules import Schedule, as_schedule
from cfglab.lab.ensembles import exponential_mixture, infinite_class_mixture, random_mixture
from cfglab.lab.observables import TrajectoryRecorder, distortion
from cfglab.lab.run_checks import check_run_fields
from cfglab.lab.samplers import SAMPLERS, sigma_grid

__all__ = ["SimulationConfig", "SamplingDiverged", "simulate", "build_model"]

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class SamplingDiverged(CfglabInputError):
    """The sampler produced non-finite samples (too few steps for the schedule)."""


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines one run; exactly one of ``K``, ``alpha``, ``infinite`` is set.

    ``schedule`` is a schedule string (``"constant:w=2"``) or anything
    :func:`~cfglab.guidance.schedules.as_schedule` accepts (a :class:`Schedule`, a number, a
    callable of σ); :meth:`to_dict` writes it as its string.
    """

    d: int
    K: int | None = None
    alpha: float | None = None
    infinite: bool = False
    sigma2: float = 0.5
    s2: float = 1.0
    schedule: str | Schedule = "constant:w=0"
    sampler: str = "sde"
    n_samples: int = 2000
    steps: int = 500
    T: float = 6.0
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"
    start: str = "noise"  # "noise": x_T ~ N(0, I); "marginal": the exact noised law at T
    memory_gb: float = 4.0
    on_the_fly: bool = False  # regenerate random means from the seed instead of storing them

    def __post_init__(self):
        check_run_fields(self)  # torch-free (also run by the command line before torch loads)
        as_schedule(self.schedule)
        if self.sampler not in SAMPLERS:
            raise CfglabInputError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        device("device", self.device)

    def to_dict(self) -> dict:
        """The fields as plain JSON-able values (the schedule as its string)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**out, "schedule": str(out["schedule"])}


def build_model(cfg: SimulationConfig):
    """The ensemble a config describes (seeded by ``cfg.seed``)."""
    kw = dict(seed=cfg.seed, dtype=DTYPES[cfg.dtype], device=cfg.device)
    if cfg.infinite:
        return infinite_class_mixture(cfg.d, cfg.sigma2, cfg.s2, **kw)
    kw.update(memory_bytes=int(cfg.memory_gb * 2**30), on_the_fly=cfg.on_the_fly)
    if cfg.alpha is not None:
        return exponential_mixture(cfg.alpha, cfg.d, cfg.sigma2, cfg.s2, **kw)
    return random_mixture(cfg.K, cfg.d, cfg.sigma2, cfg.s2, **kw)


def _initial_state(model, cfg: SimulationConfig, generator: torch.Generator) -> torch.Tensor:
    kw = dict(generator=generator, dtype=DTYPES[cfg.dtype], device=cfg.device)
    z = torch.randn(cfg.n_samples, cfg.d, **kw)
    if cfg.start == "noise":
        return z
    decay = math.exp(-cfg.T)
    if cfg.infinite:
        return z * math.sqrt(model.gamma(cfg.T) + decay**2 * cfg.s2)
    classes = torch.randint(model.K, (cfg.n_samples,), generator=generator, device=cfg.device)
    return decay * model.means[classes] + math.sqrt(model.gamma(cfg.T)) * z


def simulate(cfg: SimulationConfig, *, rule=None, trajectory: bool = False,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Run guided sampling for ``cfg`` and return the distortion metrics (docs/design.md, docs/sweeps.md).

    ``rule`` is a guidance rule (:mod:`cfglab.guidance.rules`; plain CFG by default).
    ``progress(i, steps)`` is called after every step; with ``trajectory=True`` the result
    has a ``trajectory`` dict of per-step m, v, π_c and CFG-force series.  Non-finite samples
    raise :class:`SamplingDiverged`.
    """
    model = build_model(cfg)
    generator = torch.Generator(device=cfg.device).manual_seed(cfg.seed + 1)
    x = _initial_state(model, cfg, generator)
    recorder = TrajectoryRecorder(model.target_mean) if trajectory else None

    def callback(info):
        if recorder is not None:
            recorder(info)
        if progress is not None:
            progress(info["i"] + 1, cfg.steps)

    sigmas = sigma_grid(cfg.T, cfg.steps).tolist()
    samples = SAMPLERS[cfg.sampler](model, x, sigmas, schedule=as_schedule(cfg.schedule),
                                    rule=rule, generator=generator, callback=callback)
    if not torch.isfinite(samples).all():
        raise SamplingDiverged("sampling diverged (non-finite samples); use more --steps or a milder schedule")
    result = {"K": None if cfg.infinite else model.K, "d": cfg.d, **distortion(samples, model)}
    if recorder is not None:
        result["trajectory"] = recorder.as_dict()
    return result
