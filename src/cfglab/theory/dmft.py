"""Mean-field (DMFT) theory of CFG-guided dynamics with K = e^{αd} classes (docs/theory.md).

Order parameters of the reverse process (τ = T − t, SDE k = 2, ODE k = 1): the overlap
``m = x·μ_c/|μ_c|²``, the per-coordinate variances ``v⊥`` (orthogonal to μ_c) and ``v∥``,
and the posterior phase.  While the non-target classes dominate (ρ = 1 − π_c = 1) their
posterior mean is the θ-tilted Gaussian mean ``M_θ x`` (``M_θ = θ a s²/(1 + θ r)``, θ = 1
liquid, θ* frozen), so the guided score is linear,

.. math:: s_w = -\\lambda x + c\\,\\mu_c,\\quad
          \\lambda = \\frac{1}{\\Gamma} + w\\rho\\frac{e^{-t} M_\\theta}{\\Gamma},\\quad
          c = \\frac{e^{-t}}{\\Gamma}(1 + w\\rho),

and ``dm/dτ = (1 − kλ) m + k c``, ``dv/dτ = 2(1 − kλ) v + 2·[SDE]``.  The target takes
over (ρ → 0, ``s_u = s_c``, no CFG force) when its log-weight per dimension
``e_c = a m s² − b s²/2`` exceeds the REM free energy of the non-targets evaluated at
``q = m² s² + v⊥`` on the *guided* trajectory.

Finite d (``d=D``): the per-sample log-odds is ``ℓ = d (e_c − f) + √d ξ`` with Gaussian ξ
(fluctuations of ``x·μ_c`` and ``|x⊥|²``), so the mean weight is
``π̄ = E σ(ℓ)`` and, by Stein's lemma, the switch couples to the parallel fluctuation.  The
mean equation carries the same coupling, ``E[ρ y] = ρ̄ m + Cov(ρ, y)``: the term
``−k w e^{−t} M Cov(ρ, y)/Γ`` with ``Cov(ρ, y) = −E σ'(ℓ) (g_y v∥ + g⊥ C)/s_c`` (O(1/d) in m).
As d → ∞ this coupling becomes a kick of ``v∥`` at the switch (see ``docs/theory.md``).

Frozen phase: when the non-target REM freezes (θ* < 1) while it still dominates, the
condensed classes' random force is dropped (only its mean ``M_θ x`` is kept).  Results that
pass through that region are flagged (``frozen_before_switch``, ``approximations``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.guidance.schedules import as_schedule
from cfglab.noise import exponential_K
from cfglab.theory.rem import gamma, rem_free_energy

__all__ = ["DMFTPrediction", "solve_dmft", "kl_per_dim_prediction", "half_time", "FROZEN_NOTE"]

FROZEN_NOTE = ("frozen phase: the non-target REM froze before the target took over; the condensed classes' "
               "random force is dropped (uncontrolled approximation)")

N_GRID = 3000  # Heun steps on [0, T] for the continuous-time solution
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(48)  # E over N(0, 1)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class DMFTPrediction:
    """Final order parameters of the guided dynamics and their trajectories (docs/theory.md, docs/sweeps.md)."""

    mean_overlap: float
    var_perp: float
    var_parallel: float
    kl_per_dim: float
    t_switch: float | None  # OU time where the target takes over (None: never)
    trajectory: dict = field(repr=False)  # arrays over the grid, t decreasing from T to 0
    frozen_before_switch: bool = False  # the non-target REM froze while it still dominated

    @property
    def approximations(self) -> list[str]:
        """Approximations beyond the DMFT closure that this result rests on (empty: none)."""
        return [FROZEN_NOTE] if self.frozen_before_switch else []

    def to_dict(self, trajectory: bool = False) -> dict:
        out = {"mean_overlap": self.mean_overlap, "var_perp": self.var_perp, "var_parallel": self.var_parallel,
               "kl_per_dim": self.kl_per_dim, "t_switch": self.t_switch,
               "frozen_before_switch": self.frozen_before_switch, "approximations": self.approximations}
        if trajectory:
            out["trajectory"] = {k: np.asarray(v).tolist() for k, v in self.trajectory.items()}
        return out


def kl_per_dim_prediction(m: float, v_perp: float, v_par: float, sigma2: float, s2: float, d: int | None) -> float:
    """KL(N(mμ_c, diag(v∥, v⊥…)) ‖ N(μ_c, σ² I))/d; d = None gives the d → ∞ limit (v∥ drops out)."""
    def h(v: float) -> float:
        return v / sigma2 - 1 - math.log(v / sigma2)

    spread = h(v_perp) if d is None else ((d - 1) * h(v_perp) + h(v_par)) / d
    return 0.5 * (spread + (1 - m) ** 2 * s2 / sigma2)


@dataclass(frozen=True)
class _Setup:
    alpha_eff: float  # log(K − 1)/d at finite d, α in the limit
    sigma2: float
    s2: float
    k: int  # 2 for the SDE, 1 for the ODE
    d: int | None
    st2: float  # |μ_c|²/d of the target (s² unless given)


@dataclass
class _Local:
    """Everything the drift needs at one (t, state)."""

    delta: float  # e_c − f (per dimension)
    phase: str
    M: float  # θ-tilted mean coefficient M_θ
    a: float
    G: float
    g_y: float
    g_perp: float


def _local(t: float, m: float, v_perp: float, S: _Setup) -> _Local:
    u = math.exp(-2 * t)
    G = gamma(S.sigma2, t)
    a, r = math.exp(-t) / G, u * S.s2 / G
    q = m * m * S.st2 + v_perp
    rem = rem_free_energy(S.alpha_eff, r, a * a * S.s2 * q)
    e_c = a * m * S.st2 - 0.5 * u * S.st2 / G
    M = rem.theta * a * S.s2 / (1 + rem.theta * r)
    return _Local(e_c - rem.free_energy, rem.phase, M, a, G, a * math.sqrt(S.st2) * (1 - M * m),
                  -a * M * v_perp / math.sqrt(2))


def _switch_stats(loc: _Local, v_par: float, C: float, d: int) -> tuple[float, float]:
    """``(π̄, E σ'(ℓ))`` for ``ℓ = d Δ + √d ξ``, ``Var ξ = g_y² v∥ + 2 g_y g⊥ C + g⊥²``."""
    var_xi = max(loc.g_y**2 * v_par + 2 * loc.g_y * loc.g_perp * C + loc.g_perp**2, 0.0)
    ell = d * loc.delta + math.sqrt(d * var_xi) * _GH_X
    pi = 0.5 * (1 + np.tanh(0.5 * ell))  # stable logistic
    return float(_GH_W @ pi), float(_GH_W @ (pi * (1 - pi)))


@dataclass
class _Coeffs:
    """Linear coefficients of the moment dynamics at one (t, state)."""

    lin: float  # 1 − kλ, the linear drift of every coordinate
    force: float  # k c, the drift along μ_c in overlap units
    couple_y: float  # Stein coupling of δy to its own switch fluctuation
    couple_perp: float  # ... and to the |x⊥|² fluctuation ζ
    noise: float  # 2 for the SDE, 0 for the ODE
    loc: _Local
    pi: float  # mean target weight π̄
    J: float  # m-drift jump between ρ = 1 and ρ = 0
    stein_m: float = 0.0  # −k w e^{−t} M Cov(ρ, y)/Γ: the mean drift's covariance term (finite d)


def _coeffs(t: float, y: np.ndarray, w: float, S: _Setup, rho_hard: float | None) -> _Coeffs:
    m, vp, vq, C = y
    loc = _local(t, m, vp, S)
    if rho_hard is None:
        pi, dpi = _switch_stats(loc, vq, C, S.d)
    else:
        pi, dpi = 1 - rho_hard, 0.0
    rho, k = 1 - pi, S.k
    lam = 1 / loc.G + w * rho * math.exp(-t) * loc.M / loc.G
    c = math.exp(-t) / loc.G * (1 + w * rho)
    J = k * w * math.exp(-t) / loc.G * (1 - loc.M * m)
    couple = math.sqrt(S.st2) * (S.d or 0) * J * dpi
    # E[ρ y] = ρ̄ m + Cov(ρ, y), Cov(ρ, y) = −E σ'(ℓ) (g_y v∥ + g⊥ C)/s_c by Stein's lemma (docs/theory.md)
    cov_rho_y = -dpi * (loc.g_y * vq + loc.g_perp * C) / math.sqrt(S.st2)
    stein_m = -k * w * math.exp(-t) * loc.M / loc.G * cov_rho_y
    return _Coeffs(1 - k * lam, k * c, couple * loc.g_y, couple * loc.g_perp, 2.0 if k == 2 else 0.0,
                   loc, pi, J, stein_m)


def _rhs(co: _Coeffs, y: np.ndarray) -> np.ndarray:
    """d/dτ of the state ``[m, v⊥, v∥, C]`` (C = Cov(δy, ζ), ζ the |x⊥|² fluctuation)."""
    m, vp, vq, C = y
    lin_par = co.lin - co.couple_y
    return np.array([co.lin * m + co.force + co.stein_m, 2 * co.lin * vp + co.noise,
                     2 * lin_par * vq - 2 * co.couple_perp * C + co.noise, lin_par * C - co.couple_perp])


def _em_map(co: _Coeffs, y: np.ndarray, h: float) -> np.ndarray:
    """Exact moment map of one Euler–Maruyama step ``x' = x + h f(x) + √(2h) z`` (the lab's SDE sampler)."""
    m, vp, vq, C = y
    beta, gam = 1 + h * co.lin, 1 + h * (co.lin - co.couple_y)
    kick = -h * co.couple_perp
    return np.array([m + h * (co.lin * m + co.force + co.stein_m), beta**2 * vp + 2 * h,
                     gam**2 * vq + 2 * gam * kick * C + kick**2 + 2 * h, gam * C + kick])


def _step(t: float, t_next: float, y: np.ndarray, w: float, w_next: float, S: _Setup, rho_hard, scheme: str):
    """One step in τ from t to t_next: ``"em"`` (exact EM moments) or ``"heun"`` on the moment ODE."""
    h = t - t_next
    co = _coeffs(t, y, w, S, rho_hard)
    if scheme == "em":
        return _em_map(co, y, h), co
    d1 = _rhs(co, y)
    pred = y + h * d1
    d2 = _rhs(_coeffs(t_next, pred, w_next, S, rho_hard), pred)
    return y + 0.5 * h * (d1 + d2), co


def _kick(y: np.ndarray, co: _Coeffs, delta_rate: float, s2: float) -> np.ndarray:
    """d → ∞ jump of (v∥, C) when the switch sweeps through the parallel fluctuations.

    A sample switches when ``ξ = g_y δy + g⊥ ζ`` crosses ``−√d Δ``; its delay changes δy by
    ``−κ ξ``, ``κ = s J / (dΔ/dτ)`` (J: jump of the m-drift), independent of d.
    """
    if delta_rate <= 0:
        return y
    kappa = math.sqrt(s2) * co.J / delta_rate
    m, vp, vq, C = y
    gam, kick = 1 - kappa * co.loc.g_y, -kappa * co.loc.g_perp
    return np.array([m, vp, gam**2 * vq + 2 * gam * kick * C + kick**2, gam * C + kick])


def _initial(start: str, T: float, sigma2: float, s2: float) -> np.ndarray:
    if start == "noise":  # x_T ~ N(0, I)
        return np.array([0.0, 1.0, 1.0, 0.0])
    if start == "marginal":  # x_T = e^{-T} μ_k + √Γ z, k a random (non-target) class
        v = gamma(sigma2, T) + math.exp(-2 * T) * s2
        return np.array([0.0, v, v, 0.0])
    raise CfglabInputError(f"unknown start {start!r}; choose noise or marginal")


def _integrate(grid: np.ndarray, ws: np.ndarray, y: np.ndarray, S: _Setup, scheme: str):
    """March the state over ``grid`` (t decreasing); hard switch with a kick when ``S.d`` is None."""
    rows, t_switch = [], None
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        rho = None
        if S.d is None:
            rho = 1.0 if _local(t, y[0], y[1], S).delta < 0 else 0.0
        y_new, co = _step(t, t_next, y, ws[i], ws[i + 1], S, rho, scheme)
        _check_variances(y_new[1:3], t_next)
        rows.append(_row(t, ws[i], y, co, S))
        if rho == 1.0:
            delta_new = _local(t_next, y_new[0], y_new[1], S).delta
            if delta_new >= 0:
                frac = -co.loc.delta / (delta_new - co.loc.delta)
                t_mid = t - frac * (t - t_next)
                if scheme == "heun" and 0 < frac < 1:  # finish the step after the switch
                    y_mid, _ = _step(t, t_mid, y, ws[i], ws[i], S, 1.0, scheme)
                    y_mid = _kick(y_mid, co, (delta_new - co.loc.delta) / (t - t_next), S.st2)
                    y_new, _ = _step(t_mid, t_next, y_mid, ws[i], ws[i + 1], S, 0.0, scheme)
                else:
                    y_new = _kick(y_new, co, (delta_new - co.loc.delta) / (t - t_next), S.st2)
                t_switch = t_mid if t_switch is None else t_switch
        y = y_new
    co = _coeffs(grid[-1], y, ws[-1], S, None if S.d is not None else float(_local(grid[-1], y[0], y[1], S).delta < 0))
    rows.append(_row(grid[-1], ws[-1], y, co, S))
    return y, rows, t_switch


_DIVERGED = "the DMFT solution diverged{where}; use more steps or a milder schedule"


def _check_variances(v: np.ndarray, t: float) -> None:
    """Variances ``v`` must stay positive and finite: a step too coarse for the schedule breaks the moment map."""
    if not all(0 < x < math.inf for x in v.tolist()):  # also False for NaN; per step, so plain floats
        raise CfglabInputError(_DIVERGED.format(where=f" at t = {t:.4g} (a variance left (0, inf))"))


def _integrate_or_diverge(integrate, *args):
    """``integrate(*args)`` with float overflow raised, and reported as a one-line input error.

    An extreme weight or a grid too coarse for it makes the order parameters overflow inside a
    step (before :func:`_check_variances` sees the step's end).
    """
    try:
        with np.errstate(over="raise"):
            return integrate(*args)
    except (FloatingPointError, OverflowError):
        raise CfglabInputError(_DIVERGED.format(where=" (an order parameter overflowed)")) from None


def _row(t: float, w: float, y: np.ndarray, co: _Coeffs, S: _Setup) -> tuple:
    m, vp, vq, _ = y
    loc = co.loc
    force = abs(w) * (1 - co.pi) * math.exp(-t) / loc.G * math.sqrt(S.st2 * (1 - loc.M * m) ** 2 + loc.M**2 * vp)
    return (t, w, m, vp, vq, co.pi, loc.delta, loc.phase == "frozen", force)


def half_time(ts: np.ndarray, pi: np.ndarray) -> float | None:
    """First OU time (from T downwards) where π̄ reaches 1/2, linearly interpolated."""
    above = np.nonzero(pi >= 0.5)[0]
    if len(above) == 0:
        return None
    j = above[0]
    if j == 0:
        return float(ts[0])
    f = (0.5 - pi[j - 1]) / (pi[j] - pi[j - 1])
    return float(ts[j - 1] + f * (ts[j] - ts[j - 1]))


def solve_dmft(alpha: float, *, sigma2: float = 0.5, s2: float = 1.0, schedule="constant:w=0", sampler: str = "sde",
               T: float = 6.0, d: int | None = None, steps: int | None = None,
               start: str = "noise", target_s2: float | None = None) -> DMFTPrediction:
    """Order parameters of CFG-guided sampling with K = e^{αd} classes (arXiv 2602.00716 §3; docs/theory.md).

    Parameters
    ----------
    alpha : rate, K = e^{αd} (> 0).
    schedule : guidance schedule w(σ) (string, number or :class:`~cfglab.Schedule`).
    sampler : ``"sde"`` (reverse SDE) or ``"ode"`` (probability flow).
    d : None for d → ∞ (hard switch); an int for the finite-d variant (smooth switch).
    steps : None solves the continuous-time equations (Heun, ``N_GRID`` steps); an int gives
        the exact moment map of the lab's sampler on its grid (Euler–Maruyama / Heun), so the
        comparison with simulation carries no discretisation error.
    start : ``"noise"`` (x_T ~ N(0, I)) or ``"marginal"``, as in ``SimulationConfig``.
    target_s2 : ``|μ_c|²/d`` of a given target mean (default s²): conditions the prediction on
        the one drawn target, whose norm fluctuates by ``s² sqrt(2/d)`` between seeds.
    """
    alpha, sigma2, s2, T = positive("alpha", alpha), positive("sigma2", sigma2), positive("s2", s2), positive("T", T)
    if sampler not in ("sde", "ode"):
        raise CfglabInputError(f"unknown sampler {sampler!r}; choose sde or ode")
    alpha_eff = alpha
    if d is not None:
        d = positive_int("d", d)
        if alpha * d < 40:  # beyond, log(K − 1)/d = α to double precision
            K = exponential_K(alpha, d)
            if K < 2:
                raise CfglabInputError(f"K = ceil(e^(alpha d)) = {K} at alpha={alpha}, d={d}: no non-target class")
            alpha_eff = math.log(K - 1) / d
    n = N_GRID if steps is None else positive_int("steps", steps)
    scheme = "em" if (steps is not None and sampler == "sde") else "heun"
    grid = np.linspace(T, 0.0, n + 1)
    sched = as_schedule(schedule)
    ws = sched.weight(torch.as_tensor(np.sqrt(np.expm1(2 * grid)), dtype=torch.float64)).numpy()
    st2 = s2 if target_s2 is None else positive("target_s2", target_s2)
    S = _Setup(alpha_eff, sigma2, s2, 2 if sampler == "sde" else 1, d, st2)
    y, rows, t_switch = _integrate_or_diverge(_integrate, grid, ws, _initial(start, T, sigma2, s2), S, scheme)
    if not np.all(np.isfinite(y)) or y[1] <= 0 or y[2] <= 0:
        raise CfglabInputError("the DMFT solution diverged; use a milder schedule")
    cols = list(zip(*rows))
    traj = {name: np.asarray(col, dtype=float) for name, col in
            zip(("t", "w", "m", "v_perp", "v_parallel", "pi_target", "delta", "frozen", "cfg_force"), cols)}
    traj["sigma"] = np.sqrt(np.expm1(2 * traj["t"]))
    if d is not None:
        t_switch = half_time(traj["t"], traj["pi_target"])
    frozen_pre = bool(np.any((traj["frozen"] > 0) & (traj["pi_target"] < 0.5)))
    kl = kl_per_dim_prediction(y[0], y[1], y[2], sigma2, st2, d)
    t_switch = None if t_switch is None else float(t_switch)
    return DMFTPrediction(float(y[0]), float(y[1]), float(y[2]), float(kl), t_switch, traj, frozen_pre)
