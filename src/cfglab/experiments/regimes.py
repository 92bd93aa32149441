"""The paper's three regime claims as reproducible numbers (arXiv 2602.00716, abstract; docs/theory.md).

(i) exponential regime K = e^{αd}: the d → ∞ distortion is O(1) and grows with α (DMFT);
(ii) fixed K: the distortion of exact-score simulations decays as d grows (the finite-d
DMFT at ``α = log K / d`` gives the theory line);
(iii) infinite-class limit: the distortion does not decay with d (simulation vs the
Gaussian theory).

Each function returns plain dicts of numbers; nothing here asserts a claim: callers (tests,
the report) read the numbers.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from cfglab._validate import positive, positive_int
from cfglab.lab.simulate import SimulationConfig, simulate
from cfglab.theory.dmft import solve_dmft

__all__ = ["exponential_regime", "fixed_k_regime", "infinite_class_regime"]


def exponential_regime(alphas: Iterable[float], *, schedule="constant:w=2", sampler: str = "sde",
                       sigma2: float = 0.5, s2: float = 1.0, T: float = 6.0) -> list[dict]:
    """Claim (i): DMFT (d → ∞) distortion against α for one schedule."""

    rows = []
    for alpha in alphas:
        p = solve_dmft(alpha, sigma2=sigma2, s2=s2, schedule=schedule, sampler=sampler, T=T)
        rows.append({"alpha": float(alpha), "mean_overlap": p.mean_overlap, "var_perp_ratio": p.var_perp / sigma2,
                     "var_parallel_ratio": p.var_parallel / sigma2, "kl_per_dim": p.kl_per_dim,
                     "t_switch": p.t_switch})
    return rows


def _simulate_mean(cfgs: list) -> dict:
    runs = [simulate(c) for c in cfgs]
    out = {}
    for key in ("mean_overlap", "var_perp_ratio", "var_parallel_ratio", "kl_per_dim"):
        vals = np.array([r[key] for r in runs], dtype=float)
        out[key] = float(vals.mean())
        out[f"se_{key}"] = float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else None
    n, d = cfgs[0].n_samples, cfgs[0].d
    out["kl_bias"] = (d + 1) / (4 * n)  # upward bias of the plug-in KL per dimension
    return out


def fixed_k_regime(K: int, dims: Iterable[int], *, schedule="constant:w=2", sampler: str = "sde", seeds: int = 3,
                   n_samples: int = 1000, steps: int = 150, T: float = 3.0, start: str = "marginal",
                   sigma2: float = 0.5, s2: float = 1.0, theory: bool = True) -> list[dict]:
    """Claim (ii): simulated distortion at fixed K against d, with the finite-d DMFT at α = log K/d."""

    K = positive_int("K", K)
    rows = []
    for d in dims:
        cfgs = [SimulationConfig(d=d, K=K, sigma2=sigma2, s2=s2, schedule=str(schedule), sampler=sampler,
                                 n_samples=n_samples, steps=steps, T=T, start=start, seed=s) for s in range(seeds)]
        row = {"K": K, "d": int(d), **_simulate_mean(cfgs)}
        if theory and K >= 2:
            p = solve_dmft(math.log(K) / d, sigma2=sigma2, s2=s2, schedule=schedule, sampler=sampler, T=T,
                           steps=steps, start=start)
            row.update(theory_mean_overlap=p.mean_overlap, theory_kl_per_dim=p.kl_per_dim)
        rows.append(row)
    return rows


def infinite_class_regime(dims: Iterable[int], *, schedule="constant:w=2", sampler: str = "sde", seeds: int = 3,
                          n_samples: int = 1000, steps: int = 150, T: float = 3.0, start: str = "marginal",
                          sigma2: float = 0.5, s2: float = 1.0) -> list[dict]:
    """Claim (iii): simulated distortion in the infinite-class limit against d (flat in d)."""

    positive("sigma2", sigma2)
    rows = []
    for d in dims:
        cfgs = [SimulationConfig(d=d, infinite=True, sigma2=sigma2, s2=s2, schedule=str(schedule), sampler=sampler,
                                 n_samples=n_samples, steps=steps, T=T, start=start, seed=s) for s in range(seeds)]
        rows.append({"d": int(d), **_simulate_mean(cfgs)})
    return rows
