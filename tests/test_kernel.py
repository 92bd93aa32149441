"""The fused posterior kernel against independent references (naive softmax, scikit-learn)."""

import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as SkGMM

from cfglab.lab import random_mixture
from cfglab.noise import sigma_from_t
from cfglab.lab import kernel as kernel_mod
from cfglab.lab.ensembles import MEANS_BLOCK, SeededMeans, random_means
from cfglab.lab.kernel import plan_chunks, posterior_stats

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

# float64: agreement to 1e-10 relative; float32: ~1e-5 relative (logits of size ~10-50 lose
# |ℓ|·2^-24 ≈ 3e-6 in the exponent, for the kernel and the reference alike).
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-5, atol=2e-5)}


def reference(x, means, a, b, log_w=None):
    """Naive float64 posterior: all N×K logits, logsumexp, softmax, matmul."""
    x, means = x.double(), means.double()
    logits = a * x @ means.T - 0.5 * b * (means**2).sum(1)  # [N, K]
    if log_w is not None:
        logits = logits + log_w.double()
    return torch.softmax(logits, 1) @ means, torch.logsumexp(logits, 1), logits.amax(1)


def check(got, ref, dtype, scale=1.0):
    tol = TOL[dtype]
    mean, log_norm, max_logit = ref
    torch.testing.assert_close(got.mean.double(), mean, rtol=tol["rtol"], atol=tol["atol"] * scale)
    torch.testing.assert_close(got.log_norm.double(), log_norm, rtol=tol["rtol"], atol=tol["atol"] * scale)
    if got.max_logit is not None:
        torch.testing.assert_close(got.max_logit.double(), max_logit, rtol=tol["rtol"], atol=tol["atol"] * scale)


