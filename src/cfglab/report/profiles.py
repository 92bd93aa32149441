"""Embedded presets of ``cfglab reproduce``: one frozen dataclass per report section.

``quick`` fits in about 15 minutes on 2 CPU cores; ``full`` is sized for a GPU or a Dask
cluster (``--scheduler``); ``test`` is a tiny profile for the test suite only.  The resolved
profile is written next to the report as ``profile.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cfglab._validate import CfglabInputError

__all__ = ["LabSettings", "PhaseSettings", "ExponentialSettings", "SubExpSettings",
           "InfiniteSettings", "ShrinkageSettings", "LatentSettings", "RegimeSettings", "Profile", "PROFILES",
           "get_profile"]


@dataclass(frozen=True)
class LabSettings:
    """Shared ensemble and sampler settings (docs/design.md defaults)."""

    sigma2: float = 0.5
    s2: float = 1.0
    T: float = 6.0
    sampler: str = "sde"


@dataclass(frozen=True)
class PhaseSettings:
    """Phase diagram: t_c(α), α_c(σ²) from theory; π_c(t) crossings of unguided runs."""

    alphas_d: tuple = ((0.1, (20, 40, 60, 80)), (0.2, (20, 30, 40)), (0.3, (14, 20, 26, 30)))
    n_samples: int = 400
    steps: int = 200
    seeds: int = 2


@dataclass(frozen=True)
class ExponentialSettings:
    """Exponential regime K = e^{αd}: distortion vs α at several d, with the DMFT curve."""

    alphas: tuple = (0.05, 0.1, 0.2, 0.3)
    ds: tuple = (10, 20, 30, 40)
    w: float = 2.0
    n_samples: int = 1000
    steps: int = 200  # the DMFT is solved with the sampler's exact moment map on the same grid
    seeds: int = 2
    max_K: int = 10_000


@dataclass(frozen=True)
class SubExpSettings:
    """Sub-exponential regime: fixed K, distortion vs d decaying to 0."""

    K: int = 3
    ds: tuple = (2, 4, 8, 16, 32, 64, 128)
    w: float = 2.0
    n_samples: int = 2000
    steps: int = 500
    seeds: int = 3


@dataclass(frozen=True)
class InfiniteSettings:
    """Infinite-class limit: distortion vs d, flat at the closed-form value."""

    ds: tuple = (4, 16, 64, 256)
    w: float = 2.0
    n_samples: int = 2000
    steps: int = 500
    seeds: int = 10  # the rule tests var⊥ within 3 s.e. over seeds: 2 seeds give a 1-dof s.e.


@dataclass(frozen=True)
class ShrinkageSettings:
    """Variance shrinkage: random non-negative schedules vs negative windows (Pareto plot)."""

    n_random: int = 200
    d: int = 64
    n_samples: int = 2000
    steps: int = 500
    seeds: int = 2
    ws: tuple = (0.5, 1.0, 2.0, 4.0)
    switches: tuple = (0.3, 0.6, 1.0)
    seed: int = 0
    # DMFT leg of the shrinkage check (cfglab.experiments.shrinkage), in chunks of sweep tasks
    alpha: float = 0.2
    dmft_chunks: int = 4
    dmft_chunk_size: int = 25
    # exponential-regime comparison with other guidance rules (cfglab.experiments.compare)
    compare_d: int = 30
    compare_n: int = 1000
    compare_steps: int = 200
    compare_seeds: int = 2


@dataclass(frozen=True)
class LatentSettings:
    """Real latent diffusion: the separability–diversity study (cfglab.latent).

    ``model`` names a ``cfglab.latent.train.PROFILES`` entry (its checkpoint is reused from
    the cache when present), ``study`` a ``cfglab.experiments.latent_study.STUDY_PRESETS`` entry;
    ``overrides`` replace fields of that study preset.
    """

    enabled: bool = True
    model: str = "default"
    study: str = "quick"
    overrides: tuple = ()  # ((field, value), ...)
    evaluator_seed: int = 0


@dataclass(frozen=True)
class RegimeSettings:
    """The regime study (cfglab.experiments.latent_regimes): ``model`` ``default`` uses each
    conditioning's own training profile, ``tiny`` the tiny one; ``preset`` names a
    ``REGIME_PRESETS`` entry; ``conditionings`` () means all.  The quick profile runs the
    digits baseline only (≈ 3 min with the model cached; all three take ≈ 15 min)."""

    enabled: bool = True
    model: str = "default"
    preset: str = "quick"
    conditionings: tuple = ("digits",)


@dataclass(frozen=True)
class Profile:
    """Everything ``cfglab reproduce`` runs; one field per section."""

    name: str
    lab: LabSettings = field(default_factory=LabSettings)
    phase: PhaseSettings = field(default_factory=PhaseSettings)
    exponential: ExponentialSettings = field(default_factory=ExponentialSettings)
    subexponential: SubExpSettings = field(default_factory=SubExpSettings)
    infinite: InfiniteSettings = field(default_factory=InfiniteSettings)
    shrinkage: ShrinkageSettings = field(default_factory=ShrinkageSettings)
    latent: LatentSettings = field(default_factory=LatentSettings)
    regimes: RegimeSettings = field(default_factory=RegimeSettings)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_TEST = Profile(
    name="test",
    phase=PhaseSettings(alphas_d=((0.2, (8, 12)),), n_samples=50, steps=30, seeds=1),
    exponential=ExponentialSettings(alphas=(0.1, 0.3), ds=(6, 10), n_samples=100, steps=30, seeds=1, max_K=100),
    subexponential=SubExpSettings(ds=(2, 8, 32), n_samples=200, steps=30, seeds=1),
    infinite=InfiniteSettings(ds=(4, 32), n_samples=200, steps=30, seeds=1),
    shrinkage=ShrinkageSettings(n_random=10, d=8, n_samples=200, steps=30, seeds=1, ws=(1.0, 3.0), switches=(0.6,),
                                dmft_chunks=1, dmft_chunk_size=2, compare_d=8, compare_n=100, compare_steps=20,
                                compare_seeds=1),
    latent=LatentSettings(enabled=False, model="tiny", study="quick", overrides=(
        ("seeds", (0, 1)), ("n_per_class", 7), ("steps", 4), ("constant_w", (0.0, 2.0)), ("interval_w", ()),
        ("window_w_pos", (2.0,)), ("window_fractions", (0.4,)), ("window_extra", ()))),
    regimes=RegimeSettings(enabled=False, model="tiny", preset="test", conditionings=("digits",)),
)

_FULL = Profile(
    name="full",
    phase=PhaseSettings(alphas_d=((0.1, (40, 60, 80, 100)), (0.2, (20, 30, 40, 50)),
                                  (0.3, (14, 20, 26, 32))), n_samples=1000, steps=500, seeds=4),
    exponential=ExponentialSettings(alphas=(0.05, 0.1, 0.15, 0.2, 0.3, 0.4), ds=(20, 30, 40, 50),
                                    n_samples=4000, steps=500, seeds=4, max_K=500_000),
    subexponential=SubExpSettings(ds=(2, 4, 8, 16, 32, 64, 128, 256), n_samples=8000, steps=1000, seeds=5),
    infinite=InfiniteSettings(ds=(4, 16, 64, 256, 1024), n_samples=8000, steps=1000, seeds=10),
    shrinkage=ShrinkageSettings(n_random=2000, d=256, n_samples=8000, steps=1000, seeds=4, dmft_chunks=40,
                                compare_d=40, compare_n=4000, compare_steps=500, compare_seeds=4),
    latent=LatentSettings(model="default", study="full", overrides=(("seeds", (0, 1, 2, 3, 4)),
                                                                    ("n_per_class", 200))),
    regimes=RegimeSettings(preset="full", conditionings=()),
)

PROFILES: dict[str, Profile] = {"test": _TEST, "quick": Profile(name="quick"), "full": _FULL}


def get_profile(name: str) -> Profile:
    """The preset called ``name``; unknown names are a one-line input error."""
    try:
        return PROFILES[name]
    except KeyError:
        raise CfglabInputError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}") from None
