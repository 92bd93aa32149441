"""Separability vs diversity of guidance schedules and rules on exact scores (docs/schedules.md).

One :func:`cfglab.lab.simulate` run per entry (same ensemble, same start noise): constant CFG over a
range of w, interval guidance, linear / cosine ramps, negative windows, the paper's linear
form, the theory-calibrated window, power-law CFG and APG.  Separability = mean overlap
(and class accuracy where a Bayes class exists); diversity = variance ratio ``var_perp/σ²``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from cfglab._io import save_figure_atomic
from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.experiments.calibrate import base_parts, calibrate
from cfglab.guidance.rules import RULES
from cfglab.guidance.schedules import as_schedule
from cfglab.lab.simulate import SamplingDiverged, SimulationConfig, simulate

__all__ = ["Entry", "default_entries", "compare_table", "pareto_plot"]

REGIMES = ("infinite", "exponential")


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: a schedule string and a guidance rule (``cfg``, ``power_law``, ``apg``)."""

    label: str
    family: str
    schedule: str
    rule: str = "cfg"
    rule_kwargs: tuple = ()


def default_entries(calibrated: str | None = None) -> list[Entry]:
    """The standard comparison set; ``calibrated`` is the solved window's schedule string."""
    rows = [Entry(f"constant w={w:g}", "constant", f"constant:w={w:g}") for w in (0, 0.5, 1, 2, 4)]
    rows += [
        Entry("interval w=3", "interval", "interval:w=3,lo=0.28,hi=5.42"),
        Entry("linear 0→4", "ramp", "linear:start=0,end=4"),
        Entry("linear 4→0", "ramp", "linear:start=4,end=0"),
        Entry("cosine 4→0", "ramp", "cosine:start=4,end=0"),
        Entry("neg. window 2/-1 @0.8", "negative_window", "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8"),
        Entry("neg. window 3/-1 @2", "negative_window", "negative_window:w_pos=3,w_neg=-1,sigma_switch=2"),
        Entry("paper_linear w=-1+t", "paper_linear", "paper_linear:w0=-1,slope=1"),
        Entry("power-law w=2 γ=-0.5", "power_law", "constant:w=2", "power_law", (("gamma", -0.5),)),
        Entry("APG w=2 η=0 β=-0.5", "apg", "constant:w=2", "apg", (("eta", 0.0), ("momentum", -0.5))),
    ]
    if calibrated is not None:
        rows.append(Entry("calibrated", "calibrated", calibrated))
    return rows


def _rule(entry: Entry):
    cls = RULES.get(entry.rule)
    if cls is None:
        raise CfglabInputError(f"unknown guidance rule {entry.rule!r}; choose from {', '.join(RULES)}")
    return cls(**dict(entry.rule_kwargs))


def _config(regime: str, d: int, alpha: float, sampler: str, n: int, steps: int, seed: int, T: float) -> SimulationConfig:
    if regime not in REGIMES:
        raise CfglabInputError(f"unknown regime {regime!r}; choose from {', '.join(REGIMES)}")
    kw = dict(d=d, sampler=sampler, n_samples=n, steps=steps, seed=seed, T=T)
    return SimulationConfig(infinite=True, **kw) if regime == "infinite" else SimulationConfig(alpha=alpha, **kw)


def compare_table(entries: list[Entry] | None = None, *, regime: str = "infinite", d: int = 32,
                  alpha: float = 0.2, sampler: str = "ode", n_samples: int = 1000, steps: int = 100,
                  seed: int = 0, T: float = 6.0, calibrate_base: str = "constant:w=2",
                  progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Simulate every entry on one exact-score ensemble; one dict of metrics per entry.

    With ``entries=None`` the :func:`default_entries` are used, with the window calibrated
    for ``calibrate_base`` by the theory of the regime (infinite: exact; exponential: DMFT
    at ``alpha``, strongest clean ``w_neg``), for this sampler and step count.
    """
    positive("alpha", alpha), positive_int("d", d)
    base_parts(as_schedule(calibrate_base), T)  # a malformed base is an input error, not a failed calibration
    cfg = _config(regime, d, alpha, sampler, n_samples, steps, seed, T)
    if entries is None:
        entries = default_entries(_calibrated(regime, alpha, sampler, steps, T, calibrate_base))
    rows = []
    for i, entry in enumerate(entries):  # same ensemble and start noise (cfg.seed) for every entry
        try:
            metrics = simulate(dataclasses.replace(cfg, schedule=entry.schedule), rule=_rule(entry))
        except SamplingDiverged:
            metrics = {"mean_overlap": math.nan, "var_perp_ratio": math.nan, "class_accuracy": None,
                       "kl_per_dim": math.nan}
        rows.append({"label": entry.label, "family": entry.family, "schedule": entry.schedule, "rule": entry.rule,
                     **{k: metrics[k] for k in ("mean_overlap", "var_perp_ratio", "class_accuracy", "kl_per_dim")}})
        if progress is not None:
            progress(i + 1, len(entries))
    return rows


def _calibrated(regime, alpha, sampler, steps, T, base) -> str | None:
    try:
        if regime == "infinite":
            return str(calibrate(base, sampler=sampler, steps=steps, T=T).schedule)
        return str(calibrate(base, regime="dmft", alpha=alpha, w_neg=None, sampler=sampler, steps=steps, T=T).schedule)
    except CfglabInputError:
        return None


def pareto_plot(rows: list[dict], path, *, title: str = "") -> None:
    """Scatter separability (mean overlap) vs diversity (variance ratio) per family; PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    families = sorted({r["family"] for r in rows})
    for fam in families:
        pts = [(r["var_perp_ratio"], r["mean_overlap"], r["label"]) for r in rows if r["family"] == fam
               and r["var_perp_ratio"] is not None and math.isfinite(r["var_perp_ratio"])]
        if not pts:
            continue
        style = "-o" if fam == "constant" else "o"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=fam, ms=6)
        for vx, my, label in pts:
            ax.annotate(label, (vx, my), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("diversity: variance ratio var⊥/σ² (target 1)")
    ax.set_ylabel("separability: mean overlap x·μ_c/|μ_c|²")
    ax.set_title(title or "guidance schedules on exact scores")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=130)
