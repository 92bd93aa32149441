"""Sweep files (TOML): a task kind, fixed parameters, a grid and seeds -> a list of tasks.

One sweep block::

    kind = "simulate"            # or "theory.dmft", ..., or "package.module:function"
    seeds = [0, 1, 2]            # optional: an int n means seeds 0..n-1 (sets params.seed)
    [params]                     # fixed parameters
    K = 3
    steps = 200
    [grid]                       # the cartesian product of these lists
    d = [10, 20, 40]
    schedule = ["constant:w=0", "constant:w=2"]

Several blocks go in ``[[sweep]]`` arrays of tables.  Each task is identified by a stable
hash of its kind and *resolved* parameters (defaults filled in), so the same experiment
has the same id whatever way it was written.
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
from cfglab.sweep.tasks import resolve_params

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
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise CfglabInputError(f"grid.{key} must be a non-empty list, got {values!r}")
    if seeds is not None:
        seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        if not seeds:
            raise CfglabInputError("seeds must be a positive int or a non-empty list")
        grid = {**grid, "seed": seeds}
    keys = list(grid)
    return [{**params, **dict(zip(keys, combo))} for combo in itertools.product(*grid.values())]


def _block_tasks(block: dict, index: int) -> list[Task]:
    unknown = set(block) - _BLOCK_KEYS
    if unknown:
        raise CfglabInputError(f"sweep block {index}: unknown key(s) {sorted(unknown)}; "
                               f"expected {sorted(_BLOCK_KEYS)}")
    if "kind" not in block:
        raise CfglabInputError(f"sweep block {index}: missing 'kind'")
    kind, name = str(block["kind"]), str(block.get("name", f"{block['kind']}#{index}"))
    combos = expand_grid(dict(block.get("params", {})), dict(block.get("grid", {})), block.get("seeds"))
    return [Task(kind, resolve_params(kind, combo), name) for combo in combos]


def tasks_from_dict(spec: dict) -> list[Task]:
    """Tasks of a parsed sweep file (one block, or ``sweep = [...]`` blocks), duplicates dropped."""
    blocks = spec["sweep"] if "sweep" in spec else [spec]
    if not isinstance(blocks, list) or not blocks:
        raise CfglabInputError("'sweep' must be a non-empty array of tables")
    tasks: dict[str, Task] = {}
    for i, block in enumerate(blocks):
        for task in _block_tasks(block, i):
            tasks.setdefault(task.id, task)
    return list(tasks.values())


def load_sweep(path: str | Path) -> list[Task]:
    """Read a TOML sweep file and expand it into tasks."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CfglabInputError(f"sweep file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CfglabInputError(f"cannot read sweep file {str(path)!r}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise CfglabInputError(f"sweep file {str(path)!r} is not valid TOML: {err}") from None
    return tasks_from_dict(spec)
