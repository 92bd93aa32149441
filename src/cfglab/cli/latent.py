"""``cfglab latent train|sample|evaluate|study``: the real latent diffusion model (docs/latent.md, docs/sweeps.md)."""

from __future__ import annotations

import argparse

from cfglab.cli._common import (add_json_flag, count_arg, emit, emit_study, integer, profile_arg, progress_bar,
                               schedule_arg, seed_arg, writable_dir, writable_file)


def register(sub) -> None:
    p = sub.add_parser(
        "latent", help="class-conditional latent diffusion on real data; guidance study"
    )
    verbs = p.add_subparsers(dest="latent_command", required=True, parser_class=type(p))
    _train(verbs.add_parser("train", help="train (or reuse) the cached model"))
    _sample(verbs.add_parser("sample", help="generate images under a guidance schedule"))
    _evaluate(
        verbs.add_parser(
            "evaluate", help="score samples of a schedule with the independent evaluator"
        )
    )
    _study(verbs.add_parser("study", help="the schedule study: table, Pareto plot, grids, JSON"))
    from cfglab.cli.latent_regimes import register_regimes

    register_regimes(verbs)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=profile_arg, default="default", help="training profile: default, tiny or glyphs")
    p.add_argument(
        "--data",
        default="digits",
        help="'digits' (embedded), a .npz (images, labels) or a class-per-folder directory",
    )
    p.add_argument("--seed", type=seed_arg, default=0, help="training seed")
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="checkpoint folder (default: the cache, $CFGLAB_CACHE or ~/.cache/cfglab)",
    )
    p.add_argument(
        "--threads", type=integer, default=1, help="CPU threads for torch/BLAS (default 1)"
    )
    add_json_flag(p)


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--schedule", type=schedule_arg, default="constant:w=0", help="guidance schedule w(σ), e.g. constant:w=2"
    )
    p.add_argument("--n-per-class", type=count_arg, default=50)
    p.add_argument(
        "--steps", type=count_arg, default=12, help="sampler steps on the Karras ρ=7 σ grid"
    )
    p.add_argument("--sampler", choices=["heun", "euler", "euler_ancestral"], default="heun")
    p.add_argument("--sample-seed", type=seed_arg, default=0)


def _train(p) -> None:
    _model_args(p)
    p.set_defaults(func=run_train)


def _sample(p) -> None:
    _model_args(p)
    _sampling_args(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output .npz (images, labels); a .png grid is written beside it",
    )
    p.set_defaults(func=run_sample)


def _evaluate(p) -> None:
    _model_args(p)
    _sampling_args(p)
    p.set_defaults(func=run_evaluate)


def _study(p) -> None:
    p.add_argument("--profile", type=profile_arg, default="default", help="training profile: default, tiny or glyphs")
    p.add_argument("--data", default="digits")
    p.add_argument("--checkpoint", metavar="DIR")
    p.add_argument(
        "--preset", choices=["full", "quick"], default="full", help="study grid and budget"
    )
    p.add_argument("--seeds", type=count_arg, default=3)
    p.add_argument(
        "--n-per-class",
        type=count_arg,
        default=None,
        help="samples per class per schedule (preset default)",
    )
    p.add_argument("--out", default="latent-study", metavar="DIR",
                   help="results; the study's sweep tasks (resumable) under DIR/tasks")
    p.add_argument("--threads", type=integer, default=1)
    p.add_argument("--workers", type=integer, default=0,
                   help="Dask worker processes for the (schedule, seed) tasks (0: this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786")
    add_json_flag(p)
    p.set_defaults(func=run_study)


def _check_sampling(args, *, scored: bool = False) -> None:
    """Reject a bad sample count or checkpoint folder before any model is loaded (argparse checked the schedule)."""
    from cfglab.latent.evaluate import check_sample_size

    if scored:  # the evaluator's k-NN metrics need more samples per class than neighbours
        check_sample_size(args.n_per_class, 5)
    _check_checkpoint(args)


