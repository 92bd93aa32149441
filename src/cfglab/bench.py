"""Benchmark of the exact-score kernel against the GEMM peak and two peers (docs/performance.md).

On the same inputs, in one run, with interleaved repeats so that every method sees the same
machine load: the GEMM peak (``torch.matmul``), cfglab's fused kernel
(:func:`cfglab.lab.kernel.posterior_stats`, means stored or regenerated on the fly), a
straightforward implementation (materialise the ``N × K`` logits, softmax, matmul) and
scikit-learn's ``GaussianMixture(covariance_type="spherical").predict_proba`` where they fit
in memory; plus how the kernel's time grows with K, N and d.  Flops are counted as
``4 N K d`` (the two matrix products) for every method.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from cfglab._io import write_atomic
from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.lab.ensembles import SeededMeans, random_means
from cfglab.lab.kernel import DEFAULT_BUDGET_BYTES, plan_chunks, posterior_stats

__all__ = ["BenchConfig", "run_bench", "naive_posterior", "sklearn_posterior", "machine_info"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BenchConfig:
    """What ``cfglab bench`` measures (defaults: the docs/performance.md target setting)."""

    K: int = 65_536
    N: int = 1_024
    d: int = 64
    dtype: str = "float32"
    device: str = "cpu"
    repeats: int = 5
    t: float = 0.5  # OU time of the scored points (sets the logit scale)
    sigma2: float = 0.5
    seed: int = 0
    peer_memory_gb: float = 4.0  # run the naive / scikit-learn peers only below this estimate
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    scaling: bool = True
    K_factors: tuple[float, ...] = (1 / 16, 1 / 4, 1, 4, 16)
    N_factors: tuple[float, ...] = (1 / 4, 1 / 2, 1)
    d_factors: tuple[float, ...] = (1 / 4, 1 / 2, 1, 2)
    sklearn: bool = True
    on_the_fly: bool = True
    threads: int | None = None  # torch threads; None keeps torch's default
    clock: str = "wall"  # "wall", or "cpu" (process CPU time: robust to other load, 1 thread)

    def __post_init__(self):
        for name in ("K", "N", "d", "repeats"):
            positive_int(name, getattr(self, name))
        positive("peer_memory_gb", self.peer_memory_gb)
        if self.clock not in ("wall", "cpu"):
            raise CfglabInputError(f"clock must be wall or cpu, got {self.clock!r}")
        if self.threads is not None:
            positive_int("threads", self.threads)
        if self.dtype not in ("float32", "float64"):
            raise CfglabInputError(f"dtype must be float32 or float64, got {self.dtype!r}")
        try:
            torch.empty(0, device=self.device)
        except (RuntimeError, ValueError) as err:
            raise CfglabInputError(f"device {self.device!r} is not available: {str(err).splitlines()[0]}") from None

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


@dataclass
class _Inputs:
    """One benchmark problem: points x [N, d], means [K, d] and the logit coefficients."""

    x: torch.Tensor
    means: torch.Tensor
    a: float
    b: float
    gamma: float
    decay: float
    seeded: SeededMeans = field(repr=False)


def _inputs(cfg: BenchConfig, K: int, N: int, d: int) -> _Inputs:
    """Points drawn from the noised mixture at time ``cfg.t`` (realistic logit spread)."""
    opts = dict(dtype=cfg.torch_dtype, device=cfg.device)
    means = random_means(K, d, 1.0, cfg.seed, **opts)  # [K, d]
    gen = torch.Generator(device=cfg.device).manual_seed(cfg.seed + 1)
    decay = math.exp(-cfg.t)
    gamma = cfg.sigma2 * decay**2 + 1 - decay**2
    classes = torch.randint(0, K, (N,), generator=gen, device=cfg.device)
    x = decay * means[classes] + math.sqrt(gamma) * torch.randn(N, d, generator=gen, **opts)  # [N, d]
    seeded = SeededMeans(K, d, 1.0, cfg.seed, dtype=cfg.torch_dtype, device=cfg.device)
    return _Inputs(x, means, decay / gamma, decay**2 / gamma, gamma, decay, seeded)


def naive_posterior(x: torch.Tensor, means: torch.Tensor, a: float, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Straightforward reference: ``[N, K]`` logits, softmax, matmul -> (Σ π μ [N, d], log π_0 [N])."""
    sq = (means * means).sum(dim=1)  # [K]
    logits = torch.addmm(-0.5 * b * sq, x, means.T, alpha=a)  # [N, K]
    pi = torch.softmax(logits, dim=1)  # [N, K]
    return pi @ means, torch.log(pi[:, 0])


