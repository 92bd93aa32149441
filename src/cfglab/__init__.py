"""cfglab: exact scores, theory and guidance schedules for the distortions of classifier-free guidance.

Reference: "Emergence of Distortions in High-Dimensional Guided Diffusion Models"
(arXiv 2602.00716).  Weight convention: ``s_w = s_c + w (s_c − s_u)``.
"""

from cfglab._validate import CfglabInputError
from cfglab.lab import (
    GaussianMixture,
    InfiniteClassMixture,
    SimulationConfig,
    TrajectoryRecorder,
    distortion,
    explicit_mixture,
    exponential_mixture,
    infinite_class_mixture,
    random_mixture,
    sample_ode,
    sample_sde,
    sigma_grid,
    simulate,
)
from cfglab.noise import sigma_from_t, t_from_sigma
from cfglab.guidance import (
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

__version__ = "0.1.0"

__all__ = [
    "CfglabInputError",
    "GaussianMixture", "InfiniteClassMixture", "SimulationConfig", "TrajectoryRecorder", "distortion",
    "explicit_mixture", "exponential_mixture", "infinite_class_mixture", "random_mixture",
    "sample_ode", "sample_sde", "sigma_grid", "simulate",
    "sigma_from_t", "t_from_sigma",
    "Schedule", "Constant", "Cosine", "FromCallable", "Interval", "Linear", "NegativeWindow",
    "PaperLinear", "as_schedule", "parse_schedule",
]
