"""A real class-conditional latent diffusion model and the guidance-schedule study (docs/latent.md).

Layout: ``data`` (digits / .npz / image folder, split + hash), ``model`` (diffusers
AutoencoderKL + UNet2DModel, EDM preconditioning), ``train`` (configs, profiles, training),
``checkpoint`` (safetensors cache), ``sample`` (Euler / Heun / ancestral Euler in σ with a
cfglab schedule), ``evaluate`` (independent classifier, separability / diversity / fidelity),
``stats`` (latent variances), ``outputs`` (tables, plots, sample grids of a study),
``pipeline`` (one-call entry points used by the CLI and the report).  The schedule study
itself is an experiment: :mod:`cfglab.experiments.latent_study`.
"""

from cfglab.latent.checkpoint import load_model, load_or_train, save_model
from cfglab.latent.data import LatentData, load_data
from cfglab.latent.evaluate import Evaluator, reference_row, score_images, train_evaluator
from cfglab.latent.pipeline import (
    Prepared,
    evaluate_schedule,
    prepare,
    resolve_config,
)
from cfglab.latent.sample import (
    SAMPLERS,
    generate,
    karras_sigmas,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
    sigma_at_fraction,
)
from cfglab.latent.train import PROFILES, LatentConfig, LatentModel, train_model

__all__ = [
    "PROFILES",
    "SAMPLERS",
    "Evaluator",
    "LatentConfig",
    "LatentData",
    "LatentModel",
    "Prepared",
    "evaluate_schedule",
    "generate",
    "karras_sigmas",
    "load_data",
    "load_model",
    "load_or_train",
    "prepare",
    "reference_row",
    "resolve_config",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "save_model",
    "score_images",
    "sigma_at_fraction",
    "train_evaluator",
    "train_model",
]
