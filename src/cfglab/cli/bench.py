"""``cfglab bench``: the exact-score kernel against the GEMM peak and its peers (SPEC §9)."""

from __future__ import annotations

from cfglab.cli._common import (add_json_flag, emit, figure_file, integer, number, progress_bar, writable_file,
                               write_json_atomic)


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="kernel GFLOP/s vs the GEMM peak, a naive implementation and scikit-learn",
        description="Times, on the same inputs and interleaved, torch.matmul (GEMM peak), cfglab's fused "
                    "posterior kernel (stored and on-the-fly means), a naive N×K softmax implementation and "
                    "scikit-learn's spherical GaussianMixture.predict_proba (where they fit in memory), "
                    "and how the kernel's time grows with K, N and d.",
    )
    p.add_argument("--K", type=integer, default=65_536, help="number of classes (default 65536)")
    p.add_argument("--N", type=integer, default=1_024, help="number of points (default 1024)")
    p.add_argument("--d", type=integer, default=64, help="dimension (default 64)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--repeats", type=integer, default=5, help="interleaved timing rounds (best is kept)")
    p.add_argument("--peer-memory-gb", type=number, default=4.0,
                   help="run the naive and scikit-learn peers only when they need less than this")
    p.add_argument("--budget-mb", type=number, default=256.0, help="kernel working-memory budget (MiB)")
    p.add_argument("--threads", type=integer, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or process CPU time (robust to a loaded machine; use with --threads 1)")
    p.add_argument("--no-scaling", action="store_true", help="skip the K, N, d scaling sweep")
    p.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    p.add_argument("--plot", metavar="FILE", help="write a log-log plot of time against K, N and d")
    p.add_argument("--output", metavar="FILE", help="also write the full result as JSON")
    add_json_flag(p)
    p.set_defaults(func=run)


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
    out["machine"] = f"{result['machine']['cpu']}, {result['machine']['torch_threads']} threads"
    return out


def run(args) -> int:
    from cfglab._validate import device, positive
    from cfglab.bench import BenchConfig, plot_scaling, run_bench

    device("--device", args.device)
    if args.plot:
        figure_file(args.plot, "--plot")
    if args.output:
        writable_file(args.output, "--output")

    cfg = BenchConfig(K=args.K, N=args.N, d=args.d, dtype=args.dtype, device=args.device, repeats=args.repeats,
                      peer_memory_gb=args.peer_memory_gb, budget_bytes=int(positive("budget-mb", args.budget_mb) * 2**20),
                      scaling=not args.no_scaling, sklearn=not args.no_sklearn,
                      threads=args.threads, clock=args.clock)
    if args.plot and args.no_scaling:
        from cfglab._validate import CfglabInputError

        raise CfglabInputError("--plot needs the scaling sweep (drop --no-scaling)")
    with progress_bar("benchmarking", enabled=not args.json) as update:
        result = run_bench(cfg, progress=update)
    if args.plot:
        plot_scaling(result, args.plot)
        result["plot"] = args.plot
    if args.output:
        write_json_atomic(args.output, result)
    emit(result if args.json else _summary(result), args.json, title=f"cfglab bench (K={cfg.K}, N={cfg.N}, d={cfg.d}, {cfg.dtype}, {cfg.device})")
    return 0
