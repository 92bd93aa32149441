"""The regime study: does a negative-guidance window help a trained latent model, and does its
effect change with α/α_c as the theory predicts? (paper §4; docs/latent.md, "Regime study").

Per conditioning (a dataset and its labels, each with its own cached latent model):

1. measure the regime (α, α_c, the CFG force ‖D_c − D_u‖(σ), the resolution σ) and write the
   theory's forecast to ``predictions.json`` *before* any sample is drawn;
2. sweep the schedules — constant CFG over a grid of w; negative windows with σ_switch on a
   log grid around the measured resolution σ (a step of the sampler's σ grid is placed
   exactly at σ_switch) and ``w_neg ∈ {−0.1, −0.25, −0.5, −1}``; the calibrated window — for
   the Heun ODE and the ancestral (SDE) sampler and ≥ 10 seeds, one sweep-engine task
   (kind ``latent.regime``) per (conditioning, schedule, sampler, seed);
3. score every set with :mod:`cfglab.latent.metrics` and decide with
   :mod:`cfglab.experiments.stats`: the paper-style comparison (window vs constant CFG at the
   same w_pos) and the whole-frontier comparison (each w_neg family vs constant CFG on the
   log-posterior–variance-ratio plane), seed-paired, Holm-corrected, three-way verdicts;
4. score the predictions against the measurements.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfglab._validate import CfglabInputError, positive_int

__all__ = [
    "REGIME_PRESETS",
    "RegimePreset",
    "analyse",
    "regime_schedules",
    "regime_answer",
    "regime_study",
    "regime_task",
    "regime_tasks",
    "sigma_grid",
]

Progress = Callable[[int, int], None] | None
SEPARABILITY, DIVERSITY, CLOSENESS = "log_posterior", "var_ratio_latent", "var_ratio_closeness"


@dataclass(frozen=True)
class RegimePreset:
    """Grid and budget of the regime study (written next to its results)."""

    seeds: int = 10
    n_per_class: int = 10
    steps: int = 16  # + 1 step placed exactly at σ_switch (sigma_grid)
    samplers: tuple[str, ...] = ("heun", "euler_ancestral")
    constant_w: tuple[float, ...] = (-0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0)
    window_w_pos: tuple[float, ...] = (2.0,)
    window_w_neg: tuple[float, ...] = (-0.1, -0.25, -0.5, -1.0)
    switch_factors: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)  # × measured resolution σ
    nearest_k: int = 5

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


REGIME_PRESETS: dict[str, RegimePreset] = {
    "full": RegimePreset(),  # ≈ 1.2 s (digits) – 3 s (glyphs) per task on one idle core
    "quick": RegimePreset(  # ≈ 1 s (digits) – 2.5 s (glyphs) per task on one shared core
        n_per_class=6,
        steps=12,
        samplers=("heun",),
        constant_w=(0.0, 1.0, 2.0, 4.0),
        window_w_pos=(2.0,),
        window_w_neg=(-1.0,),
        switch_factors=(0.5, 1.0, 2.0),
        nearest_k=3,
    ),
    "test": RegimePreset(
        seeds=3,
        n_per_class=7,
        steps=6,
        samplers=("heun",),
        constant_w=(0.0, 2.0),
        window_w_pos=(2.0,),
        window_w_neg=(-1.0,),
        switch_factors=(1.0,),
        nearest_k=2,
    ),
}


def _conditioning(name: str, profile: str) -> tuple[str, str]:
    """(data spec, training profile) of a conditioning; ``tiny`` overrides the profile."""
    from cfglab.latent.conditionings import conditioning_data, CONDITIONINGS

    data = conditioning_data(name)  # an unknown name is a one-line input error
    return data, ("tiny" if profile == "tiny" else CONDITIONINGS[name].profile)


# --- one task ------------------------------------------------------------------------------


def sigma_grid(steps: int, sigma_switch: float | None = None):
    """Karras ρ = 7 grid of ``steps`` with a step placed exactly at ``sigma_switch`` (float64)."""
    import torch

    from cfglab.latent.sample import karras_sigmas

    sigmas = karras_sigmas(steps)
    if sigma_switch is None or not 0 < sigma_switch < float(sigmas[0]):
        return sigmas
    if bool((sigmas == sigma_switch).any()):
        return sigmas
    grid = torch.cat([sigmas, sigmas.new_tensor([sigma_switch])])
    return grid.sort(descending=True).values  # [steps + 2], still ends at 0


@functools.lru_cache(maxsize=4)
def _loaded(profile: str, data: str, train_seed: int):
    """(model, metric context, evaluator, K) of a cached model, once per worker process."""
    import torch

    from cfglab.latent.checkpoint import load_or_train
    from cfglab.latent.data import load_data
    from cfglab.latent.evaluate import train_evaluator
    from cfglab.latent.metrics import fit_context
    from cfglab.latent.pipeline import resolve_config

    cfg = resolve_config(profile, data=data, seed=train_seed)
    ld = load_data(cfg.data, test_fraction=cfg.test_fraction, split_seed=cfg.split_seed)
    model = load_or_train(cfg, ld)[0]
    latents = model.encode(torch.from_numpy(ld.train_images)).numpy()
    ctx = fit_context(latents, ld.train_images, ld.train_labels)
    return model, ctx, train_evaluator(ld), ld.n_classes


def regime_task(params: dict) -> dict:
    """Sweep task ``latent.regime``: one (conditioning, schedule, sampler, seed) -> metric row."""
    import torch

    from cfglab.guidance.schedules import as_schedule
    from cfglab.latent.evaluate import score_images
    from cfglab.latent.metrics import score_generated
    from cfglab.latent.sample import generate

    model, ctx, ev, k = _loaded(params["profile"], params["data"], int(params.get("train_seed", 0)))
    schedule = as_schedule(params["schedule"])
    sigmas = sigma_grid(int(params["steps"]), getattr(schedule, "sigma_switch", None))
    labels = torch.arange(k).repeat_interleave(int(params["n_per_class"]))  # [K n]
    images, z = generate(
        model, labels, schedule, sampler=params["sampler"], seed=int(params["seed"]),
        sigmas=sigmas, return_latents=True,
    )  # fmt: skip
    row = score_generated(
        ctx, z.numpy(), images.numpy(), labels.numpy(), nearest_k=int(params["nearest_k"])
    )
    mlp = score_images(ev, images.numpy(), labels.numpy(), nearest_k=int(params["nearest_k"]))
    row.update({f"{m}_mlp": mlp[m] for m in ("separability", "precision", "fd")})  # as `latent study`
    row["n_sigma_steps"] = len(sigmas) - 1
    return row


# --- the schedules and the tasks -----------------------------------------------------------


def regime_schedules(preset: RegimePreset, sigma_res: float, sigma_max: float = 80.0) -> list[dict]:
    """Constant CFG and negative windows as ``dict(family, schedule, w_pos, w_neg, ...)``."""
    from cfglab.guidance.schedules import Constant, NegativeWindow

    rows = [
        dict(family="constant", schedule=str(Constant(w)), w_pos=float(w)) for w in preset.constant_w
    ]
    switches = sorted({float(f * sigma_res) for f in preset.switch_factors})
    if not (math.isfinite(sigma_res) and sigma_res > 0):
        raise CfglabInputError(f"measured resolution sigma must be positive, got {sigma_res!r}")
    for w_pos in preset.window_w_pos:
        for w_neg in preset.window_w_neg:
            for s in (s for s in switches if s < sigma_max):
                rows.append(
                    dict(
                        family=f"window w_neg={w_neg:g}",
                        schedule=str(NegativeWindow(w_pos, w_neg, round(s, 6))),
                        w_pos=float(w_pos), w_neg=float(w_neg), sigma_switch=round(s, 6),
                    )
                )  # fmt: skip
    return rows


def regime_tasks(plan: dict, preset: RegimePreset, profile: str) -> list:
    """Sweep tasks of every conditioning's schedules × samplers × seeds."""
    from cfglab.sweep.config import Task

    tasks = []
    for name, entry in plan.items():
        for sched in entry["schedules"]:
            for sampler in preset.samplers:
                for seed in range(preset.seeds):
                    params = dict(
                        conditioning=name, data=entry["data"], profile=entry["profile"],
                        train_seed=0, schedule=sched["schedule"], sampler=sampler,
                        steps=preset.steps, n_per_class=preset.n_per_class,
                        nearest_k=preset.nearest_k, seed=seed,
                    )  # fmt: skip
                    tasks.append(Task("latent.regime", params, name))
    return tasks


