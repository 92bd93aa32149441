"""``cfglab reproduce``: run the experiments behind every claim and write the report (docs/sweeps.md)."""

from __future__ import annotations

from cfglab.cli._common import add_json_flag, emit, nonnegative_int, progress_bar


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's claims as a report (index.html, report.md)")
    p.add_argument("--profile", default="quick", help="quick (≈15 min on 2 CPU cores) or full (GPU / Dask cluster)")
    p.add_argument("--out", default="report", help="report folder (default: report); reruns resume")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="a running Dask scheduler (default: local)")
    p.add_argument("--workers", type=nonnegative_int, default=2, help="local worker processes (0 = in this process)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from cfglab.report import get_profile

    profile = get_profile(args.profile)  # before matplotlib and the experiments load
    import matplotlib

    matplotlib.use("Agg")
    from cfglab.report import reproduce
    from cfglab.report.base import LABELS

    with progress_bar(f"reproduce ({profile.name})") as update:
        report = reproduce(profile, args.out, scheduler=args.scheduler, workers=args.workers, progress=update)
    summary = {"out": str(args.out), "profile": profile.name, "wall_s": round(report["wall_s"], 1),
               "index": f"{args.out}/index.html",
               **{f"{name}": s["status"] if s["status"] != "ok" else
                  LABELS[s["supported"]]
                  for name, s in report["sections"].items()}}
    emit(summary, args.json, title="cfglab reproduce")
    return 0
