"""The guidance-schedule study on the trained latent model (docs/latent.md; paper §4, real LDMs).

Per class, ``n_per_class`` samples per schedule and per seed for: constant CFG over a grid
of w, interval guidance (Kynkäänniemi et al. 2024), a negative window (w = w_pos early, then
w = −1 for the last 30–50% of the steps; the paper's §4 schedule) and the calibrated
schedule for the latent statistics of this model (:mod:`cfglab.experiments.latent_calibration`).
Every schedule is scored by the independent evaluator (:mod:`cfglab.latent.evaluate`); seeds give mean ± std.  The claim under test: *a negative
window raises diversity at equal separability compared with constant CFG* — measured by
interpolating each seed's constant-CFG curve at the window's separability (paired by seed).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cfglab._validate import CfglabInputError, positive_int
from cfglab.experiments.latent_calibration import calibrated_schedule
from cfglab.guidance.schedules import Constant, Interval, NegativeWindow, Schedule, as_schedule
from cfglab.latent.data import DEFAULT_DATA
from cfglab.latent.evaluate import (
    METRICS,
    check_sample_size,
    reference_row,
    score_images,
)
from cfglab.latent.outputs import write_study
from cfglab.latent.pipeline import prepare, resolve_config
from cfglab.latent.sample import generate, karras_sigmas, sigma_at_fraction
from cfglab.latent.train import cpu_threads

__all__ = [
    "STUDY_PRESETS",
    "StudyConfig",
    "compare_at_equal_separability",
    "StudyPlan",
    "latent_study",
    "plan_study",
    "run_study",
    "study_schedules",
    "study_task",
    "study_tasks",
]

Progress = Callable[[int, int], None] | None


@dataclass(frozen=True)
class StudyConfig:
    """Budget and grid of the study (written next to its results)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    n_per_class: int = 50
    steps: int = 12
    sampler: str = "heun"
    constant_w: tuple[float, ...] = (
        -1.0,
        -0.75,
        -0.5,
        -0.25,
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
        1.5,
        2.0,
        3.0,
        4.0,
    )
    interval_w: tuple[float, ...] = (2.0, 4.0)
    interval_lo: float = 0.28
    interval_hi: float = 5.42
    window_w_pos: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    window_fractions: tuple[float, ...] = (0.3, 0.5)
    window_extra: tuple[tuple[float, float], ...] = (
        (1.0, 0.4),
        (2.0, 0.4),
    )  # (w_pos, fraction) pairs
    calibrated_w: float = 2.0
    nearest_k: int = 5

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


STUDY_PRESETS: dict[str, StudyConfig] = {
    "full": StudyConfig(),
    "quick": StudyConfig(
        n_per_class=20,
        steps=12,  # 8 Heun steps visibly degrade the samples (FD 2.3 vs 1.0 at w=0)
        constant_w=(-0.5, 0.0, 0.25, 0.5, 1.0, 2.0),
        interval_w=(1.0,),
        window_w_pos=(1.0, 2.0),
        window_fractions=(0.4,),
        window_extra=(),
    ),
}


def study_schedules(
    cfg: StudyConfig, sigmas: torch.Tensor, calibrated: Schedule | None
) -> list[dict]:
    """The study's schedules as ``dict(family, label, schedule)``; switches follow the σ grid."""
    rows = [
        dict(family="constant", label=f"constant w={w:g}", schedule=Constant(w), w=float(w))
        for w in cfg.constant_w
    ]
    rows += [
        dict(
            family="interval",
            label=f"interval w={w:g}",
            schedule=Interval(w, cfg.interval_lo, cfg.interval_hi),
        )
        for w in cfg.interval_w
    ]
    pairs = [(w, f) for f in cfg.window_fractions for w in cfg.window_w_pos] + list(
        cfg.window_extra
    )
    for w_pos, frac in pairs:
        switch = sigma_at_fraction(sigmas, frac)
        n_neg = int(round(frac * (len(sigmas) - 1)))
        rows.append(
            dict(
                family="negative_window",
                label=f"window w={w_pos:g}, last {frac:.0%} w=-1",
                schedule=NegativeWindow(w_pos, -1.0, switch),
                last_fraction=frac,
                negative_steps=n_neg,
            )
        )
    if calibrated is not None:
        rows.append(dict(family="calibrated", label="calibrated", schedule=calibrated))
    return rows


