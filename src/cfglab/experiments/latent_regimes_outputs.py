"""Files of the regime study: Markdown table, CFG-force figure, window-gain-vs-regime figure."""

from __future__ import annotations

import math
import os
from pathlib import Path

from cfglab._io import save_figure_atomic, write_text_atomic

__all__ = ["force_figure", "gain_figure", "regimes_table", "write_regimes"]

_METRICS = (("log_posterior", "log-posterior"), ("top1", "top-1"), ("var_ratio_latent", "var ratio (latent)"),
            ("var_ratio_pixel", "var ratio (pixel)"), ("recall", "recall"), ("fd_pca", "FD (PCA)"))  # fmt: skip


def write_regimes(result: dict, out: str | os.PathLike) -> dict:
    """table.md, force.png and gain.png under ``out``; returns their paths."""
    out = Path(out)
    paths = {"table": out / "table.md", "force": out / "force.png", "gain": out / "gain.png"}
    write_text_atomic(paths["table"], regimes_table(result))
    force_figure(result, paths["force"])
    gain_figure(result, paths["gain"])
    return {k: str(v) for k, v in paths.items()}


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def _ci(cell) -> str:
    return f"{_fmt(cell['mean'])} [{_fmt(cell['ci'][0])}, {_fmt(cell['ci'][1])}]"


def regimes_table(result: dict) -> str:
    """Per conditioning: the regime line, then per sampler one row per schedule with verdicts."""
    parts = []
    for name, c in result["conditionings"].items():
        parts.append(
            f"### {name} ({c['data']}, K′ = {c['K']}, d = {c['d']})\n\n"
            f"α = {_fmt(c['alpha'])}, α_c = {_fmt(c['alpha_c'])}, α/α_c = {_fmt(c['alpha_ratio'])};"
            f" resolution σ measured {_fmt(c['sigma_res_measured'])}, predicted"
            f" {_fmt(c['sigma_res_predicted'])} (forecast: {c['prediction_model']}).\n"
        )
        for sampler, s in c["samplers"].items():
            parts.append(_sampler_table(sampler, s))
        parts.append(f"Rule: {c['rule']}\n")
    return "\n".join(parts)


def _sampler_table(sampler: str, s: dict) -> str:
    head = ["schedule", *(label for _, label in _METRICS), "predicted var ratio",
            "Δ log p vs const(w_pos)", "Δ var ratio vs const(w_pos)", "forecast effect (measured)"]  # fmt: skip
    lines = [f"**{sampler}**\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paper = s["paper_style"]
    for r in s["schedules"]:
        cells = [r["schedule"], *(_ci(r[m]) for m, _ in _METRICS), _fmt(r["predicted_var_ratio"])]
        for m in ("log_posterior", "var_ratio_latent"):
            d = paper.get(m, {}).get(r["schedule"])
            cells.append(f"{_ci(d)} {d['verdict']}" if d else "")
        effect = r.get("predicted_effect")
        cells.append(f"{effect} ({r['measured_effect_verdict']})" if effect else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\n| family vs constant CFG (whole frontier) | mean Δ var ratio at equal log p | verdict |")
    lines.append("|---|---|---|")
    for fam, f in s["frontier"].items():
        lines.append(f"| {fam} | {_ci(f) if f.get('ci') else '–'} | {f['verdict']} |")
    score = s["prediction_score"]
    lines.append(
        f"\nPredictions ({score['rule']}): effect agree {score['effect']['agree']}, disagree"
        f" {score['effect']['disagree']}; helps agree {score['helps']['agree']}, disagree"
        f" {score['helps']['disagree']}; variance ratio mean |log error|"
        f" {_fmt(score['var_ratio_mean_abs_log_error'])} over {score['var_ratio_n']} schedules.\n"
    )
    return "\n".join(lines)


def force_figure(result: dict, path) -> None:
    """‖D_c − D_u‖(σ) per conditioning, measured (solid) and predicted (dashed) resolution σ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (name, c) in enumerate(result["conditionings"].items()):
        prof, color = c["force_profile"], f"C{i}"
        y = prof.get("force_rel") or prof["force"]
        ax.plot(prof["sigma"], y, "o-", ms=3, color=color,
                label=f"{name} (α/α_c = {_fmt(c['alpha_ratio'], 2)})")  # fmt: skip
        for key, style in (("sigma_res_measured", "-"), ("sigma_res_predicted", "--")):
            if c.get(key) is not None and math.isfinite(c[key]):
                ax.axvline(c[key], color=color, ls=style, lw=1)
    ax.set(xscale="log", xlabel="σ", ylabel="‖D_c − D_u‖ (relative)",
           title="CFG force; resolution σ measured (—) and predicted (- -)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path)


def gain_points(result: dict) -> list[dict]:
    """Per conditioning × sampler: the best window family's frontier gain (mean, CI) and α/α_c."""
    pts = []
    for name, c in result["conditionings"].items():
        for sampler, s in c["samplers"].items():
            fams = [(f, r) for f, r in s["frontier"].items() if r.get("ci")]
            if not fams:
                continue
            fam, best = max(fams, key=lambda fr: fr[1]["mean"])
            pts.append(dict(conditioning=name, sampler=sampler, family=fam,
                            alpha_ratio=c["alpha_ratio"], **{k: best[k] for k in ("mean", "ci", "verdict")}))  # fmt: skip
    return pts


def gain_figure(result: dict, path) -> None:
    """Variance-ratio gain of the best window family (whole frontier, 95 % CI) vs α/α_c."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    markers = {"heun": "o", "euler_ancestral": "s"}
    for p in gain_points(result):
        x = p["alpha_ratio"] if p["alpha_ratio"] is not None and math.isfinite(p["alpha_ratio"]) else 0.0
        err = [[p["mean"] - p["ci"][0]], [p["ci"][1] - p["mean"]]]
        ax.errorbar([x], [p["mean"]], yerr=err, fmt=markers.get(p["sampler"], "^"), capsize=3,
                    label=f"{p['conditioning']} / {p['sampler']} ({p['family']})")  # fmt: skip
    ax.axhline(0, color="k", lw=0.8)
    ax.axvline(1, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="α/α_c (measured)", ylabel="Δ latent var ratio at equal log p(c|x)",
           title="Best negative-window family vs constant CFG")  # fmt: skip
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path)
