"""``cfglab bench``: the exact-score kernel against the GEMM peak and its peers (docs/performance.md)."""

from __future__ import annotations

import argparse

from cfglab.cli._common import (add_json_flag, count_arg, device_arg, emit, figure_file, nonnegative_int, positive_arg,
                               progress_bar, writable_file, write_json_atomic)


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="kernel GFLOP/s vs the GEMM peak, a naive implementation and scikit-learn",
        description="Times, on the same inputs and interleaved, torch.matmul (GEMM peak), cfglab's fused "
                    "posterior kernel (stored and on-the-fly means), a naive N×K softmax implementation and "
                    "scikit-learn's spherical GaussianMixture.predict_proba (where they fit in memory), "
                    "and how the kernel's time grows with K, N and d.",
    )
    p.add_argument("--K", type=count_arg, default=65_536, help="number of classes (default 65536)")
    p.add_argument("--N", type=count_arg, default=1_024, help="number of points (default 1024)")
    p.add_argument("--d", type=count_arg, default=64, help="dimension (default 64)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--device", type=device_arg, default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--repeats", type=count_arg, default=5, help="interleaved timing rounds (best is kept)")
    p.add_argument("--peer-memory-gb", type=positive_arg, default=4.0,
                   help="run the naive and scikit-learn peers only when they need less than this")
    p.add_argument("--budget-mb", type=positive_arg, default=256.0, help="kernel working-memory budget (MiB)")
    p.add_argument("--threads", type=count_arg, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or process CPU time (robust to a loaded machine; use with --threads 1)")
    p.add_argument("--no-scaling", action="store_true", help="skip the K, N, d scaling sweep")
    p.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    p.add_argument("--fraction-dims", type=_ints, default=[16, 32, 64, 128, 256, 512],
                   help="d values of fraction_by_d (kernel over GEMM GFLOP/s at --K, --N); '' skips it")
    p.add_argument("--no-threads", action="store_true", help="skip by_threads (1 thread, all cores, load-aware)")
    p.add_argument("--startup-runs", type=nonnegative_int, default=5,
                   help="startup_s: median of this many cfglab processes (0 skips it)")
    p.add_argument("--sampler", action="store_true",
                   help="instead: profile a guided simulate by phase and its time per step against d at K = e^{αd}")
    p.add_argument("--dims", type=_ints, default=[20, 30, 40, 50, 60], help="--sampler: dimensions")
    p.add_argument("--alpha", type=positive_arg, default=0.2, help="--sampler: K = e^{alpha d}")
    p.add_argument("--n-samples", type=count_arg, default=256, help="--sampler: points per run")
    p.add_argument("--steps", type=count_arg, default=10, help="--sampler: sampler steps per run")
    p.add_argument("--plot", metavar="FILE",
                   help="write a log-log plot of time against K, N and d (--sampler: time per step and phases)")
    p.add_argument("--output", metavar="FILE", help="also write the full result as JSON")
    add_json_flag(p)
    p.set_defaults(func=run)


def _ints(text: str) -> list[int]:
    """argparse type: a comma-separated list of integers >= 1 (dimensions)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"dimensions must be >= 1, got {text!r}")
    return values


def _summary(result: dict) -> dict:
    """The headline numbers, for the table view."""
    keys = ["gemm_gflops", "kernel_gflops", "fraction_of_peak", "naive_speedup", "sklearn_speedup",
            "peak_memory_mb", "budget_mb", "kernel_seconds", "naive_seconds", "sklearn_seconds"]
    out = {k: result.get(k) for k in keys}
    out["naive_peak_memory_mb"] = result["memory_mb"].get("naive")
    out["sklearn_peak_memory_mb"] = result["memory_mb"].get("sklearn")
    if "on_the_fly" in result:
        out["on_the_fly_gflops"] = result["on_the_fly"]["kernel_gflops"]
        out["on_the_fly_regenerate_fraction"] = result["on_the_fly"]["regenerate_fraction"]
    for axis, fit in result.get("scaling", {}).items():
        out[f"slope_time_vs_{axis}"] = fit.get("loglog_slope")
    for d, fraction in result.get("fraction_by_d", {}).items():
        out[f"fraction_of_peak_d{d}"] = fraction
    for arm, row in result.get("by_threads", {}).items():
        if isinstance(row, dict):
            out[f"kernel_gflops_threads_{arm}"] = row["gflops"]
    for name in ("help", "theory_transition"):
        out[f"startup_s_{name}"] = result.get("startup_s", {}).get(name)
    out["machine"] = f"{result['machine']['cpu']}, {result['machine']['torch_threads']} threads"
    return out


def _measure(args, label: str, measure, plot) -> dict:
    """Run ``measure(progress)`` under a progress bar, then the --plot and --output files."""
    with progress_bar(label) as update:
        result = measure(update)
    if args.plot:
        plot(result, args.plot)
        result["plot"] = args.plot
    if args.output:
        write_json_atomic(args.output, result)
    return result


def _run_sampler(args) -> int:
    from cfglab.bench import SamplerProfileConfig, plot_sampler_profile, run_sampler_profile

    cfg = SamplerProfileConfig(dims=tuple(args.dims), alpha=args.alpha, n_samples=args.n_samples, steps=args.steps,
                               seed=0)
    result = _measure(args, "profiling simulate", lambda update: run_sampler_profile(cfg, progress=update),
                      plot_sampler_profile)
    if args.json:
        emit(result, True)
        return 0
    for row in result["rows"]:
        phases = row["phases_s_per_step"]
        emit({"K": row["K"], "seconds_per_step": row["seconds_per_step"],
              **{f"profiled_{k}_s": v for k, v in phases.items()}}, False, title=f"d = {row['d']}")
    emit(result["growth"], False, title="growth of the time per step with d")
    return 0


def run(args) -> int:
    from cfglab._validate import device

    if args.sampler:
        return _run_sampler(args)
    budget_bytes = int(args.budget_mb * 2**20)  # > 0: checked by argparse, before torch loads
    from cfglab.bench import BenchConfig, plot_scaling, run_bench

    device("--device", args.device)
    if args.plot:
        figure_file(args.plot, "--plot")
    if args.output:
        writable_file(args.output, "--output")

    cfg = BenchConfig(K=args.K, N=args.N, d=args.d, dtype=args.dtype, device=args.device, repeats=args.repeats,
                      peer_memory_gb=args.peer_memory_gb, budget_bytes=budget_bytes,
                      scaling=not args.no_scaling, sklearn=not args.no_sklearn,
                      threads=args.threads, clock=args.clock, fraction_dims=tuple(args.fraction_dims),
                      thread_comparison=not args.no_threads, startup_runs=args.startup_runs)
    if args.plot and args.no_scaling:
        from cfglab._validate import CfglabInputError

        raise CfglabInputError("--plot needs the scaling sweep (drop --no-scaling)")
    result = _measure(args, "benchmarking", lambda update: run_bench(cfg, progress=update), plot_scaling)
    emit(result if args.json else _summary(result), args.json, title=f"cfglab bench (K={cfg.K}, N={cfg.N}, d={cfg.d}, {cfg.dtype}, {cfg.device})")
    return 0