def sklearn_posterior(inp: _Inputs) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's spherical ``GaussianMixture.predict_proba`` with the exact noised mixture."""
    from sklearn.mixture import GaussianMixture as SkGMM

    means = inp.means.double().cpu().numpy()  # [K, d]
    K = means.shape[0]
    gmm = SkGMM(n_components=K, covariance_type="spherical")
    gmm.means_ = inp.decay * means
    gmm.covariances_ = np.full(K, inp.gamma)
    gmm.weights_ = np.full(K, 1.0 / K)
    gmm.precisions_cholesky_ = 1 / np.sqrt(gmm.covariances_)
    pi = gmm.predict_proba(inp.x.double().cpu().numpy())  # [N, K]
    return pi @ means, np.log(pi[:, 0])


def _kernel(inp: _Inputs, means, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    stats = posterior_stats(inp.x, means, None, inp.a, inp.b, budget_bytes=budget)
    mu0 = inp.means[0]
    logit0 = inp.a * (inp.x @ mu0) - 0.5 * inp.b * (mu0 @ mu0)  # [N]
    return stats.mean, logit0 - stats.log_norm


# ----------------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


_CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}


def _timed(fn: Callable[[], object], cfg: BenchConfig) -> float:
    clock = _CLOCK[cfg.clock]
    _sync(cfg.device)
    start = clock()
    fn()
    _sync(cfg.device)
    return clock() - start


def _interleaved(methods: dict[str, Callable[[], object]], repeats: int, cfg: BenchConfig,
                 tick: Callable[[], None]) -> dict[str, list[float]]:
    """Time each method once per round, round after round (a warm-up call first)."""
    for fn in methods.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            times[name].append(_timed(fn, cfg))
        tick()
    return times


# ----------------------------------------------------------------------------------- memory


def _rss_mb() -> tuple[float, float]:
    text = open("/proc/self/status").read()
    grab = lambda key: int(re.search(rf"{key}:\s+(\d+)", text).group(1)) / 1024  # noqa: E731
    return grab("VmRSS"), grab("VmHWM")


def _release_free_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_memory_mb(fn: Callable[[], object], device: str) -> tuple[float | None, object]:
    """Extra memory (MiB) at the peak of ``fn()`` and its result.

    CUDA: the allocator's peak.  CPU: the Linux RSS high-water mark, reset before the call
    (``/proc/self/clear_refs``) after returning freed heap to the system; None elsewhere.
    """
    _release_free_memory()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20, out
    try:  # writing 5 to clear_refs resets VmHWM (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base, _ = _rss_mb()
    except (OSError, AttributeError):
        return None, fn()
    out = fn()
    return max(0.0, _rss_mb()[1] - base), out


def _fits(cfg: BenchConfig, K: int, N: int, bytes_per_entry: float) -> bool:
    return N * K * bytes_per_entry <= cfg.peer_memory_gb * 2**30


# ----------------------------------------------------------------------------------- pieces


def _gemm_peak(cfg: BenchConfig, inp: _Inputs, tick: Callable[[], None]) -> dict[str, float]:
    """GFLOP/s of ``torch.matmul`` on a square product of comparable size and on the kernel's tiles."""
    N, d = inp.x.shape
    opts = dict(dtype=cfg.torch_dtype, device=cfg.device)
    n = int(min(2048, max(256, round((2 * N * cfg.K * d / 2) ** (1 / 3)))))
    sq_a, sq_b = torch.randn(n, n, **opts), torch.randn(n, n, **opts)
    plan = plan_chunks(N, d, inp.x.element_size(), budget_bytes=cfg.budget_bytes, device=cfg.device)
    R, C = plan.row_block, min(plan.class_chunk, cfg.K)
    xa, tile, mu = torch.randn(R, d + 2, **opts), torch.randn(R, C, **opts), torch.randn(C, d, **opts)
    aug, out, acc = torch.randn(C, d + 2, **opts), torch.empty(R, C, **opts), torch.zeros(R, d, **opts)
    reps = max(1, round(2 * n**3 / (2 * R * C * d)))  # same flops as the square product
    methods = {
        "square": lambda: torch.matmul(sq_a, sq_b),
        "logit_tile": lambda: [torch.matmul(xa, aug.T, out=out) for _ in range(reps)],
        "mean_tile": lambda: [torch.addmm(acc, tile, mu, out=acc) for _ in range(reps)],
    }
    times = _interleaved(methods, cfg.repeats, cfg, tick)
    flops = {"square": 2 * n**3, "logit_tile": reps * 2 * R * C * d, "mean_tile": reps * 2 * R * C * d}
    return {f"{k}_gflops": flops[k] / min(v) / 1e9 for k, v in times.items()} | {"square_n": n}


