"""Exact scores and posteriors against independent references (autograd, scipy, scikit-learn)."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGMM

from cfglab.lab import explicit_mixture, infinite_class_mixture, random_mixture
from cfglab.noise import sigma_from_t
from cfglab.lab.kernel import posterior_stats

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

RTOL = 1e-8


def reference_log_prob(x, means, log_w, sigma2, t):
    """log p_t(x) of the noised mixture, written independently of cfglab's kernel."""
    gamma = sigma2 * math.exp(-2 * t) + 1 - math.exp(-2 * t)
    d = x.shape[1]
    diff = x[:, None, :] - math.exp(-t) * means[None, :, :]  # [N, K, d]
    comp = -0.5 * (diff**2).sum(-1) / gamma - 0.5 * d * math.log(2 * math.pi * gamma)
    return torch.logsumexp(log_w + comp, dim=1)


def autograd_score(fn, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad


@pytest.mark.parametrize("K,d,t", [(1, 3, 0.0), (2, 5, 0.3), (7, 4, 1.2), (50, 10, 0.05), (300, 16, 2.5)])
def test_unconditional_score_equals_autograd(K, d, t):
    model = random_mixture(K, d, sigma2=0.4, s2=1.5, seed=K)
    x = torch.randn(13, d, generator=torch.Generator().manual_seed(1)) * 1.5
    log_w = torch.full((K,), -math.log(K))
    expected = autograd_score(lambda z: reference_log_prob(z, model.means, log_w, 0.4, t), x)
    torch.testing.assert_close(model.score_uncond(x, t), expected, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("w", [-1.0, 0.0, 0.7, 4.0])
def test_guided_score_is_cfg_combination_of_autograd_scores(w):
    K, d, t = 9, 6, 0.6
    weights = torch.arange(1.0, K + 1)
    model = explicit_mixture(torch.randn(K, d, generator=torch.Generator().manual_seed(3)), 0.3, weights)
    x = torch.randn(11, d, generator=torch.Generator().manual_seed(4))
    log_w = torch.log(weights / weights.sum())
    s_u = autograd_score(lambda z: reference_log_prob(z, model.means, log_w, 0.3, t), x)
    s_c = autograd_score(lambda z: reference_log_prob(z, model.means[:1], torch.zeros(1), 0.3, t), x)
    out = model.guided(x, sigma_from_t(t), w)
    torch.testing.assert_close(out.score, s_c + w * (s_c - s_u), rtol=RTOL, atol=1e-12)
    torch.testing.assert_close(out.cfg_force, w * (s_c - s_u), rtol=RTOL, atol=1e-12)


def test_reference_log_prob_matches_scipy():
    """Pin the test's own reference density to scipy.stats."""
    model = random_mixture(4, 3, sigma2=0.5, seed=0)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    t = 0.4
    gamma = model.gamma(t)
    dens = sum(
        multivariate_normal(math.exp(-t) * m.numpy(), gamma * np.eye(3)).pdf(x.numpy()) / 4 for m in model.means
    )
    ours = reference_log_prob(x, model.means, torch.full((4,), -math.log(4)), 0.5, t)
    np.testing.assert_allclose(ours.numpy(), np.log(dens), rtol=1e-12)
    np.testing.assert_allclose(model.log_prob(x, t).numpy(), np.log(dens), rtol=1e-10)


def test_posterior_matches_sklearn_predict_proba():
    K, d, sigma2 = 12, 5, 0.7
    model = random_mixture(K, d, sigma2=sigma2, seed=2)
    x = torch.randn(40, d, generator=torch.Generator().manual_seed(5)) * 2
    sk = SkGMM(n_components=K, covariance_type="spherical")
    sk.weights_ = np.full(K, 1 / K)
    sk.means_ = model.means.numpy()
    sk.covariances_ = np.full(K, sigma2)
    sk.precisions_cholesky_ = 1 / np.sqrt(sk.covariances_)
    expected = sk.predict_proba(x.numpy())
    np.testing.assert_allclose(model.posterior_weights(x, 0.0).numpy(), expected, rtol=RTOL, atol=1e-14)
    log_pi_c = model.log_pi_target(x, 0.0)
    np.testing.assert_allclose(torch.exp(log_pi_c).numpy(), expected[:, 0], rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("chunk", [1, 3, 64, 10_000])
def test_chunked_kernel_independent_of_chunk_size(chunk):
    model = random_mixture(257, 8, sigma2=0.5, seed=9)
    x = torch.randn(17, 8, generator=torch.Generator().manual_seed(6)) * 3
    a, b = 1.7, 0.9
    got = posterior_stats(x, model.means, model.sq_norms, a, b, chunk_size=chunk)
    logits = a * x @ model.means.T - 0.5 * b * model.sq_norms
    pi = torch.softmax(logits, dim=1)
    torch.testing.assert_close(got.mean, pi @ model.means, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.log_norm, torch.logsumexp(logits, 1), rtol=1e-12, atol=1e-12)


def test_kernel_survives_logits_that_overflow_exp():
    means = torch.tensor([[30.0, 0.0], [0.0, 30.0], [-30.0, 0.0]])
    model = explicit_mixture(means, sigma2=1e-3)
    x = torch.tensor([[30.0, 1.0], [0.0, 29.0]])
    weights = model.posterior_weights(x, 0.0)
    assert torch.isfinite(model.score_uncond(x, 0.0)).all()
    torch.testing.assert_close(torch.exp(model.log_pi_target(x, 0.0)), weights[:, 0], rtol=1e-10, atol=0)


def test_bayes_class_matches_brute_force_argmax():
    model = random_mixture(30, 4, sigma2=0.8, seed=1)
    x = model.sample_target(500, torch.Generator().manual_seed(2))
    brute = model.posterior_weights(x, 0.0).argmax(1) == 0
    assert torch.equal(model.bayes_is_target(x), brute)
    assert 0.2 < brute.double().mean() < 0.95  # the case is not trivial


def test_infinite_class_scores_are_the_gaussian_scores():
    model = infinite_class_mixture(6, sigma2=0.5, s2=2.0, seed=0)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    t = 0.9
    var_u = math.exp(-2 * t) * 2.5 + 1 - math.exp(-2 * t)
    expected = autograd_score(lambda z: -0.5 * (z**2).sum(1) / var_u, x)
    torch.testing.assert_close(model.score_uncond(x, t), expected, rtol=RTOL, atol=1e-12)


def test_seeded_ensembles_are_reproducible():
    a = random_mixture(20_000, 3, sigma2=0.5, seed=4).means
    b = random_mixture(20_000, 3, sigma2=0.5, seed=4).means
    c = random_mixture(20_000, 3, sigma2=0.5, seed=5).means
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the first rows do not depend on K (block-seeded generation)
    assert torch.equal(random_mixture(10, 3, sigma2=0.5, seed=4).means, a[:10])


@pytest.mark.parametrize("n,d", [(30, 20), (200, 20), (2000, 8)])
def test_kl_estimator_bias_is_the_mean_of_the_estimator_on_exact_draws(n, d):
    """Digamma closed form (full and structured fits) vs Monte Carlo, within 4 standard errors."""
    from cfglab.lab.observables import gaussian_kl_per_dim, kl_estimator_bias

    model = random_mixture(2, d, sigma2=0.5, seed=0)
    reps = 200
    values = np.array([gaussian_kl_per_dim(model.sample_target(n, torch.Generator().manual_seed(s)),
                                           model.target_mean, 0.5) for s in range(reps)])
    se = values.std(ddof=1) / math.sqrt(reps)
    assert abs(values.mean() - kl_estimator_bias(n, d)) < 4 * se
