"""Fused, chunked posterior kernel for spherical Gaussian mixtures (docs/design.md, docs/performance.md).

For class logits ``ℓ_k(x) = a x·μ_k − (b/2)|μ_k|² + log w_k`` this computes the posterior
mean ``Σ_k π_k μ_k`` (π = softmax ℓ), ``log Σ_k e^{ℓ_k}`` and ``max_k ℓ_k`` with an online
log-sum-exp over class chunks: the exact unconditional score of the paper's mixtures
(``s_u = −(x − e^{−t} Σ π_k μ_k)/Γ``) at ~``4 N K d`` flops and memory independent of K.

Per tile of ``R`` points × ``C`` classes (one ``[R, C]`` buffer sized to stay in cache), in
base-2 units (``ℓ₂ = ℓ log₂e``, so the exponential is ``exp2``: 4-5x faster than ``exp`` on
this CPU and within 0.6 ulp, docs/performance.md "Base-2 logits"):

1. one GEMM ``[a x, −b/2, (1), −m]·log₂e · [μ, |μ|², (log w), 1]ᵀ`` gives the shifted logits
   ``ℓ₂ − m`` directly (bias, weights and the running shift ``m`` folded into the product);
2. ``clamp_`` to ``[floor, τ]`` and an in-place ``exp2_``, then a row sum; a row sum below
   ``2^τ`` proves nothing was clamped from above, otherwise (rare) the tile is recomputed
   with its row max and the shift moved (lazy rescaling: only when a row's logits exceed the
   shift by more than ``τ``), so ``exp2`` never overflows;
3. the GEMM ``acc += 2^{ℓ₂−m} μ`` (``addmm`` into the accumulator).

The first chunk, CUDA tiles and ``track_max=True`` always take the row max (exact
``max_k ℓ_k``).  Problems that fit one tile use a direct path (base-2 logits, row max, ``exp2``, one GEMM).
Class means come from a ``[K, d]`` tensor or from any object with ``K``, ``d`` and
``blocks()`` yielding ``[rows, d]`` tensors in order (e.g. means regenerated on the fly from a
counter-based seed, :class:`cfglab.lab.ensembles.SeededMeans`), so K may exceed memory.
The code is device-agnostic (CPU and CUDA); on CUDA the tests that would need a host sync
are replaced by an unconditional (cheap, on-device) row max and shift.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = [
    "PosteriorStats", "KernelPlan", "MeansBlocks", "posterior_stats", "plan_chunks", "chunk_size_for",
    "cache_bytes", "DEFAULT_BUDGET_BYTES", "kernel_threads", "fixed_threads",
]

DEFAULT_BUDGET_BYTES = 256 * 2**20  # cap on the kernel's per-tile working memory
_MIN_CHUNK = 128  # below this many classes per GEMM, BLAS efficiency drops
_MAX_ROWS = 4096  # row-block cap on CPU (larger batches are tiled)
_LN2 = math.log(2.0)
_LOG2E = 1.0 / _LN2
# Thresholds in base-2 units.  Lazy-rescale cap: 2^{ℓ₂ − m} ≤ 2^τ (e^16.6 / e^63.8).
_TAU = {torch.float32: 24.0, torch.float64: 92.0}
# exp2 of inputs below -126 (float32) / -1022 (float64) yields subnormals (a ~4x slower path,
# measured, which also stalls the next GEMM); the largest term of every row is ≥ 1 after the
# first chunk, so terms below 2^floor (e^-59.6 / e^-599.6 of it) are clamped there instead.
_FLOOR = {torch.float32: -86.0, torch.float64: -865.0}


class MeansBlocks(Protocol):
    """Class means produced block by block (K may exceed memory)."""

    K: int
    d: int

    def blocks(self) -> Iterator[torch.Tensor]:  # yields [rows, d], rows summing to K
        ...


@dataclass(frozen=True)
class PosteriorStats:
    """Summary of the class posterior at a batch of points."""

    mean: torch.Tensor  # [N, d]  Σ_k π_k μ_k
    log_norm: torch.Tensor  # [N]  log Σ_k exp ℓ_k
    max_logit: torch.Tensor | None  # [N]  max_k ℓ_k (when asked for: ``track_max=True``)


@dataclass(frozen=True)
class KernelPlan:
    """Tiling of the kernel: ``row_block`` points × ``class_chunk`` classes per tile."""

    row_block: int
    class_chunk: int
    work_bytes: int  # bytes of the per-tile temporaries (logit tile + augmented means)


@functools.lru_cache(maxsize=None)
def _l2_bytes() -> int:
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
            text = f.read().strip().upper()
        scale = {"K": 2**10, "M": 2**20}.get(text[-1], 1)
        return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        return 2**20


def cache_bytes(device: torch.device | str = "cpu") -> int | None:
    """Cache the logit tile should fit: L2 per core × torch threads on CPU; None on GPUs."""
    if torch.device(device).type != "cpu":
        return None
    override = os.environ.get("CFGLAB_CACHE_BYTES")
    return int(override) if override else _l2_bytes() * torch.get_num_threads()


def chunk_size_for(n: int, itemsize: int, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> int:
    """Largest class chunk whose two ``[n, chunk]`` work arrays fit in ``budget_bytes``."""
    return max(1, budget_bytes // (2 * max(n, 1) * itemsize))


def plan_chunks(
    n: int, d: int, itemsize: int, *, budget_bytes: int = DEFAULT_BUDGET_BYTES,
    cache: int | None = None, device: torch.device | str = "cpu",
) -> KernelPlan:
    """Tile sizes: the ``[R, C]`` logit tile fits the cache (CPU) and always the budget.

    On CPU, ``R = min(n, 4096)`` and ``C ≈ cache / (R · itemsize)`` (at least 128), so the
    three passes over the tile hit L2; ``cache`` defaults to :func:`cache_bytes` of the
    device, which is None on a GPU, where the tile is as large as the budget allows.
    ``budget_bytes`` bounds the tile whatever K is.
    """
    cache = cache_bytes(device) if cache is None else cache
    rows = max(1, n if cache is None else min(n, _MAX_ROWS))
    target = budget_bytes if cache is None else min(cache, budget_bytes)
    chunk = max(_MIN_CHUNK, target // (rows * itemsize))
    while rows > 1 and rows * chunk * itemsize > budget_bytes:  # a tiny budget shrinks the rows
        rows = max(1, rows // 2)
    chunk = max(1, min(chunk, budget_bytes // (rows * itemsize)))
    return KernelPlan(rows, chunk, (rows * chunk + chunk * (d + 3)) * itemsize)


def _class_chunks(
    means: torch.Tensor | MeansBlocks, sq_norms: torch.Tensor | None, log_weights: torch.Tensor | None, chunk: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Yield ``(μ [c, d], |μ|² [c], log w [c] | None)`` in class order."""
    given = isinstance(means, torch.Tensor) and sq_norms is not None
    blocks = (means,) if isinstance(means, torch.Tensor) else means.blocks()
    start = 0
    for block in blocks:  # [rows, d]
        for s in range(0, block.shape[0], chunk):
            mu = block[s : s + chunk]  # [c, d]
            k0, k1 = start + s, start + s + mu.shape[0]
            sq = sq_norms[k0:k1] if given else (mu * mu).sum(dim=1)
            yield mu, sq, None if log_weights is None else log_weights[k0:k1]
        start += block.shape[0]


