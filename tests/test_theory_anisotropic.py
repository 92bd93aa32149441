"""Anisotropic REM capacity and resolution σ against the isotropic closed forms and synthetic mixtures."""

import math

import numpy as np
import pytest
from scipy.stats import ortho_group

from cfglab._validate import CfglabInputError
from cfglab.noise import sigma_from_t
from cfglab.theory.anisotropic import (
    alpha_critical_aniso,
    between_class_cov,
    capacity,
    resolution_sigma,
)
from cfglab.theory.transition import alpha_critical, t_c_closed_form


@pytest.mark.parametrize("sigma2,s2", [(0.5, 1.0), (0.2, 0.3), (1.0, 4.0)])
def test_isotropic_case_is_the_shannon_capacity_and_closed_form_t_c(sigma2, s2):
    d = 7
    assert alpha_critical_aniso([sigma2] * d, [s2] * d) == pytest.approx(alpha_critical(sigma2, s2), rel=1e-13)
    for frac in (0.1, 0.5, 0.9):
        alpha = frac * alpha_critical(sigma2, s2)
        expect = sigma_from_t(t_c_closed_form(alpha, sigma2, s2))
        assert resolution_sigma(alpha, [sigma2] * d, [s2] * d) == pytest.approx(expect, rel=1e-9)
    assert resolution_sigma(1.01 * alpha_critical(sigma2, s2), [sigma2] * d, [s2] * d) is None


def test_anisotropic_capacity_is_basis_free_sum_of_logs():
    w, b = np.array([0.1, 0.3, 1.0, 2.0]), np.array([2.0, 0.5, 0.0, 0.1])
    expect = 0.5 * np.log1p(b / w).mean()
    q = ortho_group.rvs(4, random_state=0)
    assert capacity(w, b) == pytest.approx(expect, rel=1e-13)
    assert capacity(q @ np.diag(w) @ q.T, q @ np.diag(b) @ q.T) == pytest.approx(expect, rel=1e-11)
    sigma = 0.7
    assert capacity(w, b, sigma) == pytest.approx(0.5 * np.log1p(b / (w + sigma**2)).mean(), rel=1e-12)
    s_c = resolution_sigma(0.5 * expect, w, b)
    assert capacity(w, b, s_c) == pytest.approx(0.5 * expect, rel=1e-9)
    assert resolution_sigma(0.0, w, b) == math.inf
    with pytest.raises(CfglabInputError, match="shape"):
        capacity(w, b[:3])


def test_capacity_estimate_recovers_alpha_c_of_a_synthetic_mixture():
    """K classes μ_k ~ N(0, Σ_b), n samples of N(μ_k, Σ_w), rotated anisotropic spectra.

    Error budget: Σ_b is estimated from K = 2000 means, relative error ≈ sqrt(2/K) = 3% per
    eigenvalue, i.e. ≲ 1.5% on α_c (d log(1+λ)/dλ < 1); the tolerance is 4%.
    """
    d, K, n = 6, 2000, 8
    rng = np.random.default_rng(0)
    q = ortho_group.rvs(d, random_state=1)
    w = np.geomspace(0.1, 1.0, d)
    b = np.geomspace(2.0, 0.02, d)
    cov_w, cov_b = q @ np.diag(w) @ q.T, q @ np.diag(b) @ q.T
    mu = rng.multivariate_normal(np.zeros(d), cov_b, size=K)  # [K, d]
    y = np.repeat(np.arange(K), n)
    z = mu[y] + rng.multivariate_normal(np.zeros(d), cov_w, size=K * n)  # [K n, d]
    within, between = between_class_cov(z, y)
    assert capacity(within, between) == pytest.approx(capacity(cov_w, cov_b), rel=0.04)
    np.testing.assert_allclose(within, cov_w, atol=0.03)


def test_scaled_diagonal_spectra_resolve_where_the_full_covariances_do():
    from cfglab.theory.anisotropic import scale_to_capacity

    rng = np.random.default_rng(3)
    d = 12
    A = rng.normal(size=(d, d))
    within = A @ A.T / d + 0.2 * np.eye(d)  # [d, d]
    B = rng.normal(size=(d, 3))
    between = B @ B.T  # rank 3, not diagonal in within's eigenbasis
    w_var, vecs = np.linalg.eigh(within)
    b_diag = np.einsum("ij,ik,kj->j", vecs, between, vecs)  # diag(Vᵀ Σ_b V)
    alpha_c = capacity(within, between)
    assert capacity(w_var, b_diag) > alpha_c * 1.05  # Hadamard: the diagonal overstates capacity
    alpha = 0.5 * alpha_c
    sigma = resolution_sigma(alpha, within, between)
    c = scale_to_capacity(w_var, b_diag, alpha, sigma)
    assert 0 < c < 1
    assert resolution_sigma(alpha, w_var, c * b_diag) == pytest.approx(sigma, rel=1e-9)
    # commuting (diagonal) covariances need no scaling
    assert scale_to_capacity(w_var, b_diag, capacity(w_var, b_diag, 0.7), 0.7) == pytest.approx(1.0, rel=1e-10)
