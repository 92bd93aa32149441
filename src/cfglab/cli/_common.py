"""Shared pieces of the command line: number parsing, JSON output, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from cfglab._io import json_clean, write_json_atomic
from cfglab._validate import (CfglabInputError, device_name, horizon, positive, positive_int, seed, variance, writable_dir,
                              writable_file)

__all__ = ["number", "integer", "seed_arg", "count_arg", "schedule_arg", "device_arg", "profile_arg", "positive_arg", "horizon_arg",
           "variance_arg", "figure_file", "nonnegative_int", "writable_file", "writable_dir", "add_json_flag", "emit", "emit_study", "progress_bar",
           "write_json_atomic"]


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
positive_arg = _checked(positive)  # a finite float > 0 (rates alpha, memory budgets)
horizon_arg = _checked(horizon)  # an OU horizon T in (0, T_MAX]
variance_arg = _checked(variance)  # σ² or s² within VARIANCE_RANGE


def _kept_text(check):
    """argparse type: the text itself, once ``check(text)`` (a library validator) accepts it (its message kept)."""
    def parse(text: str) -> str:
        try:
            check(text)
        except CfglabInputError as err:
            raise argparse.ArgumentTypeError(str(err).strip()) from None
        return text
    parse.__name__ = check.__name__
    return parse


def _schedule(text: str) -> None:
    from cfglab.guidance.schedules import parse_schedule  # torch is imported lazily there

    parse_schedule(text)


def _profile(text: str) -> None:
    from cfglab.latent.config import profile_config  # plain dataclasses, no torch

    profile_config(text)


def _device(text: str) -> None:
    device_name("", text)  # its syntax only (argparse names the flag); torch checks later that it exists


schedule_arg = _kept_text(_schedule)  # a guidance schedule string, e.g. constant:w=2
profile_arg = _kept_text(_profile)  # a latent training profile: default, tiny or glyphs
device_arg = _kept_text(_device)  # cpu, cuda, cuda:N or mps


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


def emit(result: dict, as_json: bool, *, title: str = "") -> None:
    """Print ``result`` as one JSON object, or as a readable table (arrays summarised)."""
    result = json_clean(result)
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


def emit_study(result: dict, as_json: bool, out: str, files: str) -> int:
    """A study's JSON, or its Markdown table and the list of ``files`` written under ``out``."""
    if as_json:
        emit(result, True)
        return 0
    print(Path(result["files"]["table"]).read_text())
    print(f"files under {out}: {files}")
    return 0


@contextlib.contextmanager
def progress_bar(description: str):
    """Yield ``update(done, total)``; draws a rich bar on stderr when it is a TTY.

    The bar never touches stdout, so ``--json > out.json`` still shows progress.
    """
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
