"""``cfglab`` command line (docs/sweeps.md).

Each subcommand lives in its own module exposing ``register(subparsers)``; every command
takes ``--json`` and prints one JSON object.  Bad input (a :class:`CfglabInputError`, a file
that cannot be read or written, a size that does not fit in memory) exits with status 2 and
one line naming the bad value; any other exception is a bug: traceback, a request to report
it, exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings

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
    command = " ".join(v for k, v in vars(args).items() if k == "command" or k.endswith("_command"))
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return int(args.func(args) or 0)
    except CfglabInputError as err:
        return _user_error(command, str(err))
    except MemoryError:
        return _user_error(command, "out of memory; lower the sizes (d, K, --n-samples) or the memory budget")
    except OSError as err:  # a file or folder the user named: unreadable, unwritable, full disk
        if err.filename is None:
            raise
        return _user_error(command, f"{err.filename!r}: {err.strerror}")
    except KeyboardInterrupt:
        print(f"cfglab {command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug in cfglab, not the user's input: full traceback and a request to report it
        traceback.print_exc()
        print(f"cfglab {command}: internal error (a bug in cfglab, not in your input); please report it "
              f"with the command line and the traceback above", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"cfglab: warning: {message}\n"


def _user_error(command: str, message: str) -> int:
    """One line naming the bad value, exit status 2."""
    print(f"cfglab {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
