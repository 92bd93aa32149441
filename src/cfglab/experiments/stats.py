"""Statistics fit to decide: seed-paired differences, Holm correction, three-way verdicts, frontiers.

Every comparison is paired by seed (the same initial noise for both schedules).  A difference
gets a bootstrap percentile confidence interval of its mean (``scipy.stats.bootstrap``) and a
paired t-test p-value (``scipy.stats.ttest_1samp``: continuous, so a Holm correction over
dozens of schedules stays attainable with 10 seeds, which an exact sign-flip test is not).
The verdict rule is :data:`VERDICT_RULE`; it is printed next to every verdict (docs/latent.md).
"""

from __future__ import annotations

import math

import numpy as np

from cfglab._validate import CfglabInputError

__all__ = [
    "VERDICT_RULE",
    "attainment",
    "compare_paired",
    "frontier_gap",
    "holm",
    "paired_difference",
    "verdict",
]

VERDICT_RULE = (
    "better / worse: the Holm-adjusted paired t-test p (over all schedules compared) is below"
    " {alpha:g} and the seed-paired mean difference is in the metric's good / bad direction;"
    " otherwise no detectable difference.  CI: {level:.0%} bootstrap percentile interval of the"
    " mean paired difference (unadjusted)."
)


def paired_difference(
    a, b, *, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> dict:
    """Mean of ``a − b`` over seeds, its bootstrap CI and the paired t-test p-value."""
    from scipy import stats

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # [seeds]
    if diff.ndim != 1 or len(diff) < 2 or not np.all(np.isfinite(diff)):
        raise CfglabInputError(f"need >= 2 finite paired values, got {diff.tolist()!r}")
    mean = float(diff.mean())
    if np.ptp(diff) == 0:  # degenerate: every seed agrees exactly
        return {"mean": mean, "ci": [mean, mean], "p": 0.0 if mean else 1.0, "n": len(diff)}
    boot = stats.bootstrap(
        (diff,), np.mean, confidence_level=level, n_resamples=n_resamples,
        method="percentile", random_state=np.random.default_rng(seed),
    )
    p = float(stats.ttest_1samp(diff, 0.0).pvalue)
    ci = boot.confidence_interval
    return {"mean": mean, "ci": [float(ci.low), float(ci.high)], "p": p, "n": len(diff)}


def holm(pvalues) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def verdict(mean: float, p_adjusted: float, *, alpha: float = 0.05, higher_is_better=True) -> str:
    """Three-way verdict of one comparison under :data:`VERDICT_RULE`."""
    if not p_adjusted < alpha or mean == 0 or math.isnan(mean):
        return "no detectable difference"
    return "better" if (mean > 0) == bool(higher_is_better) else "worse"


def compare_paired(
    pairs: dict, *, higher_is_better: bool = True, alpha: float = 0.05, level: float = 0.95
) -> dict:
    """``pairs``: label -> (a [seeds], b [seeds]); paired differences, Holm over labels, verdicts."""
    rows = {k: paired_difference(a, b, level=level) for k, (a, b) in pairs.items()}
    adjusted = holm([r["p"] for r in rows.values()]) if rows else []
    for (label, row), p_adj in zip(rows.items(), adjusted):
        row["p_holm"] = float(p_adj)
        row["verdict"] = verdict(
            row["mean"], p_adj, alpha=alpha, higher_is_better=higher_is_better
        )
    return rows


def attainment(sep, div, grid) -> np.ndarray:
    """Best diversity reachable at separability ≥ s, for each s in ``grid`` (NaN if none).

    The upper-right Pareto frontier of the points (sep, div) read as a step function, so a
    family is compared by its whole frontier, without interpolating between schedules.
    """
    sep, div, grid = (np.asarray(v, dtype=np.float64) for v in (sep, div, grid))
    ok = sep[None, :] >= grid[:, None]  # [G, P]
    best = np.where(ok, div[None, :], -np.inf).max(1)
    return np.where(np.isfinite(best), best, np.nan)


def frontier_gap(const: tuple, family: tuple, *, n_grid: int = 64) -> float:
    """Mean of family − constant attainment over their common separability range (one seed).

    ``const``, ``family``: (sep [P], div [P]).  NaN when the ranges do not overlap.
    """
    lo = max(np.min(const[0]), np.min(family[0]))
    hi = min(np.max(const[0]), np.max(family[0]))
    if not hi > lo:
        return math.nan
    grid = np.linspace(lo, hi, n_grid)
    return float(np.mean(attainment(*family, grid) - attainment(*const, grid)))
