"""Class resolution with per-direction spectra: the anisotropic REM capacity (docs/theory.md).

Classes ``N(μ_k, Σ_w)`` with means ``μ_k ~ N(0, Σ_b)``, K = e^{αd} of them, observed through
VE noise σ (``x = μ_c + n``, ``n ~ N(0, Σ_w + σ² I)``).  The REM argument of
:mod:`cfglab.theory.transition` goes through direction by direction in the basis that
whitens ``Σ_σ = Σ_w + σ² I`` and diagonalises ``Σ_b``: with the generalised eigenvalues
``λ_i(σ)`` of ``(Σ_b, Σ_σ)`` (per-direction signal-to-noise ratios) the target takes over
the posterior when

.. math:: \\alpha < C(\\sigma) = \\frac{1}{2d} \\sum_i \\log(1 + \\lambda_i(\\sigma))
          = \\frac{1}{2d} \\log\\det(I + \\Sigma_\\sigma^{-1} \\Sigma_b),

the capacity of the Gaussian channel ``μ → x`` (the mutual information per dimension).
``α_c = C(0)``; the resolution noise level ``σ_c`` solves ``C(σ_c) = α``.  With
``Σ_w = σ_w² I`` and ``Σ_b = s² I`` this is ``α_c = ½ log(1 + s²/σ_w²)`` and the closed-form
``t_c`` of :func:`cfglab.theory.transition.t_c_closed_form`.  Pure numpy/scipy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import eigh
from scipy.optimize import brentq

from cfglab._validate import CfglabInputError

__all__ = ["capacity", "alpha_critical_aniso", "resolution_sigma", "snr_spectrum", "between_class_cov",
           "scale_to_capacity"]

SIGMA_MAX = 1e6  # upper end of the σ search (capacity ~ tr Σ_b / (2 d σ²) there)


def _as_cov(x, name: str) -> np.ndarray:
    """A covariance matrix [d, d] from a matrix or a 1-D per-direction spectrum [d]."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = np.diag(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not np.isfinite(a).all():
        raise CfglabInputError(f"{name} must be a finite [d, d] covariance or [d] spectrum, got shape {a.shape}")
    return 0.5 * (a + a.T)


def snr_spectrum(within, between, sigma: float = 0.0) -> np.ndarray:
    """Generalised eigenvalues λ_i ≥ 0 [d] of ``(Σ_b, Σ_w + σ² I)``, descending.

    ``within`` / ``between``: [d, d] covariances or [d] spectra in a shared basis.
    """
    w, b = _as_cov(within, "within"), _as_cov(between, "between")
    if w.shape != b.shape:
        raise CfglabInputError(f"within {w.shape} and between {b.shape} covariances differ in shape")
    noisy = w + float(sigma) ** 2 * np.eye(len(w))
    if np.linalg.eigvalsh(noisy)[0] <= 0:
        raise CfglabInputError("the within-class covariance (+ sigma^2 I) must be positive definite")
    lam = eigh(b, noisy, eigvals_only=True)  # [d]
    return np.clip(lam, 0.0, None)[::-1]


def capacity(within, between, sigma: float = 0.0) -> float:
    """C(σ) = (1/2d) Σ_i log(1 + λ_i(σ)): the largest α whose target class is resolved at σ."""
    lam = snr_spectrum(within, between, sigma)
    return float(0.5 * np.log1p(lam).sum() / len(lam))


def alpha_critical_aniso(within, between) -> float:
    """α_c = C(0) = (1/2d) log det(I + Σ_w⁻¹ Σ_b); isotropic: ½ log(1 + s²/σ_w²)."""
    return capacity(within, between, 0.0)


def resolution_sigma(alpha: float, within, between) -> float | None:
    """σ_c with C(σ_c) = α: the target wins the posterior below it; None if α ≥ α_c.

    ``alpha ≤ 0`` (one competing class or fewer at finite d) returns ``inf``.
    """
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise CfglabInputError(f"alpha must be finite, got {alpha!r}")
    if alpha <= 0:
        return math.inf
    if alpha >= capacity(within, between, 0.0):
        return None
    f = lambda log_s: capacity(within, between, math.exp(log_s)) - alpha  # noqa: E731
    lo = math.log(1e-8)
    if f(lo) <= 0:
        return 0.0
    return math.exp(brentq(f, lo, math.log(SIGMA_MAX), xtol=1e-12))


def scale_to_capacity(within, between, target: float, sigma: float = 0.0) -> float:
    """The factor c > 0 with ``C(σ; Σ_w, c·Σ_b) = target`` (C increases with c).

    Used to give diagonal spectra read in one basis (Σ_w's eigenbasis, where Σ_b is not
    diagonal) the capacity of the full covariances at the σ that matters: by Hadamard's
    inequality the diagonal of Σ_b overstates the capacity (docs/theory.md §8).
    """
    target, sigma = float(target), float(sigma)
    if not (math.isfinite(target) and target > 0):
        raise CfglabInputError(f"target capacity must be positive and finite, got {target!r}")
    b = _as_cov(between, "between")
    if not np.any(b):
        raise CfglabInputError("the between-class spectrum is zero: no scale reaches a positive capacity")
    f = lambda log_c: capacity(within, math.exp(log_c) * b, sigma) - target  # noqa: E731
    lo, hi = -1.0, 1.0
    while f(lo) > 0:
        lo *= 2
    while f(hi) < 0:
        hi *= 2
    return math.exp(brentq(f, lo, hi, xtol=1e-13))


def between_class_cov(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled within-class covariance ``Σ_w`` and between-class covariance ``Σ_b`` [d, d] of z [N, d].

    ``Σ_w``: class covariances averaged over classes (ddof 1).  ``Σ_b``: covariance of the
    class means about their average, less the sampling noise of the means (``Σ_w / n_k``
    averaged), projected onto its non-negative part — an unbiased estimate of the spread
    of μ_k ~ N(0, Σ_b) (rank ≤ K − 1).
    """
    z = np.asarray(z, dtype=np.float64)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise CfglabInputError(f"need at least 2 classes, got {len(classes)}")
    groups = [z[labels == k] for k in classes]
    if min(len(g) for g in groups) < 2:
        raise CfglabInputError("every class needs at least 2 samples")
    within = np.mean([np.cov(g, rowvar=False) for g in groups], axis=0)  # [d, d]
    means = np.stack([g.mean(axis=0) for g in groups])  # [K, d]
    noise = within * np.mean([1.0 / len(g) for g in groups])
    between = np.cov(means, rowvar=False) - noise  # [d, d]
    vals, vecs = np.linalg.eigh(0.5 * (between + between.T))
    between = (vecs * np.clip(vals, 0.0, None)) @ vecs.T
    return within, between
