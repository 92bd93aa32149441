"""Infinite-class (Gaussian) limit of guided diffusion, solved exactly (docs/theory.md).

With K → ∞ classes the unconditional law is Gaussian, so both scores are linear in x and,
in each eigendirection of the (commuting) conditional / unconditional covariances with data
variances ``a`` (conditional) and ``b`` (unconditional), the guided score is

.. math::
    s_w = -\\lambda(t)\\,x + c(t)\\,\\mu, \\qquad
    \\lambda = \\frac{1+w}{\\Gamma_a} - \\frac{w}{\\Gamma_b}, \\qquad
    c = \\frac{(1+w)e^{-t}}{\\Gamma_a}, \\qquad \\Gamma_a(t) = a e^{-2t} + 1 - e^{-2t}.

The mean ``M`` (in units of the target mean μ) and the variance ``V`` of each direction obey
linear ODEs in forward time t (integrated from t = T down to 0):

* SDE ``dx = [x + 2 s_w] dτ + √2 dB``:  ``M' = (2λ − 1) M − 2c``,  ``V' = 2(2λ − 1) V − 2``;
* probability-flow ODE ``dx = [x + s_w] dτ``:  ``M' = (λ − 1) M − c``,  ``V' = 2(λ − 1) V``.

For constant w they integrate in closed form (:func:`closed_form_constant`); as T → ∞ the
ODE gives ``V = a (a/b)^w`` and the SDE ``V = 2 ∫_0^∞ e^{-2t} (a/Γ_a)^{2(1+w)} (Γ_b/b)^{2w} dt``.
Nothing here depends on the dimension d: the distortion of the infinite-class limit does not
vanish as d grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import quad, solve_ivp

from cfglab._validate import CfglabInputError, horizon, positive
from cfglab.guidance.schedules import as_schedule
from cfglab.noise import sigma_from_t, t_from_sigma

__all__ = ["GaussianPrediction", "solve_gaussian", "solve_discrete", "closed_form_constant", "schedule_breakpoints"]

RTOL, ATOL = 1e-11, 1e-13
SAMPLERS = ("sde", "ode")
STARTS = ("noise", "marginal")


@dataclass(frozen=True)
class GaussianPrediction:
    """Final moments of guided sampling in the infinite-class limit.

    ``mean_overlap`` is the final mean along μ_c in units of μ_c (target 1); ``var`` the
    final variance and ``var_ratio = var / a``.  Scalars in the isotropic case, arrays of
    one entry per eigendirection when ``cond_var`` / ``uncond_var`` are arrays (the mean
    along direction i is then ``mean_overlap[i] · μ_{c,i}``).  ``trajectory`` has ``t``,
    ``sigma``, ``w``, ``m``, ``v`` on a grid from T to 0.  ``kl_per_dim`` is the expected
    ``KL(N(M μ, V) ‖ N(μ, a)) / d`` for the isotropic lab (``|μ_c|²/d → s²``), else None.
    """

    mean_overlap: float | np.ndarray
    var: float | np.ndarray
    var_ratio: float | np.ndarray
    trajectory: dict = field(repr=False, default_factory=dict)
    kl_per_dim: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready summary (arrays as lists)."""
        conv = lambda v: v.tolist() if isinstance(v, np.ndarray) else v  # noqa: E731
        return {"mean_overlap": conv(self.mean_overlap), "var": conv(self.var),
                "var_ratio": conv(self.var_ratio), "kl_per_dim": self.kl_per_dim}


def _gamma(var, t):
    e2 = math.exp(-2 * t)
    return var * e2 + (1 - e2)


def schedule_breakpoints(schedule, T: float) -> list[float]:
    """OU times in (0, T) where ``schedule`` may jump or kink, decreasing (integration edges).

    From the schedule's own :meth:`~cfglab.guidance.schedules.Schedule.breakpoints` (in σ).
    """
    ts = [t_from_sigma(x) for x in as_schedule(schedule).breakpoints() if math.isfinite(x)]
    return sorted({t for t in ts if 0 < t < T}, reverse=True)


