"""Random-Energy-Model free energy of the non-target classes (docs/theory.md; arXiv 2602.00716 §3).

With ``K = e^{αd}`` classes ``μ_k ~ N(0, s² I_d)`` the unnormalised log-weight of a
non-target class at a point x and OU time t is

.. math:: E_k = a\\, x\\cdot\\mu_k - \\tfrac{b}{2}|\\mu_k|^2, \\qquad
          a = e^{-t}/\\Gamma, \\quad b = e^{-2t}/\\Gamma, \\quad \\Gamma = \\sigma^2 e^{-2t} + \\Delta_t.

For fixed x (independent of the non-target means) the energies are i.i.d. and their
cumulant generating function per dimension is a Gaussian integral,

.. math:: \\Lambda(\\theta) = -\\tfrac12 \\log(1 + \\theta r) + \\frac{\\theta^2 A}{2(1 + \\theta r)},
          \\qquad r = b s^2, \\quad A = a^2 s^2 q, \\quad q = |x|^2/d .

Liquid phase (``α + Λ(1) − Λ'(1) > 0``): ``(1/d) log Σ_k e^{E_k} → α + Λ(1)``; frozen phase:
``→ Λ'(θ*)`` with ``θ* Λ'(θ*) − Λ(θ*) = α``.  With per-direction spectra (the spectral DMFT,
docs/theory.md) Λ is the direction average of one-dimensional Λ's (``weights``; numpy is
imported only then).  The scalar path is plain Python (no numpy or scipy import: ``cfglab
theory transition`` answers in a fraction of a second, docs/performance.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["REMState", "rem_coefficients", "rem_lambda", "rem_lambda_prime", "rem_free_energy", "snr", "bisect_root"]


@dataclass(frozen=True)
class REMState:
    """Non-target free energy per dimension and its phase at one (t, q)."""

    free_energy: float  # (1/d) log Σ_{k≠c} e^{E_k}
    phase: str  # "liquid" or "frozen"
    theta: float  # 1 in the liquid phase, θ* < 1 when frozen
    entropy: float  # α + Λ(1) − Λ'(1) (negative when frozen)


def gamma(sigma2: float, t: float) -> float:
    """Per-coordinate variance Γ(t) = σ² e^{-2t} + 1 − e^{-2t} of a noised class."""
    u = math.exp(-2 * t)
    return sigma2 * u + 1 - u


def snr(t: float, sigma2: float, s2: float) -> float:
    """Signal-to-noise ratio ``r(t) = e^{-2t} s² / Γ(t)`` of the class means at time t."""
    return math.exp(-2 * t) * s2 / gamma(sigma2, t)


def rem_coefficients(t: float, q: float, sigma2: float, s2: float) -> tuple[float, float]:
    """``(r, A)`` of Λ: ``r = b s²`` and ``A = a² s² q`` at time t for ``q = |x|²/d``."""
    g = gamma(sigma2, t)
    return math.exp(-2 * t) * s2 / g, math.exp(-2 * t) * s2 * q / g**2


def rem_lambda(theta: float, r: float, A: float) -> float:
    """Λ(θ) = −½ log(1 + θ r) + θ² A / (2(1 + θ r)) (Gaussian integral over μ ~ N(0, s² I))."""
    return -0.5 * math.log1p(theta * r) + theta**2 * A / (2 * (1 + theta * r))


def rem_lambda_prime(theta: float, r: float, A: float) -> float:
    """Λ'(θ) = −r / (2(1 + θr)) + A θ (2 + θ r) / (2 (1 + θ r)²), the mean energy per dimension."""
    return -0.5 * r / (1 + theta * r) + A * theta * (2 + theta * r) / (2 * (1 + theta * r) ** 2)


