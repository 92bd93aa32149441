"""DMFT of CFG-guided dynamics with per-direction spectra (docs/theory.md, "DMFT with per-direction spectra").

Classes ``N(μ_k, diag(σ_i²))`` with means ``μ_k,i ~ N(0, s_i²)`` in a shared eigenbasis,
K = e^{αd}.  Under the OU process class k is ``N(e^{-t} μ_k, diag(Γ_i))``,
``Γ_i = e^{-2t} σ_i² + 1 − e^{-2t}``.  Per direction (``a_i = e^{-t}/Γ_i``,
``r_i = e^{-2t} s_i²/Γ_i``) the non-target posterior mean is the θ-tilted Gaussian mean
``M_θ,i x_i``, ``M_θ,i = θ a_i s_i²/(1 + θ r_i)``, so while the non-targets dominate (ρ = 1)
the guided score is linear direction by direction,

.. math:: s_{w,i} = -\\lambda_i x_i + c_i \\mu_{c,i},\\quad
          \\lambda_i = \\frac{1}{\\Gamma_i} + w\\rho\\frac{e^{-t} M_{\\theta,i}}{\\Gamma_i},\\quad
          c_i = \\frac{e^{-t}}{\\Gamma_i}(1 + w\\rho),

with the state ``m_i`` (overlap, ``E x_i = m_i μ_c,i``) and ``v_i`` (variance) per direction:
``dm_i/dτ = (1 − kλ_i) m_i + k c_i``, ``dv_i/dτ = 2(1 − kλ_i) v_i + 2·[SDE]``.  The REM of
the non-targets has the per-direction cumulant
``φ(θ) = (1/d) Σ_i [θ² a_i² s_i² q_i/(2(1 + θ r_i)) − ½ log(1 + θ r_i)]``,
``q_i = m_i² s_i² + v_i`` (:func:`cfglab.theory.rem.rem_free_energy` with weights), and the
target's log-weight per dimension is ``e_c = (1/d) Σ_i (a_i m_i s_i² − r_i/2)``.

**Switch.**  d → ∞ (default): hard — the target takes over (ρ: 1 → 0, ``s_u = s_c``, no
CFG force) when ``Δ = e_c − f ≥ 0``, the crossing step split at the interpolated zero (as
:func:`cfglab.theory.dmft.solve_dmft` with ``d=None``; ``n_classes`` = K only sets the rate
``log(K − 1)/d``).  ``finite_d=True``: the smooth switch of ``solve_dmft(d=D)``,
``π̄ = E σ(dΔ + √d ξ)``.  The log-odds' linear fluctuation lies along
``ê ∝ (a_i μ_c,i (1 − M_θ,i m_i))_i`` — the direction of the CFG drift's jump — with
``g_y² = (1/d) Σ_i a_i² s_i² (1 − M_θ,i m_i)²``, and its quadratic one has
``g⊥² = (1/2d) Σ_i a_i² M_θ,i² v_i²``; the Stein coupling acts along ê, so ``δy = ê·δx`` and
``C = Cov(δy, ζ)`` close as dmft's ``v∥``, C, with ``Var δy = Σ_i ê_i² v_i + X`` (X the
excess the coupling builds).  Closure approximation: ê is held fixed over the switch (it
rotates on O(1) times in t when the spectra differ, the switch lasts O(1/√d)); exact for
uniform spectra and for a block without class information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.guidance.schedules import as_schedule
from cfglab.noise import exponential_K
from cfglab.theory.dmft import FROZEN_NOTE, N_GRID, _check_variances, _switch_stats, half_time, _integrate_or_diverge
from cfglab.theory.rem import rem_free_energy

__all__ = ["SpectralDMFTPrediction", "solve_dmft_spectral"]


@dataclass(frozen=True)
class SpectralDMFTPrediction:
    """Final per-direction order parameters of the guided dynamics and their trajectories."""

    mean_overlap: float  # x·μ_c/|μ_c|² = Σ s_i² m_i / Σ s_i²
    var_ratio: float  # mean over directions of v_i/σ_i² (what latent_predict compares)
    var_ratio_per_direction: np.ndarray = field(repr=False)  # [d] v_i/σ_i²
    overlap_per_direction: np.ndarray = field(repr=False)  # [d] m_i (NaN where s_i² = 0)
    t_switch: float | None = None  # OU time where the target takes over (None: never)
    trajectory: dict = field(default_factory=dict, repr=False)  # arrays over the grid, t from T to 0
    frozen_before_switch: bool = False

    @property
    def approximations(self) -> list[str]:
        """Approximations beyond the DMFT closure that this result rests on (empty: none)."""
        return [FROZEN_NOTE] if self.frozen_before_switch else []

    def to_dict(self, trajectory: bool = False) -> dict:
        out = {"mean_overlap": self.mean_overlap, "var_ratio": self.var_ratio,
               "var_ratio_per_direction": self.var_ratio_per_direction.tolist(),
               "overlap_per_direction": [None if math.isnan(m) else m for m in self.overlap_per_direction],
               "t_switch": self.t_switch, "frozen_before_switch": self.frozen_before_switch,
               "approximations": self.approximations}
        if trajectory:
            out["trajectory"] = {k: np.asarray(v).tolist() for k, v in self.trajectory.items()}
        return out


@dataclass(frozen=True)
class _Spectra:
    """Distinct (σ_i², s_i²) groups [G] with their fractions of the d directions."""

    sigma2: np.ndarray  # [G]
    s2: np.ndarray  # [G]
    frac: np.ndarray  # [G], sums to 1
    inverse: np.ndarray  # [d] group of each direction
    alpha: float  # non-target rate
    k: int  # 2 SDE, 1 ODE
    d: int | None  # finite d: smooth switch; None: hard switch


def _spectra(within, between) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated spectra, grouped: ``(σ² [G], s² [G], frac [G], inverse [d])``."""
    w, b = (np.asarray(x, dtype=np.float64) for x in (within, between))
    if w.ndim != 1 or w.shape != b.shape or len(w) == 0:
        raise CfglabInputError(f"within and between must be [d] spectra of one length, got shapes {w.shape}, {b.shape}")
    if not (np.isfinite(w).all() and np.isfinite(b).all()) or (w <= 0).any() or (b < 0).any():
        raise CfglabInputError("within spectrum must be finite and > 0, between spectrum finite and >= 0")
    if not (b > 0).any():
        raise CfglabInputError("between spectrum is 0 in every direction: no class information")
    pairs, inverse, counts = np.unique(np.stack([w, b], 1), axis=0, return_inverse=True, return_counts=True)
    return pairs[:, 0], pairs[:, 1], counts / len(w), inverse.reshape(-1)