# --- the study -------------------------------------------------------------------------------


def regime_study(
    *,
    profile: str = "default",
    preset: str | RegimePreset = "quick",
    conditionings: tuple[str, ...] | None = None,
    seeds: int | None = None,
    out: str | os.PathLike = "latent-regimes",
    workers: int = 0,
    scheduler: str | None = None,
    threads: int | None = 1,
    progress: Progress = None,
) -> dict:
    """Measure, predict (``predictions.json`` first), sweep, decide; returns the study dict.

    ``preset``: a :data:`REGIME_PRESETS` name or a :class:`RegimePreset` (e.g. a preset
    extended with ``dataclasses.replace``; tasks it shares with an earlier run in ``out``
    are reused).
    """
    if isinstance(preset, RegimePreset):
        cfg, preset = preset, "custom"
    elif preset in REGIME_PRESETS:
        cfg = REGIME_PRESETS[preset]
    else:
        raise CfglabInputError(f"unknown preset {preset!r}; choose from {', '.join(REGIME_PRESETS)}")
    if seeds is not None:
        cfg = dataclasses.replace(cfg, seeds=positive_int("seeds", seeds))
    if cfg.seeds < 2:
        raise CfglabInputError(f"seeds must be >= 2 for paired statistics, got {cfg.seeds}")
    names = tuple(conditionings or _default_conditionings())
    specs = {n: _conditioning(n, profile) for n in names}  # bad names fail before any work
    out = Path(out)
    from cfglab._io import write_json_atomic
    from cfglab.latent.train import cpu_threads
    from cfglab.sweep.engine import run_sweep

    start = time.perf_counter()
    with cpu_threads(threads):
        plan = {n: _plan(n, *specs[n], cfg) for n in names}
    write_json_atomic(out / "predictions.json", {n: p["predictions"] for n, p in plan.items()})
    measure_s = time.perf_counter() - start
    tasks = regime_tasks(plan, cfg, profile)
    with cpu_threads(threads):
        sweep = run_sweep(
            tasks, out / "sweep", workers=workers, scheduler=scheduler, progress=progress,
            meta={"study": "latent.regimes", "preset": cfg.to_dict()},
        )  # fmt: skip
    if sweep.n_failed:
        first = next(iter(sweep.errors.values()))
        raise RuntimeError(f"{sweep.n_failed} regime task(s) failed; first: {first}")
    result = {
        "profile": profile, "preset": preset, "config": cfg.to_dict(),
        "conditionings": {n: analyse(plan[n], _rows(sweep.table, n), cfg) for n in names},
        "measure_seconds": measure_s, "sweep_seconds": sweep.seconds,
        "n_tasks": sweep.n_tasks, "n_cached": sweep.n_cached,
    }  # fmt: skip
    from cfglab.experiments.latent_regimes_outputs import write_regimes

    result["answer"] = regime_answer(result["conditionings"])
    result["files"] = write_regimes(result, out)
    result["seconds"] = time.perf_counter() - start
    write_json_atomic(out / "regimes.json", result)
    return result


