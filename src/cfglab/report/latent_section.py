"""Report section: the separability–diversity study on a real latent diffusion model (docs/latent.md).

Runs :func:`cfglab.experiments.latent_study.latent_study` — the same function as
``cfglab latent study`` (the cached model of :mod:`cfglab.latent`, the config's split, the
independent evaluator) — with the profile's study settings.  The study's JSON is kept in ``latent/study.json``
next to the report and reused when the settings match, so a rerun does not resample.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from cfglab._io import write_atomic, write_json_atomic
from cfglab.report.base import Figure, Section, SectionResult, fmt, save_figure, sign_test, verdict

__all__ = ["LATENT"]


def _study_config(settings):
    from cfglab.experiments.latent_study import STUDY_PRESETS

    return dataclasses.replace(STUDY_PRESETS[settings.study], **dict(settings.overrides))


def _run(settings, cache: Path) -> dict:
    """The study's results (:func:`cfglab.experiments.latent_study.latent_study`, the function behind
    ``cfglab latent study``), from ``cache`` when it was made with the same settings."""
    from cfglab.experiments.latent_study import latent_study
    from cfglab.latent.train import PROFILES

    key = {"model": PROFILES[settings.model].to_dict(), "study": _study_config(settings).to_dict(),
           "evaluator_seed": settings.evaluator_seed}
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("key") == json.loads(json.dumps(key)):
            return cached
    study = latent_study(profile=settings.model, preset=settings.study, data=PROFILES[settings.model].data,
                         study=_study_config(settings), evaluator_seed=settings.evaluator_seed, threads=None,
                         keep_images=True)
    images = study.pop("images", {})
    write_atomic(cache.parent / "images.npz", lambda tmp: np.savez_compressed(
        tmp, **{f"img{i}": v for i, v in enumerate(images.values())},
        labels=np.array(list(images), dtype=object).astype(str)))
    result = {"key": key, **study}
    write_json_atomic(cache, result)
    return json.loads(cache.read_text())


def _images(folder: Path) -> dict:
    path = folder / "images.npz"
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {str(label): z[f"img{i}"] for i, label in enumerate(z["labels"])}


def _pareto(study: dict, figdir: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    families = {}
    for row in study["rows"]:
        families.setdefault(row["family"], []).append(row)
    for family, rows in families.items():
        rows = sorted(rows, key=lambda r: r["mean"]["separability"])
        x = [r["mean"]["separability"] for r in rows]
        y = [r["mean"]["vendi"] for r in rows]
        ax.errorbar(x, y, xerr=[r["std"]["separability"] for r in rows], yerr=[r["std"]["vendi"] for r in rows],
                    marker={"constant": "o", "interval": "^", "negative_window": "s"}.get(family, "*"),
                    ls="-" if family == "constant" else "", label=family)
        for r, xi, yi in zip(rows, x, y):
            ax.annotate(r["label"].replace("constant ", ""), (xi, yi), fontsize=6, alpha=0.7)
    ref = study["reference"]["mean"]
    ax.plot(ref["separability"], ref["vendi"], "k*", ms=12, label="held-out real data")
    ax.set(xlabel="separability (independent classifier accuracy)", ylabel="diversity (Vendi score)",
           title="latent diffusion on real digits: mean ± std over seeds")
    ax.legend(fontsize=7)
    return save_figure(fig, figdir, "latent_pareto")


def _grid(images: dict, labels: list[str], figdir: Path) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.6))
    for ax, label in zip(np.atleast_1d(axes), labels):
        x = images[label]  # [classes, n, H, W]
        k, n, h, w = x.shape
        n = min(n, 8)
        tiles = np.pad(x[:, :n], ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=x.min())  # 1-px gutter
        ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(k * (h + 2), n * (w + 2)), cmap="gray_r")
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    return save_figure(fig, figdir, "latent_samples")


def _verdict(study: dict) -> tuple[bool | None, dict | None]:
    """Best in-range negative window by Δvendi at equal separability (paired over seeds)."""
    windows = [c for c in study["comparison"] if c["family"] == "negative_window" and c["in_range"]]
    if not windows:
        return None, None
    best = max(windows, key=lambda c: c["delta_vendi"]["mean"])
    d = best["delta_vendi"]
    return sign_test(d["mean"], math.nan if d["sem"] is None else d["sem"]), best


def _analyze(profile, rows, figdir) -> SectionResult:
    folder = figdir.parent / "latent"
    folder.mkdir(parents=True, exist_ok=True)
    study = _run(profile.latent, folder / "study.json")
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
    figures = [Figure(_pareto(study, figdir), f"Separability–diversity plot of guidance schedules on the trained latent model. {sentence}")]
    images = _images(folder)
    if images:
        shown = [top["label"]] + ([best["label"]] if best else []) + [k for k in images if k.startswith("calibrated")]
        shown = [s for s in dict.fromkeys(shown) if s in images]
        figures.append(Figure(_grid(images, shown, figdir),
                              f"Samples (rows: classes) for {', '.join(shown)}, first seed. {sentence}"))
    return SectionResult(figures, numbers, sentence, ok, rule=LATENT_RULE)


LATENT_RULE = ("supported if the best in-range negative window raises the Vendi score at equal separability by more "
               "than 2 standard errors (paired over seeds), contradicted if it lowers it by more than 2 s.e., otherwise "
               "(no window in range, one seed, or no detectable difference) inconclusive.")


LATENT = Section(
    name="latent", title="Real latent diffusion: separability vs diversity",
    claim="On a real latent diffusion model, a negative-guidance window raises diversity at equal separability compared with constant CFG.",
    requires=("sklearn", "diffusers", "safetensors"),
    tasks=lambda profile: [], analyze=_analyze,
    skip=lambda profile: None if profile.latent.enabled else f"disabled in the {profile.name!r} profile")