def _has_sklearn() -> bool:
    """scikit-learn is optional (extra ``test``/``latent``); imported here, outside the timed call."""
    try:
        import sklearn.mixture  # noqa: F401
    except ImportError:
        return False
    return True


def _rel_err(got, ref) -> float:
    got, ref = (torch.as_tensor(v, dtype=torch.float64).cpu() for v in (got, ref))
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-300))


def _compare(cfg: BenchConfig, inp: _Inputs, tick: Callable[[], None]) -> dict:
    """Time kernel, on-the-fly kernel, naive and scikit-learn on the same inputs."""
    K, (N, d) = cfg.K, inp.x.shape
    methods = {"kernel": lambda: _kernel(inp, inp.means, cfg.budget_bytes)}
    if cfg.on_the_fly:
        methods["kernel_on_the_fly"] = lambda: _kernel(inp, inp.seeded, cfg.budget_bytes)
        methods["regenerate_means"] = lambda: [b.sum() for b in inp.seeded.blocks()]
    naive_ok = _fits(cfg, K, N, 2 * inp.x.element_size())  # logits + probabilities
    if naive_ok:
        methods["naive"] = lambda: naive_posterior(inp.x, inp.means, inp.a, inp.b)
    times = _interleaved(methods, cfg.repeats, cfg, tick)
    sk_ok = cfg.sklearn and torch.device(cfg.device).type == "cpu" and _fits(cfg, K, N, 5 * 8) and _has_sklearn()
    out = {}
    out["memory"], out["accuracy"], sk_seconds = _memory_and_accuracy(inp, cfg, naive_ok, sk_ok)
    if sk_ok:  # slow: timed once, in the same call that measures its memory
        times["sklearn"] = [sk_seconds]
    flops = 4 * N * K * d
    best = {k: min(v) for k, v in times.items()}
    out |= {
        "kernel_seconds": best["kernel"], "kernel_gflops": flops / best["kernel"] / 1e9,
        "naive_seconds": best.get("naive"), "naive_gflops": flops / best["naive"] / 1e9 if naive_ok else None,
        "naive_speedup": best["naive"] / best["kernel"] if naive_ok else None,
        "sklearn_seconds": best.get("sklearn"), "sklearn_speedup": best["sklearn"] / best["kernel"] if sk_ok else None,
        "times": times,
    }
    if naive_ok:
        ratios = np.array(times["naive"]) / np.array(times["kernel"])
        out["naive_speedup_per_round"] = {"median": float(np.median(ratios)), "min": float(ratios.min()),
                                          "max": float(ratios.max())}
    if cfg.on_the_fly:
        out["on_the_fly"] = {
            "kernel_seconds": best["kernel_on_the_fly"], "kernel_gflops": flops / best["kernel_on_the_fly"] / 1e9,
            "regenerate_seconds": best["regenerate_means"],
            "regenerate_fraction": best["regenerate_means"] / best["kernel_on_the_fly"],
        }
    return out


def _memory_and_accuracy(inp: _Inputs, cfg: BenchConfig, naive_ok: bool, sk_ok: bool) -> tuple[dict, dict, float]:
    """Peak extra memory of each method (one call each), its agreement with the kernel, and
    the time of the scikit-learn call (too slow to repeat)."""
    runs = {"kernel": lambda: _kernel(inp, inp.means, cfg.budget_bytes)}
    if cfg.on_the_fly:
        runs["kernel_on_the_fly"] = lambda: _kernel(inp, inp.seeded, cfg.budget_bytes)
    if naive_ok:
        runs["naive"] = lambda: naive_posterior(inp.x, inp.means, inp.a, inp.b)
    if sk_ok:
        runs["sklearn"] = lambda: sklearn_posterior(inp)
    mem, acc, ref, seconds = {}, {}, None, {}
    for name, fn in runs.items():
        start = _CLOCK[cfg.clock]()
        mem[name], (mean, log_pi) = peak_memory_mb(fn, cfg.device)
        seconds[name] = _CLOCK[cfg.clock]() - start
        if ref is None:
            ref = (mean, log_pi)
            continue
        log_pi = torch.as_tensor(log_pi).double().cpu()
        finite = torch.isfinite(log_pi)
        acc[f"{name}_mean_rel_err"] = _rel_err(ref[0], mean)
        acc[f"{name}_log_pi0_max_abs_err"] = (
            float((ref[1].double().cpu() - log_pi)[finite].abs().max()) if finite.any() else None)
    mem["means_mb"] = inp.means.numel() * inp.means.element_size() / 2**20
    return mem, acc, seconds.get("sklearn")


