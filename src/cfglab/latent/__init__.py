"""A real class-conditional latent diffusion model and the guidance-schedule study (docs/latent.md).

Layout: ``data`` (digits / .npz / image folder, split + hash), ``config`` (network and training
configs, the named profiles; no torch), ``model`` (diffusers AutoencoderKL + UNet2DModel, EDM
preconditioning), ``train`` (training),
``checkpoint`` (safetensors cache), ``sample`` (Euler / Heun / ancestral Euler in σ with a
cfglab schedule), ``evaluate`` (independent classifier, separability / diversity / fidelity),
``stats`` (latent variances), ``outputs`` (tables, plots, sample grids of a study),
``pipeline`` (one-call entry points used by the CLI and the report).  The schedule study
itself is an experiment: :mod:`cfglab.experiments.latent_study`.
"""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.latent.checkpoint": ("load_model", "load_or_train", "save_model"),
    "cfglab.latent.data": ("LatentData", "load_data"),
    "cfglab.latent.evaluate": ("Evaluator", "reference_row", "score_images", "train_evaluator"),
    "cfglab.latent.pipeline": ("Prepared", "evaluate_schedule", "prepare", "resolve_config"),
    "cfglab.latent.sample": ("SAMPLERS", "generate", "karras_sigmas", "sample_euler",
        "sample_euler_ancestral", "sample_heun", "sigma_at_fraction"),
    "cfglab.latent.config": ("PROFILES", "LatentConfig"),
    "cfglab.latent.train": ("LatentModel", "train_model"),
})

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