class _RowBlock:
    """Online log-sum-exp state of one block of R points (views into the full arrays)."""

    def __init__(self, xa: torch.Tensor, shift: torch.Tensor, sums: torch.Tensor, acc: torch.Tensor,
                 best: torch.Tensor | None, tile: torch.Tensor):
        self.xa, self.shift, self.sums, self.acc, self.best = xa, shift, sums, acc, best  # [R, ·]
        self.tile = tile  # [R, C] logit buffer, reused for every chunk
        dtype = xa.dtype
        self.tau, self.floor = _TAU.get(dtype, 8.0), _FLOOR.get(dtype, -10.0)
        self.cap = 2.0**self.tau
        # optimistic pass (no row max) on CPU when the exact max is not wanted
        self.optimistic = _lazy_rescale(xa.device) and best is None

    def update(self, mu: torch.Tensor, aug: torch.Tensor, first: bool) -> None:
        """Fold the classes ``mu`` [c, d] (augmented: ``aug`` [c, d+e]) into the state."""
        rows, c = self.tile.shape[0], mu.shape[0]
        tile = self.tile if c == self.tile.shape[1] else self.tile.view(-1)[: rows * c].view(rows, c)  # [R, c]
        torch.mm(self.xa, aug.T, out=tile)  # ℓ₂ − m
        if first or not self.optimistic or not self._exp_within_cap(tile):
            self._exp_with_max(tile, aug, first)
        torch.addmm(self.acc, tile, mu, out=self.acc)  # [R, d]

    def _exp_within_cap(self, tile: torch.Tensor) -> bool:
        """``exp2`` clamped to ``[2^floor, 2^τ]``; True (and summed) if no entry reached 2^τ."""
        tile.clamp_(self.floor, self.tau).exp2_()
        part = tile.sum(dim=1)  # [R]; < 2^τ proves no entry was clamped from above
        if part.max().item() >= self.cap:
            return False
        self.sums.add_(part)
        return True

    def _exp_with_max(self, tile: torch.Tensor, aug: torch.Tensor, first: bool) -> None:
        """Row max first; move the shift where it is exceeded by more than τ; then exp and sum."""
        if not first and self.optimistic:  # the optimistic pass overwrote the logits: recompute
            torch.mm(self.xa, aug.T, out=tile)
        r = tile.amax(dim=1)  # [R]
        if self.best is not None:
            torch.maximum(self.best, self.shift + r, out=self.best)
        if first:
            self._rescale(tile, r, fresh=True)
        elif not _lazy_rescale(tile.device) or r.max().item() > self.tau:
            self._rescale(tile, torch.where(r > self.tau, r, 0.0))
        tile.clamp_(min=self.floor).exp2_()
        self.sums.add_(tile.sum(dim=1))

    def _rescale(self, tile: torch.Tensor, delta: torch.Tensor, fresh: bool = False) -> None:
        """Move the shift of each row by ``delta`` [R] and rescale what was summed (if anything)."""
        tile.sub_(delta.unsqueeze(1))
        self.shift.add_(delta)
        self.xa[:, -1].sub_(delta)
        if fresh:  # nothing summed yet (and e^{-delta} may overflow for a negative first max)
            return
        scale = torch.exp2(-delta)  # [R], ≤ 1
        self.sums.mul_(scale)
        self.acc.mul_(scale.unsqueeze(1))