def _default_conditionings() -> tuple[str, ...]:
    from cfglab.latent.conditionings import CONDITIONINGS

    return tuple(CONDITIONINGS)


def _plan(name: str, data: str, profile: str, cfg: RegimePreset) -> dict:
    """Prepare (train once if needed), measure the regime, choose the schedules, predict."""
    from cfglab.latent.pipeline import prepare, resolve_config

    from cfglab.experiments.latent_regime_measure import measure_regime, predict

    prep = prepare(resolve_config(profile, data=data))
    regime = measure_regime(prep, seed=0)
    centre, source = _switch_centre(regime)
    schedules = regime_schedules(cfg, centre)
    strings = [s["schedule"] for s in schedules]
    predictions = {s: _predict(predict, regime, strings, s) for s in cfg.samplers}
    for sampler, pred in predictions.items():
        _add_calibrated(schedules, pred.get("calibrated_schedule"), THEORY_SAMPLER[sampler])
    return dict(data=data, profile=profile, regime=regime, predictions=predictions,
                schedules=schedules, switch_centre=centre, switch_centre_source=source)  # fmt: skip


THEORY_SAMPLER = {"heun": "ode", "euler": "ode", "euler_ancestral": "sde"}


def _predict(predict, regime: dict, schedules: list[str], sampler: str) -> dict:
    """The forecast for the theory's version of ``sampler`` (probability-flow ODE or SDE)."""
    pred = predict(regime, schedules, sampler=THEORY_SAMPLER[sampler])
    return {"sampler": sampler, **pred}