def _check_checkpoint(args) -> None:
    """The checkpoint folder (or the cache) must be a folder we could write a new model into."""
    from cfglab.latent.checkpoint import cache_dir

    writable_dir(args.checkpoint or cache_dir(), "--checkpoint" if args.checkpoint else "cache folder")


def _prepare(args, desc: str):
    from cfglab.latent.pipeline import prepare, resolve_config

    with progress_bar(desc) as update:
        return prepare(
            resolve_config(args.profile, data=args.data, seed=args.seed),
            checkpoint=args.checkpoint,
            progress=update,
        )


def run_train(args) -> int:
    from cfglab.latent.train import cpu_threads

    _check_checkpoint(args)
    with cpu_threads(args.threads):
        prep = _prepare(args, "training latent model")
    emit(
        {
            "checkpoint": str(prep.checkpoint),
            "trained": prep.trained,
            "seconds": prep.train_seconds,
            "data_hash": prep.data.data_hash,
            "n_train": len(prep.data.train_labels),
            "n_heldout": len(prep.data.test_labels),
            "latent_shape": list(prep.model.latent_shape),
            "evaluator_heldout_accuracy": prep.evaluator.heldout_accuracy,
            "config": prep.model.config.to_dict(),
        },
        args.json,
        title="cfglab latent train",
    )
    return 0


def run_sample(args) -> int:
    import numpy as np
    import torch

    from cfglab.latent.outputs import sample_grid
    from cfglab.latent.sample import generate
    from cfglab.latent.train import cpu_threads

    _check_sampling(args)
    writable_file(args.out, "--out")
    with cpu_threads(args.threads):
        prep = _prepare(args, "loading latent model")
        labels = torch.arange(prep.data.n_classes).repeat_interleave(args.n_per_class)
        images = generate(
            prep.model,
            labels,
            args.schedule,
            steps=args.steps,
            sampler=args.sampler,
            seed=args.sample_seed,
        ).numpy()
    path = _write_npz(args.out, images, labels.numpy())
    grid = np.round((images[:, 0] + 1) * 127.5).clip(0, 255).astype(np.uint8)
    png = path.with_suffix(".png")
    sample_grid(grid.reshape(prep.data.n_classes, args.n_per_class, *grid.shape[1:]), png)
    emit(
        {
            "out": str(path),
            "grid": str(png),
            "n": len(labels),
            "schedule": args.schedule,
            "checkpoint": str(prep.checkpoint),
        },
        args.json,
        title="cfglab latent sample",
    )
    return 0


def run_evaluate(args) -> int:
    from cfglab.latent.pipeline import evaluate_schedule
    from cfglab.latent.train import cpu_threads

    _check_sampling(args, scored=True)
    with cpu_threads(args.threads):
        prep = _prepare(args, "loading latent model")
        result = evaluate_schedule(
            prep,
            args.schedule,
            n_per_class=args.n_per_class,
            steps=args.steps,
            sampler=args.sampler,
            seed=args.sample_seed,
        )
    if not args.json:
        ref = result.pop("reference")
        result.update({f"reference_{k}": v for k, v in ref.items()})
    emit(result, args.json, title=f"cfglab latent evaluate ({args.schedule})")
    return 0


def run_study(args) -> int:
    from cfglab.experiments.latent_study import latent_study

    writable_dir(args.out, "--out")
    _check_checkpoint(args)
    with progress_bar("latent study") as update:
        result = latent_study(
            profile=args.profile,
            preset=args.preset,
            data=args.data,
            out=args.out,
            seeds=args.seeds,
            n_per_class=args.n_per_class,
            checkpoint=args.checkpoint,
            threads=args.threads,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=update,
            train_progress=update,
        )
    return emit_study(result, args.json, args.out, "study.json, table.md, pareto.png, grids/*.png")


def _write_npz(out: str, images, labels):
    import numpy as np

    from cfglab._io import write_atomic

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, images=images, labels=labels)

    return write_atomic(out, write)
