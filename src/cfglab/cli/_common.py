"""Shared pieces of the command line: number parsing, JSON output, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from cfglab._validate import CfglabInputError, horizon, positive_int, seed, variance, writable_dir, writable_file

__all__ = ["number", "integer", "seed_arg", "count_arg", "horizon_arg", "variance_arg", "figure_file", "nonnegative_int", "writable_file",
           "writable_dir", "add_json_flag", "emit", "progress_bar", "write_json_atomic"]


def number(text: str) -> float:
    """argparse type: a finite float (NaN and inf are rejected with the value named)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return x


def integer(text: str) -> int:
    """argparse type: an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _checked(check):
    """argparse type from a :mod:`cfglab._validate` check (its one-line message kept)."""
    def parse(text: str):
        try:
            return check("value", integer(text) if check in (seed, positive_int) else number(text))
        except CfglabInputError as err:
            raise argparse.ArgumentTypeError(str(err).replace("value ", "", 1)) from None
    parse.__name__ = check.__name__
    return parse


seed_arg = _checked(seed)  # an int in [0, 2**63 - 1]
count_arg = _checked(positive_int)  # an int >= 1
horizon_arg = _checked(horizon)  # an OU horizon T in (0, T_MAX]
variance_arg = _checked(variance)  # σ² or s² within VARIANCE_RANGE


FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def figure_file(path: str, flag: str) -> Path:
    """A writable figure file whose suffix matplotlib can write (none means PNG)."""
    target = writable_file(path, flag)
    if target.suffix and target.suffix.lower() not in FIGURE_SUFFIXES:
        raise CfglabInputError(f"{flag} {str(path)!r}: a figure file must end in {', '.join(FIGURE_SUFFIXES)}")
    return target


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    x = integer(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return x


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def emit(result: dict, as_json: bool, *, title: str = "") -> None:
    """Print ``result`` as one JSON object, or as a readable table (arrays summarised)."""
    result = _clean(result)
    if as_json:
        print(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, show_header=False)
    for key, value in result.items():
        if isinstance(value, (list, dict)):
            value = f"<{len(value)} entries>"
        elif isinstance(value, float):
            value = f"{value:.6g}"
        table.add_row(key, str(value))
    Console().print(table)


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool):
    """Yield ``update(done, total)``; draws a rich bar only when enabled and stderr is a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write JSON to ``path`` atomically (temp file in the same folder, then rename)."""
    with atomic_file(path, "w") as f:
        json.dump(_clean(obj), f, indent=1)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", suffix: str = ".tmp"):
    """Yield an open temp file beside ``path``; renamed onto it on success, deleted on any failure."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(mode, dir=path.parent, delete=False, suffix=suffix) as f:
            tmp = f.name
            yield f
        os.replace(tmp, path)
    except BaseException as err:  # never leave the temp file behind
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise CfglabInputError(f"cannot write {str(path)!r}: {err.strerror}") from None
        raise
