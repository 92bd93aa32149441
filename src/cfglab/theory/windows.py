"""Where a negative-guidance window restores the variance: the window phase diagram (docs/schedules.md).

For a constant base ``w_pos`` and the window ``negative_window:w_pos,w_neg,sigma_switch``
(w_pos above σ_switch, w_neg below), the d → ∞ DMFT (:func:`cfglab.theory.dmft.solve_dmft`)
gives the final var⊥/σ², mean overlap and whether the target class is resolved, over
α/α_c (K = e^{αd}, α_c from :func:`cfglab.theory.transition.alpha_critical`); the
infinite-class limit uses the exact moment ODEs (:func:`cfglab.theory.gaussian.solve_gaussian`).

The predicted boundary is the base's guided class-resolution noise level σ_res: in the
d → ∞ DMFT the CFG force vanishes once the target has taken over, so a window with
σ_switch < σ_res is inert, one with σ_switch > σ_res acts.  Above α_c the unguided target is
never resolved, and the window acts at every σ_switch.  Each point is flagged where it rests
on the frozen-phase approximation.  :func:`simulate_checks` compares exact-score simulations
at a few points with the DMFT on the same sampler grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from cfglab._io import save_figure_atomic
from cfglab._validate import CfglabInputError, positive

__all__ = ["WindowGrid", "STANDARD", "window_diagram", "window_point", "plot_diagram", "INF"]

INF = "inf"  # key of the infinite-class limit in the diagram
RESTORED = 0.05  # |var⊥/σ² − 1| within this: the window restores the variance
INERT = 0.005  # |var_window − var_base| below this: the window does nothing


@dataclass(frozen=True)
class WindowGrid:
    """The grid of the diagram (defaults: the standard diagram of docs/schedules.md)."""

    ratios: tuple = (0.1, 0.3, 0.5, 0.7, 0.9, 1.2, 1.5)  # α/α_c
    switches: tuple = (0.3, 0.8, 1.5, 3.0, 6.0)  # σ_switch
    w_negs: tuple = (-1.0, -0.5, -0.2)
    samplers: tuple = ("sde", "ode")
    w_pos: float = 2.0
    sigma2: float = 0.5
    s2: float = 1.0
    T: float = 6.0

    def __post_init__(self):
        for name in ("w_pos", "sigma2", "s2", "T"):
            positive(name, getattr(self, name))
        for r in self.ratios:
            positive("alpha/alpha_c", r)
        for s in self.switches:
            positive("sigma_switch", s)
        for w in self.w_negs:
            if not -1 <= w < 0:
                raise CfglabInputError(f"w_neg must lie in [-1, 0), got {w}")
        for s in self.samplers:
            if s not in ("sde", "ode"):
                raise CfglabInputError(f"unknown sampler {s!r}; choose sde or ode")


STANDARD = WindowGrid()


def _schedule(g: WindowGrid, sigma_switch: float, w_neg: float) -> str:
    return f"negative_window:w_pos={g.w_pos:g},w_neg={w_neg:g},sigma_switch={sigma_switch:g}"


def _effect(v: float, v_base: float, resolved: bool) -> str:
    """inert | restores | overshoots | helps | hurts (by the final var⊥/σ²)."""
    if abs(v - v_base) < INERT:
        return "inert"
    if abs(v - 1) <= RESTORED:
        return "restores" if resolved else "restores_unresolved"
    if v > 1:
        return "overshoots"
    return "helps" if abs(v - 1) < abs(v_base - 1) else "hurts"


def _dmft(alpha: float, schedule: str, g: WindowGrid, sampler: str) -> dict:
    from cfglab.theory.dmft import solve_dmft

    p = solve_dmft(alpha, sigma2=g.sigma2, s2=g.s2, schedule=schedule, sampler=sampler, T=g.T)
    return {"var_ratio": p.var_perp / g.sigma2, "var_parallel_ratio": p.var_parallel / g.sigma2,
            "mean_overlap": p.mean_overlap, "resolved": p.t_switch is not None, "t_switch": p.t_switch,
            "frozen": p.frozen_before_switch}


def _gaussian(schedule: str, g: WindowGrid, sampler: str) -> dict:
    from cfglab.theory.gaussian import solve_gaussian

    p = solve_gaussian(schedule, sigma2=g.sigma2, s2=g.s2, sampler=sampler, T=g.T, n_points=2)
    v = float(p.var_ratio)
    return {"var_ratio": v, "var_parallel_ratio": v, "mean_overlap": float(p.mean_overlap), "resolved": True,
            "t_switch": None, "frozen": False}


def _solve(ratio, schedule: str, g: WindowGrid, sampler: str, alpha_c: float) -> dict:
    return _gaussian(schedule, g, sampler) if ratio == INF else _dmft(ratio * alpha_c, schedule, g, sampler)


def _sigma(t: float | None) -> float | None:
    return None if t is None else math.sqrt(math.expm1(2 * t))


def window_point(ratio, sigma_switch: float, w_neg: float, sampler: str, g: WindowGrid = STANDARD,
                 base: dict | None = None) -> dict:
    """One point of the diagram: the window against its constant base (``ratio``: α/α_c or ``INF``)."""
    from cfglab.theory.transition import alpha_critical

    a_c = alpha_critical(g.sigma2, g.s2)
    base = base or _solve(ratio, f"constant:w={g.w_pos:g}", g, sampler, a_c)
    win = _solve(ratio, _schedule(g, sigma_switch, w_neg), g, sampler, a_c)
    approx = ["frozen_phase"] if (win["frozen"] or base["frozen"]) else []
    return {"sampler": sampler, "sigma_switch": sigma_switch, "w_neg": w_neg,
            "var_ratio": win["var_ratio"], "var_parallel_ratio": win["var_parallel_ratio"],
            "mean_overlap": win["mean_overlap"], "target_resolved": win["resolved"],
            "var_ratio_base": base["var_ratio"], "mean_overlap_base": base["mean_overlap"],
            "target_resolved_base": base["resolved"],
            "effect": _effect(win["var_ratio"], base["var_ratio"], win["resolved"]),
            "frozen_before_switch": bool(win["frozen"] or base["frozen"]), "approximations": approx}


def _row(ratio, g: WindowGrid, a_c: float) -> dict:
    """All points of one α/α_c (or the infinite-class limit), with the predicted boundary σ_res."""
    points, boundary = [], {}
    for sampler in g.samplers:
        base = _solve(ratio, f"constant:w={g.w_pos:g}", g, sampler, a_c)
        boundary[sampler] = _sigma(base["t_switch"]) if ratio != INF else None
        points += [window_point(ratio, s, w, sampler, g, base) for w in g.w_negs for s in g.switches]
    return {"alpha": None if ratio == INF else ratio * a_c, "sigma_resolution_base": boundary, "points": points}


def window_diagram(g: WindowGrid = STANDARD, progress=None) -> dict:
    """The diagram, indexed by α/α_c (``"inf"``: the infinite-class limit); JSON-ready."""
    from cfglab.theory.transition import alpha_critical

    a_c = alpha_critical(g.sigma2, g.s2)
    keys = list(g.ratios) + [INF]
    rows = {}
    for i, ratio in enumerate(keys):
        rows[f"{ratio:g}" if ratio != INF else INF] = _row(ratio, g, a_c)
        if progress is not None:
            progress(i + 1, len(keys))
    return {"grid": asdict(g), "alpha_c": a_c, "restored_within": RESTORED, "inert_below": INERT,
            "boundary_rule": "d → ∞ DMFT: a window is inert iff σ_switch < σ_res, the base's guided class-resolution "
                             "noise level (null where the base never resolves the target)",
            "diagram": rows}


# --- figure ---------------------------------------------------------------------------------

_MARK = {"inert": ("o", "#999"), "restores": ("*", "#2a7"), "restores_unresolved": ("*", "#c80"),
         "overshoots": ("^", "#c33"), "helps": ("s", "#7bd"), "hurts": ("v", "#a5a")}


def plot_diagram(diagram: dict, path: str) -> None:
    """Panels (sampler × w_neg): markers by effect over (α/α_c, σ_switch), the boundary σ_res, frozen points ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = diagram["grid"]
    keys = [k for k in diagram["diagram"] if k != INF]
    xs = {k: float(k) for k in keys}
    x_inf = max(xs.values()) * 1.25
    fig, axes = plt.subplots(len(g["samplers"]), len(g["w_negs"]), figsize=(4 * len(g["w_negs"]), 3.4 * len(g["samplers"])),
                             squeeze=False)
    for i, sampler in enumerate(g["samplers"]):
        for j, w_neg in enumerate(g["w_negs"]):
            ax = axes[i, j]
            for key, row in diagram["diagram"].items():
                x = x_inf if key == INF else xs[key]
                for p in row["points"]:
                    if p["sampler"] != sampler or p["w_neg"] != w_neg:
                        continue
                    mk, col = _MARK[p["effect"]]
                    ax.scatter(x, p["sigma_switch"], marker=mk, color=col, s=60, zorder=3)
                    ax.annotate(f"{p['var_ratio']:.2f}", (x, p["sigma_switch"]), fontsize=6, xytext=(4, 2),
                                textcoords="offset points")
                    if p["frozen_before_switch"]:
                        ax.scatter(x, p["sigma_switch"], marker="o", facecolor="none", edgecolor="k", s=160, zorder=2)
            bx = [xs[k] for k in keys if diagram["diagram"][k]["sigma_resolution_base"][sampler] is not None]
            by = [diagram["diagram"][k]["sigma_resolution_base"][sampler] for k in keys
                  if diagram["diagram"][k]["sigma_resolution_base"][sampler] is not None]
            ax.plot(bx, by, "k--", lw=1, label="σ_res of the base (boundary)")
            ax.axvline(1.0, color="gray", ls=":", lw=0.8)
            ax.set_xticks([xs[k] for k in keys] + [x_inf], labels=keys + ["K→∞"], fontsize=7)
            ax.set(yscale="log", xlabel="α/α_c", ylabel="σ_switch",
                   title=f"{sampler.upper()}, w_pos = {g['w_pos']:g}, w_neg = {w_neg:g}")
    handles = [plt.Line2D([], [], marker=m, color=c, ls="", label=k) for k, (m, c) in _MARK.items()]
    handles.append(plt.Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="k", ls="", label="frozen phase"))
    axes[0, 0].legend(handles=handles, fontsize=6, loc="lower left")
    fig.suptitle(f"Negative-window phase diagram (σ² = {g['sigma2']:g}, s² = {g['s2']:g}; numbers: final var⊥/σ²)")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
