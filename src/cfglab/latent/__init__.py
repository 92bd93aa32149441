"""A real class-conditional latent diffusion model and the guidance-schedule study (SPEC §7).

Layout: ``data`` (digits / .npz / image folder, split + hash), ``model`` (diffusers
AutoencoderKL + UNet2DModel, EDM preconditioning), ``train`` (configs, profiles, training),
``checkpoint`` (safetensors cache), ``sample`` (Euler / Heun / ancestral Euler in σ with a
cfglab schedule), ``evaluate`` (independent classifier, separability / diversity / fidelity),
``stats`` (latent variances, calibrated schedule), ``study`` + ``outputs`` (the study),
``pipeline`` (one-call entry points used by the CLI and the report).
"""

from cfglab.latent.checkpoint import load_model, load_or_train, save_model
from cfglab.latent.data import LatentData, load_data
from cfglab.latent.evaluate import Evaluator, reference_row, score_images, train_evaluator
from cfglab.latent.pipeline import (
    Prepared,
    evaluate_schedule,
    latent_study,
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
from cfglab.latent.study import STUDY_PRESETS, StudyConfig, run_study
from cfglab.latent.train import PROFILES, LatentConfig, LatentModel, train_model

__all__ = [
    "PROFILES",
    "SAMPLERS",
    "STUDY_PRESETS",
    "Evaluator",
    "LatentConfig",
    "LatentData",
    "LatentModel",
    "Prepared",
    "StudyConfig",
    "evaluate_schedule",
    "generate",
    "karras_sigmas",
    "latent_study",
    "load_data",
    "load_model",
    "load_or_train",
    "prepare",
    "reference_row",
    "resolve_config",
    "run_study",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "save_model",
    "score_images",
    "sigma_at_fraction",
    "train_evaluator",
    "train_model",
]