def study_tasks(cfg: StudyConfig, rows: list[dict], *, model: dict) -> list:
    """One sweep task (kind ``latent.study``) per (schedule row, seed): ``rows`` outer, seeds inner.

    ``model`` names what a worker loads (:func:`study_task`): ``profile``, ``data``,
    ``checkpoint`` (the resolved folder), ``data_hash`` and ``evaluator_seed``; with the
    schedule string and the sampling budget it makes the task's id, so a finished task is
    never recomputed.  The first seed's tasks also return their images.
    """
    from cfglab.sweep import Task

    budget = dict(n_per_class=cfg.n_per_class, steps=cfg.steps, sampler=cfg.sampler,
                  nearest_k=cfg.nearest_k)
    return [Task("latent.study", {**model, **budget, "schedule": str(row["schedule"]),
                                  "seed": seed, "images": seed == cfg.seeds[0]}, "latent.study")
            for row in rows for seed in cfg.seeds]


_PREPARED: dict[tuple, object] = {}  # per process: (profile, data, checkpoint, evaluator_seed) -> Prepared


def _prepared(profile: str, data: str, checkpoint: str | None, evaluator_seed: int):
    """Data, model and evaluator of a study task, loaded once per worker process."""
    key = (profile, data, None if checkpoint is None else str(checkpoint), int(evaluator_seed))
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = prepare(resolve_config(profile, data=data), checkpoint=checkpoint,
                                 evaluator_seed=evaluator_seed)
    return _PREPARED[key]


def study_task(params: dict) -> dict:
    """Sweep task ``latent.study``: sample one schedule for one seed and score it.

    Parameters: ``profile``, ``schedule``, ``seed``, ``n_per_class``, ``steps``; optionally
    ``data``, ``checkpoint`` (default: the profile's cached model), ``data_hash`` (checked),
    ``evaluator_seed``, ``sampler``, ``nearest_k``, ``images``.  Returns the evaluator's
    metrics (:func:`cfglab.latent.evaluate.score_images`), and with ``images`` the samples
    (``images_b64``) as base64 of uint8 ``[classes * n_per_class, H, W]``.
    """
    p = {"data": DEFAULT_DATA, "checkpoint": None, "data_hash": None, "evaluator_seed": 0,
         "sampler": "heun", "nearest_k": 5, "images": False, **params}
    prep = _prepared(p["profile"], p["data"], p["checkpoint"], p["evaluator_seed"])
    if p["data_hash"] is not None and prep.data.data_hash != p["data_hash"]:
        raise CfglabInputError(f"data hash {prep.data.data_hash} differs from the study's "
                               f"{p['data_hash']}")
    labels = torch.arange(prep.data.n_classes).repeat_interleave(p["n_per_class"])  # [K n]
    x = generate(prep.model, labels, as_schedule(p["schedule"]), steps=p["steps"],
                 sampler=p["sampler"], seed=p["seed"]).numpy()  # [K n, C, H, W]
    out = score_images(prep.evaluator, x, labels.numpy(), nearest_k=p["nearest_k"])
    if p["images"]:
        out["images_b64"] = base64.b64encode(_to_uint8(x).tobytes()).decode("ascii")
    return out


@dataclass(frozen=True)
class StudyPlan:
    """What a study runs: prepared data/model/evaluator, its config, calibration, schedule rows, tasks."""

    prep: object  # cfglab.latent.pipeline.Prepared
    cfg: StudyConfig
    calibration: dict
    rows: list
    tasks: list


def run_study(plan: StudyPlan, *, work: str | os.PathLike, workers: int = 0,
              scheduler: str | None = None, table=None, progress: Progress = None,
              keep_images: bool = True) -> dict:
    """Run the plan's tasks through the sweep engine in ``work`` and gather every number.

    Finished tasks in ``work`` are reused, so an interrupted study resumes; ``table`` holds
    rows a caller already computed in its own sweep (the report's), which are not rerun.
    ``workers`` / ``scheduler`` as :func:`cfglab.sweep.run_sweep` (``workers=0``: in this
    process).  Returns a dict with ``config``, ``reference`` (held-out real data, same
    evaluator and sample size), ``rows`` (per schedule: ``family, label, schedule, mean,
    std, seeds``), ``calibration``, ``comparison`` (:func:`compare_at_equal_separability`)
    and ``sweep`` (task counts); with ``keep_images`` also ``images``: label -> uint8 array
    [classes, n, H, W] of the first seed.
    """
    from cfglab.sweep import run_sweep

    prep, cfg, rows = plan.prep, plan.cfg, [dict(r) for r in plan.rows]
    done = set() if table is None else set(table["task_id"])
    todo = [t for t in plan.tasks if t.id not in done]
    sweep = run_sweep(todo, work, scheduler=scheduler, workers=workers, progress=progress,
                      meta={"latent_study": cfg.to_dict()})
    if sweep.n_failed:
        raise RuntimeError(f"{sweep.n_failed} study task(s) failed: {sweep.errors}")
    found = sweep.table if table is None else _concat(table, sweep.table)
    images = _gather(rows, cfg, found.set_index("task_id"), plan.tasks,
                     (prep.data.n_classes, cfg.n_per_class, *prep.model.image_shape[-2:]))
    ref = [reference_row(prep.evaluator, prep.data, n_per_class=cfg.n_per_class, seed=s,
                         nearest_k=cfg.nearest_k) for s in cfg.seeds]
    out = {
        "config": cfg.to_dict(),
        "sigmas": karras_sigmas(cfg.steps).tolist(),
        "reference": {"seeds": ref, **_summary(ref)},
        "evaluator_heldout_accuracy": prep.evaluator.heldout_accuracy,
        "rows": rows,
        "calibration": dict(plan.calibration),
        "comparison": compare_at_equal_separability(rows, len(cfg.seeds)),
        "sweep": {"n_tasks": len(plan.tasks), "n_cached": len(plan.tasks) - sweep.n_computed,
                  "n_computed": sweep.n_computed},
    }
    if keep_images:
        out["images"] = images
    return out


