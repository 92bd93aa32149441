"""Chunked posterior kernel for spherical Gaussian mixtures (SPEC §3, §9).

For class logits ``ℓ_k(x) = a x·μ_k − (b/2)|μ_k|² + log w_k`` this computes, with an online
log-sum-exp over class chunks, the posterior-weighted mean ``Σ_k π_k μ_k`` (π = softmax ℓ),
``log Σ_k e^{ℓ_k}`` and ``max_k ℓ_k``.  Memory is ``O(N·chunk + N·d)``, independent of K.
Cost: two GEMMs (``x μᵀ`` and ``π μ``) plus ``N·K`` exponentials, ~``4 N K d`` flops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PosteriorStats", "posterior_stats", "chunk_size_for", "DEFAULT_BUDGET_BYTES"]

DEFAULT_BUDGET_BYTES = 256 * 2**20  # working memory for one chunk of logits


@dataclass(frozen=True)
class PosteriorStats:
    """Summary of the class posterior at a batch of points."""

    mean: torch.Tensor  # [N, d]  Σ_k π_k μ_k
    log_norm: torch.Tensor  # [N]  log Σ_k exp ℓ_k
    max_logit: torch.Tensor  # [N]  max_k ℓ_k


def chunk_size_for(n: int, itemsize: int, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> int:
    """Largest class chunk whose two ``[n, chunk]`` work arrays fit in ``budget_bytes``."""
    return max(1, budget_bytes // (2 * max(n, 1) * itemsize))


def posterior_stats(
    x: torch.Tensor,
    means: torch.Tensor,
    sq_norms: torch.Tensor,
    a: float,
    b: float,
    log_weights: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
) -> PosteriorStats:
    """Posterior mean of μ and log-normaliser by an online log-sum-exp over class chunks.

    Parameters
    ----------
    x : [N, d] points.
    means : [K, d] class means.
    sq_norms : [K] squared norms ``|μ_k|²``.
    a, b : logit coefficients (``a = e^{-t}/Γ``, ``b = e^{-2t}/Γ`` for the OU process).
    log_weights : [K] log class weights, or None for equal weights (constant dropped).
    """
    n, d = x.shape
    k = means.shape[0]
    chunk = chunk_size or chunk_size_for(n, x.element_size())
    run_max = torch.full((n,), -torch.inf, dtype=x.dtype, device=x.device)  # [N]
    run_sum = torch.zeros(n, dtype=x.dtype, device=x.device)  # [N]
    acc = torch.zeros(n, d, dtype=x.dtype, device=x.device)  # [N, d]
    for start in range(0, k, chunk):
        mu = means[start : start + chunk]  # [C, d]
        bias = -0.5 * b * sq_norms[start : start + chunk]  # [C]
        if log_weights is not None:
            bias = bias + log_weights[start : start + chunk]
        logits = torch.addmm(bias.unsqueeze(0), x, mu.T, alpha=a)  # [N, C]
        new_max = torch.maximum(run_max, logits.amax(dim=1))  # [N]
        scale = torch.exp(run_max - new_max)  # [N]
        p = torch.exp(logits - new_max.unsqueeze(1))  # [N, C]
        run_sum = run_sum * scale + p.sum(dim=1)
        acc = torch.addmm(acc * scale.unsqueeze(1), p, mu)
        run_max = new_max
    return PosteriorStats(mean=acc / run_sum.unsqueeze(1), log_norm=run_max + torch.log(run_sum), max_logit=run_max)
