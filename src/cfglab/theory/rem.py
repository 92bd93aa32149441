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
docs/theory.md) Λ is the direction average of one-dimensional Λ's (``weights``).  Numpy-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

__all__ = ["REMState", "rem_coefficients", "rem_lambda", "rem_lambda_prime", "rem_free_energy", "snr"]


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
    """Λ(θ) = −½ log(1 + θ r) + θ² A / (2(1 + θ r)) (Gaussian integral over μ ~ N(0, s² I)); elementwise."""
    return -0.5 * np.log1p(theta * r) + theta**2 * A / (2 * (1 + theta * r))


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
    if weights is None:
        lam = lambda th: rem_lambda(th, r, A)  # noqa: E731
        dlam = lambda th: rem_lambda_prime(th, r, A)  # noqa: E731
    else:
        lam = lambda th: float(weights @ rem_lambda(th, r, A))  # noqa: E731
        dlam = lambda th: float(weights @ rem_lambda_prime(th, r, A))  # noqa: E731
    if alpha <= 0:  # sub-exponentially many classes: frozen at the typical energy Λ'(0)
        return REMState(dlam(0.0), "frozen", 0.0, alpha)
    lam1, dlam1 = lam(1.0), dlam(1.0)
    entropy = alpha + lam1 - dlam1
    if entropy >= 0:
        return REMState(alpha + lam1, "liquid", 1.0, entropy)

    def _legendre(theta: float) -> float:
        return theta * dlam(theta) - lam(theta) - alpha

    theta = brentq(_legendre, 0.0, 1.0, xtol=1e-14)  # _legendre(0) = −α < 0 < _legendre(1) = −entropy
    return REMState(dlam(theta), "frozen", theta, entropy)
