"""The exact-score laboratory: Gaussian-mixture ensembles, chunked scores, samplers, observables."""

from cfglab.lab.ensembles import (
    GaussianMixture,
    GuidedScore,
    InfiniteClassMixture,
    SeededMeans,
    explicit_mixture,
    exponential_K,
    exponential_mixture,
    infinite_class_mixture,
    random_mixture,
)
from cfglab.lab.kernel import PosteriorStats, plan_chunks, posterior_stats
from cfglab.lab.observables import TrajectoryRecorder, distortion, gaussian_kl_per_dim
from cfglab.lab.samplers import SAMPLERS, sample_ode, sample_sde, sigma_grid
from cfglab.lab.simulate import SimulationConfig, simulate

__all__ = [
    "GaussianMixture", "GuidedScore", "InfiniteClassMixture", "explicit_mixture", "exponential_K",
    "exponential_mixture", "infinite_class_mixture", "random_mixture", "TrajectoryRecorder",
    "distortion", "gaussian_kl_per_dim", "SAMPLERS", "sample_ode", "sample_sde", "sigma_grid",
    "SimulationConfig", "simulate", "SeededMeans", "PosteriorStats", "plan_chunks", "posterior_stats",
]
