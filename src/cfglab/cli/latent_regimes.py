"""``cfglab latent regimes``: the regime study of negative-guidance windows (docs/latent.md)."""

from __future__ import annotations

from cfglab.cli._common import add_json_flag, integer, profile_arg, progress_bar

__all__ = ["register_regimes"]


def register_regimes(verbs) -> None:
    """Add the ``regimes`` verb to ``cfglab latent``."""
    p = verbs.add_parser(
        "regimes",
        help="regime study: measure α/α_c, predict, sweep windows vs constant CFG, decide",
    )
    p.add_argument("--profile", type=profile_arg, default="default", help="training profile: default or tiny")
    p.add_argument("--preset", choices=["quick", "full", "test"], default="quick")
    p.add_argument("--conditionings", nargs="+", metavar="NAME", help="default: all")
    p.add_argument("--seeds", type=integer, default=None, help="seeds (preset default: 10)")
    p.add_argument("--out", default="latent-regimes", metavar="DIR")
    p.add_argument("--workers", type=integer, default=0,
                   help="Dask worker processes (0: run in this process)")  # fmt: skip
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument("--threads", type=integer, default=1)
    add_json_flag(p)
    p.set_defaults(func=run_regimes)


def run_regimes(args) -> int:
    from cfglab.cli._common import emit_study
    from cfglab.experiments.latent_regimes import regime_study

    with progress_bar("regime study") as update:
        result = regime_study(
            profile=args.profile, preset=args.preset, conditionings=args.conditionings,
            seeds=args.seeds, out=args.out, workers=args.workers, scheduler=args.scheduler,
            threads=args.threads, progress=update,
        )  # fmt: skip
    files = "regimes.json, predictions.json, table.md, force.png, gain.png"
    return emit_study(result, args.json, args.out, files)