def _concat(a, b):
    import pandas as pd

    return pd.concat([a, b], ignore_index=True) if len(b) else a


def _gather(rows: list[dict], cfg: StudyConfig, table, tasks: list, shape: tuple) -> dict:
    """Fill every schedule row's per-seed metrics (and summary) from the task table; first-seed images."""
    by_task = iter(tasks)  # study_tasks' order: schedules outer, seeds inner
    images = {}
    for row in rows:
        row["seeds"] = []
        for _ in cfg.seeds:
            rec = table.loc[next(by_task).id]
            row["seeds"].append({k: float(rec[k]) for k in METRICS if k in rec.index}
                                | {"n": int(rec["n"])})
            if isinstance(rec.get("images_b64"), str):
                flat = np.frombuffer(base64.b64decode(rec["images_b64"]), dtype=np.uint8)
                images[row["label"]] = flat.reshape(shape)
        row.update(_summary(row["seeds"]))
        row["schedule"] = str(row["schedule"])
    return images


def compare_at_equal_separability(
    rows: list[dict],
    n_seeds: int,
    metrics: tuple[str, ...] = ("vendi", "within_class_var", "recall", "coverage", "fd"),
) -> list[dict]:
    """Metric of each non-constant schedule minus constant CFG's at the same separability.

    For every seed, constant CFG's curve is walked in increasing w and cut where its
    separability first reaches the schedule's separability of that seed; the metric is
    interpolated linearly on that segment (so where separability saturates, the comparison
    is with the *smallest* constant w that reaches it — the most diverse constant CFG).
    Paired differences over seeds give mean ± std and the standard error.  ``in_range`` is
    False when some seed's separability lies outside the constant curve (the nearest end is
    then used and the number should not be trusted).
    """
    const = sorted((r for r in rows if r["family"] == "constant"), key=lambda r: r["w"])
    out = []
    for row in (r for r in rows if r["family"] != "constant"):
        entry = {
            "label": row["label"],
            "family": row["family"],
            "separability": row["mean"]["separability"],
        }
        in_range = True
        for m in metrics:
            diffs = []
            for s in range(n_seeds):
                sep = np.array([c["seeds"][s]["separability"] for c in const])
                val = np.array([c["seeds"][s][m] for c in const])
                matched, ok = _first_crossing(sep, val, row["seeds"][s]["separability"])
                in_range &= ok
                diffs.append(row["seeds"][s][m] - matched)
            diffs = np.array(diffs)
            sd = float(diffs.std(ddof=1)) if n_seeds > 1 else math.nan
            entry[f"delta_{m}"] = {
                "mean": float(diffs.mean()),
                "std": sd,
                "sem": sd / math.sqrt(n_seeds),
            }
        entry["in_range"] = in_range
        out.append(entry)
    return out


def _first_crossing(sep: np.ndarray, val: np.ndarray, target: float) -> tuple[float, bool]:
    """``val`` where the w-ordered curve ``sep`` first reaches ``target`` (linear interpolation)."""
    if target <= sep[0]:
        return float(val[0]), bool(target == sep[0])
    for i in range(1, len(sep)):
        if sep[i] >= target:
            frac = (target - sep[i - 1]) / (sep[i] - sep[i - 1])
            return float(val[i - 1] + frac * (val[i] - val[i - 1])), True
    best = int(np.argmax(sep))  # never reached: the constant with the highest separability
    return float(val[best]), False


def _summary(per_seed: list[dict]) -> dict:
    keys = [k for k in METRICS if k in per_seed[0]]
    arr = {k: np.array([r[k] for r in per_seed], dtype=float) for k in keys}
    std = {k: float(v.std(ddof=1)) if len(v) > 1 else math.nan for k, v in arr.items()}
    return {"mean": {k: float(v.mean()) for k, v in arr.items()}, "std": std}


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """[N, C, H, W] in [−1, 1] -> uint8 [N, H, W] (first channel)."""
    return np.round((images[:, 0] + 1) * 127.5).clip(0, 255).astype(np.uint8)