@dataclass
class _Local:
    """Everything the drift needs at one (t, m, v)."""

    delta: float  # e_c − f per dimension
    frozen: bool
    M: np.ndarray  # [G] θ-tilted mean coefficients
    G: np.ndarray  # [G] Γ_i
    a: np.ndarray  # [G] e^{-t}/Γ_i
    g_y: float  # |∂ℓ/∂x|/√d: the log-odds' linear fluctuation is √d g_y δy, δy = ê·δx
    g_perp: float  # its quadratic (|x|²-type) fluctuation, −(½ Σ_i frac a_i² M_i² v_i²)^{1/2}
    e2: np.ndarray  # [G] ê_i² summed over each group (sums to 1): ê ∝ (a_i μ_c,i (1 − M_i m_i))_i


def _local(t: float, m: np.ndarray, v: np.ndarray, S: _Spectra) -> _Local:
    u = math.exp(-2 * t)
    G = S.sigma2 * u + 1 - u  # [G]
    a, r = math.exp(-t) / G, u * S.s2 / G
    q = m * m * S.s2 + v
    rem = rem_free_energy(S.alpha, r, a * a * S.s2 * q, weights=S.frac)
    e_c = float(S.frac @ (a * m * S.s2 - 0.5 * r))
    M = rem.theta * a * S.s2 / (1 + rem.theta * r)
    grad2 = S.frac * a * a * S.s2 * (1 - M * m) ** 2  # [G]
    g_y2 = float(grad2.sum())
    e2 = grad2 / g_y2 if g_y2 > 0 else S.frac
    g_perp = -math.sqrt(0.5 * float(S.frac @ (a * M * v) ** 2))
    return _Local(e_c - rem.free_energy, rem.phase == "frozen", M, G, a, math.sqrt(g_y2), g_perp, e2)