def _scaling(cfg: BenchConfig, tick: Callable[[], None]) -> dict:
    """Kernel time (and naive time where it fits) along K, N and d; log-log slopes."""
    result = {}
    for axis, factors in (("K", cfg.K_factors), ("N", cfg.N_factors), ("d", cfg.d_factors)):
        sizes = sorted({max(1, round(getattr(cfg, axis) * f)) for f in factors})
        rows = []
        for size in sizes:
            K, N, d = (size if axis == a else getattr(cfg, a) for a in ("K", "N", "d"))
            inp = _inputs(cfg, K, N, d)
            methods = {"kernel": lambda: _kernel(inp, inp.means, cfg.budget_bytes)}
            if _fits(cfg, K, N, 2 * inp.x.element_size()):
                methods["naive"] = lambda: naive_posterior(inp.x, inp.means, inp.a, inp.b)
            times = _interleaved(methods, max(1, cfg.repeats // 2), cfg, tick)
            row = {axis: size, "kernel_seconds": min(times["kernel"]),
                   "kernel_gflops": 4 * N * K * d / min(times["kernel"]) / 1e9,
                   "kernel_peak_memory_mb": peak_memory_mb(methods["kernel"], cfg.device)[0],
                   "naive_seconds": min(times["naive"]) if "naive" in times else None}
            rows.append(row)
            del inp
        slope = np.polyfit(np.log([r[axis] for r in rows]), np.log([r["kernel_seconds"] for r in rows]), 1)[0]
        result[axis] = {"points": rows, "loglog_slope": float(slope)} if len(rows) > 1 else {"points": rows}
    return result


def machine_info(device: str = "cpu") -> dict:
    """CPU model, threads and library versions (and the GPU, when benchmarking one)."""
    model = platform.processor()
    with contextlib.suppress(OSError):
        match = re.search(r"model name\s*:\s*(.+)", open("/proc/cpuinfo").read())
        model = match.group(1).strip() if match else model
    info = {"cpu": model, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _total_ticks(cfg: BenchConfig) -> int:
    scaling = len(cfg.K_factors) + len(cfg.N_factors) + len(cfg.d_factors) if cfg.scaling else 0
    return 2 * cfg.repeats + scaling * max(1, cfg.repeats // 2)


def run_bench(cfg: BenchConfig, progress: Progress | None = None) -> dict:
    """Run the whole benchmark; returns a JSON-ready dict (see ``cfglab bench --help``)."""
    done, total = [0], _total_ticks(cfg)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, progress, done, total)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: BenchConfig, progress: Progress | None, done: list[int], total: int) -> dict:

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    inp = _inputs(cfg, cfg.K, cfg.N, cfg.d)
    gemm = _gemm_peak(cfg, inp, tick)
    gemm_gflops = max(v for k, v in gemm.items() if k.endswith("_gflops"))
    comp = _compare(cfg, inp, tick)
    del inp
    plan = plan_chunks(cfg.N, cfg.d, torch.empty((), dtype=cfg.torch_dtype).element_size(),
                       budget_bytes=cfg.budget_bytes, device=cfg.device)
    memory = comp.pop("memory")
    result = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "machine": machine_info(cfg.device),
        "flops_per_call": 4 * cfg.N * cfg.K * cfg.d,
        "gemm_gflops": gemm_gflops, "gemm": gemm,
        "kernel_gflops": comp["kernel_gflops"], "fraction_of_peak": comp["kernel_gflops"] / gemm_gflops,
        "naive_speedup": comp["naive_speedup"], "sklearn_speedup": comp["sklearn_speedup"],
        "peak_memory_mb": memory["kernel"], "memory_mb": memory,
        "budget_mb": cfg.budget_bytes / 2**20, "plan": asdict(plan),
    } | {k: v for k, v in comp.items() if k not in ("kernel_gflops", "naive_speedup", "sklearn_speedup")}
    if cfg.scaling:
        result["scaling"] = _scaling(cfg, tick)
    return result


def plot_scaling(result: dict, path: str) -> None:
    """Log-log plot of kernel (and naive) time against K, N and d."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, axis in zip(axes, ("K", "N", "d")):
        pts = result["scaling"][axis]["points"]
        xs = [p[axis] for p in pts]
        ax.loglog(xs, [p["kernel_seconds"] for p in pts], "o-", label="cfglab kernel")
        naive = [(p[axis], p["naive_seconds"]) for p in pts if p["naive_seconds"] is not None]
        if naive:
            ax.loglog(*zip(*naive), "s--", label="naive (N×K logits)")
        slope = result["scaling"][axis].get("loglog_slope")
        ax.set(xlabel=axis, ylabel="seconds", title=f"time vs {axis}" + (f" (slope {slope:.2f})" if slope else ""))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