def plan_study(
    *,
    profile: str = "default",
    preset: str = "full",
    data: str = DEFAULT_DATA,
    seeds: int | None = None,
    n_per_class: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    study: StudyConfig | None = None,
    evaluator_seed: int = 0,
    train_progress: Progress = None,
) -> StudyPlan:
    """Prepare data, model (trained once, then cached) and evaluator; calibrate; list the tasks.

    Data (with the profile's ``test_fraction`` / ``split_seed``), model and evaluator come
    from :func:`cfglab.latent.pipeline.prepare`.  ``study`` replaces the named ``preset``'s
    config; ``seeds`` / ``n_per_class`` override its seed count and sample size.
    """
    cfg = _study_config(preset, study, seeds, n_per_class)
    prep = prepare(resolve_config(profile, data=data), checkpoint=checkpoint,
                   progress=train_progress, evaluator_seed=evaluator_seed)
    _PREPARED.clear()  # tasks run in this process reuse it
    _PREPARED[(profile, data, str(prep.checkpoint), int(evaluator_seed))] = prep
    sigmas = karras_sigmas(cfg.steps)
    calib = calibrated_schedule(prep.model, prep.data, w=cfg.calibrated_w, sigma_max=float(sigmas[0]))
    rows = study_schedules(cfg, sigmas, calib.pop("schedule_object", None))
    model = dict(profile=profile, data=data, checkpoint=str(prep.checkpoint),
                 data_hash=prep.data.data_hash, evaluator_seed=int(evaluator_seed))
    return StudyPlan(prep, cfg, calib, rows, study_tasks(cfg, rows, model=model))


def latent_study(
    *,
    profile: str = "default",
    preset: str = "full",
    data: str = DEFAULT_DATA,
    out: str | os.PathLike | None = None,
    seeds: int | None = None,
    n_per_class: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    threads: int | None = 1,
    study: StudyConfig | None = None,
    evaluator_seed: int = 0,
    keep_images: bool = False,
    work: str | os.PathLike | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    table=None,
    progress: Progress = None,
    train_progress: Progress = None,
) -> dict:
    """Run the schedule study end to end: ``cfglab latent study`` and the report both call this.

    :func:`plan_study`, then :func:`run_study`: the (schedule, seed) evaluations are sweep
    tasks stored in ``work`` (default ``out/tasks``; a temporary folder when neither is
    given), so a rerun resumes; ``workers`` / ``scheduler`` distribute them as
    :func:`cfglab.sweep.run_sweep`, ``table`` passes rows already computed elsewhere.
    Returns the study dict plus ``checkpoint`` and ``trained_now``, with ``images`` when
    ``keep_images``; with ``out`` the JSON, table, Pareto plot and sample grids are written
    there, their paths under ``files``.
    """
    with cpu_threads(threads):
        plan = plan_study(profile=profile, preset=preset, data=data, seeds=seeds,
                          n_per_class=n_per_class, checkpoint=checkpoint, study=study,
                          evaluator_seed=evaluator_seed, train_progress=train_progress)
        start = time.perf_counter()
        with _work_dir(work, out) as folder:
            result = run_study(plan, work=folder, workers=workers, scheduler=scheduler,
                               table=table, progress=progress,
                               keep_images=keep_images or out is not None)
    prep = plan.prep
    result.update(
        profile=profile,
        preset=preset,
        checkpoint=str(prep.checkpoint),
        trained_now=prep.trained,
        data_hash=prep.data.data_hash,
        study_seconds=time.perf_counter() - start,
        model_config=prep.model.config.to_dict(),
    )
    if out is not None:
        result["files"] = write_study(result, out)
    return result


def _study_config(preset: str, study: StudyConfig | None, seeds: int | None,
                  n_per_class: int | None) -> StudyConfig:
    """The preset's config (or ``study``) with the seed count / sample size overridden; validated."""
    if preset not in STUDY_PRESETS:
        raise CfglabInputError(
            f"unknown study preset {preset!r}; choose from {', '.join(STUDY_PRESETS)}"
        )
    scfg = STUDY_PRESETS[preset] if study is None else study
    if seeds is not None:
        scfg = dataclasses.replace(scfg, seeds=tuple(range(positive_int("seeds", seeds))))
    if n_per_class is not None:
        scfg = dataclasses.replace(scfg, n_per_class=positive_int("n_per_class", n_per_class))
    check_sample_size(scfg.n_per_class, scfg.nearest_k)  # before any training or sampling
    return scfg


@contextlib.contextmanager
def _work_dir(work, out):
    """The study's sweep folder: ``work``, else ``out/tasks``, else a temporary folder."""
    if work is not None or out is not None:
        yield Path(work) if work is not None else Path(out) / "tasks"
        return
    with tempfile.TemporaryDirectory(prefix="cfglab-study-") as tmp:
        yield Path(tmp)