def _parts(y: np.ndarray, n: int):
    """``(m [G], v [G], X, C)`` of the flat state: X = excess variance along ê, C = Cov(δy, ζ)."""
    return y[:n], y[n:2 * n], y[2 * n], y[2 * n + 1]


@dataclass
class _Coeffs:
    """Coefficients of the moment dynamics at one (t, state)."""

    lin: np.ndarray  # [G] 1 − kλ_i
    force: np.ndarray  # [G] k c_i
    stein_m: np.ndarray  # [G] the mean drift's Cov(ρ, x_i) term (finite d)
    lin_e: float  # Σ ê_i² lin_i: the linear rate along ê
    couple_y: float  # Stein coupling of δy to its own switch fluctuation
    couple_perp: float  # ... and to ζ
    v_par: float  # Var(δy)
    pi: float  # mean target weight π̄
    loc: _Local


def _coeffs(t: float, y: np.ndarray, w: float, S: _Spectra, rho_hard: float | None,
            loc: _Local | None = None) -> _Coeffs:
    m, v, X, C = _parts(y, len(S.s2))
    loc = _local(t, m, v, S) if loc is None else loc
    v_par = float(loc.e2 @ v) + X
    if rho_hard is None:
        pi, dpi = _switch_stats(loc, v_par, C, S.d)
    else:
        pi, dpi = 1 - rho_hard, 0.0
    rho, k, et = 1 - pi, S.k, math.exp(-t)
    lin = 1 - k * (1 / loc.G + w * rho * et * loc.M / loc.G)
    couple = (S.d or 0) * k * w * loc.g_y * dpi
    # Cov(ρ, δx) = −E σ'(ℓ) √d (g_y v∥ + g⊥ C) ê (Stein); per direction in overlap units (docs/theory.md §8)
    stein_m = np.zeros_like(lin) if dpi == 0 or loc.g_y == 0 else (
        k * w * loc.a * loc.M * dpi * (loc.g_y * v_par + loc.g_perp * C) * loc.a * (1 - loc.M * m) / loc.g_y)
    return _Coeffs(lin, k * et / loc.G * (1 + w * rho), stein_m, float(loc.e2 @ lin), couple * loc.g_y,
                   couple * loc.g_perp, v_par, pi, loc)


def _rhs(co: _Coeffs, y: np.ndarray, noise: float) -> np.ndarray:
    """d/dτ of ``[m, v, X, C]``: per direction, and X, C along ê (as dmft's v∥, C)."""
    m, v, X, C = _parts(y, len(co.lin))
    dX = 2 * co.lin_e * X - 2 * co.couple_y * co.v_par - 2 * co.couple_perp * C
    dC = (co.lin_e - co.couple_y) * C - co.couple_perp
    return np.concatenate([co.lin * m + co.force + co.stein_m, 2 * co.lin * v + noise, [dX, dC]])


def _em_map(co: _Coeffs, y: np.ndarray, h: float) -> np.ndarray:
    """Exact moment map of one Euler–Maruyama step (the lab's SDE sampler); X, C as dmft's ``_em_map``."""
    m, v, X, C = _parts(y, len(co.lin))
    gam, kick = 1 + h * (co.lin_e - co.couple_y), -h * co.couple_perp
    v_new = (1 + h * co.lin) ** 2 * v + 2 * h
    v_par = gam**2 * co.v_par + 2 * gam * kick * C + kick**2 + 2 * h
    return np.concatenate([m + h * (co.lin * m + co.force + co.stein_m), v_new,
                           [v_par - float(co.loc.e2 @ v_new), gam * C + kick]])


