"""Exact-score simulations at points of the window phase diagram (docs/schedules.md).

:func:`simulate_checks` runs a few (α/α_c, schedule) points of :mod:`cfglab.theory.windows`
with exact scores and compares them with the finite-d DMFT conditioned on each seed's target
norm (same sampler grid) or, in the infinite-class limit, with the discrete sampler's exact
moments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cfglab.theory.windows import INF, STANDARD, WindowGrid

__all__ = ["SimCheck", "STANDARD_CHECKS", "simulate_checks"]


@dataclass(frozen=True)
class SimCheck:
    """One simulated point: ``ratio`` (α/α_c or INF), schedule, dimension, sizes."""

    ratio: object
    schedule: str
    d: int
    n_samples: int = 2000
    steps: int = 150
    seeds: int = 3
    sampler: str = "sde"


# the standard checks (SDE): the base, the late window (σ_switch = 0.8, w_neg = −1) and a weak window on
# either side of the predicted boundary σ_res, at α/α_c = 0.3, 0.7, 1.2 and in the infinite-class limit;
# d is as large as K = e^{αd} allows on a CPU (K ≤ 1.1e4)
STANDARD_CHECKS = (
    *(SimCheck(0.3, s, 40) for s in ("constant:w=2", "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8",
                                     "negative_window:w_pos=2,w_neg=-0.2,sigma_switch=3",
                                     "negative_window:w_pos=2,w_neg=-0.2,sigma_switch=4.5")),
    *(SimCheck(0.7, s, 20, n_samples=1000) for s in ("constant:w=2", "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8",
                                                     "negative_window:w_pos=2,w_neg=-0.2,sigma_switch=3")),
    *(SimCheck(1.2, s, 14, n_samples=1000) for s in ("constant:w=2", "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8",
                                                     "negative_window:w_pos=2,w_neg=-0.2,sigma_switch=1.5")),
    *(SimCheck(INF, s, 40) for s in ("constant:w=2", "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8")),
)


def _sim_one(c: SimCheck, seed: int, g: WindowGrid, a_c: float) -> dict:
    """Simulated and predicted (same sampler grid) var⊥/σ² and m for one seed."""
    if c.ratio == INF:
        from cfglab.lab.simulate import SimulationConfig, simulate
        from cfglab.theory.gaussian import solve_discrete

        cfg = SimulationConfig(d=c.d, infinite=True, schedule=c.schedule, sampler=c.sampler, n_samples=c.n_samples,
                               steps=c.steps, T=3.0, start="marginal", seed=seed, sigma2=g.sigma2, s2=g.s2)
        sim = simulate(cfg)
        pred = solve_discrete(c.schedule, c.steps, sigma2=g.sigma2, s2=g.s2, sampler=c.sampler, T=3.0, start="marginal")
        return {"sim_v": sim["var_perp_ratio"], "pred_v": float(pred.var_ratio), "sim_m": sim["mean_overlap"],
                "pred_m": float(pred.mean_overlap), "class_accuracy": 1.0, "frozen": False}
    from cfglab.experiments.validate import run_point

    r = run_point(dict(d=c.d, alpha=c.ratio * a_c, schedule=c.schedule, seed=seed, n_samples=c.n_samples,
                       steps=c.steps, T=3.0, sampler=c.sampler, sigma2=g.sigma2, s2=g.s2))
    return {"sim_v": r["sim_var_perp"] / g.sigma2, "pred_v": r["fin_var_perp"] / g.sigma2,
            "pred_v_inf": r["inf_var_perp"] / g.sigma2, "sim_m": r["sim_mean_overlap"], "pred_m": r["fin_mean_overlap"],
            "class_accuracy": r["class_accuracy"], "K": r["K"]}


def _summary(rows: list[dict]) -> dict:
    """Seed means, the s.e. of sim − prediction, and the agreement verdict (|mean gap| ≤ 2 s.e.)."""
    out = {"seeds": len(rows)}
    for q in ("v", "m"):
        gaps = np.array([r[f"sim_{q}"] - r[f"pred_{q}"] for r in rows])
        se = float(gaps.std(ddof=1) / math.sqrt(len(gaps))) if len(gaps) > 1 else math.nan
        out.update({f"sim_{q}": float(np.mean([r[f"sim_{q}"] for r in rows])),
                    f"pred_{q}": float(np.mean([r[f"pred_{q}"] for r in rows])), f"gap_{q}": float(gaps.mean()),
                    f"se_{q}": se, f"agrees_{q}": None if not se > 0 else bool(abs(gaps.mean()) <= 2 * se)})
    out["class_accuracy"] = float(np.mean([r["class_accuracy"] for r in rows]))
    if "pred_v_inf" in rows[0]:
        out["pred_v_d_infinite"] = float(np.mean([r["pred_v_inf"] for r in rows]))
        out["K"] = rows[0]["K"]
    return out


def simulate_checks(checks: list[SimCheck], g: WindowGrid = STANDARD, progress=None) -> list[dict]:
    """Exact-score simulations of ``checks`` against the DMFT (finite d, conditioned on each seed's target
    norm, same sampler grid; T = 3 from the exact marginal) or, for INF, the discrete sampler's exact moments."""
    from cfglab.theory.transition import alpha_critical

    a_c = alpha_critical(g.sigma2, g.s2)
    out = []
    for i, c in enumerate(checks):
        rows = [_sim_one(c, s, g, a_c) for s in range(c.seeds)]
        out.append({**asdict(c), "ratio": c.ratio if c.ratio == INF else float(c.ratio), **_summary(rows)})
        if progress is not None:
            progress(i + 1, len(checks))
    return out