def _add_calibrated(schedules: list[dict], calibrated: str | None, kind: str) -> None:
    """The forecast's calibrated window as a schedule of its own (once)."""
    if not calibrated or calibrated in {s["schedule"] for s in schedules}:
        return
    from cfglab.guidance.schedules import as_schedule

    sched = as_schedule(calibrated)
    schedules.append(
        dict(family=f"calibrated ({kind})", schedule=calibrated, w_pos=getattr(sched, "w_pos", None),
             w_neg=getattr(sched, "w_neg", None), sigma_switch=getattr(sched, "sigma_switch", None))
    )  # fmt: skip


def _switch_centre(regime: dict) -> tuple[float, str]:
    """σ around which σ_switch is swept: the measured resolution σ, else the predicted one."""
    for key in ("sigma_res_measured", "sigma_res_predicted"):
        value = regime.get(key)
        if value is not None and math.isfinite(value) and value > 0:
            return float(value), key
    return 1.0, "none measured: σ = 1 (the data scale)"


def _rows(table, name: str):
    return table[table["conditioning"] == name] if len(table) else table


# --- analysis ------------------------------------------------------------------------------


def analyse(entry: dict, table, cfg: RegimePreset) -> dict:
    """Per sampler: schedule means, paper-style and frontier comparisons, prediction scores."""
    from cfglab.experiments.stats import VERDICT_RULE

    regime = entry["regime"]
    out = {
        key: regime.get(key)
        for key in ("name", "K", "d", "alpha", "alpha_c", "alpha_ratio",
                    "sigma_res_measured", "sigma_res_predicted", "force_profile")
    }  # fmt: skip
    out.update(data=entry["data"], profile=entry["profile"], prediction_model=next(iter(entry["predictions"].values())).get("model"),
               switch_centre=entry.get("switch_centre"), switch_centre_source=entry.get("switch_centre_source"))
    out["rule"] = VERDICT_RULE.format(alpha=0.05, level=0.95)
    out["samplers"] = {
        s: _analyse_sampler(entry, table[table["sampler"] == s], cfg, s) for s in cfg.samplers
    }
    return out


def _per_seed(table, schedule: str, metric: str, n_seeds: int) -> np.ndarray:
    rows = table[table["schedule"] == schedule].sort_values("seed")
    vals = rows[metric].to_numpy(dtype=float)
    if len(vals) != n_seeds:
        raise RuntimeError(f"{schedule}: {len(vals)} of {n_seeds} seeds finished")
    return vals  # [seeds]


