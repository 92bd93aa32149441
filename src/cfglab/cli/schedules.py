"""``cfglab schedules shrinkage|calibrate|compare``: schedules that keep diversity (docs/schedules.md)."""

from __future__ import annotations

from pathlib import Path

from cfglab.cli._common import (add_json_flag, count_arg, emit, horizon_arg, nonnegative_int, number, positive_arg,
                               progress_bar, schedule_arg, seed_arg, variance_arg, writable_dir, write_json_atomic)


def register(sub) -> None:
    p = sub.add_parser("schedules", help="guidance schedules: shrinkage | calibrate | compare")
    ssub = p.add_subparsers(dest="schedules_command", required=True, parser_class=type(p))
    _register_shrinkage(ssub)
    _register_calibrate(ssub)
    _register_compare(ssub)


def _common_physics(p, sampler_default: str = "sde") -> None:
    p.add_argument("--sigma2", type=variance_arg, default=0.5, help="within-class variance σ² (default 0.5)")
    p.add_argument("--s2", type=variance_arg, default=1.0, help="variance of the class means s² (default 1)")
    p.add_argument("--sampler", choices=["sde", "ode"], default=sampler_default)
    p.add_argument("--T", type=horizon_arg, default=6.0, help="time horizon of the OU process")


def _register_shrinkage(ssub) -> None:
    p = ssub.add_parser("shrinkage", help="max variance ratio over random non-negative schedules (≤ 1 expected)")
    p.add_argument("--n", type=count_arg, default=500, help="number of random schedules")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--alpha", type=positive_arg, default=0.2, help="α of the DMFT check (K = e^{αd})")
    p.add_argument("--n-simulate", type=nonnegative_int, default=6, help="schedules also checked by exact-score simulation")
    p.add_argument("--sigma2", type=variance_arg, default=0.5)
    p.add_argument("--s2", type=variance_arg, default=1.0)
    p.add_argument("--T", type=horizon_arg, default=6.0)
    add_json_flag(p)
    p.set_defaults(func=run_shrinkage)


def _register_calibrate(ssub) -> None:
    p = ssub.add_parser("calibrate", help="solve the negative window that restores the target variance")
    p.add_argument("--base", type=schedule_arg, required=True,
                   help="positive base: constant:w=W or interval:w=W,lo=L,hi=H")
    p.add_argument("--w-neg", default="-1", help="weight of the window (>= -1), or 'auto' (strongest clean one)")
    p.add_argument("--sigma-switch", type=number, help="fix the switch σ and solve the strength instead")
    p.add_argument("--regime", choices=["infinite", "dmft"], default="infinite")
    p.add_argument("--alpha", type=positive_arg, help="K = e^{αd} (regime dmft)")
    p.add_argument("--d", type=count_arg, help="finite-d variant of the DMFT")
    p.add_argument("--steps", type=count_arg, help="calibrate for the lab's sampler with this many steps")
    _common_physics(p)
    add_json_flag(p)
    p.set_defaults(func=run_calibrate)


def _register_compare(ssub) -> None:
    p = ssub.add_parser("compare", help="separability vs diversity table and Pareto plot on exact scores")
    p.add_argument("--regime", choices=["infinite", "exponential"], default="infinite")
    p.add_argument("--d", type=count_arg, default=32)
    p.add_argument("--alpha", type=positive_arg, default=0.2, help="K = e^{αd} (regime exponential)")
    p.add_argument("--n-samples", type=count_arg, default=1000)
    p.add_argument("--steps", type=count_arg, default=100)
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--sampler", choices=["sde", "ode"], default="ode")
    p.add_argument("--base", type=schedule_arg, default="constant:w=2", help="base of the calibrated window")
    p.add_argument("--out", help="folder for compare.json and pareto.png")
    add_json_flag(p)
    p.set_defaults(func=run_compare)


def run_shrinkage(args) -> int:
    from cfglab.experiments.shrinkage import shrinkage_check

    with progress_bar("random schedules") as update:
        result = shrinkage_check(args.n, seed=args.seed, sigma2=args.sigma2, s2=args.s2, T=args.T, alpha=args.alpha,
                                 n_simulate=args.n_simulate, progress=update)
    emit(result, args.json, title="shrinkage theorem: w ≥ 0 ⇒ Var ≤ σ²")
    return 0


def _w_neg(text: str):
    from cfglab._validate import guidance_weight

    return None if text.strip().lower() == "auto" else guidance_weight("--w-neg", text)


def run_calibrate(args) -> int:
    w_neg = _w_neg(args.w_neg)  # before the theory (and torch) loads
    from cfglab.experiments.calibrate import calibrate

    cal = calibrate(args.base, regime=args.regime, alpha=args.alpha, w_neg=w_neg,
                    sigma_switch=args.sigma_switch, sigma2=args.sigma2, s2=args.s2, sampler=args.sampler, T=args.T,
                    d=args.d, steps=args.steps)
    emit(cal.to_dict(), args.json, title=f"calibrated window ({args.regime})")
    return 0


def run_compare(args) -> int:
    from cfglab.experiments.compare import compare_table, pareto_plot

    if args.out:
        writable_dir(args.out, "--out")
    with progress_bar("schedules") as update:
        rows = compare_table(regime=args.regime, d=args.d, alpha=args.alpha, sampler=args.sampler,
                             n_samples=args.n_samples, steps=args.steps, seed=args.seed, calibrate_base=args.base,
                             progress=update)
    result = {"regime": args.regime, "d": args.d, "alpha": args.alpha if args.regime == "exponential" else None,
              "sampler": args.sampler, "steps": args.steps, "n_samples": args.n_samples, "rows": rows}
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "compare.json", result)
        pareto_plot(rows, out / "pareto.png", title=f"{args.regime}, d={args.d}, {args.sampler}")
        result["files"] = [str(out / "compare.json"), str(out / "pareto.png")]
    if args.json:
        emit(result, True)
    else:
        _print_table(rows)
    return 0


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="separability vs diversity (exact scores)")
    for col in ("label", "mean_overlap", "var_perp_ratio", "class_accuracy", "kl_per_dim"):
        table.add_column(col)
    for r in rows:
        cells = [r["label"]] + [("-" if r[k] is None else f"{r[k]:.4g}") for k in
                                ("mean_overlap", "var_perp_ratio", "class_accuracy", "kl_per_dim")]
        table.add_row(*cells)
    Console().print(table)
