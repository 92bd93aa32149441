"""Files of the latent study: JSON with every number, Markdown table, Pareto plot, sample grids."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from cfglab._io import save_figure_atomic, write_atomic, write_json_atomic, write_text_atomic

__all__ = ["pareto_plot", "sample_grid", "study_table", "write_study"]

_COLUMNS = ("separability", "vendi", "within_class_var", "precision", "recall", "coverage", "fd")
_STYLE = {
    "constant": ("tab:blue", "o-"),
    "interval": ("tab:green", "s"),
    "negative_window": ("tab:red", "^"),
    "calibrated": ("tab:purple", "*"),
    "reference": ("black", "D"),
}


def write_study(result: dict, out: str | os.PathLike) -> dict:
    """Write study.json, table.md, pareto.png and grids/*.png under ``out``; return paths."""
    out = Path(out)
    images = result.pop("images", {})
    paths = {
        "json": str(out / "study.json"),
        "table": str(out / "table.md"),
        "pareto": str(out / "pareto.png"),
        "grids": {},
    }
    for label, grid in images.items():
        path = out / "grids" / f"{_slug(label)}.png"
        sample_grid(grid, path)
        paths["grids"][label] = str(path)
    write_text_atomic(out / "table.md", study_table(result))
    pareto_plot(result, out / "pareto.png")
    write_json_atomic(out / "study.json", {**result, "files": paths})
    return paths


def study_table(result: dict) -> str:
    """Markdown table: mean ± std over seeds per schedule, reference row, paired comparison."""
    head = "| schedule | " + " | ".join(_COLUMNS) + " |\n|" + "---|" * (len(_COLUMNS) + 1) + "\n"
    lines = [_row("held-out real (reference)", result["reference"])]
    lines += [_row(r["label"], r) for r in result["rows"]]
    text = head + "\n".join(lines) + "\n"
    comp = result.get("comparison") or []
    if comp:
        text += (
            "\n| schedule vs constant CFG at equal separability | separability | Δ vendi"
            " | Δ within_class_var | Δ recall | Δ fd | in range |\n"
        )
        text += "|---|---|---|---|---|---|---|\n"
        for c in comp:
            cells = [
                f"{c[f'delta_{m}']['mean']:+.4g} ± {c[f'delta_{m}']['sem']:.2g}"
                for m in ("vendi", "within_class_var", "recall", "fd")
            ]
            text += (
                f"| {c['label']} | {c['separability']:.3f} | "
                + " | ".join(cells)
                + f" | {c['in_range']} |\n"
            )
        text += "\n(± is the standard error over seeds of the seed-paired difference.)\n"
    return text


def pareto_plot(result: dict, path: str | os.PathLike, zoom_from: float = 0.95) -> None:
    """Separability against Vendi score and within-class variance, error bars = std over seeds.

    Top row: every schedule; bottom row: zoom on separability ≥ ``zoom_from``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for col, metric in enumerate(("vendi", "within_class_var")):
        for row, lo in enumerate((None, zoom_from)):
            _pareto_panel(axes[row, col], result, metric, lo)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("latent study: separability vs diversity (mean ± std over seeds)")
    fig.tight_layout()
    save_figure_atomic(fig, path)


def _pareto_panel(ax, result: dict, metric: str, lo: float | None) -> None:
    shown = []
    for family, (color, fmt) in _STYLE.items():
        rows = [result["reference"]] if family == "reference" else _family(result, family)
        if lo is not None:
            rows = [r for r in rows if r["mean"]["separability"] >= lo]
        if not rows:
            continue
        x = [r["mean"]["separability"] for r in rows]
        y = [r["mean"][metric] for r in rows]
        shown += y
        xerr = [_nz(r["std"]["separability"]) for r in rows]
        yerr = [_nz(r["std"][metric]) for r in rows]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=fmt, color=color, label=family, capsize=2)
    if lo is not None and shown:
        pad = 0.05 * (max(shown) - min(shown) + 1e-9)
        ax.set_xlim(lo, 1.0 + (1.0 - lo) * 0.05)
        ax.set_ylim(min(shown) - pad, max(shown) + pad)
        ax.set_title(f"zoom: separability ≥ {lo}", fontsize=9)
    ax.set_xlabel("separability (evaluator accuracy)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)


def _family(result: dict, family: str) -> list[dict]:
    return [r for r in result["rows"] if r["family"] == family]


def sample_grid(grid: np.ndarray, path: str | os.PathLike, max_cols: int = 10) -> None:
    """PNG of uint8 images [classes, n, H, W]: one row per class, up to ``max_cols`` columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, n, h, w = grid.shape
    cols = min(n, max_cols)
    canvas = np.full((k * (h + 1) + 1, cols * (w + 1) + 1), 255, dtype=np.uint8)
    for i in range(k):
        for j in range(cols):
            canvas[1 + i * (h + 1) : 1 + i * (h + 1) + h, 1 + j * (w + 1) : 1 + j * (w + 1) + w] = (
                grid[i, j]
            )
    canvas = np.kron(canvas, np.ones((4, 4), dtype=np.uint8))  # nearest-neighbour ×4 for viewing
    write_atomic(path, lambda tmp: plt.imsave(tmp, canvas, cmap="gray_r", vmin=0, vmax=255))


def _row(label: str, r: dict) -> str:
    cells = [f"{r['mean'][m]:.4g} ± {_nz(r['std'][m]):.2g}" for m in _COLUMNS]
    return f"| {label} | " + " | ".join(cells) + " |"


def _nz(x: float) -> float:
    return 0.0 if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", label).strip("_")