def _analyse_sampler(entry: dict, table, cfg: RegimePreset, sampler: str) -> dict:
    from cfglab.experiments.stats import compare_paired

    n, scheds = cfg.seeds, entry["schedules"]
    per = {
        s["schedule"]: {m: _per_seed(table, s["schedule"], m, n) for m in _SUMMARY}
        for s in scheds
    }
    for vals in per.values():  # −|log ratio|: higher = closer to the data's variance (the forecast's sense)
        vals[CLOSENESS] = -np.abs(np.log(vals[DIVERSITY]))
    const = {s["w_pos"]: s["schedule"] for s in scheds if s["family"] == "constant"}
    windows = [s for s in scheds if s["family"] != "constant" and s.get("w_pos") in const]
    paper = {
        metric: compare_paired(
            {w["schedule"]: (per[w["schedule"]][metric], per[const[w["w_pos"]]][metric]) for w in windows},
            higher_is_better=metric != "fd_pca",
        )
        for metric in (SEPARABILITY, DIVERSITY, CLOSENESS, "var_ratio_pixel", "recall", "vendi", "fd_pca")
    } if windows else {}  # fmt: skip
    rows = [_schedule_row(s, per[s["schedule"]], entry["predictions"][sampler]) for s in scheds]
    for r in rows:
        r["var_ratio_latent_per_direction"] = _per_direction(table, r["schedule"])
    for r in rows:
        r["vs_constant_same_w_pos"] = {m: v[r["schedule"]] for m, v in paper.items() if r["schedule"] in v}
    return {
        "schedules": rows,
        "paper_style": paper,
        "frontier": _frontier(scheds, per, n),
        "prediction_score": _score_predictions(rows, paper, entry["predictions"][sampler]),
    }


# the forecast's effect of a window -> (metric, verdict) that measures it (paper-style, Holm)
EFFECT_VERDICT = {
    "restores-diversity": (CLOSENESS, "better"),
    "inert": (CLOSENESS, "no detectable difference"),
    "worsens": (CLOSENESS, "worse"),
    "overshoots": (CLOSENESS, "worse"),
    "loses-class": (SEPARABILITY, "worse"),
}


def _score_predictions(rows: list[dict], paper: dict, prediction: dict) -> dict:
    """Forecast vs measurement, per window, two ways (rules in the returned dict).

    *effect*: the forecast's effect (:data:`EFFECT_VERDICT`) against the measured verdict of
    the matching metric; *helps*: the forecast's ``window_helps`` against the paper's claim
    measured (latent variance ratio 'better' and separability not 'worse').
    """
    effect, helps = {"agree": 0, "disagree": 0}, {"agree": 0, "disagree": 0}
    for r in rows:
        sched = r["schedule"]
        guess = (prediction.get("schedules") or {}).get(sched) or {}
        if sched not in paper.get(DIVERSITY, {}) or guess.get("window_helps") is None:
            continue
        measured = (paper[DIVERSITY][sched]["verdict"] == "better"
                    and paper[SEPARABILITY][sched]["verdict"] != "worse")  # fmt: skip
        helps["agree" if measured == guess["window_helps"] else "disagree"] += 1
        metric, expected = EFFECT_VERDICT.get(guess.get("effect"), (None, None))
        if metric is not None:
            ok = paper[metric][sched]["verdict"] == expected
            effect["agree" if ok else "disagree"] += 1
            r["predicted_effect"], r["measured_effect_verdict"] = guess["effect"], paper[metric][sched]["verdict"]
    pairs = [(r["predicted_var_ratio"], r[DIVERSITY]["mean"]) for r in rows if r["predicted_var_ratio"] is not None]
    pred, meas = (np.array(v, dtype=float) for v in zip(*pairs)) if pairs else ([], [])
    return {
        "effect": effect, "helps": helps, "var_ratio_n": len(pairs),
        "var_ratio_mean_abs_log_error": float(np.mean(np.abs(np.log(meas / pred)))) if pairs else None,
        "rule": ("effect: restores-diversity / inert / worsens|overshoots = verdict better / no"
                 " detectable difference / worse of −|log var ratio| vs constant at w_pos;"
                 " loses-class = separability worse.  helps: var ratio 'better' and separability"
                 " not 'worse'"),
    }  # fmt: skip


def _per_direction(table, schedule: str) -> list[float]:
    """Latent variance ratio per real principal direction, mean over seeds."""
    import json

    cells = table.loc[table["schedule"] == schedule, "var_ratio_latent_per_direction"]
    return np.mean([json.loads(c) for c in cells], axis=0).tolist()


