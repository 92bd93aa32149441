"""``cfglab theory``: infinite-class limit, class-resolution transition, DMFT, potential, validation (docs/theory.md, docs/sweeps.md)."""

from __future__ import annotations

import argparse
import os
import sys

from cfglab._validate import CfglabInputError, positive, positive_int
from cfglab.cli._common import (add_json_flag, count_arg, emit, figure_file, horizon_arg, integer, number,
                               positive_arg, progress_bar, schedule_arg, variance_arg, writable_dir, writable_file,
                               write_json_atomic)


def _ensemble_args(p: argparse.ArgumentParser, alpha: bool = True) -> None:
    if alpha:
        p.add_argument("--alpha", type=positive_arg, required=True, help="rate: K = e^{alpha d} classes")
    p.add_argument("--sigma2", type=variance_arg, default=0.5, help="within-class variance σ² (default 0.5)")
    p.add_argument("--s2", type=variance_arg, default=1.0, help="variance of the class means s² (default 1)")


def _dynamics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", type=schedule_arg, default="constant:w=0", help="guidance schedule, e.g. constant:w=2")
    p.add_argument("--sampler", choices=["sde", "ode"], default="sde")
    p.add_argument("--T", type=horizon_arg, default=6.0, help="time horizon of the OU process")


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None


def register(sub) -> None:
    p = sub.add_parser("theory", help="theory of guided diffusion: gaussian | transition | dmft | windows | potential | validate | scaling")
    tsub = p.add_subparsers(dest="theory_command", required=True, parser_class=type(p))

    g = tsub.add_parser("gaussian", help="infinite-class (Gaussian) limit: final mean overlap and variance")
    _ensemble_args(g, alpha=False)
    _dynamics_args(g)
    add_json_flag(g)
    g.set_defaults(func=run_gaussian)

    t = tsub.add_parser("transition", help="class-resolution time t_c and critical rate alpha_c (REM)")
    _ensemble_args(t)
    add_json_flag(t)
    t.set_defaults(func=run_transition)

    d = tsub.add_parser("dmft", help="DMFT of the guided dynamics with K = e^{alpha d} classes")
    _ensemble_args(d)
    _dynamics_args(d)
    d.add_argument("--d", type=count_arg, default=None, help="finite-d variant (smooth switch); default d → ∞")
    d.add_argument("--steps", type=count_arg, default=None, help="moments of the lab sampler on this many steps")
    d.add_argument("--start", choices=["noise", "marginal"], default="noise")
    d.add_argument("--trajectory", metavar="FILE", help="write the order-parameter trajectories as JSON")
    add_json_flag(d)
    d.set_defaults(func=run_dmft)

    u = tsub.add_parser("potential", help="plot the effective potential along the target across the transition")
    _ensemble_args(u)
    u.add_argument("--w", type=number, default=2.0, help="constant guidance weight")
    u.add_argument("--sampler", choices=["sde", "ode"], default="sde")
    u.add_argument("--d", type=count_arg, default=None, help="finite-d smoothing of the kink")
    u.add_argument("--out", required=True, help="PNG file")
    add_json_flag(u)
    u.set_defaults(func=run_potential)

    wd = tsub.add_parser("windows", help="negative-window phase diagram over alpha/alpha_c, sigma_switch, w_neg (DMFT)")
    wd.add_argument("--ratios", type=_floats, default=None, help="alpha/alpha_c values (default 0.1,0.3,0.5,0.7,0.9,1.2,1.5)")
    wd.add_argument("--switches", type=_floats, default=None, help="sigma_switch values (default 0.3,0.8,1.5,3,6)")
    wd.add_argument("--w-negs", type=_floats, default=None, help="window weights in [-1, 0) (default -1,-0.5,-0.2)")
    wd.add_argument("--samplers", default="sde,ode", help="comma-separated: sde, ode (default both)")
    wd.add_argument("--w-pos", type=number, default=2.0, help="constant base weight (default 2)")
    wd.add_argument("--T", type=horizon_arg, default=6.0)
    _ensemble_args(wd, alpha=False)
    wd.add_argument("--simulate", action="store_true",
                    help="also run the standard exact-score checks (a few minutes on 2 cores)")
    wd.add_argument("--out", default=None, help="PNG file for the diagram")
    add_json_flag(wd)
    wd.set_defaults(func=run_windows)

    sc = tsub.add_parser("scaling", help="fit the d-exponent of the theory–simulation error (from theory validate)")
    sc.add_argument("table", help="table.json written by `cfglab theory validate --out DIR`")
    sc.add_argument("--out", default=None, help="PNG file: error against d, both theories")
    sc.add_argument("--n-boot", type=integer, default=2000, help="bootstrap resamples of the seeds")
    add_json_flag(sc)
    sc.set_defaults(func=run_scaling)

    v = tsub.add_parser("validate", help="DMFT against exact-score simulation at several d (finite-size scaling)")
    v.add_argument("--alphas", type=_floats, default=[0.1, 0.2], help="comma-separated rates")
    v.add_argument("--dims", type=_ints, default=[20, 30, 40, 50], help="comma-separated dimensions")
    v.add_argument("--seeds", type=count_arg, default=3)
    v.add_argument("--w", type=number, default=2.0, help="constant guidance weight")
    v.add_argument("--sampler", choices=["sde", "ode"], default="sde")
    v.add_argument("--n-samples", type=count_arg, default=400)
    v.add_argument("--steps", type=count_arg, default=150)
    v.add_argument("--T", type=horizon_arg, default=3.0)
    v.add_argument("--start", choices=["noise", "marginal"], default="marginal")
    _ensemble_args(v, alpha=False)
    v.add_argument("--out", default=None, help="folder for table.json and scaling.png")
    add_json_flag(v)
    v.set_defaults(func=run_validate)


