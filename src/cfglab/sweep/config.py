"""Sweep files (TOML): a task kind, fixed parameters, a grid and seeds -> a list of tasks.

One sweep block::

    kind = "simulate"            # or "theory.dmft", ... ("package.module:function" needs allow_import = true)
    seeds = [0, 1, 2]            # optional: an int n means seeds 0..n-1 (sets params.seed)
    [params]                     # fixed parameters
    K = 3
    steps = 200
    [grid]                       # the cartesian product of these lists
    d = [10, 20, 40]
    schedule = ["constant:w=0", "constant:w=2"]

Several blocks go in ``[[sweep]]`` arrays of tables.  Each task is identified by a stable
hash of its kind and *normalised* parameters (defaults filled in, types coerced once:
``cfglab.sweep.validate``), so the same experiment has the same id whatever way it was written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from cfglab._validate import CfglabInputError
from cfglab.sweep.validate import check_grid_size, check_kind, normalize_params

__all__ = ["Task", "task_id", "expand_grid", "tasks_from_dict", "load_sweep"]

_BLOCK_KEYS = {"kind", "seeds", "params", "grid", "name"}


def task_id(kind: str, params: dict) -> str:
    """Stable 16-hex-digit id of a task: SHA-256 of its canonical JSON."""
    text = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """One unit of work: a task kind and its resolved parameters."""

    kind: str
    params: dict = field(hash=False)
    name: str = ""  # the sweep block it came from (a label, not part of the id)

    @property
    def id(self) -> str:
        return task_id(self.kind, self.params)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "name": self.name, "params": self.params}


def expand_grid(params: dict, grid: dict, seeds=None) -> list[dict]:
    """Cartesian product of ``grid`` (dict of lists) on top of ``params``, times ``seeds``."""
    if not isinstance(params, dict):
        raise CfglabInputError(f"params must be a table, got {params!r}")
    if not isinstance(grid, dict):
        raise CfglabInputError(f"grid must be a table of lists, got {grid!r}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise CfglabInputError(f"grid.{key} must be a non-empty list, got {values!r}")
    if seeds is not None:
        grid = {**grid, "seed": _seed_list(seeds)}
    check_grid_size({k: len(v) for k, v in grid.items()})
    keys = list(grid)
    return [{**params, **dict(zip(keys, combo))} for combo in itertools.product(*grid.values())]


def _seed_list(seeds) -> list[int]:
    """``seeds``: an int n (seeds 0..n-1) or a non-empty list of ints."""
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        return list(range(seeds))
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        return seeds
    raise CfglabInputError(f"seeds must be a positive int or a non-empty list of ints, got {seeds!r}")


def _block_tasks(block: dict, index: int, allow_import: bool) -> list[Task]:
    if not isinstance(block, dict):
        raise CfglabInputError(f"sweep block {index} must be a table, got {block!r}")
    unknown = set(block) - _BLOCK_KEYS
    if unknown:
        raise CfglabInputError(f"sweep block {index}: unknown key(s) {sorted(unknown)}; "
                               f"expected {sorted(_BLOCK_KEYS)}")
    if "kind" not in block:
        raise CfglabInputError(f"sweep block {index}: missing 'kind'")
    kind = check_kind(block["kind"], allow_import)
    name = block.get("name", f"{kind}#{index}")
    if not isinstance(name, str):
        raise CfglabInputError(f"sweep block {index}: name must be a string, got {name!r}")
    combos = expand_grid(block.get("params", {}), block.get("grid", {}), block.get("seeds"))
    return [Task(kind, normalize_params(kind, combo), name) for combo in combos]


def tasks_from_dict(spec: dict, *, allow_import: bool = False) -> list[Task]:
    """Tasks of a parsed sweep file (one block, or ``sweep = [...]`` blocks), duplicates dropped.

    A ``"module:function"`` kind needs ``allow_import`` (the argument, or ``allow_import = true``
    at the top of the file): a sweep file is data and runs only cfglab's own kinds by default.
    """
    spec = dict(spec)
    opt_in = spec.pop("allow_import", False)
    if not isinstance(opt_in, bool):
        raise CfglabInputError(f"allow_import must be true or false, got {opt_in!r}")
    blocks = spec["sweep"] if "sweep" in spec else [spec]
    if not isinstance(blocks, list) or not blocks:
        raise CfglabInputError("'sweep' must be a non-empty array of tables")
    if "sweep" in spec and set(spec) - {"sweep"}:
        raise CfglabInputError(f"unknown top-level key(s) {sorted(set(spec) - {'sweep'})} next to [[sweep]]")
    tasks: dict[str, Task] = {}
    for i, block in enumerate(blocks):
        for task in _block_tasks(block, i, allow_import or opt_in):
            tasks.setdefault(task.id, task)
    check_grid_size({"tasks": len(tasks)})
    return list(tasks.values())


def load_sweep(path: str | Path, *, allow_import: bool = False) -> list[Task]:
    """Read a TOML sweep file and expand it into tasks (``allow_import``: see :func:`tasks_from_dict`)."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CfglabInputError(f"sweep file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CfglabInputError(f"cannot read sweep file {str(path)!r}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise CfglabInputError(f"sweep file {str(path)!r} is not valid TOML: {err}") from None
    return tasks_from_dict(spec, allow_import=allow_import)