def _step(t, t_next, y, w, w_next, S: _Spectra, rho, scheme: str, loc: _Local | None = None):
    """One step in τ: ``"em"`` (exact Euler–Maruyama moments) or ``"heun"`` on the moment ODEs."""
    h, noise = t - t_next, 2.0 if S.k == 2 else 0.0
    co = _coeffs(t, y, w, S, rho, loc)
    if scheme == "em":
        return _em_map(co, y, h), co
    d1 = _rhs(co, y, noise)
    pred = y + h * d1
    return y + 0.5 * h * (d1 + _rhs(_coeffs(t_next, pred, w_next, S, rho), pred, noise)), co


def _cfg_force(t: float, w: float, rho: float, y: np.ndarray, loc: _Local, S: _Spectra) -> float:
    """RMS per dimension of ``w ρ (s_c − s_u)`` = ``w ρ e^{-t}/Γ_i (μ_c,i − M_θ,i x_i)``."""
    m, v, _, _ = _parts(y, len(S.s2))
    sq = (math.exp(-t) / loc.G) ** 2 * (S.s2 * (1 - loc.M * m) ** 2 + loc.M**2 * v)
    return abs(w) * rho * math.sqrt(float(S.frac @ sq))


def _integrate(grid: np.ndarray, ws: np.ndarray, y: np.ndarray, S: _Spectra, scheme: str):
    """March the flat state over ``grid`` (t decreasing); hard switch when ``S.d`` is None."""
    rows, t_switch, n = [], None, len(S.s2)
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        loc = _local(t, *_parts(y, n)[:2], S)
        rho = None if S.d is not None else (1.0 if loc.delta < 0 else 0.0)
        y_new, co = _step(t, t_next, y, ws[i], ws[i + 1], S, rho, scheme, loc)
        _check_variances(_parts(y_new, n)[1], t_next)
        rows.append(_row(t, ws[i], y, co, S))
        if rho == 1.0:
            delta_new = _local(t_next, *_parts(y_new, n)[:2], S).delta
            if delta_new >= 0:
                frac = -loc.delta / (delta_new - loc.delta)
                t_mid = t - frac * (t - t_next)
                if scheme == "heun" and 0 < frac < 1:  # finish the step after the switch
                    y_mid, _ = _step(t, t_mid, y, ws[i], ws[i], S, 1.0, scheme, loc)
                    y_new, _ = _step(t_mid, t_next, y_mid, ws[i], ws[i + 1], S, 0.0, scheme)
                t_switch = t_mid if t_switch is None else t_switch
        y = y_new
    loc = _local(grid[-1], *_parts(y, n)[:2], S)
    rho = None if S.d is not None else float(loc.delta < 0)
    rows.append(_row(grid[-1], ws[-1], y, _coeffs(grid[-1], y, ws[-1], S, rho, loc), S))
    return y, rows, t_switch


def _row(t: float, w: float, y: np.ndarray, co: _Coeffs, S: _Spectra) -> tuple:
    m, v, _, _ = _parts(y, len(S.s2))
    overlap = float(S.frac @ (S.s2 * m)) / float(S.frac @ S.s2)
    ratio = float(S.frac @ (v / S.sigma2))
    loc = co.loc
    return (t, w, overlap, ratio, co.pi, loc.delta, loc.frozen, _cfg_force(t, w, 1 - co.pi, y, loc, S))


def _initial(start: str, T: float, S: _Spectra) -> np.ndarray:
    """Flat state ``[m, v, X = 0, C = 0]`` at T."""
    ones = np.ones_like(S.s2)
    if start == "noise":  # x_T ~ N(0, I)
        v = ones
    elif start == "marginal":  # x_T = e^{-T} μ_k + √Γ z, k a random (non-target) class
        u = math.exp(-2 * T)
        v = S.sigma2 * u + 1 - u + u * S.s2
    else:
        raise CfglabInputError(f"unknown start {start!r}; choose noise or marginal")
    return np.concatenate([0 * ones, v, [0.0, 0.0]])