def run_gaussian(args) -> int:
    from cfglab.guidance.schedules import parse_schedule
    from cfglab.theory.gaussian import solve_gaussian

    positive("sigma2", args.sigma2), positive("s2", args.s2), positive("T", args.T)
    pred = solve_gaussian(parse_schedule(args.schedule), sigma2=args.sigma2, s2=args.s2, sampler=args.sampler,
                          T=args.T)

    def _plain(x):
        return x.tolist() if hasattr(x, "tolist") else x

    emit({"mean_overlap": _plain(pred.mean_overlap), "var": _plain(pred.var), "var_ratio": _plain(pred.var_ratio)},
         args.json, title="infinite-class limit")
    return 0


def run_transition(args) -> int:
    from cfglab.theory.transition import transition

    res = transition(args.alpha, args.sigma2, args.s2)
    out = {"t_c": res.t_c, "alpha_c": res.alpha_c, "sigma_c": res.sigma_c, "t_c_closed_form": res.t_c_closed_form,
           "alpha": res.alpha, "sigma2": res.sigma2, "s2": res.s2, "message": res.message}
    emit(out, args.json, title="class-resolution transition")
    return 0


def run_dmft(args) -> int:
    from cfglab.theory.dmft import solve_dmft

    if args.trajectory:
        writable_file(args.trajectory, "--trajectory")
    pred = solve_dmft(args.alpha, sigma2=args.sigma2, s2=args.s2, schedule=args.schedule, sampler=args.sampler,
                      T=args.T, d=args.d, steps=args.steps, start=args.start)
    out = {"alpha": args.alpha, "d": args.d, **pred.to_dict()}
    for note in pred.approximations:
        print(f"warning: {note}", file=sys.stderr)
    if args.trajectory:
        write_json_atomic(args.trajectory, {"config": _vars_clean(args), **pred.to_dict(trajectory=True)["trajectory"]})
    emit(out, args.json, title=f"DMFT ({args.schedule}, {args.sampler})")
    return 0


