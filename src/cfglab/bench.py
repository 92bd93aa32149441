"""Benchmark of the exact-score kernel against the GEMM peak and two peers (docs/performance.md).

On the same inputs, in one run, with interleaved repeats so that every method sees the same
machine load: the GEMM peak (``torch.matmul``), cfglab's fused kernel
(:func:`cfglab.lab.kernel.posterior_stats`, means stored or regenerated on the fly), a
straightforward implementation (materialise the ``N × K`` logits, softmax, matmul) and
scikit-learn's ``GaussianMixture(covariance_type="spherical").predict_proba`` where they fit
in memory; plus how the kernel's time grows with K, N and d, its fraction of the GEMM peak
along d (``fraction_by_d``), its speed with 1 thread, all threads and the load-aware choice
(``by_threads``) and the command line's start-up time (``startup_s``).  Flops are counted as
``4 N K d`` (the two matrix products) for every method.  :func:`run_sampler_profile`
(``cfglab bench --sampler``) times a whole guided ``simulate`` by phase.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from cfglab._io import write_atomic
from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.lab.ensembles import SeededMeans, random_means
from cfglab.lab.kernel import DEFAULT_BUDGET_BYTES, fixed_threads, kernel_threads, plan_chunks, posterior_stats
from cfglab.noise import exponential_K

__all__ = ["BenchConfig", "run_bench", "naive_posterior", "sklearn_posterior", "machine_info", "startup_seconds",
           "SamplerProfileConfig", "run_sampler_profile", "plot_sampler_profile"]

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
    fraction_dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512)  # fraction_by_d (empty: skip)
    thread_comparison: bool = True  # by_threads: 1 thread, all threads, the load-aware choice
    startup_runs: int = 5  # startup_s: median of this many processes (0: skip)

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
    sq_norms: torch.Tensor = field(repr=False)  # [K] |μ_k|², stored with the means as GaussianMixture does


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
    return _Inputs(x, means, decay / gamma, decay**2 / gamma, gamma, decay, seeded, (means * means).sum(dim=1))


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
    """The kernel as the lab calls it: stored means come with their norms, on-the-fly ones without."""
    sq = inp.sq_norms if means is inp.means else None
    stats = posterior_stats(inp.x, means, sq, inp.a, inp.b, budget_bytes=budget)
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


def _gemm_methods(cfg: BenchConfig, N: int, K: int, d: int) -> tuple[dict[str, Callable[[], object]], dict[str, int], int]:
    """The GEMM reference: ``torch.matmul`` on a square product of the same flops and on the kernel's two tile products.

    Returns the callables (``gemm_square``, ``gemm_logit_tile``, ``gemm_mean_tile``), their flops
    and the square size n = (NKd)^{1/3}.  The reference is the best of the three (docs/performance.md).
    """
    opts = dict(dtype=cfg.torch_dtype, device=cfg.device)
    n = int(min(2048, max(256, round((2 * N * K * d / 2) ** (1 / 3)))))
    sq_a, sq_b = torch.randn(n, n, **opts), torch.randn(n, n, **opts)
    plan = plan_chunks(N, d, sq_a.element_size(), budget_bytes=cfg.budget_bytes, device=cfg.device)
    R, C = plan.row_block, min(plan.class_chunk, K)
    xa, tile, mu = torch.randn(R, d + 2, **opts), torch.randn(R, C, **opts), torch.randn(C, d, **opts)
    aug, out, acc = torch.randn(C, d + 2, **opts), torch.empty(R, C, **opts), torch.zeros(R, d, **opts)
    reps = max(1, round(2 * n**3 / (2 * R * C * d)))  # same flops as the square product
    methods = {
        "gemm_square": lambda: torch.matmul(sq_a, sq_b),
        "gemm_logit_tile": lambda: [torch.matmul(xa, aug.T, out=out) for _ in range(reps)],
        "gemm_mean_tile": lambda: [torch.addmm(acc, tile, mu, out=acc) for _ in range(reps)],
    }
    return methods, {"gemm_square": 2 * n**3, "gemm_logit_tile": reps * 2 * R * C * d,
                     "gemm_mean_tile": reps * 2 * R * C * d}, n


def _gemm_summary(times: dict[str, list[float]], flops: dict[str, int], n: int) -> dict[str, float]:
    """GFLOP/s of each GEMM shape (best round) and ``gemm_gflops``, the best of them."""
    out = {f"{k.removeprefix('gemm_')}_gflops": flops[k] / min(times.pop(k)) / 1e9 for k in flops}
    return out | {"square_n": n, "gemm_gflops": max(out.values())}


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
    gemms, gemm_flops, n = _gemm_methods(cfg, N, K, d)
    times = _interleaved(methods | gemms, cfg.repeats, cfg, tick)
    gemm = _gemm_summary(times, gemm_flops, n)  # removes the GEMM rounds from times
    sk_ok = cfg.sklearn and torch.device(cfg.device).type == "cpu" and _fits(cfg, K, N, 5 * 8) and _has_sklearn()
    out = {}
    out["memory"], out["accuracy"], sk_seconds = _memory_and_accuracy(inp, cfg, naive_ok, sk_ok)
    if sk_ok:  # slow: timed once, in the same call that measures its memory
        times["sklearn"] = [sk_seconds]
    flops = 4 * N * K * d
    best = {k: min(v) for k, v in times.items()}
    out |= {
        "gemm": gemm, "kernel_seconds": best["kernel"], "kernel_gflops": flops / best["kernel"] / 1e9,
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
    extra = len(cfg.fraction_dims) + (1 if cfg.thread_comparison else 0)
    return cfg.repeats + (scaling + extra) * max(1, cfg.repeats // 2)


def _fraction_by_d(cfg: BenchConfig, tick: Callable[[], None]) -> dict:
    """Kernel GFLOP/s over the GEMM reference's (best of three shapes, interleaved with it) at each d."""
    rows = {}
    for d in cfg.fraction_dims:
        inp = _inputs(cfg, cfg.K, cfg.N, d)
        gemms, gemm_flops, n = _gemm_methods(cfg, cfg.N, cfg.K, d)
        methods = {"kernel": lambda: _kernel(inp, inp.means, cfg.budget_bytes)}
        times = _interleaved(methods | gemms, max(1, cfg.repeats // 2), cfg, tick)
        gemm = _gemm_summary(times, gemm_flops, n)
        flops = 4 * cfg.N * cfg.K * d
        row = {"kernel_gflops": flops / min(times["kernel"]) / 1e9, "gemm_gflops": gemm.pop("gemm_gflops"), "gemm": gemm}
        row["fraction"] = row["kernel_gflops"] / row["gemm_gflops"]
        rows[str(d)] = row
        del inp
    return rows


def _by_threads(cfg: BenchConfig, inp: _Inputs, tick: Callable[[], None]) -> dict:
    """The kernel with 1 thread, with all cores and with the load-aware choice, interleaved rounds."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    arms = {"1": 1, str(cores): cores, "auto": "auto"}

    def arm(n):
        def call():
            with fixed_threads(n):
                return _kernel(inp, inp.means, cfg.budget_bytes)
        return call

    times = _interleaved({k: arm(n) for k, n in arms.items()}, max(1, cfg.repeats // 2), cfg, tick)
    flops = 4 * cfg.N * cfg.K * cfg.d
    out = {k: {"seconds": min(v), "gflops": flops / min(v) / 1e9, "seconds_per_round": v} for k, v in times.items()}
    with fixed_threads("auto"):
        auto_now = kernel_threads()
    return out | {"auto_threads_now": auto_now, "load_average": list(os.getloadavg())}


def startup_seconds(runs: int = 5) -> dict:
    """Median wall time of whole ``cfglab`` processes: ``--help`` and ``theory transition`` (docs/performance.md)."""
    commands = {"help": ["--help"], "theory_transition": ["theory", "transition", "--alpha", "0.2", "--json"]}
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the tree this cfglab runs from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = {}
    for name, argv in commands.items():
        times = []
        for _ in range(positive_int("startup_runs", runs)):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cfglab", *argv], env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
        out[f"{name}_runs"] = times
    return out


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
    comp = _compare(cfg, inp, tick)
    gemm = comp.pop("gemm")
    gemm_gflops = gemm.pop("gemm_gflops")
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
    if cfg.thread_comparison and torch.device(cfg.device).type == "cpu":
        inp = _inputs(cfg, cfg.K, cfg.N, cfg.d)
        result["by_threads"] = _by_threads(cfg, inp, tick)
        del inp
    if cfg.fraction_dims:
        detail = result["fraction_by_d_detail"] = _fraction_by_d(cfg, tick)
        result["fraction_by_d"] = {d: r["fraction"] for d, r in detail.items()}
    if cfg.scaling:
        result["scaling"] = _scaling(cfg, tick)
    if cfg.startup_runs:
        result["startup_s"] = startup_seconds(cfg.startup_runs)
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


# ------------------------------------------------------------------ the sampler end to end

PHASES = ("kernel", "sampler_arithmetic", "observables", "setup", "python_overhead")


@dataclass(frozen=True)
class SamplerProfileConfig:
    """``cfglab bench --sampler``: a guided ``simulate`` at K = e^{αd} for each d (docs/performance.md)."""

    dims: tuple[int, ...] = (20, 30, 40, 50, 60)
    alpha: float = 0.2
    n_samples: int = 256
    steps: int = 10
    w: float = 2.0
    sampler: str = "sde"
    dtype: str = "float64"  # `cfglab simulate`'s default
    repeats: int = 3  # unprofiled runs per d (best is kept)
    seed: int = 0

    def __post_init__(self):
        if not self.dims:
            raise CfglabInputError("dims must not be empty")
        for d in self.dims:
            positive_int("d", d)
        for name in ("n_samples", "steps", "repeats"):
            positive_int(name, getattr(self, name))
        positive("alpha", self.alpha)

    def simulation(self, d: int):
        from cfglab.lab.simulate import SimulationConfig

        return SimulationConfig(d=d, alpha=self.alpha, schedule=f"constant:w={self.w}", sampler=self.sampler,
                                n_samples=self.n_samples, steps=self.steps, seed=self.seed, dtype=self.dtype)


def _frame_phase(name: str) -> str | None:
    """Phase of a profiled Python frame ``"path(line): function"``, or None."""
    func = name.rsplit(": ", 1)[-1]
    if "cfglab/lab/simulate.py(" in name and func in ("build_model", "_initial_state"):
        return "setup"
    if "cfglab/lab/observables.py(" in name:
        return "observables"
    if "cfglab/lab/kernel.py(" in name and func == "posterior_stats":
        return "kernel"
    return None


def _phase_seconds(events) -> dict[str, float]:
    """Seconds per phase from torch.profiler events (with stacks).

    A phase frame counts with its whole duration (its Python and its ops) unless an outer
    frame already claimed it; ``sampler_arithmetic`` is every outermost torch op outside
    the phase frames.  The phases are disjoint, so they sum to at most the run's time.
    """
    out = dict.fromkeys(PHASES[:-1], 0.0)
    for ev in events:
        own = _frame_phase(ev.name)
        is_op = ev.name.startswith("aten::")
        if own is None and not (is_op and not (ev.cpu_parent and ev.cpu_parent.name.startswith("aten::"))):
            continue
        parent, claimed = ev.cpu_parent, False
        while parent is not None and not claimed:
            claimed, parent = _frame_phase(parent.name) is not None, parent.cpu_parent
        if not claimed:
            out[own or "sampler_arithmetic"] += ev.cpu_time_total / 1e6  # µs -> s
    return out


def _profile_run(sim) -> dict:
    """One profiled ``simulate(sim, trajectory=True)``: seconds per phase and in all."""
    from torch.profiler import ProfilerActivity, profile

    from cfglab.lab.simulate import simulate

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        simulate(sim, trajectory=True)
    total = time.perf_counter() - start
    phases = _phase_seconds(prof.events())
    return {"total": total, **phases, "python_overhead": total - sum(phases.values())}


def run_sampler_profile(cfg: SamplerProfileConfig, progress: Progress | None = None) -> dict:
    """Per-step time of a guided ``simulate`` against d at K = e^{αd}, and its phases (docs/performance.md).

    Growth: the fitted slope of log(seconds per step) against d, next to the slope of the
    kernel's ``4 N K d`` flops (α + 1/d on average).  Phases come from one run under
    ``torch.profiler`` (which slows Python, so ``python_overhead`` is an upper bound).
    """
    from cfglab.lab.simulate import simulate

    rows = []
    _profile_run(cfg.simulation(cfg.dims[0]))  # the profiler's first start is slow
    for i, d in enumerate(cfg.dims):
        sim = cfg.simulation(d)
        simulate(sim)  # warm-up
        best = min(_timed_wall(lambda: simulate(sim)) for _ in range(cfg.repeats))
        prof = _profile_run(sim)
        K = exponential_K(cfg.alpha, d)
        rows.append({"d": d, "K": K, "seconds_per_step": best / cfg.steps,
                     "kernel_flops_per_step": 4 * cfg.n_samples * K * d,
                     "phases_s_per_step": {k: prof[k] / cfg.steps for k in ("total", *PHASES)},
                     "phase_fractions": {k: prof[k] / prof["total"] for k in PHASES}})
        if progress:
            progress(i + 1, len(cfg.dims))
    dims = np.array([r["d"] for r in rows], dtype=float)
    growth = {"alpha": cfg.alpha}
    if len(rows) > 1:
        growth["fitted_rate"] = float(np.polyfit(dims, np.log([r["seconds_per_step"] for r in rows]), 1)[0])
        growth["flops_rate"] = float(np.polyfit(dims, np.log([r["kernel_flops_per_step"] for r in rows]), 1)[0])
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "machine": machine_info(), "rows": rows, "growth": growth}


def _timed_wall(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plot_sampler_profile(result: dict, path: str) -> None:
    """Seconds per step against d (with the 4NKd flops line) and the phase split per d."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    dims = [r["d"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    per_step = [r["seconds_per_step"] for r in rows]
    left.semilogy(dims, per_step, "o-", label="seconds per step")
    scale = per_step[-1] / rows[-1]["kernel_flops_per_step"]
    left.semilogy(dims, [scale * r["kernel_flops_per_step"] for r in rows], "k--", label="∝ 4·N·K·d")
    rate = result["growth"].get("fitted_rate")
    left.set(xlabel="d", ylabel="seconds per step",
             title=f"K = $e^{{{result['growth']['alpha']} d}}$" + (f": fitted rate {rate:.3f}" if rate else ""))
    left.legend()
    bottom = np.zeros(len(rows))
    for phase in PHASES:
        frac = np.array([max(0.0, r["phase_fractions"][phase]) for r in rows])
        right.bar([str(d) for d in dims], frac, bottom=bottom, label=phase.replace("_", " "))
        bottom += frac
    right.set(xlabel="d", ylabel="fraction of a profiled step", title="phases")
    right.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
