"""Theory against exact-score simulation at growing d (docs/theory.md; finite-size scaling).

:func:`run_point` is a pure function ``params dict -> dict of numbers`` (one simulation and
its DMFT predictions on the same sampler grid), so a Dask sweep can map it over a grid.
:func:`crossing_point` measures where the mean target weight π_c(t) crosses 1/2 along
unguided trajectories, to compare with the REM time t_c.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from cfglab._io import save_figure_atomic
from cfglab._validate import CfglabInputError
from cfglab.lab.simulate import SimulationConfig, build_model, simulate
from cfglab.theory.dmft import half_time, solve_dmft
from cfglab.theory.transition import crossing_time, transition

__all__ = ["DEFAULTS", "run_point", "target_norm2", "crossing_point", "validation_table", "error_by_d", "plot_scaling"]

DEFAULTS = {"alpha": 0.2, "schedule": "constant:w=2", "sampler": "sde", "sigma2": 0.5, "s2": 1.0,
            "n_samples": 1000, "steps": 150, "T": 3.0, "start": "marginal", "seed": 0}
COMPARED = ("mean_overlap", "var_perp", "var_parallel", "kl_per_dim")


def _config(p: dict):
    return SimulationConfig(d=int(p["d"]), alpha=float(p["alpha"]), sigma2=float(p["sigma2"]), s2=float(p["s2"]),
                            schedule=str(p["schedule"]), sampler=str(p["sampler"]), n_samples=int(p["n_samples"]),
                            steps=int(p["steps"]), T=float(p["T"]), seed=int(p["seed"]), start=str(p["start"]))


def run_point(params: dict) -> dict:
    """Simulate one (d, α, schedule, seed) and compare with the DMFT on the sampler's grid.

    Returns the simulated metrics (``sim_*``), the d → ∞ prediction (``inf_*``), the
    finite-d prediction conditioned on the drawn target's norm (``fin_*``) and the continuous-time d → ∞ prediction (``cont_*``; its
    difference from ``inf_*`` is the sampler's discretisation error), plus ``err_*`` =
    |sim − inf| for each compared quantity.
    """

    p = {**DEFAULTS, **params}
    cfg = _config(p)
    sim = simulate(cfg)
    common = dict(sigma2=cfg.sigma2, s2=cfg.s2, schedule=cfg.schedule, sampler=cfg.sampler, T=cfg.T, start=cfg.start)
    inf = solve_dmft(cfg.alpha, steps=cfg.steps, **common)
    fin = solve_dmft(cfg.alpha, steps=cfg.steps, d=cfg.d, target_s2=target_norm2(cfg), **common)
    cont = solve_dmft(cfg.alpha, **common)
    out = {"d": cfg.d, "alpha": cfg.alpha, "seed": cfg.seed, "K": sim["K"], "n_samples": cfg.n_samples,
           "class_accuracy": sim["class_accuracy"]}
    for key in COMPARED:
        out[f"sim_{key}"] = sim[key]
        out[f"inf_{key}"] = getattr(inf, key)
        out[f"fin_{key}"] = getattr(fin, key)
        out[f"cont_{key}"] = getattr(cont, key)
        out[f"err_{key}"] = abs(sim[key] - getattr(inf, key))
        out[f"errfin_{key}"] = abs(sim[key] - getattr(fin, key))
    out["inf_t_switch"], out["fin_t_switch"] = inf.t_switch, fin.t_switch
    return out


def target_norm2(cfg) -> float:
    """``|μ_c|²/d`` of the target class a simulation config draws (same seed, same ensemble)."""

    mu = build_model(cfg).target_mean
    return float(mu @ mu) / cfg.d


def crossing_point(params: dict) -> dict:
    """OU time where the mean target weight π_c(t) crosses 1/2 along unguided (w = 0) runs.

    ``params``: d, alpha, seed, n_samples, steps, T, start, sigma2, s2 (DEFAULTS fill the rest).
    """

    p = {**DEFAULTS, **params, "schedule": "constant:w=0"}
    res = simulate(_config(p), trajectory=True)
    tr = res["trajectory"]
    t_half = half_time(np.asarray(tr["t"]), np.asarray(tr["pi_target"], dtype=float))
    cfg = _config(p)
    t_c = transition(cfg.alpha, cfg.sigma2, cfg.s2).t_c
    t_fin = crossing_time(cfg.alpha, cfg.d, sigma2=cfg.sigma2, s2=cfg.s2, target_s2=target_norm2(cfg))
    return {"d": cfg.d, "alpha": cfg.alpha, "seed": cfg.seed, "K": res["K"], "t_cross": t_half, "t_c": t_c,
            "t_cross_finite_d": t_fin}


def validation_table(points: Iterable[dict], runner: Callable[[dict], dict] = run_point,
                     progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Run :func:`run_point` over ``points`` (local, sequential); ``progress(done, total)``."""
    points = list(points)
    rows = []
    for i, p in enumerate(points):
        rows.append(runner(p))
        if progress is not None:
            progress(i + 1, len(points))
    return rows


def error_by_d(rows: list[dict]) -> list[dict]:
    """Mean over seeds of sim and theory per (α, d): error ± standard error of the seed mean."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["alpha"], r.get("schedule", ""), r["d"]), []).append(r)
    table = []
    for (alpha, sched, d), rs in sorted(groups.items()):
        row = {"alpha": alpha, "d": d, "K": rs[0]["K"], "seeds": len(rs)}
        for key in COMPARED:
            sims = np.array([r[f"sim_{key}"] for r in rs])
            row[f"sim_{key}"] = float(sims.mean())
            row[f"se_{key}"] = float(sims.std(ddof=1) / math.sqrt(len(rs))) if len(rs) > 1 else None
            row[f"inf_{key}"] = float(np.mean([r[f"inf_{key}"] for r in rs]))
            row[f"fin_{key}"] = float(np.mean([r[f"fin_{key}"] for r in rs]))
            row[f"err_{key}"] = abs(row[f"sim_{key}"] - row[f"inf_{key}"])
            row[f"errfin_{key}"] = abs(row[f"sim_{key}"] - row[f"fin_{key}"])
        table.append(row)
    return table


def plot_scaling(table: list[dict], path: str) -> None:
    """Finite-size-scaling plot: |sim − DMFT(d→∞)| of m and v⊥ against 1/d, per α (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not table:
        raise CfglabInputError("nothing to plot: the validation table is empty")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for alpha in sorted({r["alpha"] for r in table}):
        rs = [r for r in table if r["alpha"] == alpha]
        x = [1 / r["d"] for r in rs]
        for ax, key in zip(axes, ("mean_overlap", "var_perp", "var_parallel")):
            se = [r[f"se_{key}"] or 0.0 for r in rs]
            ax.errorbar(x, [r[f"sim_{key}"] - r[f"inf_{key}"] for r in rs], yerr=se, marker="o", capsize=3,
                        label=f"sim − DMFT(d→∞), α={alpha:g}")
            ax.plot(x, [r[f"fin_{key}"] - r[f"inf_{key}"] for r in rs], ls="--", marker="x",
                    label=f"finite-d DMFT − DMFT(d→∞), α={alpha:g}")
    for ax, key in zip(axes, ("mean overlap m", "v⊥", "v∥")):
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel("1/d")
        ax.set_title(f"{key}: deviation from d → ∞ theory")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