def _variances(sigma2, s2, cond_var, uncond_var) -> tuple[np.ndarray, np.ndarray, bool]:
    sigma2, s2 = positive("sigma2", sigma2), positive("s2", s2)
    if cond_var is None and uncond_var is None:
        return np.array([sigma2]), np.array([sigma2 + s2]), True
    a = np.atleast_1d(np.asarray(cond_var if cond_var is not None else sigma2, dtype=float))
    b = np.atleast_1d(np.asarray(uncond_var if uncond_var is not None else a + s2, dtype=float))
    if a.size == 1 and b.size > 1:
        a = np.full_like(b, a[0])
    if a.shape != b.shape or a.ndim != 1:
        raise CfglabInputError(f"cond_var and uncond_var must be 1-D of equal length, got {a.shape} and {b.shape}")
    for name, v in (("cond_var", a), ("uncond_var", b)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise CfglabInputError(f"{name} must be positive and finite, got {v.tolist()!r}")
    return a.astype(float).copy(), b.astype(float).copy(), False


def _rhs(schedule, a, b, sampler, t_lo, t_hi):
    """Right-hand side d[M, V]/dt on one smooth piece (t_lo, t_hi) of the schedule."""
    eps = 1e-12 * max(t_hi - t_lo, 1e-300)

    def rhs(t, y):
        tc = min(max(t, t_lo + eps), t_hi - eps)  # w from this piece only, never its neighbour
        w = schedule(sigma_from_t(tc))
        ga, gb = _gamma(a, t), _gamma(b, t)
        lam = (1 + w) / ga - w / gb  # [n]
        c = (1 + w) * math.exp(-t) / ga  # [n]
        m, v = np.split(y, 2)
        if sampler == "sde":
            return np.concatenate([(2 * lam - 1) * m - 2 * c, 2 * (2 * lam - 1) * v - 2])
        return np.concatenate([(lam - 1) * m - c, 2 * (lam - 1) * v])

    return rhs


def _initial(a, b, start, T) -> np.ndarray:
    v0 = np.ones_like(a) if start == "noise" else _gamma(b, T)
    return np.concatenate([np.zeros_like(a), v0])


def _check(sampler: str, start: str, T) -> float:
    if sampler not in SAMPLERS:
        raise CfglabInputError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if start not in STARTS:
        raise CfglabInputError(f"unknown start {start!r}; choose from {', '.join(STARTS)}")
    return horizon("T", T)


def solve_gaussian(
    schedule,
    *,
    sigma2: float = 0.5,
    s2: float = 1.0,
    sampler: str = "sde",
    T: float = 6.0,
    cond_var=None,
    uncond_var=None,
    start: str = "noise",
    n_points: int = 241,
) -> GaussianPrediction:
    """Infinite-class limit (docs/theory.md): solve the linear moment ODEs for any schedule w(σ).

    Parameters
    ----------
    schedule : schedule object, string (``"constant:w=2"``), number or callable of σ.
    sigma2, s2 : isotropic case, ``a = σ²`` and ``b = s² + σ²``.
    sampler : ``"sde"`` (reverse SDE) or ``"ode"`` (probability flow).
    T : time horizon; the run starts at OU time T and ends at 0.
    cond_var, uncond_var : [n] per-eigendirection data variances a and b of commuting
        conditional / unconditional covariances (replace the isotropic a, b; a missing
        ``uncond_var`` defaults to ``cond_var + s2``).
    start : ``"noise"`` (x_T ~ N(0, I), the lab's default) or ``"marginal"`` (the exact
        noised unconditional law N(0, Γ_b(T))).
    n_points : size of the trajectory grid.
    """
    T = _check(sampler, start, T)
    schedule = as_schedule(schedule)
    a, b, iso = _variances(sigma2, s2, cond_var, uncond_var)
    edges = [T, *schedule_breakpoints(schedule, T), 0.0]
    grid = np.linspace(T, 0.0, n_points)
    y, pieces = _initial(a, b, start, T), []
    for t_hi, t_lo in zip(edges[:-1], edges[1:]):
        inside = grid[(grid <= t_hi) & (grid >= t_lo)]
        sol = solve_ivp(_rhs(schedule, a, b, sampler, t_lo, t_hi), (t_hi, t_lo), y, method="DOP853",
                        rtol=RTOL, atol=ATOL, dense_output=True)
        if not sol.success:
            raise CfglabInputError(f"moment ODE failed for schedule {schedule}: {sol.message}")
        y = sol.y[:, -1]
        if inside.size:
            pieces.append((inside, sol.sol(inside)))
    return _prediction(y, a, s2, iso, schedule, pieces)


def _prediction(y, a, s2, iso, schedule, pieces) -> GaussianPrediction:
    m, v = np.split(y, 2)
    ts = np.concatenate([p[0] for p in pieces])
    ys = np.concatenate([p[1] for p in pieces], axis=1)
    ts, idx = np.unique(ts, return_index=True)  # shared grid points at piece edges
    ts, ys = ts[::-1], ys[:, idx][:, ::-1]
    mt, vt = np.split(ys, 2)
    sig = np.array([sigma_from_t(float(t)) for t in ts])
    traj = {"t": ts, "sigma": sig, "w": np.array([schedule(float(s)) for s in sig]),
            "m": mt[0] if iso else mt.T, "v": vt[0] if iso else vt.T}
    if not iso:
        return GaussianPrediction(m, v, v / a, traj)
    m, v, ratio = float(m[0]), float(v[0]), float(v[0] / a[0])
    kl = float(0.5 * (ratio - 1 - math.log(ratio)) + 0.5 * (m - 1) ** 2 * s2 / a[0])
    return GaussianPrediction(m, v, ratio, traj, kl_per_dim=kl)


def closed_form_constant(w: float, *, a: float, b: float, sampler: str = "sde", T: float = math.inf,
                         v_T: float = 1.0) -> tuple[float, float]:
    """Constant-w moments ``(mean_overlap, var)`` as one-dimensional integrals (docs/theory.md).

    Integrating the moment ODEs with ``∫_0^t (2/Γ_a − 2) = log(Γ_a(t)/a)``:

    * ODE: ``V = v_T (a/Γ_a(T))^{1+w} (Γ_b(T)/b)^w`` (→ ``a (a/b)^w`` as T → ∞) and
      ``M = ∫_0^T c(t) (a/Γ_a)^{(1+w)/2} (Γ_b/b)^{w/2} dt``;
    * SDE: ``V = v_T E(T) + 2 ∫_0^T E(t) dt`` with ``E = e^{-2t} (a/Γ_a)^{2(1+w)} (Γ_b/b)^{2w}``
      and ``M = ∫_0^T 2 c(t) e^{-t} (a/Γ_a)^{1+w} (Γ_b/b)^w dt``,

    with ``c = (1+w) e^{-t}/Γ_a`` and the run started at mean 0, variance ``v_T``.
    """
    if sampler not in SAMPLERS:
        raise CfglabInputError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    ra = lambda t: a / _gamma(a, t)  # noqa: E731
    rb = lambda t: _gamma(b, t) / b  # noqa: E731
    c = lambda t: (1 + w) * math.exp(-t) / _gamma(a, t)  # noqa: E731
    kw = dict(epsabs=1e-14, epsrel=1e-12, limit=500)
    upper = T if math.isfinite(T) else 60.0  # integrands decay like e^{-t}; e^{-60} is below 1e-26
    if sampler == "ode":
        mean = quad(lambda t: c(t) * ra(t) ** ((1 + w) / 2) * rb(t) ** (w / 2), 0, upper, **kw)[0]
        var = a * (a / b) ** w if not math.isfinite(T) else v_T * ra(T) ** (1 + w) * rb(T) ** w
        return mean, var
    e = lambda t: math.exp(-2 * t) * ra(t) ** (2 * (1 + w)) * rb(t) ** (2 * w)  # noqa: E731
    mean = quad(lambda t: 2 * c(t) * math.exp(-t) * ra(t) ** (1 + w) * rb(t) ** w, 0, upper, **kw)[0]
    var = 2 * quad(e, 0, upper, **kw)[0] + (v_T * e(T) if math.isfinite(T) else 0.0)
    return mean, var


def solve_discrete(schedule, steps: int, *, sigma2: float = 0.5, s2: float = 1.0, sampler: str = "sde",
                   T: float = 6.0, cond_var=None, uncond_var=None, start: str = "noise") -> GaussianPrediction:
    """Exact moments of the lab's *discretised* samplers in the infinite-class limit.

    The scores are affine in x, so one Euler–Maruyama step (``cfglab.lab.sample_sde``) maps
    ``(M, V) → (f M + 2hc, f² V + 2h)`` with ``f = 1 + h(1 − 2λ)``, and one Heun step
    (``cfglab.lab.sample_ode``, w evaluated per stage) is an affine map ``x → αx + βμ``.
    Comparing with :func:`solve_gaussian` separates discretisation error from model error.
    """
    from cfglab._validate import positive_int

    T = _check(sampler, start, T)
    steps = positive_int("steps", steps)
    schedule = as_schedule(schedule)
    a, b, iso = _variances(sigma2, s2, cond_var, uncond_var)
    m, v = np.split(_initial(a, b, start, T), 2)
    ts = np.linspace(T, 0.0, steps + 1)

    def coeffs(t):
        w = schedule(sigma_from_t(float(t)))
        ga, gb = _gamma(a, t), _gamma(b, t)
        return (1 + w) / ga - w / gb, (1 + w) * math.exp(-t) / ga

    for t, t_next in zip(ts[:-1], ts[1:]):
        h = t - t_next
        lam, c = coeffs(t)
        if sampler == "sde":
            f = 1 + h * (1 - 2 * lam)
            m, v = f * m + 2 * h * c, f * f * v + 2 * h
            continue
        lam_n, c_n = coeffs(t_next)
        alpha = 1 + 0.5 * h * ((1 - lam) + (1 - lam_n) * (1 + h * (1 - lam)))
        beta = 0.5 * h * (c + (1 - lam_n) * h * c + c_n)
        m, v = alpha * m + beta, alpha * alpha * v
    traj = [(np.array([T, 0.0]), np.zeros((2 * a.size, 2)))]  # no trajectory for the discrete scheme
    return _prediction(np.concatenate([m, v]), a, s2, iso, schedule, traj)
