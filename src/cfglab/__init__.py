"""cfglab: exact scores, theory and guidance schedules for the distortions of classifier-free guidance.

Reference: "Emergence of Distortions in High-Dimensional Guided Diffusion Models"
(arXiv 2602.00716).  Weight convention: ``s_w = s_c + w (s_c − s_u)``; σ(t) = sqrt(e^{2t} − 1)
is the shared time variable.  Subpackages: :mod:`cfglab.lab` (exact-score laboratory),
:mod:`cfglab.theory`, :mod:`cfglab.guidance`, :mod:`cfglab.latent` (needs the ``latent``
extra), :mod:`cfglab.integrations` (diffusers), :mod:`cfglab.sweep`, :mod:`cfglab.experiments`,
:mod:`cfglab.report`; their layering is described in ``docs/design.md``.
"""

from cfglab._lazy import lazy_exports
from cfglab._validate import CfglabInputError

# name -> defining module, imported on first use (PEP 562): `cfglab --help` needs no torch
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.guidance.rules": ("APG", "CFG", "PowerLawCFG"),
    "cfglab.guidance.denoiser": ("CFGDenoiser",),
    "cfglab.guidance.schedules": ("Constant", "Cosine", "FromCallable", "Interval", "Linear", "NegativeWindow",
                                  "PaperLinear", "PiecewiseConstant", "Schedule", "as_schedule",
                                  "parse_schedule"),
    "cfglab.experiments.calibrate": ("Calibration", "calibrate"),
    "cfglab.lab.ensembles": ("GaussianMixture", "InfiniteClassMixture", "explicit_mixture", "exponential_mixture",
                             "infinite_class_mixture", "random_mixture"),
    "cfglab.lab.observables": ("TrajectoryRecorder", "distortion"),
    "cfglab.lab.samplers": ("sample_ode", "sample_sde", "sigma_grid"),
    "cfglab.lab.simulate": ("SimulationConfig", "simulate"),
    "cfglab.noise": ("sigma_from_t", "t_from_sigma"),
    "cfglab.theory.dmft": ("solve_dmft",),
    "cfglab.theory.gaussian": ("solve_gaussian",),
    "cfglab.theory.transition": ("transition",),
})

__version__ = "0.1.0"

__all__ = [
    "CfglabInputError",
    # exact-score lab
    "GaussianMixture", "InfiniteClassMixture", "SimulationConfig", "TrajectoryRecorder", "distortion",
    "explicit_mixture", "exponential_mixture", "infinite_class_mixture", "random_mixture",
    "sample_ode", "sample_sde", "sigma_grid", "simulate", "sigma_from_t", "t_from_sigma",
    # guidance
    "Schedule", "Constant", "Cosine", "FromCallable", "Interval", "Linear", "NegativeWindow",
    "PaperLinear", "PiecewiseConstant", "as_schedule", "parse_schedule",
    "CFG", "PowerLawCFG", "APG", "Calibration", "calibrate", "CFGDenoiser",
    # theory
    "solve_gaussian", "solve_dmft", "transition",
]
