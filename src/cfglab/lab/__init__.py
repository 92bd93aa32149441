"""The exact-score laboratory: Gaussian-mixture ensembles, chunked scores, samplers, observables."""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.lab.ensembles": ("GaussianMixture", "GuidedScore", "InfiniteClassMixture", "SeededMeans",
        "explicit_mixture", "exponential_K", "exponential_mixture", "infinite_class_mixture", "random_mixture"),
    "cfglab.lab.kernel": ("PosteriorStats", "plan_chunks", "posterior_stats"),
    "cfglab.lab.observables": ("TrajectoryRecorder", "distortion", "gaussian_kl_per_dim"),
    "cfglab.lab.samplers": ("SAMPLERS", "sample_ode", "sample_sde", "sigma_grid"),
    "cfglab.lab.simulate": ("SimulationConfig", "simulate"),
})

__all__ = [
    "GaussianMixture", "GuidedScore", "InfiniteClassMixture", "explicit_mixture", "exponential_K",
    "exponential_mixture", "infinite_class_mixture", "random_mixture", "TrajectoryRecorder",
    "distortion", "gaussian_kl_per_dim", "SAMPLERS", "sample_ode", "sample_sde", "sigma_grid",
    "SimulationConfig", "simulate", "SeededMeans", "PosteriorStats", "plan_chunks", "posterior_stats",
]
