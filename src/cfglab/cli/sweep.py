"""``cfglab sweep CONFIG``: a resumable grid of experiments on Dask distributed (docs/sweeps.md)."""

from __future__ import annotations

from cfglab.cli._common import add_json_flag, emit, integer, progress_bar


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a TOML grid of simulate/theory/latent tasks on Dask (resumable)")
    p.add_argument("config", help="sweep file (TOML): kind, [params], [grid], seeds")
    p.add_argument("--out", default=None, help="result folder (default: next to CONFIG, named after it)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786 (default: local cluster)")
    p.add_argument("--workers", type=integer, default=2,
                   help="local worker processes, one thread each (default 2; 0 = run in this process)")
    p.add_argument("--allow-import", action="store_true",
                   help="let the sweep file name your own 'package.module:function' kinds (runs that code)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from cfglab.sweep import load_sweep, run_sweep

    tasks = load_sweep(args.config, allow_import=args.allow_import)
    out = Path(args.out) if args.out else Path(args.config).with_suffix("")
    meta = {"config": str(Path(args.config).resolve()), "scheduler": args.scheduler, "workers": args.workers}
    with progress_bar(f"sweep ({len(tasks)} tasks)") as update:
        result = run_sweep(tasks, out, scheduler=args.scheduler, workers=args.workers,
                           progress=update, meta=meta)
    emit(result.summary(out), args.json, title="cfglab sweep")
    return 1 if result.n_failed else 0
