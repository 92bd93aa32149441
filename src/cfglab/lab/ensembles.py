"""Gaussian-mixture ensembles with exact scores (docs/design.md).

Classes ``p(x|k) = N(μ_k, σ² I_d)``; under the OU process the class law at time t is
``N(e^{-t} μ_k, Γ(t) I)`` with ``Γ(t) = σ² e^{-2t} + Δ_t``.  Exact scores

.. math::
    s_c = -(x - e^{-t}\\mu_c)/\\Gamma, \\qquad
    s_u = -(x - e^{-t}\\textstyle\\sum_k \\pi_k \\mu_k)/\\Gamma, \\qquad
    s_w = s_c + w\\,(e^{-t}/\\Gamma)(\\mu_c - \\textstyle\\sum_k \\pi_k\\mu_k),

with ``π_k ∝ w_k exp(e^{-t} x·μ_k/Γ − e^{-2t}|μ_k|²/(2Γ))``.  The target class is index 0.
``score_cond`` / ``score_uncond`` / ``log_pi_target`` take the OU time t (closed forms); the
samplers' contract ``score_pair(x, σ)`` / ``guided(x, σ, w)`` takes the noise level σ.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from cfglab._validate import CfglabInputError, nonnegative, positive, positive_int
from cfglab.guidance.combine import GuidedScore, cfg_force, guided_score
from cfglab.lab.kernel import DEFAULT_BUDGET_BYTES, posterior_stats
from cfglab.noise import exponential_K, t_from_sigma

__all__ = [
    "GuidedScore",
    "GaussianMixture",
    "InfiniteClassMixture",
    "explicit_mixture",
    "random_mixture",
    "exponential_mixture",
    "infinite_class_mixture",
    "random_means",
    "SeededMeans",
    "exponential_K",
]

MEANS_BLOCK = 8192  # rows per seeded block of random means


def _gamma(sigma2: float, t: float) -> float:
    return sigma2 * math.exp(-2 * t) + (1 - math.exp(-2 * t))


@dataclass
class GaussianMixture:
    """Finite mixture of ``N(μ_k, σ² I)``; ``means[0]`` is the target class c."""

    means: torch.Tensor | SeededMeans  # [K, d], or regenerated on the fly from a seed
    sigma2: float
    log_weights: torch.Tensor | None = None  # [K], normalised; None = equal weights
    s2: float | None = None  # prior variance of the means, when random
    budget_bytes: int = DEFAULT_BUDGET_BYTES

    def __post_init__(self):
        self.sigma2 = positive("sigma2", self.sigma2)
        if isinstance(self.means, SeededMeans):  # on the fly: norms are computed per block
            self.sq_norms = None
            return
        if self.means.ndim != 2 or self.means.shape[0] < 1 or self.means.shape[1] < 1:
            raise CfglabInputError(f"means must have shape [K, d] with K, d >= 1, got {tuple(self.means.shape)}")
        if not torch.isfinite(self.means).all():
            raise CfglabInputError("means contain NaN or inf")
        self.sq_norms = (self.means**2).sum(dim=1)  # [K]

    def _dense_means(self) -> torch.Tensor:
        """All means as one [K, d] tensor (materialised when generated on the fly)."""
        return self.means if isinstance(self.means, torch.Tensor) else self.means.materialize()

    @property
    def K(self) -> int:
        return self.means.shape[0]

    @property
    def d(self) -> int:
        return self.means.shape[1]

    @property
    def target_mean(self) -> torch.Tensor:
        return self.means[0]

    def gamma(self, t: float) -> float:
        """Per-coordinate variance Γ(t) = σ² e^{-2t} + 1 − e^{-2t} of each noised class."""
        return _gamma(self.sigma2, t)

    def _target_logit(self, x: torch.Tensor, a: float, b: float) -> torch.Tensor:
        mu_c = self.target_mean  # [d]
        logit_c = a * (x @ mu_c) - 0.5 * b * (mu_c @ mu_c)  # [N]
        return logit_c if self.log_weights is None else logit_c + self.log_weights[0]

    def _posterior(self, x: torch.Tensor, t: float):
        g = self.gamma(t)
        a, b = math.exp(-t) / g, math.exp(-2 * t) / g
        stats = posterior_stats(x, self.means, self.sq_norms, a, b, self.log_weights, budget_bytes=self.budget_bytes)
        return stats, self._target_logit(x, a, b)

    def posterior_weights(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Full posterior ``π_k(x, t)``, shape [N, K] (small K only)."""
        g = self.gamma(t)
        means = self._dense_means()
        logits = (math.exp(-t) / g) * x @ means.T - 0.5 * math.exp(-2 * t) / g * (means**2).sum(dim=1)
        if self.log_weights is not None:
            logits = logits + self.log_weights
        return torch.softmax(logits, dim=1)

    def log_pi_target(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``log π_c(x, t)`` of the target class, shape [N]."""
        stats, logit_c = self._posterior(x, t)
        return logit_c - stats.log_norm

    def bayes_is_target(self, x: torch.Tensor) -> torch.Tensor:
        """Whether the Bayes class at t = 0 is the target, shape [N] (bool)."""
        if self.K == 1:
            return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        a = b = 1 / self.sigma2
        others = slice(1, None)  # compare against the best non-target class, not a rounded max
        log_w = None if self.log_weights is None else self.log_weights[others]
        sq = None if self.sq_norms is None else self.sq_norms[others]
        stats = posterior_stats(x, self.means[others], sq, a, b, log_w, budget_bytes=self.budget_bytes,
                                track_max=True)
        return self._target_logit(x, a, b) > stats.max_logit

    def score_cond(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Conditional score ``s_c(x, t)``, shape [N, d]."""
        return -(x - math.exp(-t) * self.means[0]) / self.gamma(t)

    def score_uncond(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Unconditional (mixture) score ``s_u(x, t)``, shape [N, d]."""
        stats, _ = self._posterior(x, t)
        return -(x - math.exp(-t) * stats.mean) / self.gamma(t)

    def score_pair(self, x: torch.Tensor, sigma: float):
        """``(s_c, s_u, log π_c)`` at noise level σ (the samplers' contract, docs/design.md), from
        one pass of the chunked kernel; x is the OU state at t(σ)."""
        t = t_from_sigma(sigma)
        stats, logit_c = self._posterior(x, t)
        s_c = self.score_cond(x, t)
        s_u = -(x - math.exp(-t) * stats.mean) / self.gamma(t)
        return s_c, s_u, logit_c - stats.log_norm

    def guided(self, x: torch.Tensor, sigma: float, w: float) -> GuidedScore:
        """Guided score ``s_w = s_c + w (s_c − s_u)`` at noise level σ and its parts (docs/design.md)."""
        s_c, s_u, log_pi = self.score_pair(x, sigma)
        return guided_score(s_c, cfg_force(s_c, s_u, w), log_pi)

    def log_prob(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Marginal log-density of the noised mixture at time t, shape [N]."""
        g = self.gamma(t)
        logw = self.log_weights if self.log_weights is not None else torch.full(
            (self.K,), -math.log(self.K), dtype=x.dtype, device=x.device
        )
        sq = torch.cdist(x, math.exp(-t) * self._dense_means()) ** 2  # [N, K]
        return torch.logsumexp(logw - 0.5 * sq / g, dim=1) - 0.5 * self.d * math.log(2 * math.pi * g)

    def sample_target(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact draws from the target conditional ``N(μ_c, σ² I)``, shape [n, d]."""
        z = torch.randn(n, self.d, generator=generator, dtype=self.means.dtype, device=self.means.device)
        return self.means[0] + math.sqrt(self.sigma2) * z


@dataclass
class InfiniteClassMixture:
    """Infinite-class limit (docs/design.md): ``p(x) = N(0, (s² + σ²) I)``, target ``N(μ_c, σ² I)``.

    Both scores are linear in x, so the guided dynamics is solvable in closed form
    (``cfglab.theory.gaussian``).
    """

    target_mean: torch.Tensor  # [d]
    sigma2: float
    s2: float = 1.0

    def __post_init__(self):
        self.sigma2 = positive("sigma2", self.sigma2)
        self.s2 = positive("s2", self.s2)

    K = math.inf

    @property
    def d(self) -> int:
        return self.target_mean.shape[0]

    def gamma(self, t: float) -> float:
        return _gamma(self.sigma2, t)

    def score_cond(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return -(x - math.exp(-t) * self.target_mean) / self.gamma(t)

    def score_uncond(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return -x / _gamma(self.s2 + self.sigma2, t)

    def score_pair(self, x: torch.Tensor, sigma: float):
        """``(s_c, s_u, None)`` at noise level σ: both scores are linear; no target posterior exists."""
        t = t_from_sigma(sigma)
        return self.score_cond(x, t), self.score_uncond(x, t), None

    def guided(self, x: torch.Tensor, sigma: float, w: float) -> GuidedScore:
        s_c, s_u, _ = self.score_pair(x, sigma)
        return guided_score(s_c, cfg_force(s_c, s_u, w), None)

    def sample_target(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.d, generator=generator, dtype=self.target_mean.dtype, device=self.target_mean.device)
        return self.target_mean + math.sqrt(self.sigma2) * z


def random_means(K: int, d: int, s2: float, seed: int, *, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """``K`` i.i.d. means ``N(0, s² I_d)``, shape [K, d].

    Generated in seeded blocks of ``MEANS_BLOCK`` rows (block j uses seed ``(seed, j)``), so
    any block can be regenerated on its own and the result is the same for every chunking.
    Memory: the [K, d] result plus one draw chunk (:func:`_seeded_block`), whatever K is.
    """
    out = torch.empty(K, d, dtype=dtype, device=device)  # [K, d]
    for j, start in enumerate(range(0, K, MEANS_BLOCK)):
        rows = min(MEANS_BLOCK, K - start)
        _seeded_block(out[start : start + rows], _block_seed(seed, j))
    return out.mul_(math.sqrt(s2))


DRAW_CHUNK = 2**20  # normal draws per call of torch.randn (a multiple of 16), bounds the scratch memory


def _seeded_block(out: torch.Tensor, block_seed: int) -> torch.Tensor:
    """Fill ``out`` [rows, d] with the first rows of the seeded [MEANS_BLOCK, d] normal block.

    On the CPU, torch draws normals from one uniform stream, transformed 16 at a time
    (Box–Muller on 16-value groups), so successive ``randn`` calls whose sizes are multiples
    of 16 reproduce a prefix of one large draw bit for bit (checked in ``tests/test_kernel.py``).
    That lets a block be drawn in ``DRAW_CHUNK`` pieces and only as far as ``rows`` reaches,
    instead of ``MEANS_BLOCK · d`` values whatever K is.  Other devices draw the full block.
    """
    rows, d = out.shape
    g = torch.Generator(device=out.device).manual_seed(block_seed)
    if out.device.type != "cpu":  # no prefix guarantee: always draw a full block
        out.copy_(torch.randn(MEANS_BLOCK, d, generator=g, dtype=out.dtype, device=out.device)[:rows])
        return out
    flat, n = out.view(-1), rows * d
    n_draw = max(16, -(-n // 16) * 16)  # whole 16-value groups, at least one
    for a in range(0, n_draw, DRAW_CHUNK):
        z = torch.randn(min(DRAW_CHUNK, n_draw - a), generator=g, dtype=out.dtype)  # [≤ DRAW_CHUNK]
        m = min(z.numel(), n - a)
        flat[a : a + m] = z[:m]
    return out


@dataclass(frozen=True)
class SeededMeans:
    """The means of :func:`random_means`, regenerated block by block instead of stored.

    Bit-identical to ``random_means(K, d, s2, seed)``; lets the kernel run with K beyond
    memory at the cost of regenerating every ``MEANS_BLOCK``-row block on each pass
    (at most ``MEANS_BLOCK·d`` normal draws per block).  ``offset`` hides the first rows
    (``means[1:]`` is a view).  Indexing with an int or an index tensor gives rows.
    """

    K: int
    d: int
    s2: float
    seed: int
    dtype: torch.dtype = torch.float64
    device: str | torch.device = "cpu"
    offset: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.K - self.offset, self.d)

    def block(self, j: int) -> torch.Tensor:
        """Block ``j`` of the full matrix (rows ``j·MEANS_BLOCK`` onward), shape [rows, d]."""
        rows = min(MEANS_BLOCK, self.K - j * MEANS_BLOCK)
        z = torch.empty(rows, self.d, dtype=self.dtype, device=self.device)  # [rows, d]
        return _seeded_block(z, _block_seed(self.seed, j)).mul_(math.sqrt(self.s2))

    def blocks(self) -> Iterator[torch.Tensor]:
        """The visible rows in order, one seeded block at a time; each [rows, d]."""
        first = self.offset // MEANS_BLOCK
        for j in range(first, -(-self.K // MEANS_BLOCK)):
            block = self.block(j)
            yield block[self.offset - j * MEANS_BLOCK :] if j == first else block

    def materialize(self) -> torch.Tensor:
        """All visible rows as one tensor [K − offset, d]."""
        return torch.cat(list(self.blocks()))

    @functools.cached_property
    def _first_row(self) -> torch.Tensor:
        return self._rows(torch.tensor([0]))[0]

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.to("cpu").reshape(-1) + self.offset  # [n] absolute rows
        out = torch.empty(idx.shape[0], self.d, dtype=self.dtype, device=self.device)
        for j in torch.unique(idx // MEANS_BLOCK).tolist():
            hit = (idx // MEANS_BLOCK == j).nonzero().squeeze(1)
            out[hit.to(out.device)] = self.block(j)[(idx[hit] - j * MEANS_BLOCK).to(out.device)]
        return out

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step in (None, 1) and key.stop is None:
            return replace(self, offset=self.offset + (key.start or 0))
        if isinstance(key, int):
            return self._first_row if key == 0 else self._rows(torch.tensor([key]))[0]
        return self._rows(torch.as_tensor(key))


def _block_seed(seed: int, block: int) -> int:
    return (seed * 0x9E3779B97F4A7C15 + block * 0xBF58476D1CE4E5B9 + 1) % (2**63 - 1)


def _check_fits(K: int, d: int, itemsize: int, budget_bytes: int) -> None:
    need = K * d * itemsize
    if need > budget_bytes:
        raise CfglabInputError(
            f"K={K} classes at d={d} need {need / 2**30:.2f} GiB of means, over the memory budget "
            f"of {budget_bytes / 2**30:.2f} GiB (raise --memory-gb or lower alpha/d)"
        )


def _kernel_budget(memory_bytes: int) -> int:
    """The kernel's tile memory: its default, or a quarter of a smaller memory budget."""
    return max(1, min(DEFAULT_BUDGET_BYTES, memory_bytes // 4))


def explicit_mixture(means, sigma2: float, weights=None, *, dtype=torch.float64, device="cpu") -> GaussianMixture:
    """Mixture with user-given means [K, d] (row 0 is the target) and optional weights [K]."""
    means = torch.as_tensor(means, dtype=dtype, device=device)
    log_w = None
    if weights is not None:
        w = torch.as_tensor(weights, dtype=dtype, device=device)
        if w.shape != (means.shape[0],) or not torch.isfinite(w).all() or (w <= 0).any():
            raise CfglabInputError(f"weights must be {means.shape[0]} positive finite numbers, got {weights!r}")
        log_w = torch.log(w / w.sum())
    return GaussianMixture(means, sigma2, log_w)


def random_mixture(
    K: int, d: int, sigma2: float, s2: float = 1.0, *, seed: int = 0, dtype=torch.float64, device="cpu",
    memory_bytes: int = 4 * 2**30, on_the_fly: bool = False,
) -> GaussianMixture:
    """``K`` classes with means ``N(0, s² I_d)`` (seeded); class 0 is the target.

    ``on_the_fly=True`` stores no means: each score pass regenerates them block by block
    (:class:`SeededMeans`, same numbers), so K is not limited by ``memory_bytes``.
    """
    K, d = positive_int("K", K), positive_int("d", d)
    s2 = nonnegative("s2", s2)
    if on_the_fly:
        return GaussianMixture(SeededMeans(K, d, s2, seed, dtype=dtype, device=device), sigma2, s2=s2,
                               budget_bytes=_kernel_budget(memory_bytes))
    _check_fits(K, d, torch.empty((), dtype=dtype).element_size(), memory_bytes)
    means = random_means(K, d, s2, seed, dtype=dtype, device=device)
    return GaussianMixture(means, sigma2, s2=s2, budget_bytes=_kernel_budget(memory_bytes))


def exponential_mixture(
    alpha: float, d: int, sigma2: float, s2: float = 1.0, *, seed: int = 0, dtype=torch.float64, device="cpu",
    memory_bytes: int = 4 * 2**30, on_the_fly: bool = False,
) -> GaussianMixture:
    """``K = ceil(e^{α d})`` random classes (the paper's exponential regime)."""
    alpha = positive("alpha", alpha)
    d = positive_int("d", d)
    return random_mixture(exponential_K(alpha, d), d, sigma2, s2, seed=seed, dtype=dtype, device=device,
                          memory_bytes=memory_bytes, on_the_fly=on_the_fly)


def infinite_class_mixture(
    d: int, sigma2: float, s2: float = 1.0, *, seed: int = 0, dtype=torch.float64, device="cpu"
) -> InfiniteClassMixture:
    """Infinite-class limit at dimension d; the target mean is one draw of ``N(0, s² I)``."""
    d = positive_int("d", d)
    s2 = positive("s2", s2)
    mu_c = random_means(1, d, s2, seed, dtype=dtype, device=device)[0]
    return InfiniteClassMixture(mu_c, sigma2, s2)