# ----------------------------------------------------------------------- threads under load
# The kernel runs ~5 OpenMP regions per tile; with more runnable tasks than cores each region
# waits for a descheduled thread (4-20x slower, docs/performance.md).  So every call uses at
# most the cores no other runnable task holds.  CFGLAB_KERNEL_THREADS=N (or fixed_threads(N))
# fixes the count instead.
_FIXED: contextvars.ContextVar[int | str | None] = contextvars.ContextVar("cfglab_kernel_threads", default=None)
_PROBE_SECONDS = 1.0  # how long one look at the machine's load is reused
_probe_cache: list[float] = [-math.inf, 0.0]  # [time, other runnable tasks]


@contextlib.contextmanager
def fixed_threads(n: int | str | None):
    """Within the block, kernel calls use ``n`` threads (``"auto"``: the load-aware choice; None: the default)."""
    token = _FIXED.set(n)
    try:
        yield
    finally:
        _FIXED.reset(token)


def _other_runnable() -> int:
    """Runnable tasks of other processes right now (/proc/loadavg less this process's running threads)."""
    now = time.monotonic()
    if now - _probe_cache[0] < _PROBE_SECONDS:
        return int(_probe_cache[1])
    try:
        running = int(open("/proc/loadavg").read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                stat = open(f"/proc/self/task/{tid}/stat").read()
                own += stat[stat.rindex(")") + 2] == "R"
    except (OSError, ValueError, IndexError):
        running, own = 0, 0
    _probe_cache[:] = [now, max(0, running - own)]
    return int(_probe_cache[1])


def kernel_threads() -> int:
    """Threads for one CPU kernel call (docs/performance.md, "Threads on a shared machine").

    By default torch's thread count, so that a run repeats bit for bit (BLAS blocking, hence
    the last bits, depend on the thread count).  ``CFGLAB_KERNEL_THREADS=N`` or
    ``fixed_threads(N)`` fix it; ``"auto"`` caps torch's count by the cores that other runnable
    tasks leave free (at least 1), which avoids the collapse of a loaded machine at the price
    of results that may differ between runs in the last bits.
    """
    choice = _FIXED.get()
    if choice is None:
        env = os.environ.get("CFGLAB_KERNEL_THREADS", "").strip().lower()
        choice = int(env) if env.isdigit() else ("auto" if env == "auto" else None)
    want = torch.get_num_threads()
    if isinstance(choice, int):
        return max(1, choice)
    if choice != "auto" or want == 1:
        return want
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(want, cores - _other_runnable()))


