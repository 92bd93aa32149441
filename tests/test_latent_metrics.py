"""cfglab.latent.metrics against closed forms on Gaussian data (docs/latent.md).

Error budget: the Monte-Carlo standard error of each estimate (stated per test) times 4,
plus, for the LDA, the second-order error of fitting on N_train samples (the expected
log-posterior is maximal at the true parameters, a proper scoring rule, so fitting errors
enter at O(d / N_train); so does the Ledoit–Wolf shrinkage, whose intensity is O(1 / N_train)).
"""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from cfglab.latent.metrics import fit_lda, lda_separability, variance_ratio, _Spectrum


def _two_gaussians(rng, n, mu, chol):
    """n samples per class of N(±mu, chol cholᵀ); labels 0 (+mu) and 1 (−mu)."""
    z = rng.standard_normal((2 * n, len(mu))) @ chol.T
    x = z + np.concatenate([np.tile(mu, (n, 1)), np.tile(-mu, (n, 1))])
    return x, np.repeat([0, 1], n)


def test_lda_log_posterior_and_top1_match_closed_form():
    rng = np.random.default_rng(0)
    d, n_train, n_gen = 3, 50_000, 20_000
    a = rng.standard_normal((d, d))
    cov = a @ a.T + d * np.eye(d)
    chol = np.linalg.cholesky(cov)
    mu = 0.8 * rng.standard_normal(d)
    delta2 = float((2 * mu) @ np.linalg.solve(cov, 2 * mu))  # Mahalanobis distance² of the means
    # log-odds η of the true class is N(Δ²/2, Δ²); log posterior = −softplus(−η)
    sd = math.sqrt(delta2)
    expected = integrate.quad(
        lambda e: -np.logaddexp(0, -e) * stats.norm.pdf(e, delta2 / 2, sd), -40 * sd, 40 * sd
    )[0]
    top1 = stats.norm.cdf(sd / 2)
    lda = fit_lda(*_two_gaussians(rng, n_train, mu, chol))
    got = lda_separability(lda, *_two_gaussians(rng, n_gen, mu, chol))
    assert 0.3 < top1 < 0.95  # not saturated: the test can see a wrong log-odds
    tol = 4 * got["log_posterior_sem"] + 10 * d / n_train
    assert got["log_posterior"] == pytest.approx(expected, abs=tol)
    assert got["top1"] == pytest.approx(top1, abs=4 * math.sqrt(top1 * (1 - top1) / (2 * n_gen)))


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.7])
def test_variance_ratio_recovers_known_scaling(scale):
    rng = np.random.default_rng(1)
    d, k, n = 4, 3, 20_000
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    chol = q @ np.diag(np.sqrt([4.0, 2.0, 1.0, 0.5]))  # well-separated spectrum
    labels = np.repeat(np.arange(k), n)
    means = 3 * rng.standard_normal((k, d))
    real = means[labels] + rng.standard_normal((k * n, d)) @ chol.T
    other_means = 3 * rng.standard_normal((k, d))  # class means are removed: they must not matter
    gen = other_means[labels] + scale * rng.standard_normal((k * n, d)) @ chol.T
    got = variance_ratio(_Spectrum.fit(real, labels), gen, labels)
    # a variance estimate from m dof has relative sd √(2/m); the ratio adds two of them
    rel = math.sqrt(2 / (k * n - k) + 2 / (k * n - k))
    assert got["total"] == pytest.approx(scale**2, rel=4 * rel)
    assert np.allclose(got["per_direction"], scale**2, rtol=4 * rel)
    assert len(got["per_direction"]) == d


def test_lda_separability_does_not_saturate_where_top1_does():
    rng = np.random.default_rng(2)
    chol = np.eye(2)
    lda = fit_lda(*_two_gaussians(rng, 5000, np.array([3.0, 0.0]), chol))
    x, labels = _two_gaussians(rng, 2000, np.zeros(2), chol)  # the same noise for both (paired)
    sign = np.where(labels == 0, 1.0, -1.0)[:, None]
    near = lda_separability(lda, x + sign * [3.0, 0.0], labels)
    far = lda_separability(lda, x + sign * [4.0, 0.0], labels)
    assert near["top1"] > 0.99 and far["top1"] > 0.99
    # log-posteriors at means ±3 vs ±4: E[softplus(−η)] falls from ≈ 3e-3 to ≈ 1e-4
    assert far["log_posterior"] - near["log_posterior"] > 1e-3