def run_windows(args) -> int:
    from cfglab.experiments.window_checks import STANDARD_CHECKS, simulate_checks
    from cfglab.theory.windows import STANDARD, WindowGrid, plot_diagram, window_diagram

    if args.out:
        figure_file(args.out, "--out")  # before the diagram is computed
    given = {"ratios": args.ratios, "switches": args.switches, "w_negs": args.w_negs}
    grid = WindowGrid(**{k: tuple(v) for k, v in given.items() if v is not None},
                      samplers=tuple(x.strip() for x in args.samplers.split(",") if x.strip()),
                      w_pos=args.w_pos, sigma2=args.sigma2, s2=args.s2, T=args.T)
    if args.simulate and (grid.w_pos, grid.sigma2, grid.s2) != (STANDARD.w_pos, STANDARD.sigma2, STANDARD.s2):
        raise CfglabInputError("--simulate runs the standard checks: keep --w-pos 2, --sigma2 0.5, --s2 1")
    with progress_bar("window diagram") as update:
        out = window_diagram(grid, progress=update)
    if args.simulate:
        with progress_bar("simulation checks") as update:
            out["simulations"] = simulate_checks(list(STANDARD_CHECKS), grid, progress=update)
    if args.out:
        plot_diagram(out, args.out)
        out["figure"] = args.out
    emit(out, args.json, title="negative-window phase diagram")
    return 0


def run_scaling(args) -> int:
    import json

    from cfglab.theory.scaling import error_table, fit_exponents, plot_errors

    try:
        with open(args.table) as fh:
            rows = json.load(fh)["rows"]
    except (OSError, ValueError, KeyError) as err:
        raise CfglabInputError(f"cannot read validation rows from {args.table!r}: {err}") from None
    table = error_table(rows)
    fits = fit_exponents(rows, n_boot=args.n_boot)
    out = {"table": table, "exponents": fits}
    if args.out:
        plot_errors(table, fits, args.out)
        out["figure"] = args.out
    emit(out, args.json, title="theory–simulation error against d")
    return 0


def _vars_clean(args) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func"}


def run_potential(args) -> int:
    from cfglab.theory.potential import plot_potential

    positive("alpha", args.alpha), positive("sigma2", args.sigma2), positive("s2", args.s2)
    figure_file(args.out, "--out")
    if args.d is not None:
        positive_int("--d", args.d)
    out = plot_potential(args.out, alpha=args.alpha, w=args.w, sigma2=args.sigma2, s2=args.s2,
                         sampler=args.sampler, d=args.d)
    emit(out, args.json, title="effective potential")
    return 0


def run_validate(args) -> int:
    for a in args.alphas:
        positive("alpha", a)
    positive("sigma2", args.sigma2)
    if not args.alphas or not args.dims:
        raise CfglabInputError("--alphas and --dims must not be empty")
    for d in args.dims:
        positive_int("--dims", d)
    if args.out:
        writable_dir(args.out, "--out")
    from cfglab.experiments.validate import error_by_d, plot_scaling, validation_table

    points = [dict(d=d, alpha=a, seed=s, schedule=f"constant:w={args.w}", sampler=args.sampler, sigma2=args.sigma2,
                   s2=args.s2, n_samples=args.n_samples, steps=args.steps, T=args.T, start=args.start)
              for a in args.alphas for d in args.dims for s in range(args.seeds)]
    with progress_bar("simulating") as update:
        rows = validation_table(points, progress=update)
    table = error_by_d(rows)
    out = {"w": args.w, "table": table}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_json_atomic(os.path.join(args.out, "table.json"), {"config": _vars_clean(args), "rows": rows,
                                                                 "table": table})
        plot_scaling(table, os.path.join(args.out, "scaling.png"))
        out["plot"] = os.path.join(args.out, "scaling.png")
    if args.json:
        emit(out, True)
    else:
        _print_table(table)
    return 0


def _print_table(table: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    tab = Table(title="theory vs simulation (err = |sim − DMFT(d→∞)|, se = seed standard error)")
    for col in ("α", "d", "K", "m sim", "m DMFT", "m fin-d", "err m", "v⊥ sim", "v⊥ DMFT", "err v⊥", "v∥ sim",
                "v∥ DMFT", "v∥ fin-d"):
        tab.add_column(col)
    for r in table:
        tab.add_row(*(f"{x:.4g}" if isinstance(x, float) else str(x) for x in (
            r["alpha"], r["d"], r["K"], r["sim_mean_overlap"], r["inf_mean_overlap"], r["fin_mean_overlap"],
            r["err_mean_overlap"], r["sim_var_perp"], r["inf_var_perp"], r["err_var_perp"], r["sim_var_parallel"],
            r["inf_var_parallel"], r["fin_var_parallel"])))
    Console().print(tab)
