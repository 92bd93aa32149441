"""``cfglab diffusers profile``: CFG-force profile of a local diffusers pipeline (docs/diffusers.md).

Imports torch and diffusers only when the command runs.
"""

from __future__ import annotations

from pathlib import Path

from cfglab._validate import CfglabInputError
from cfglab.cli._common import add_json_flag, emit, integer, number, write_json_atomic


def register(sub) -> None:
    p = sub.add_parser("diffusers", help="diffusers integration: profile")
    dsub = p.add_subparsers(dest="diffusers_command", required=True, parser_class=type(p))
    q = dsub.add_parser("profile", help="CFG force per σ of a local pipeline folder, and a suggested σ_switch")
    q.add_argument("pipeline_dir", metavar="PIPELINE_DIR", help="folder written by save_pretrained (no downloads)")
    group = q.add_mutually_exclusive_group()
    group.add_argument("--prompt", action="append", help="prompt (repeatable; text-to-image pipelines)")
    group.add_argument("--label", action="append", type=integer, help="class label (repeatable; DiT)")
    q.add_argument("--steps", type=integer, default=30, help="sampling steps (default 30)")
    q.add_argument("--scheduler", help="diffusers scheduler class to use, e.g. EulerAncestralDiscreteScheduler")
    q.add_argument("--w", type=number, default=6.5, help="constant guidance weight of the profiling runs "
                                                         "(paper convention; guidance_scale = 1 + w; default 6.5)")
    q.add_argument("--collapse", type=number, default=0.1,
                   help="the force has collapsed below this fraction of its peak (default 0.1)")
    q.add_argument("--seed", type=integer, default=0)
    q.add_argument("--out", help="folder for profile.json and profile.png")
    add_json_flag(q)
    q.set_defaults(func=run_profile)


def _check(args) -> None:
    if not Path(args.pipeline_dir).is_dir():
        raise CfglabInputError(f"PIPELINE_DIR {args.pipeline_dir!r} is not an existing folder")
    if args.steps < 2:
        raise CfglabInputError(f"--steps must be at least 2, got {args.steps}")
    if not 0 < args.collapse < 1:
        raise CfglabInputError(f"--collapse must lie in (0, 1), got {args.collapse}")
    if args.w <= -1 or args.w == 0:
        raise CfglabInputError(f"--w must be > -1 and not 0 (both passes must run), got {args.w}")
    from cfglab.integrations.diffusers.profile import pipeline_kind  # reads model_index.json only

    pipeline_kind(args.pipeline_dir, args.prompt, args.label)


def run_profile(args) -> int:
    _check(args)  # before any weights are loaded
    from cfglab.integrations.diffusers.profile import load_pipeline, plot_profile, profile_pipeline

    pipe = load_pipeline(args.pipeline_dir, args.scheduler)
    result = profile_pipeline(pipe, prompts=args.prompt, labels=args.label, steps=args.steps, w=args.w,
                              collapse=args.collapse, seed=args.seed)
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "profile.json", result)
        plot_profile(result, out / "profile.png")
        result = {**result, "json": str(out / "profile.json"), "plot": str(out / "profile.png")}
    emit(result, args.json, title="CFG force profile")
    return 0
