"""``cfglab simulate``: guided sampling on an exact-score ensemble (docs/sweeps.md)."""

from __future__ import annotations

from cfglab.cli._common import (add_json_flag, device_arg, emit, horizon_arg, integer, number, progress_bar, schedule_arg,
                               seed_arg, variance_arg, writable_file, write_json_atomic)


def register(sub) -> None:
    p = sub.add_parser("simulate", help="guided sampling with exact scores; prints the distortion")
    p.add_argument("--d", type=integer, required=True, help="dimension")
    ens = p.add_mutually_exclusive_group(required=True)
    ens.add_argument("--alpha", type=number, help="K = ceil(e^{alpha d}) random classes")
    ens.add_argument("--K", type=integer, help="number of random classes")
    ens.add_argument("--infinite", action="store_true", help="infinite-class (Gaussian) limit")
    p.add_argument("--sigma2", type=variance_arg, default=0.5, help="within-class variance σ² (default 0.5)")
    p.add_argument("--s2", type=variance_arg, default=1.0, help="variance of the class means s² (default 1)")
    p.add_argument("--schedule", type=schedule_arg, default="constant:w=0", help="guidance schedule, e.g. constant:w=2")
    p.add_argument("--sampler", choices=["sde", "ode"], default="sde")
    p.add_argument("--n-samples", type=integer, default=2000)
    p.add_argument("--steps", type=integer, default=500)
    p.add_argument("--T", type=horizon_arg, default=6.0, help="time horizon of the OU process")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--start", choices=["noise", "marginal"], default="noise",
                   help="x_T ~ N(0, I) (noise) or the exact noised law at T (marginal)")
    p.add_argument("--device", type=device_arg, default="cpu", help="torch device: cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--memory-gb", type=number, default=4.0, help="memory budget (GiB) for the class means and the sample arrays")
    p.add_argument("--on-the-fly", action="store_true",
                   help="regenerate the class means from the seed at every pass (K beyond memory)")
    p.add_argument("--trajectory", metavar="FILE", help="write per-step m, v, π_c, CFG force as JSON")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from cfglab.lab.run_checks import check_run_fields

    check_run_fields(args)  # the torch-free checks of SimulationConfig, before torch loads
    from cfglab.lab.simulate import SimulationConfig, simulate

    cfg = SimulationConfig(
        d=args.d, K=args.K, alpha=args.alpha, infinite=args.infinite, sigma2=args.sigma2, s2=args.s2,
        schedule=args.schedule, sampler=args.sampler, n_samples=args.n_samples, steps=args.steps,
        T=args.T, seed=args.seed, device=args.device, dtype=args.dtype, start=args.start,
        memory_gb=args.memory_gb, on_the_fly=args.on_the_fly,
    )
    if args.trajectory:
        writable_file(args.trajectory, "--trajectory")
    with progress_bar("sampling") as update:
        result = simulate(cfg, trajectory=bool(args.trajectory), progress=update)
    if args.trajectory:
        write_json_atomic(args.trajectory, {"config": cfg.to_dict(), **result.pop("trajectory")})
    emit(result, args.json, title=f"cfglab simulate ({cfg.schedule}, {cfg.sampler})")
    return 0