def rem_free_energy(alpha: float, r, A, weights=None) -> REMState:
    """Quenched free energy ``lim (1/d) log Σ_{k≠c} e^{E_k}`` of ``e^{αd}`` REM energies.

    Liquid when the entropy ``α + Λ(1) − Λ'(1)`` at θ = 1 is positive; otherwise frozen at the
    largest energy ``Λ'(θ*)``, ``θ* Λ'(θ*) − Λ(θ*) = α`` (θ* ∈ (0, 1)).  ``r``, ``A``: scalars,
    or per-direction arrays [n] with ``weights`` [n] (fractions of the d directions, summing to
    1): then ``Λ(θ) = Σ_i weights_i Λ(θ; r_i, A_i)`` (docs/theory.md, per-direction spectra).
    """
    lam, dlam, ddlam = _cumulant(r, A, weights)
    if alpha <= 0:  # sub-exponentially many classes: frozen at the typical energy Λ'(0)
        return REMState(dlam(0.0), "frozen", 0.0, alpha)
    lam1, dlam1 = lam(1.0), dlam(1.0)
    entropy = alpha + lam1 - dlam1
    if entropy >= 0:
        return REMState(alpha + lam1, "liquid", 1.0, entropy)
    theta = _theta_star(lambda th: th * dlam(th) - lam(th) - alpha, lambda th: th * ddlam(th))
    if theta is None:  # −entropy > 0 lost to rounding (entropy ≈ 0⁻, as at t_c): θ* = 1 to rounding
        return REMState(dlam1, "frozen", 1.0, entropy)
    return REMState(dlam(theta), "frozen", theta, entropy)


def _lambda_second(theta, r, A):
    """Λ''(θ) = r²/(2u²) + A/u³, u = 1 + θr (> 0: Λ is convex); elementwise."""
    u = 1 + theta * r
    return r * r / (2 * u * u) + A / u**3


def _cumulant(r, A, weights):
    """``(Λ, Λ', Λ'')`` as functions of θ: one direction (plain Python) or the ``weights``-average."""
    if weights is None:
        return (lambda th: rem_lambda(th, r, A), lambda th: rem_lambda_prime(th, r, A),
                lambda th: _lambda_second(th, r, A))  # fmt: skip
    import numpy as np

    r, A, w = (np.asarray(v, dtype=np.float64) for v in (r, A, weights))  # [n] each

    def lam(th: float) -> float:
        return float(w @ (-0.5 * np.log1p(th * r) + th**2 * A / (2 * (1 + th * r))))

    return lam, lambda th: float(w @ rem_lambda_prime(th, r, A)), lambda th: float(w @ _lambda_second(th, r, A))


def _theta_star(g: Callable[[float], float], slope: Callable[[float], float], xtol: float = 1e-14) -> float | None:
    """θ* ∈ (0, 1) with ``g(θ) = θΛ'(θ) − Λ(θ) − α = 0`` in the frozen phase (None if ``g(1) ≤ 0`` by rounding).

    ``g`` increases on (0, 1] (``g'(θ) = θΛ''(θ) > 0``, ``slope``) from ``g(0) = −α < 0``.  Newton
    steps kept inside a bracket ``[lo, hi]`` with ``g(lo) < 0 < g(hi)``, bisection when a step
    leaves it (it always holds the root); stops when a step is below ``xtol``, where Newton's
    quadratic convergence leaves an error far below it.  ~5 steps instead of bisection's 47.
    """
    lo, hi, x, gx = 0.0, 1.0, 1.0, g(1.0)
    if gx <= 0:
        return None
    for _ in range(200):  # bisection alone needs 47 steps to xtol; Newton a handful
        s = slope(x)
        step = x - gx / s if s > 0 else math.nan
        new = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(new - x) <= xtol:
            return new
        x, gx = new, g(new)
        if gx == 0:
            return x
        lo, hi = (x, hi) if gx < 0 else (lo, x)
    return 0.5 * (lo + hi)


def bisect_root(f: Callable[[float], float], lo: float, hi: float, xtol: float) -> float:
    """A root of a continuous ``f`` whose signs at ``lo`` and ``hi`` differ, to within ``xtol`` (bisection).

    Every step halves a bracket across which ``f`` changes sign, so by the intermediate-value
    theorem it holds a root; after ``ceil(log2((hi − lo)/xtol))`` steps its midpoint is within
    ``xtol/2`` of one.  Used instead of ``scipy.optimize.brentq``, whose import (~1 s) dominated
    ``cfglab theory transition`` (docs/performance.md); the answers agree to 1e-12 (tested).
    """
    f_lo, f_hi = f(lo), f(hi)
    if f_lo == 0 or f_hi == 0:
        return lo if f_lo == 0 else hi
    if (f_lo < 0) == (f_hi < 0):
        raise ValueError(f"f has the same sign at both ends of [{lo!r}, {hi!r}]")
    for _ in range(max(0, math.ceil(math.log2((hi - lo) / xtol)))):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        if f_mid == 0:
            return mid
        if (f_mid < 0) == (f_lo < 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
