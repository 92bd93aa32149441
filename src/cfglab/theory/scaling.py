"""How the theory–simulation error scales with d: power-law fits with bootstrap uncertainty (docs/theory.md).

Input: the per-seed rows of :func:`cfglab.experiments.validate.run_point` (``cfglab theory validate
--out DIR`` writes them to ``DIR/table.json``).  For each quantity q (m, v⊥, v∥) and each theory
(``inf``: d → ∞; ``fin``: finite d, conditioned on each seed's target norm) the error at d is
``|mean over seeds of (q_sim − q_theory)|``; ``error ≈ C d^{−p}`` is fitted by least squares
in log–log, and the uncertainty of p comes from resampling the seeds within each d.
"""

from __future__ import annotations

import math

import numpy as np

from cfglab._io import save_figure_atomic
from cfglab._validate import CfglabInputError

__all__ = ["QUANTITIES", "THEORIES", "error_table", "fit_exponents", "plot_errors"]

QUANTITIES = {"mean_overlap": "m", "var_perp": "v⊥", "var_parallel": "v∥"}
THEORIES = {"inf": "DMFT d → ∞", "fin": "finite-d DMFT"}


def _gaps(rows: list[dict], q: str, th: str) -> dict[int, np.ndarray]:
    """d -> per-seed ``sim − theory`` of quantity q."""
    out: dict[int, list] = {}
    for r in rows:
        out.setdefault(int(r["d"]), []).append(r[f"sim_{q}"] - r[f"{th}_{q}"])
    return {d: np.asarray(v, float) for d, v in sorted(out.items())}


def error_table(rows: list[dict]) -> list[dict]:
    """Per d: the error of each theory for each quantity with its s.e. over seeds."""
    if not rows:
        raise CfglabInputError("no rows: run `cfglab theory validate --out DIR` first")
    table = []
    for d in sorted({int(r["d"]) for r in rows}):
        row = {"d": d, "seeds": sum(int(r["d"]) == d for r in rows)}
        for q in QUANTITIES:
            for th in THEORIES:
                g = _gaps(rows, q, th)[d]
                row[f"err_{th}_{q}"] = float(abs(g.mean()))
                row[f"se_{th}_{q}"] = float(g.std(ddof=1) / math.sqrt(len(g))) if len(g) > 1 else math.nan
        table.append(row)
    return table


def _slope(ds: np.ndarray, errs: np.ndarray) -> float:
    """−slope of log(error) against log(d) (least squares); NaN if an error is 0."""
    if np.any(errs <= 0):
        return math.nan
    return float(-np.polyfit(np.log(ds), np.log(errs), 1)[0])


def fit_exponents(rows: list[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """``error ≈ C d^{−p}`` per (theory, quantity): p, its bootstrap s.e. and 68%/95% intervals.

    The interval is what the seeds allow: where the error at large d is within its s.e. of 0,
    p is not determined and the interval is wide.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for th in THEORIES:
        for q in QUANTITIES:
            gaps = _gaps(rows, q, th)
            ds = np.array(list(gaps), float)
            if len(ds) < 2:
                raise CfglabInputError("fitting an exponent needs at least two dimensions")
            errs = np.array([abs(g.mean()) for g in gaps.values()])
            boot = np.array([_slope(ds, np.array([abs(rng.choice(g, len(g)).mean()) for g in gaps.values()]))
                             for _ in range(n_boot)])
            boot = boot[np.isfinite(boot)]
            out[f"{th}_{q}"] = {"theory": THEORIES[th], "quantity": QUANTITIES[q], "p": _slope(ds, errs),
                                "p_se": float(boot.std(ddof=1)),
                                "p_68": [float(x) for x in np.percentile(boot, [16, 84])],
                                "p_95": [float(x) for x in np.percentile(boot, [2.5, 97.5])]}
    return out


def plot_errors(table: list[dict], fits: dict, path: str) -> None:
    """Log–log error against d for both theories and the three quantities, with the fitted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = np.array([r["d"] for r in table], float)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (q, label) in zip(axes, QUANTITIES.items()):
        for th, name in THEORIES.items():
            e = np.array([r[f"err_{th}_{q}"] for r in table])
            se = np.nan_to_num([r[f"se_{th}_{q}"] for r in table])
            line = ax.errorbar(ds, e, yerr=se, marker="o", ls="", capsize=3)
            f = fits[f"{th}_{q}"]
            if math.isfinite(f["p"]):
                c = np.exp(np.mean(np.log(e) + f["p"] * np.log(ds)))
                ax.plot(ds, c * ds ** -f["p"], "--", color=line[0].get_color(),
                        label=f"{name}: p = {f['p']:.2f} ± {f['p_se']:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="d", ylabel=f"|⟨{label}_sim − {label}_theory⟩|", title=label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