def problem(K, N, d, dtype, seed=0, spread=2.0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(K, d, generator=g, dtype=torch.float64).to(dtype)
    x = (spread * torch.randn(N, d, generator=g, dtype=torch.float64)).to(dtype)
    log_w = torch.log_softmax(torch.randn(K, generator=g, dtype=torch.float64), 0).to(dtype)
    return x, means, log_w


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "K, N, d, chunk, rows",
    [(1, 5, 3, None, None), (1, 4, 2, 1, 1), (257, 17, 8, 1, None), (257, 17, 8, 3, 5), (1000, 33, 5, 64, None),
     (5000, 100, 16, None, 7), (4097, 64, 64, 1024, 64), (300, 9, 1, 300, 2)],
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("track_max", [False, True])
def test_kernel_matches_naive_softmax(dtype, K, N, d, chunk, rows, weighted, track_max):
    x, means, log_w = problem(K, N, d, dtype, seed=K + N)
    log_w = log_w if weighted else None
    a, b = 1.3, 0.8
    got = posterior_stats(x, means, (means**2).sum(1), a, b, log_w, chunk_size=chunk, row_block=rows,
                          track_max=track_max)
    assert (got.max_logit is not None) == track_max
    assert got.mean.dtype == dtype and got.mean.shape == (N, d)
    check(got, reference(x, means, a, b, log_w), dtype, scale=3.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_computes_norms_when_not_given(dtype):
    x, means, _ = problem(500, 20, 6, dtype)
    check(posterior_stats(x, means, None, 0.7, 0.4, chunk_size=77), reference(x, means, 0.7, 0.4), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("chunk", [1, 7, None])
def test_kernel_survives_logits_that_overflow_a_naive_exp(dtype, chunk):
    # logits ~ ±1e5: exp overflows (or underflows to 0/0) in a naive implementation
    x, means, _ = problem(400, 12, 4, torch.float64, seed=3)
    x, means = (100 * x).to(dtype), (30 * means).to(dtype)
    a, b = 2.0, 2.0
    naive = torch.exp(a * x.double() @ means.double().T)
    assert not torch.isfinite(naive).all()  # the naive exp does overflow here
    got = posterior_stats(x, means, None, a, b, chunk_size=chunk, track_max=True)
    assert torch.isfinite(got.mean).all() and torch.isfinite(got.log_norm).all()
    ref = reference(x, means, a, b)
    scale = float(ref[1].abs().max())  # absolute errors scale with the logits
    check(got, ref, dtype, scale=scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", ["increasing", "decreasing"])
def test_lazy_rescaling_when_later_classes_dominate(dtype, order):
    # 1-d means on a line: with chunk=1 every class raises the running max by ~40 > τ
    K = 60
    means = torch.linspace(0, 59, K, dtype=torch.float64).unsqueeze(1)
    means = means if order == "increasing" else means.flip(0)
    x = torch.tensor([[40.0], [3.0], [-5.0]], dtype=torch.float64)
    for chunk in (1, 4, 25):
        for track_max in (False, True):
            got = posterior_stats(x.to(dtype), means.to(dtype), None, 1.0, 0.1, chunk_size=chunk, track_max=track_max)
            check(got, reference(x, means, 1.0, 0.1), dtype, scale=100.0)


def test_eager_rescaling_path_used_on_gpus(monkeypatch):
    monkeypatch.setattr(kernel_mod, "_lazy_rescale", lambda device: False)
    x, means, log_w = problem(700, 25, 6, torch.float64, seed=5)
    got = posterior_stats(x, means, None, 1.1, 0.6, log_w, chunk_size=50)
    check(got, reference(x, means, 1.1, 0.6, log_w), torch.float64)


def test_tiny_terms_are_clamped_without_visible_error():
    # most classes sit ~1e4 below the best: their exp is far below the clamp floor
    means = torch.cat([torch.zeros(1, 2), 100 * torch.randn(3000, 2, generator=torch.Generator().manual_seed(1))])
    x = torch.zeros(8, 2)
    got = posterior_stats(x, means, None, 1.0, 1.0, chunk_size=128)
    check(got, reference(x, means, 1.0, 1.0), torch.float64)


@pytest.mark.parametrize("K, N, d, t", [(50, 40, 3, 0.0), (1000, 64, 16, 0.4), (3000, 30, 8, 1.5)])
def test_mixture_posterior_matches_sklearn_predict_proba(K, N, d, t):
    model = random_mixture(K, d, sigma2=0.5, seed=K)
    x = torch.randn(N, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5
    gamma, decay = model.gamma(t), math.exp(-t)
    sk = SkGMM(n_components=K, covariance_type="spherical")
    sk.weights_ = np.full(K, 1 / K)
    sk.means_ = decay * model.means.numpy()
    sk.covariances_ = np.full(K, gamma)
    sk.precisions_cholesky_ = 1 / np.sqrt(sk.covariances_)
    pi = sk.predict_proba(x.numpy())  # [N, K]
    s_c, s_u, log_pi_c = model.score_pair(x, sigma_from_t(t))
    expected_s_u = -(x.numpy() - decay * pi @ model.means.numpy()) / gamma
    np.testing.assert_allclose(s_u.numpy(), expected_s_u, rtol=1e-10, atol=1e-10)
    ok = pi[:, 0] > 1e-300
    np.testing.assert_allclose(log_pi_c.numpy()[ok], np.log(pi[ok, 0]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("K", [1, MEANS_BLOCK - 1, MEANS_BLOCK, MEANS_BLOCK + 1, 20_000])
def test_on_the_fly_means_equal_materialised_means(dtype, K):
    seeded = SeededMeans(K, 3, 0.7, seed=11, dtype=dtype)
    full = random_means(K, 3, 0.7, 11, dtype=dtype)
    assert torch.equal(seeded.materialize(), full)
    assert seeded.shape == tuple(full.shape)
    assert torch.equal(seeded[0], full[0])
    idx = torch.tensor([K - 1, 0, K // 2, K // 3])
    assert torch.equal(seeded[idx], full[idx])
    if K > 1:
        assert torch.equal(seeded[1:].materialize(), full[1:])
        assert torch.equal(torch.cat(list(seeded[1:].blocks())), full[1:])


def test_kernel_on_the_fly_equals_stored_means():
    K, d = 2 * MEANS_BLOCK + 300, 5
    seeded, full = SeededMeans(K, d, 1.0, seed=3), random_means(K, d, 1.0, 3)
    x = torch.randn(40, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for chunk in (1000, MEANS_BLOCK, None):
        got = posterior_stats(x, seeded, None, 0.9, 0.5, chunk_size=chunk)
        check(got, reference(x, full, 0.9, 0.5), torch.float64)


def test_on_the_fly_mixture_scores_equal_stored_mixture():
    stored = random_mixture(9000, 6, sigma2=0.5, seed=2)
    lazy = random_mixture(9000, 6, sigma2=0.5, seed=2, on_the_fly=True)
    assert lazy.sq_norms is None and lazy.K == 9000 and lazy.d == 6
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    for t in (0.0, 0.5, 3.0):
        for u, v in zip(stored.score_pair(x, sigma_from_t(t)), lazy.score_pair(x, sigma_from_t(t))):
            torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(stored.guided(x, sigma_from_t(t), 2.0).score, lazy.guided(x, sigma_from_t(t), 2.0).score, rtol=1e-10, atol=1e-12)
    assert torch.equal(stored.bayes_is_target(x), lazy.bayes_is_target(x))
    assert torch.equal(stored.target_mean, lazy.target_mean)


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("n", [1, 100, 1024, 50_000, 10**6])
@pytest.mark.parametrize("budget", [2**16, 2**20, 256 * 2**20])
@pytest.mark.parametrize("cache", [None, 4 * 2**20])
def test_plan_respects_the_memory_budget(itemsize, n, budget, cache):
    plan = plan_chunks(n, 64, itemsize, budget_bytes=budget, cache=cache)
    assert 1 <= plan.row_block <= n and plan.class_chunk >= 1
    assert plan.row_block * plan.class_chunk * itemsize <= budget
    if cache is not None and budget >= cache:  # the logit tile fits the cache (or is the smallest allowed)
        assert plan.row_block * plan.class_chunk * itemsize <= max(cache, 128 * plan.row_block * itemsize)


def test_kernel_memory_does_not_grow_with_K():
    from cfglab.bench import peak_memory_mb

    N, d, budget = 256, 16, 4 * 2**20
    x = torch.randn(N, d, dtype=torch.float32)
    peaks = []
    for K in (4 * MEANS_BLOCK, 32 * MEANS_BLOCK):  # naive logits would need 32 MiB / 256 MiB
        seeded = SeededMeans(K, d, 1.0, seed=0, dtype=torch.float32)
        peak, _ = peak_memory_mb(lambda: posterior_stats(x, seeded, None, 0.5, 0.2, budget_bytes=budget), "cpu")
        if peak is None:
            pytest.skip("no RSS high-water mark on this platform")
        peaks.append(peak)
    bound = (budget + 2 * MEANS_BLOCK * d * 4) / 2**20 + 16  # tile + one regenerated block + slack
    assert max(peaks) < bound, (peaks, bound)


@pytest.mark.slow
def test_million_classes_at_d20(slow_scale):
    K = 10**6 if slow_scale == "full" else 2 * 10**5
    d, N = 20, 16
    model = random_mixture(K, d, sigma2=0.5, seed=1, on_the_fly=True, dtype=torch.float32)
    x = torch.randn(N, d, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    t = 0.3
    s_c, s_u, log_pi = model.score_pair(x, sigma_from_t(t))
    # independent two-pass reference in float64: per-block logsumexp, then combined
    g = model.gamma(t)
    a, b = math.exp(-t) / g, math.exp(-2 * t) / g
    lse, weighted = [], []
    for block in model.means.blocks():
        mu = block.double()
        logits = a * x.double() @ mu.T - 0.5 * b * (mu**2).sum(1)  # [N, rows]
        block_lse = torch.logsumexp(logits, 1)
        lse.append(block_lse)
        weighted.append(torch.exp(logits - block_lse[:, None]) @ mu)
    lse = torch.stack(lse)  # [blocks, N]
    total = torch.logsumexp(lse, 0)
    mean = (torch.exp(lse - total)[:, :, None] * torch.stack(weighted)).sum(0)
    torch.testing.assert_close(s_u.double(), -(x.double() - math.exp(-t) * mean) / g, rtol=2e-5, atol=2e-5)
    mu_c = model.target_mean.double()
    log_pi_ref = a * x.double() @ mu_c - 0.5 * b * mu_c @ mu_c - total
    torch.testing.assert_close(log_pi.double(), log_pi_ref, rtol=2e-5, atol=2e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x, means, log_w = problem(3000, 64, 16, torch.float32, seed=1)
    cpu = posterior_stats(x, means, None, 1.0, 0.5, log_w)
    gpu = posterior_stats(x.cuda(), means.cuda(), None, 1.0, 0.5, log_w.cuda())
    torch.testing.assert_close(gpu.mean.cpu(), cpu.mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gpu.log_norm.cpu(), cpu.log_norm, rtol=1e-5, atol=1e-4)


def test_kernel_threads_default_to_torch_and_leave_busy_cores_when_auto(monkeypatch):
    """Default: torch's count (runs repeat bit for bit). ``auto`` (docs/performance.md): cores
    minus the runnable tasks of other processes, never more than torch's count, at least 1."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(kernel_mod.os, "sched_getaffinity", lambda pid: set(range(4)))
    monkeypatch.delenv("CFGLAB_KERNEL_THREADS", raising=False)
    monkeypatch.setattr(kernel_mod, "_other_runnable", lambda: 3)
    assert kernel_mod.kernel_threads() == 8  # the load is ignored unless asked for
    for others, expected in [(0, 4), (1, 3), (3, 1), (50, 1)]:
        monkeypatch.setattr(kernel_mod, "_other_runnable", lambda others=others: others)
        with kernel_mod.fixed_threads("auto"):
            assert kernel_mod.kernel_threads() == expected, others
    monkeypatch.setenv("CFGLAB_KERNEL_THREADS", "auto")
    assert kernel_mod.kernel_threads() == 1
    with kernel_mod.fixed_threads(6):
        assert kernel_mod.kernel_threads() == 6
    monkeypatch.setenv("CFGLAB_KERNEL_THREADS", "2")
    assert kernel_mod.kernel_threads() == 2
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setenv("CFGLAB_KERNEL_THREADS", "auto")
    monkeypatch.setattr(kernel_mod, "_other_runnable", lambda: 0)
    assert kernel_mod.kernel_threads() == 1


def test_other_runnable_excludes_this_process():
    assert 0 <= kernel_mod._other_runnable() < 10_000


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_agrees_across_thread_counts_and_restores_torch_threads(dtype):
    """1 or 2 threads change only the BLAS blocking: agreement within the rounding tolerance."""
    x, means, log_w = problem(3000, 40, 16, dtype)
    before = torch.get_num_threads()
    with kernel_mod.fixed_threads(1):
        one = posterior_stats(x, means, None, 0.7, 0.5, log_w, chunk_size=512)
    with kernel_mod.fixed_threads(2):
        two = posterior_stats(x, means, None, 0.7, 0.5, log_w, chunk_size=512)
    assert torch.get_num_threads() == before
    check(one, reference(x, means, 0.7, 0.5, log_w), dtype)
    check(two, (one.mean.double(), one.log_norm.double(), None), dtype)


def test_kernel_tiling_ignores_the_load_aware_thread_count(monkeypatch):
    """The tile plan follows torch's thread count, not the count a call runs with, so a
    load-aware call (fewer threads) sums the classes in the same chunks as the default."""
    seen = []
    real = kernel_mod.plan_chunks
    monkeypatch.setattr(kernel_mod, "plan_chunks", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    monkeypatch.setattr(kernel_mod, "_l2_bytes", lambda: 2**16)  # a small cache, so the thread count shows
    x, means, _ = problem(5000, 64, 8, torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        posterior_stats(x, means, None, 0.7, 0.5)
        with kernel_mod.fixed_threads(1):
            posterior_stats(x, means, None, 0.7, 0.5)
    finally:
        torch.set_num_threads(before)
    assert seen[0].class_chunk == 2 * 2**16 // (64 * 4) and seen[1] == seen[0]