@contextlib.contextmanager
def _thread_share(device: torch.device):
    """Run the block with :func:`kernel_threads` torch threads (CPU only), then restore."""
    before = torch.get_num_threads()
    use = kernel_threads() if device.type == "cpu" else before
    if use != before:
        torch.set_num_threads(use)
    try:
        yield
    finally:
        if use != before:
            torch.set_num_threads(before)


def _lazy_rescale(device: torch.device) -> bool:
    """Test for a needed rescale on the host (CPU), or always shift on device (no sync)."""
    return device.type == "cpu"


def _augment(mu: torch.Tensor, sq: torch.Tensor, lw: torch.Tensor | None, buf: torch.Tensor) -> torch.Tensor:
    """``[μ, |μ|², (log w), 1]`` of one chunk, written into ``buf`` [C, d+e]; shape [c, d+e]."""
    c = mu.shape[0]
    aug = buf[:c] if c < buf.shape[0] else buf
    parts = (mu, sq.unsqueeze(1)) + (() if lw is None else (lw.unsqueeze(1),))
    torch.cat(parts + (_ones(c, buf),), dim=1, out=aug)
    return aug


def _ones(c: int, like: torch.Tensor) -> torch.Tensor:
    return torch.ones(1, 1, dtype=like.dtype, device=like.device).expand(c, 1)


def posterior_stats(
    x: torch.Tensor,
    means: torch.Tensor | MeansBlocks,
    sq_norms: torch.Tensor | None,
    a: float,
    b: float,
    log_weights: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
    row_block: int | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    track_max: bool = False,
) -> PosteriorStats:
    """Posterior mean of μ, log-normaliser and max logit by an online log-sum-exp (docs/design.md, docs/performance.md).

    Parameters
    ----------
    x : [N, d] points.
    means : [K, d] class means, or a :class:`MeansBlocks` producing them block by block.
    sq_norms : [K] squared norms ``|μ_k|²``, or None to compute them per chunk.
    a, b : logit coefficients (``a = e^{-t}/Γ``, ``b = e^{-2t}/Γ`` for the OU process).
    log_weights : [K] log class weights, or None for equal weights (constant dropped).
    chunk_size, row_block : tile size (classes × points); default from :func:`plan_chunks`.
    budget_bytes : cap on the per-tile working memory (independent of K).
    track_max : also return the exact ``max_k ℓ_k`` (one more pass over each tile).

    Returns
    -------
    PosteriorStats with ``mean`` [N, d], ``log_norm`` [N] and ``max_logit`` [N] (None unless
    ``track_max``).

    On CPU the call uses :func:`kernel_threads` threads (at most the cores left free by other
    runnable tasks).
    """
    cache = cache_bytes(x.device)  # from torch's thread count: the tiling (hence the bits) ignores the load
    with _thread_share(x.device):
        return _posterior_stats(x, means, sq_norms, a, b, log_weights, chunk_size, row_block, budget_bytes,
                                track_max, cache)


