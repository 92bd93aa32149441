"""Report section: the separability–diversity study on a real latent diffusion model (docs/latent.md).

Runs :func:`cfglab.experiments.latent_study.latent_study` — the same function as
``cfglab latent study`` (the cached model of :mod:`cfglab.latent`, the config's split, the
independent evaluator) — with the profile's study settings.  Its (schedule, seed) evaluations
are tasks of the report's sweep (resumable, distributed with the other sections); the plots
are :mod:`cfglab.latent.outputs`'.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from cfglab.report.base import Figure, Section, SectionResult, fmt, sign_test, verdict

__all__ = ["LATENT"]


def _study_args(settings) -> dict:
    """The arguments of :func:`cfglab.experiments.latent_study.plan_study` for the profile's settings."""
    from cfglab.experiments.latent_study import STUDY_PRESETS
    from cfglab.latent.train import PROFILES

    return dict(profile=settings.model, preset=settings.study, data=PROFILES[settings.model].data,
                study=dataclasses.replace(STUDY_PRESETS[settings.study], **dict(settings.overrides)),
                evaluator_seed=settings.evaluator_seed)


def _tasks(profile) -> list:
    """The study's (schedule, seed) tasks, run in the report's sweep (trains the model first if needed)."""
    from cfglab.experiments.latent_study import plan_study

    return plan_study(**_study_args(profile.latent)).tasks


def _run(settings, rows, folder: Path) -> dict:
    """The study (:func:`cfglab.experiments.latent_study.latent_study`, the function behind
    ``cfglab latent study``) on the rows the report's sweep computed; any missing task runs
    in ``folder/tasks``."""
    from cfglab.experiments.latent_study import latent_study

    return latent_study(**_study_args(settings), threads=None, keep_images=True, table=rows,
                        work=folder / "tasks")


def _figures(study: dict, images: dict, shown: list[str], figdir: Path) -> tuple[str, list[str]]:
    """The study's Pareto plot and first-seed sample grids (:mod:`cfglab.latent.outputs`), paths in the report."""
    from cfglab.latent.outputs import pareto_plot, sample_grid

    figdir.mkdir(parents=True, exist_ok=True)
    pareto_plot(study, figdir / "latent_pareto.png")
    grids = []
    for i, label in enumerate(shown):
        sample_grid(images[label], figdir / f"latent_samples_{i}.png")
        grids.append(f"{figdir.name}/latent_samples_{i}.png")
    return f"{figdir.name}/latent_pareto.png", grids


def _verdict(study: dict) -> tuple[bool | None, dict | None]:
    """Best in-range negative window by Δvendi at equal separability (paired over seeds)."""
    windows = [c for c in study["comparison"] if c["family"] == "negative_window" and c["in_range"]]
    if not windows:
        return None, None
    best = max(windows, key=lambda c: c["delta_vendi"]["mean"])
    d = best["delta_vendi"]
    return sign_test(d["mean"], math.nan if d["sem"] is None else d["sem"]), best


def _analyze(profile, rows, figdir) -> SectionResult:
    study = _run(profile.latent, rows, figdir.parent / "latent")
    images = study.pop("images", {})
    ok, best = _verdict(study)
    const = [r for r in study["rows"] if r["family"] == "constant"]
    top = max(const, key=lambda r: r["mean"]["separability"])
    ref = study["reference"]["mean"]
    numbers = {"checkpoint": study["checkpoint"], "trained_now": study["trained_now"],
               "best_constant": {"label": top["label"], **{k: top["mean"][k] for k in ("separability", "vendi", "fd")}},
               "reference": {k: ref[k] for k in ("separability", "vendi", "fd")},
               "comparison": study["comparison"]}
    if best is None:
        part = "no negative window lies inside the separability range of constant CFG, so no equal-separability comparison is possible"
    else:
        d = best["delta_vendi"]
        part = (f"the best negative window ({best['label']}) changes the Vendi score by {fmt(d['mean'])} ± "
                f"{fmt(d['sem'])} (s.e., paired over seeds) against constant CFG at the same separability "
                f"{fmt(best['separability'])}")
    sentence = (f"Best constant CFG ({top['label']}) reaches separability {fmt(top['mean']['separability'])} "
                f"(held-out real data: {fmt(ref['separability'])}, FD {fmt(top['mean']['fd'])} vs {fmt(ref['fd'])}); "
                f"{part}; these numbers {verdict(ok)} "
                f"the claim that a negative window raises diversity at equal separability.")
    shown = [top["label"]] + ([best["label"]] if best else []) + [k for k in images if k.startswith("calibrated")]
    shown = [s for s in dict.fromkeys(shown) if s in images]
    pareto, grids = _figures(study, images, shown, figdir)
    figures = [Figure(pareto, f"Separability–diversity plot of guidance schedules on the trained latent model. {sentence}")]
    figures += [Figure(path, f"Samples (rows: classes) for {label}, first seed. {sentence}")
                for label, path in zip(shown, grids)]
    return SectionResult(figures, numbers, sentence, ok, rule=LATENT_RULE)


LATENT_RULE = ("supported if the best in-range negative window raises the Vendi score at equal separability by more "
               "than 2 standard errors (paired over seeds), contradicted if it lowers it by more than 2 s.e., otherwise "
               "(no window in range, one seed, or no detectable difference) inconclusive.")


LATENT = Section(
    name="latent", title="Real latent diffusion: separability vs diversity",
    claim="On a real latent diffusion model, a negative-guidance window raises diversity at equal separability compared with constant CFG.",
    requires=("sklearn", "diffusers", "safetensors"),
    tasks=_tasks, analyze=_analyze,
    skip=lambda profile: None if profile.latent.enabled else f"disabled in the {profile.name!r} profile")