def _rate(alpha: float, d: int, n_classes: int | None, finite_d: bool) -> float:
    """α, or the non-target rate ``log(K − 1)/d`` (K = ``n_classes``, or ceil(e^{αd}) at finite d)."""
    if n_classes is None and not finite_d:
        return alpha
    K = exponential_K(alpha, d) if n_classes is None else positive_int("n_classes", n_classes)
    if K < 2:
        raise CfglabInputError(f"K = {K} classes: need at least one non-target class")
    return math.log(K - 1) / d


def solve_dmft_spectral(alpha: float, within, between, *, schedule="constant:w=0", sampler: str = "sde",
                        T: float = 6.0, steps: int | None = None, start: str = "noise",
                        n_classes: int | None = None, finite_d: bool = False) -> SpectralDMFTPrediction:
    """Order parameters of CFG-guided sampling with per-direction spectra (docs/theory.md §8; arXiv 2602.00716 §3).

    Parameters
    ----------
    alpha : rate, K = e^{αd} (> 0); d = ``len(within)``.
    within, between : [d] spectra σ_i² (> 0) and s_i² (≥ 0) in a shared eigenbasis.
    schedule, sampler, T, steps, start : as :func:`cfglab.theory.dmft.solve_dmft` (``steps``
        None: Heun on ``N_GRID`` steps of the moment ODEs; an int: the lab sampler's grid,
        exact Euler–Maruyama moments for the SDE).
    n_classes : K: the non-target rate is ``log(K − 1)/d`` (``alpha`` then only validated).
    finite_d : smooth switch at d = ``len(within)`` (module docstring); False: hard switch.
    """
    alpha, T = positive("alpha", alpha), positive("T", T)
    if sampler not in ("sde", "ode"):
        raise CfglabInputError(f"unknown sampler {sampler!r}; choose sde or ode")
    sigma2, s2, frac, inverse = _spectra(within, between)
    d = len(inverse)
    S = _Spectra(sigma2, s2, frac, inverse, _rate(alpha, d, n_classes, finite_d), 2 if sampler == "sde" else 1,
                 d if finite_d else None)
    n = N_GRID if steps is None else positive_int("steps", steps)
    scheme = "em" if (steps is not None and sampler == "sde") else "heun"
    grid = np.linspace(T, 0.0, n + 1)
    ws = as_schedule(schedule).weight(torch.as_tensor(np.sqrt(np.expm1(2 * grid)), dtype=torch.float64)).numpy()
    y, rows, t_switch = _integrate_or_diverge(_integrate, grid, ws, _initial(start, T, S), S, scheme)
    m, v, _, _ = _parts(y, len(s2))
    if not np.all(np.isfinite(y)) or (v <= 0).any():
        raise CfglabInputError("the spectral DMFT solution diverged; use a milder schedule")
    traj = {name: np.asarray(col, dtype=float) for name, col in
            zip(("t", "w", "m", "var_ratio", "pi_target", "delta", "frozen", "cfg_force"), zip(*rows))}
    traj["sigma"] = np.sqrt(np.expm1(2 * traj["t"]))
    if finite_d:
        t_switch = half_time(traj["t"], traj["pi_target"])
    frozen_pre = bool(np.any((traj["frozen"] > 0) & (traj["pi_target"] < 0.5)))
    m_dir = np.where(s2 > 0, m, np.nan)[inverse]  # [d]
    ratio_dir = (v / sigma2)[inverse]  # [d]
    return SpectralDMFTPrediction(traj["m"][-1].item(), float(ratio_dir.mean()), ratio_dir, m_dir,
                                  None if t_switch is None else float(t_switch), traj, frozen_pre)
