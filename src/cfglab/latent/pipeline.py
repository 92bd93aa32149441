"""One-call entry points of the latent model: prepare (data, model, evaluator), evaluate.

These are what the command line (``cfglab latent``) and the report (``cfglab reproduce``)
call; the schedule study built on them is :func:`cfglab.experiments.latent_study.latent_study`.
All run on CPU in float32 under :func:`cfglab.latent.train.cpu_threads`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cfglab._validate import CfglabInputError, positive_int
from cfglab.guidance.schedules import as_schedule
from cfglab.latent.checkpoint import load_or_train
from cfglab.latent.config import LatentConfig, profile_config
from cfglab.latent.data import DEFAULT_DATA, LatentData, load_data
from cfglab.latent.evaluate import (
    Evaluator,
    check_sample_size,
    reference_row,
    score_images,
    train_evaluator,
)
from cfglab.latent.sample import generate
from cfglab.latent.train import LatentModel

__all__ = ["Prepared", "evaluate_point", "evaluate_schedule", "prepare", "resolve_config"]

Progress = Callable[[int, int], None] | None


@dataclass
class Prepared:
    """Data, trained (or cached) model and evaluator, with where the checkpoint lives."""

    data: LatentData
    model: LatentModel
    evaluator: Evaluator
    checkpoint: Path
    trained: bool
    train_seconds: float


def resolve_config(
    profile: str = "default", *, data: str = DEFAULT_DATA, seed: int = 0, **overrides
) -> LatentConfig:
    """The named profile's config with ``data``, ``seed`` and any field overrides."""
    base = profile_config(profile)
    try:
        return dataclasses.replace(base, data=str(data), seed=int(seed), **overrides)
    except TypeError as err:
        raise CfglabInputError(f"bad training option: {err}") from None


def prepare(
    cfg: LatentConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    progress: Progress = None,
    evaluator_seed: int = 0,
) -> Prepared:
    """Load the data, reuse or train the model (key: config + data hash), fit the evaluator."""
    data = load_data(cfg.data, test_fraction=cfg.test_fraction, split_seed=cfg.split_seed)
    start = time.perf_counter()
    model, folder, trained = load_or_train(cfg, data, checkpoint=checkpoint, progress=progress)
    seconds = time.perf_counter() - start
    return Prepared(
        data, model, train_evaluator(data, seed=evaluator_seed), folder, trained, seconds
    )


def evaluate_schedule(
    prep: Prepared,
    schedule,
    *,
    n_per_class: int = 50,
    steps: int = 12,
    sampler: str = "heun",
    seed: int = 0,
    nearest_k: int = 5,
) -> dict:
    """Metrics of ``n_per_class`` samples per class under ``schedule``; held-out reference."""
    schedule = as_schedule(schedule)
    n = positive_int("n_per_class", n_per_class)
    check_sample_size(n, nearest_k)
    labels = torch.arange(prep.data.n_classes).repeat_interleave(n)  # [K n]
    images = generate(prep.model, labels, schedule, steps=steps, sampler=sampler, seed=seed).numpy()
    gen = score_images(prep.evaluator, images, labels.numpy(), nearest_k=nearest_k)
    ref = reference_row(prep.evaluator, prep.data, n_per_class=n, seed=seed, nearest_k=nearest_k)
    return {
        "schedule": str(schedule),
        **gen,
        "reference": ref,
        "evaluator_heldout_accuracy": prep.evaluator.heldout_accuracy,
        "checkpoint": str(prep.checkpoint),
        "data_hash": prep.data.data_hash,
    }


def evaluate_point(
    *,
    schedule: str = "constant:w=0",
    profile: str = "default",
    data: str = DEFAULT_DATA,
    seed: int = 0,
    checkpoint: str | None = None,
    n_per_class: int = 50,
    steps: int = 12,
    sampler: str = "heun",
    sample_seed: int = 0,
) -> dict:
    """One schedule on the (cached) model as a flat row: the ``latent.evaluate`` sweep kind."""
    prep = prepare(resolve_config(profile, data=data, seed=seed), checkpoint=checkpoint)
    result = evaluate_schedule(
        prep, schedule, n_per_class=n_per_class, steps=steps, sampler=sampler, seed=sample_seed
    )
    ref = result.pop("reference")
    return {**result, **{f"reference_{k}": v for k, v in ref.items()}}