def _posterior_stats(x, means, sq_norms, a, b, log_weights, chunk_size, row_block, budget_bytes, track_max, cache):
    n, d = x.shape
    plan = plan_chunks(n, d, x.element_size(), budget_bytes=budget_bytes, cache=cache, device=x.device)
    chunk, rows = chunk_size or plan.class_chunk, min(n, row_block or plan.row_block)
    if isinstance(means, torch.Tensor) and means.shape[0] <= chunk and rows == n:
        return _single_tile(x, means, sq_norms, a, b, log_weights, track_max)
    e = 3 if log_weights is not None else 2
    opts = dict(dtype=x.dtype, device=x.device)
    xa = torch.empty(n, d + e, **opts)  # [N, d+e] = [a x, −b/2, (1)]·log₂e, −m (base 2)
    torch.mul(x, a * _LOG2E, out=xa[:, :d])
    xa[:, d], xa[:, d + 1 :], xa[:, -1] = -0.5 * b * _LOG2E, _LOG2E, 0.0
    shift, sums = torch.zeros(n, **opts), torch.zeros(n, **opts)
    best = torch.full((n,), -torch.inf, **opts) if track_max else None
    acc = torch.zeros(n, d, **opts)  # [N, d]  Σ 2^{ℓ₂−m} μ
    work = torch.empty(rows, chunk, **opts)  # one [R, C] tile, shared by the row blocks
    blocks = [
        _RowBlock(xa[r:r + rows], shift[r:r + rows], sums[r:r + rows], acc[r:r + rows],
                  None if best is None else best[r:r + rows], work[: min(rows, n - r)])
        for r in range(0, n, rows)
    ]
    buf = torch.empty(chunk, d + e, **opts)  # [C, d+e]
    for i, (mu, sq, lw) in enumerate(_class_chunks(means, sq_norms, log_weights, chunk)):
        aug = _augment(mu, sq, lw, buf)  # [c, d+e]
        for block in blocks:
            block.update(mu, aug, first=i == 0)
    return PosteriorStats(mean=acc / sums.unsqueeze(1), log_norm=torch.log(sums).add_(shift, alpha=_LN2),
                          max_logit=None if best is None else best * _LN2)


def _single_tile(
    x: torch.Tensor, means: torch.Tensor, sq_norms: torch.Tensor | None, a: float, b: float,
    log_weights: torch.Tensor | None, track_max: bool,
) -> PosteriorStats:
    """The whole problem is one tile: base-2 logits, row max, one in-place ``exp2``, one GEMM (fewest ops)."""
    sq = (means * means).sum(dim=1) if sq_norms is None else sq_norms  # [K]
    bias = -0.5 * b * sq if log_weights is None else log_weights - 0.5 * b * sq  # [K]
    logits = torch.addmm(bias, x, means.T, beta=_LOG2E, alpha=a * _LOG2E)  # [N, K]  ℓ₂
    top = logits.amax(dim=1)  # [N]
    weights = logits.sub_(top.unsqueeze(1)).clamp_(min=_FLOOR.get(x.dtype, -10.0)).exp2_()  # [N, K]  2^{ℓ₂ − max}
    total = weights.sum(dim=1)  # [N], ≥ 1
    mean = (weights @ means).div_(total.unsqueeze(1))  # [N, d]
    log_norm = torch.log(total).add_(top, alpha=_LN2)  # [N]
    return PosteriorStats(mean=mean, log_norm=log_norm, max_logit=top * _LN2 if track_max else None)