_SUMMARY = (
    SEPARABILITY, "top1", DIVERSITY, "var_ratio_latent_top", "var_ratio_pixel",
    "precision", "recall", "coverage", "vendi", "fd_pca", "separability_mlp", "precision_mlp", "fd_mlp",
)  # fmt: skip


def _schedule_row(sched: dict, per: dict, prediction: dict) -> dict:
    """Mean and 95 % bootstrap CI over seeds of each metric, with the predicted variance ratio."""
    from cfglab.experiments.stats import paired_difference

    row = dict(sched)
    for m, vals in per.items():
        d = paired_difference(vals, np.zeros_like(vals))
        row[m] = {"mean": d["mean"], "ci": d["ci"]}
    pred = (prediction.get("schedules") or {}).get(sched["schedule"])
    if pred is None and sched["schedule"] == prediction.get("calibrated_schedule"):
        pred = {"var_ratio": (prediction.get("calibration") or {}).get("var_ratio")}
    pred = pred or {}
    row["predicted_var_ratio"] = pred.get("var_ratio")
    row["predicted_window_helps"] = pred.get("window_helps")
    return row


def _frontier(scheds: list[dict], per: dict, n: int) -> dict:
    """Each non-constant family's frontier vs constant CFG's, per seed, tested against 0."""
    from cfglab.experiments.stats import compare_paired, frontier_gap

    def points(family, seed):
        members = [s["schedule"] for s in scheds if s["family"] == family]
        sep = np.array([per[m][SEPARABILITY][seed] for m in members])
        div = np.array([per[m][DIVERSITY][seed] for m in members])
        return sep, div

    sizes = {f: sum(s["family"] == f for s in scheds) for f in {s["family"] for s in scheds}}
    families = sorted(f for f, n in sizes.items() if f != "constant" and n > 1)  # a frontier, not a point
    gaps = {
        f: np.array([frontier_gap(points("constant", i), points(f, i)) for i in range(n)])
        for f in families
    }
    usable = {f: (g, np.zeros(n)) for f, g in gaps.items() if np.all(np.isfinite(g))}
    rows = compare_paired(usable) if usable else {}
    for f in families:
        rows.setdefault(f, {"verdict": "no overlap of separability ranges", "mean": None})
    return rows


# --- the answer ------------------------------------------------------------------------------

ANSWER_RULE = (
    "helps(c) = some window family beats constant CFG on the whole frontier (Holm-corrected"
    " verdict 'better', any sampler).  Supported: conditionings exist with α/α_c < 0.5 and with"
    " α/α_c > 1, every one above 1 is helped and none below 0.5 is.  Contradicted: both exist"
    " and some conditioning below 0.5 is helped, or one above 1 has only 'worse' or no"
    " detectable difference while one below 0.5 is not helped either (no change across the"
    " regime).  Otherwise inconclusive."
)


def regime_answer(conditionings: dict) -> dict:
    """Does the window's frontier gain change with α/α_c as predicted?  Three-way, rule attached."""
    per = {}
    for name, c in conditionings.items():
        verdicts = [f["verdict"] for s in c["samplers"].values() for f in s["frontier"].values()]
        per[name] = {"alpha_ratio": c["alpha_ratio"], "helps": "better" in verdicts,
                     "worse": "worse" in verdicts}  # fmt: skip
    known = {n: p for n, p in per.items() if p["alpha_ratio"] is not None and math.isfinite(p["alpha_ratio"])}
    low = [p for p in known.values() if p["alpha_ratio"] < 0.5]
    high = [p for p in known.values() if p["alpha_ratio"] > 1]
    supported = None
    if low and high:
        if all(p["helps"] for p in high) and not any(p["helps"] for p in low):
            supported = True
        elif any(p["helps"] for p in low) or (
            any(not p["helps"] for p in high) and any(not p["helps"] for p in low)
        ):
            supported = False
    return {"supported": supported, "per_conditioning": per, "rule": ANSWER_RULE}
