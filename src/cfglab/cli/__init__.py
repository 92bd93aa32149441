"""``cfglab`` command line (docs/sweeps.md).

Each subcommand lives in its own module exposing ``register(subparsers)``; every command
takes ``--json`` and prints one JSON object.  Bad input exits with status 2 and one line
naming the bad value.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cfglab._validate import CfglabInputError

__all__ = ["main", "build_parser"]

# subcommand name -> module under cfglab.cli; a plain dict, no registry magic
COMMANDS = {
    "simulate": "cfglab.cli.simulate",
    "theory": "cfglab.cli.theory",
    "sweep": "cfglab.cli.sweep",
    "reproduce": "cfglab.cli.reproduce",
    "latent": "cfglab.cli.latent",
    "bench": "cfglab.cli.bench",
    "schedules": "cfglab.cli.schedules",
    "diffusers": "cfglab.cli.diffusers",
}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cfglab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cfglab`` console script."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # usage errors (2) and --help (0) return instead of exiting
        return int(exit_.code or 0)
    try:
        return int(args.func(args) or 0)
    except CfglabInputError as err:
        print(f"cfglab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cfglab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
