"""Numerical check of the shrinkage theorem (docs/schedules.md): w(σ) ≥ 0 everywhere ⇒ Var ≤ σ².

Random non-negative schedules (piecewise-constant, linear / cosine ramps, intervals and the
paper's linear-in-t form) are pushed through the infinite-class theory, the DMFT of the
exponential regime (:mod:`cfglab.theory.dmft`) and, for a sample of them,
exact-score simulation.  The proof (a comparison argument on the variance ODE) is in
``docs/schedules.md``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from cfglab._validate import CfglabInputError, positive_int
from cfglab._validate import seed as check_seed
from cfglab.guidance.schedules import Cosine, Interval, Linear, PaperLinear, PiecewiseConstant, Schedule
from cfglab.lab import SimulationConfig, simulate
from cfglab.noise import sigma_from_t
from cfglab.theory.dmft import solve_dmft
from cfglab.theory.gaussian import solve_gaussian

__all__ = ["random_nonnegative_schedule", "random_nonnegative_schedules", "shrinkage_check"]

W_MAX = 6.0


def _piecewise(rng: np.random.Generator, T: float) -> Schedule:
    k = int(rng.integers(1, 6))
    edges = np.sort(rng.uniform(0.02, T, size=k))[::-1]  # OU times, decreasing
    sig = [sigma_from_t(float(t)) for t in edges]
    return PiecewiseConstant(tuple(rng.uniform(0, W_MAX, size=k + 1).round(4)), tuple(np.round(sig, 6)))


def _interval(rng: np.random.Generator, T: float) -> Schedule:
    lo_t, hi_t = np.sort(rng.uniform(0.0, T, size=2))
    return Interval(round(float(rng.uniform(0, W_MAX)), 4), round(sigma_from_t(float(lo_t)), 6),
                    round(sigma_from_t(float(hi_t)) + 1e-6, 6))


def _ramp(rng: np.random.Generator, T: float) -> Schedule:
    cls = Linear if rng.random() < 0.5 else Cosine
    start, end = rng.uniform(0, W_MAX, size=2).round(4)
    return cls(float(start), float(end), sigma_from_t(T))


def _paper_linear(rng: np.random.Generator, T: float) -> Schedule:
    return PaperLinear(round(float(rng.uniform(0, W_MAX / 2)), 4), round(float(rng.uniform(0, W_MAX / T)), 4))


KINDS: dict[str, Callable] = {"piecewise": _piecewise, "interval": _interval, "ramp": _ramp,
                              "paper_linear": _paper_linear}


def random_nonnegative_schedule(rng: np.random.Generator, T: float = 6.0) -> Schedule:
    """One random schedule with w(σ) ≥ 0 for all σ (kind drawn uniformly from :data:`KINDS`)."""
    kind = list(KINDS)[int(rng.integers(len(KINDS)))]
    return KINDS[kind](rng, T)


def random_nonnegative_schedules(n: int, seed: int, T: float = 6.0) -> list[Schedule]:
    """The ``n`` schedules of :func:`random_nonnegative_schedule` drawn from ``seed`` (the
    shrinkage check's, and the report's random cloud)."""
    rng = np.random.default_rng(seed)
    return [random_nonnegative_schedule(rng, T) for _ in range(positive_int("n", n))]


def _worst(rows: list[dict], key: str) -> dict | None:
    rows = [r for r in rows if r.get(key) is not None]
    return max(rows, key=lambda r: r[key]) if rows else None


def shrinkage_check(n: int = 500, *, seed: int = 0, sigma2: float = 0.5, s2: float = 1.0, T: float = 6.0,
                    alpha: float = 0.2, n_simulate: int = 6, sim_d: int = 32, sim_samples: int = 1000,
                    sim_steps: int = 200, progress: Callable[[int, int], None] | None = None) -> dict:
    """Largest final variance ratio over ``n`` random non-negative schedules (docs/schedules.md).

    Infinite-class theory for SDE and ODE (started from the exact noised marginal: the bound is
    ``1 + start_excess``, the O(s² e^{-2T}) width the probability flow carries over), the DMFT at ``alpha`` (d → ∞), and the exact-score lab (infinite-class
    ensemble, ODE sampler, ``sim_d``) for the first ``n_simulate`` schedules.
    """

    n, seed = positive_int("n", n), check_seed("seed", seed)
    if isinstance(n_simulate, bool) or not isinstance(n_simulate, int) or n_simulate < 0:
        raise CfglabInputError(f"n_simulate must be an integer >= 0, got {n_simulate!r}")
    dmft = solve_dmft
    rows = []
    for i, sched in enumerate(random_nonnegative_schedules(n, seed, T)):
        row = {"schedule": str(sched)}
        for sampler in ("sde", "ode"):
            p = solve_gaussian(sched, sigma2=sigma2, s2=s2, sampler=sampler, T=T, start="marginal", n_points=2)
            row[f"infinite_{sampler}"] = p.var_ratio
            if dmft is not None:
                row[f"dmft_{sampler}"] = dmft(alpha, sigma2=sigma2, s2=s2, schedule=sched, sampler=sampler,
                                              T=T, start="marginal").var_perp / sigma2
        if i < n_simulate:
            row["simulated_ode"] = _simulate(sched, sigma2, s2, T, sim_d, sim_samples, sim_steps, seed + i)
        rows.append(row)
        if progress is not None:
            progress(i + 1, n)
    # the unconditional noised start is wider than the conditional one by O(s² e^{-2T}); the
    # ODE carries that over (w = 0 ends at Γ_b(T)/Γ_a(T) ≈ 1 + s² e^{-2T}), the SDE forgets it
    g = lambda v: v * math.exp(-2 * T) + 1 - math.exp(-2 * T)  # noqa: E731
    excess = g(s2 + sigma2) / g(sigma2) - 1
    return _summary(rows, n, seed, alpha, dmft is not None, sim_d, sim_samples, excess)


def _simulate(sched, sigma2, s2, T, d, n_samples, steps, seed) -> float:
    cfg = SimulationConfig(d=d, infinite=True, sigma2=sigma2, s2=s2, schedule=str(sched), sampler="ode",
                           n_samples=n_samples, steps=steps, T=T, seed=seed, start="marginal")
    return simulate(cfg)["var_perp_ratio"]


def _summary(rows, n, seed, alpha, has_dmft, sim_d, sim_samples, start_excess) -> dict:
    keys = ["infinite_sde", "infinite_ode"] + (["dmft_sde", "dmft_ode"] if has_dmft else [])
    keys += ["simulated_ode"] if any("simulated_ode" in r for r in rows) else []
    out = {"n": n, "seed": seed, "alpha": alpha, "dmft_available": has_dmft}
    for key in keys:
        worst = _worst(rows, key)
        out[f"max_var_ratio_{key}"] = worst[key]
        out[f"worst_schedule_{key}"] = worst["schedule"]
    sims = [r["simulated_ode"] for r in rows if "simulated_ode" in r]
    if sims:  # a finite sample: its ratio fluctuates by ~sqrt(2/(N(d−1))) around the theory
        out["simulated_standard_error"] = max(sims) * math.sqrt(2 / (sim_samples * (sim_d - 1)))
        out["n_simulated"] = len(sims)
    theory = [out[f"max_var_ratio_{k}"] for k in keys if not k.startswith("simulated")]
    out["max_var_ratio_theory"] = max(theory)
    out["start_excess"] = start_excess
    out["holds"] = bool(max(theory) <= 1 + start_excess + 1e-9)
    return out
