"""Class-resolution transition along the unguided conditional process (docs/theory.md).

Along ``x_t = e^{-t} μ_c + sqrt(Γ) z`` the target's log-weight per dimension is
self-averaging, ``e_c(t) = e^{-2t} s² / (2Γ) = r/2`` with ``r = e^{-2t} s²/Γ``, and
``q = |x|²/d = e^{-2t} s² + Γ`` gives ``A = r(1 + r)`` in the REM exponent Λ
(:mod:`cfglab.theory.rem`).  Then ``Λ(1) = r/2 − ½ log(1 + r)`` and ``Λ'(1) = r/2 = e_c``
(a Nishimori identity: the planted class has the typical energy of the tilted measure), so

* liquid free energy ``α + Λ(1) = α + e_c − ½ log(1 + r)``: the target takes over when
  ``½ log(1 + r) = α``, which is exactly where the liquid phase freezes (entropy 0);
* hence the closed forms, with ``R = e^{2α} − 1``::

      t_c = −½ log( R / (s² − R (σ² − 1)) ),      α_c = ½ log(1 + s²/σ²),

  the Shannon capacity of a Gaussian channel with SNR ``s²/σ²``: classes are resolved
  iff their rate ``α`` per dimension is below capacity.

:func:`transition` returns both the closed form and the crossing found numerically from the
REM solver (root of ``e_c − f_REM`` in t), which the tests compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.noise import exponential_K, sigma_from_t
from cfglab.theory.rem import bisect_root, rem_coefficients, rem_free_energy

__all__ = ["TransitionResult", "transition", "crossing_time", "alpha_critical", "t_c_closed_form", "resolution_gap"]

T_SEARCH = 30.0  # upper end of the t search (r(30) ~ e^{-60}: far in the unresolved phase)


@dataclass(frozen=True)
class TransitionResult:
    """Class-resolution time and critical rate for one (α, σ², s²)."""

    alpha: float
    sigma2: float
    s2: float
    t_c: float | None  # None when the target class is never resolved (α ≥ α_c)
    sigma_c: float | None  # σ(t_c)
    alpha_c: float
    t_c_closed_form: float | None
    message: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def alpha_critical(sigma2: float, s2: float) -> float:
    """α_c = ½ log(1 + s²/σ²): above it the target never dominates, even at t = 0 (§5.2)."""
    return 0.5 * math.log1p(positive("s2", s2) / positive("sigma2", sigma2))


def t_c_closed_form(alpha: float, sigma2: float, s2: float) -> float | None:
    """Closed-form t_c = −½ log(R / (s² − R(σ² − 1))), R = e^{2α} − 1; None when α ≥ α_c."""
    alpha, sigma2, s2 = positive("alpha", alpha), positive("sigma2", sigma2), positive("s2", s2)
    if alpha >= alpha_critical(sigma2, s2):
        return None
    R = math.expm1(2 * alpha)
    return -0.5 * math.log(R / (s2 - R * (sigma2 - 1)))


def resolution_gap(t: float, alpha: float, sigma2: float, s2: float, target_s2: float | None = None) -> float:
    """``e_c(t) − f_REM(t)`` along the unguided conditional process (> 0: target resolved).

    ``target_s2`` = ``|μ_c|²/d`` of one drawn target (default s²): then
    ``e_c = e^{-2t} |μ_c|²/(2Γ d)`` and ``q = e^{-2t}|μ_c|²/d + Γ``.
    """
    st2 = s2 if target_s2 is None else target_s2
    u = math.exp(-2 * t)
    g = sigma2 * u + 1 - u
    q = u * st2 + g
    r, A = rem_coefficients(t, q, sigma2, s2)
    return 0.5 * u * st2 / g - rem_free_energy(alpha, r, A).free_energy


def crossing_time(alpha: float, d: int, *, sigma2: float = 0.5, s2: float = 1.0,
                  target_s2: float | None = None) -> float | None:
    """Finite-d prediction of where the mean π_c(t) crosses 1/2 on unguided runs (docs/theory.md).

    Uses ``log(K − 1)/d`` non-target classes (K = ceil(e^{αd})) and, when given, the drawn
    target's ``|μ_c|²/d``; the per-sample log-odds fluctuation is symmetric, so the mean weight
    crosses 1/2 where the self-averaging gap vanishes.  None when it never does.
    """
    alpha, d = positive("alpha", alpha), positive_int("d", d)
    K = exponential_K(alpha, d)
    if K < 2:
        raise CfglabInputError(f"K = {K} at alpha={alpha}, d={d}: no non-target class")
    a_eff = math.log(K - 1) / d
    if resolution_gap(0.0, a_eff, sigma2, s2, target_s2) <= 0:
        return None
    if resolution_gap(T_SEARCH, a_eff, sigma2, s2, target_s2) > 0:
        return T_SEARCH
    return bisect_root(lambda t: resolution_gap(t, a_eff, sigma2, s2, target_s2), 0.0, T_SEARCH, xtol=1e-12)


def transition(alpha: float, sigma2: float = 0.5, s2: float = 1.0) -> TransitionResult:
    """Class-resolution time t_c(α, σ², s²) from the REM solver, with its closed form (§5.2).

    Raises :class:`~cfglab.CfglabInputError` for α ≤ 0, σ² ≤ 0 or s² ≤ 0.  For α ≥ α_c,
    ``t_c`` is None and ``message`` says why.
    """
    alpha, sigma2, s2 = positive("alpha", alpha), positive("sigma2", sigma2), positive("s2", s2)
    a_c = alpha_critical(sigma2, s2)
    closed = t_c_closed_form(alpha, sigma2, s2)
    if resolution_gap(0.0, alpha, sigma2, s2) <= 0:
        msg = (f"alpha={alpha:g} >= alpha_c={a_c:.6g}: the target class never dominates the posterior "
               f"(not even at t=0); classes are not resolved")
        return TransitionResult(alpha, sigma2, s2, None, None, a_c, closed, msg)
    if resolution_gap(T_SEARCH, alpha, sigma2, s2) > 0:  # no sign change: t_c lies beyond the search range
        raise CfglabInputError(f"alpha={alpha!r} is so small that t_c exceeds t={T_SEARCH:g} "
                               f"(the target is resolved at any practical noise level)")
    t_c = bisect_root(lambda t: resolution_gap(t, alpha, sigma2, s2), 0.0, T_SEARCH, xtol=1e-13)
    msg = f"target class takes over the posterior at t_c={t_c:.6g} (sigma={sigma_from_t(t_c):.6g})"
    return TransitionResult(alpha, sigma2, s2, t_c, sigma_from_t(t_c), a_c, closed, msg)
