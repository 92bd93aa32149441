"""Sweep files are data, not code: kinds, parameters and result names checked before any task runs.

* A kind is one of cfglab's registered kinds (:data:`cfglab.sweep.tasks.TASKS`); a user's
  own ``"package.module:function"`` runs only with the explicit opt-in ``allow_import = true``
  at the top of the sweep file (or ``cfglab sweep --allow-import``), see docs/sweeps.md.
* Parameters are checked against the kind's signature (unknown names, missing ones, types)
  and normalised once — defaults filled in, ints given for floats turned into floats — so the
  same experiment has the same task id however it was written.
* Parameter and result names may not take the name of an identity column of the result table.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from typing import Any, Callable

from cfglab._validate import CfglabInputError, horizon, positive, positive_int, seed

__all__ = ["IDENTITY_COLUMNS", "MAX_TASKS", "check_kind", "normalize_params", "check_result_keys",
           "check_grid_size", "row_problem"]

IDENTITY_COLUMNS = frozenset({"task_id", "kind", "name", "params", "seconds", "cpu_seconds"})
MAX_TASKS = 100_000  # tasks one sweep may expand to (each is a row, a file and a Dask future)

# kind -> "module:callable" whose keyword parameters (names, defaults, type hints) a task takes
SIGNATURES: dict[str, str] = {
    "theory.gaussian": "cfglab.theory.gaussian:solve_gaussian",
    "theory.transition": "cfglab.theory.transition:transition",
    "theory.dmft": "cfglab.theory.dmft:solve_dmft",
    "latent.evaluate": "cfglab.latent.pipeline:evaluate_point",
    "schedules.shrinkage": "cfglab.experiments.shrinkage:shrinkage_check",
}

# parameter name -> range check, applied to any kind's parameter of that name (None = unset)
_RANGES: dict[str, Callable] = {
    "alpha": positive, "sigma2": positive, "s2": positive, "T": horizon, "seed": seed, "d": positive_int,
    "steps": positive_int, "n_samples": positive_int, "n_per_class": positive_int, "n": positive_int,
}


def check_kind(kind: Any, allow_import: bool) -> str:
    """A registered kind, or (with ``allow_import``) a ``"module:function"`` path; else one-line error."""
    from cfglab.sweep.tasks import TASKS

    if not isinstance(kind, str) or not kind:
        raise CfglabInputError(f"kind must be a non-empty string, got {kind!r}")
    if kind in TASKS:
        return kind
    if ":" in kind and allow_import:
        return kind
    if ":" in kind:
        raise CfglabInputError(f"task kind {kind!r} is not one of cfglab's kinds ({', '.join(TASKS)}); to run "
                               "your own importable function set allow_import = true in the sweep file "
                               "(or pass --allow-import)")
    raise CfglabInputError(f"unknown task kind {kind!r}; choose from {', '.join(TASKS)} "
                           "(or allow_import = true and a 'module:function' path)")


def check_grid_size(sizes: dict[str, int]) -> int:
    """The number of grid combinations, refused above :data:`MAX_TASKS` with the size named."""
    total = math.prod(sizes.values())
    if total > MAX_TASKS:
        shape = " x ".join(f"{k}:{n}" for k, n in sizes.items())
        raise CfglabInputError(f"the grid has {total} combinations ({shape}), more than the limit of "
                               f"{MAX_TASKS}; split it into several sweeps")
    return total


def normalize_params(kind: str, params: Any) -> dict:
    """The task's parameters, checked against its kind and normalised (defaults filled, types coerced)."""
    from cfglab.sweep.tasks import TASKS

    if not isinstance(params, dict):
        raise CfglabInputError(f"params of a {kind!r} task must be a table, got {params!r}")
    clash = sorted(IDENTITY_COLUMNS & set(params))
    if clash:
        raise CfglabInputError(f"parameter name(s) {clash} of a {kind!r} task are identity columns of the "
                               f"result table ({', '.join(sorted(IDENTITY_COLUMNS))}); rename them")
    params = dict(params)
    if kind == "simulate":
        return _simulate(params)
    if kind in ("theory.validate", "theory.crossing"):
        return _validate_point(params)
    if kind in SIGNATURES:
        return _check_ranges(kind, _by_signature(kind, _load(SIGNATURES[kind]), params))
    if kind in TASKS:  # a registered kind without a known signature: plain values only
        return {k: _plain(kind, k, v) for k, v in params.items()}
    return params  # a user's function (allow_import): its parameters are its business


def check_result_keys(kind: str, result: dict) -> None:
    """A task's results may not overwrite the identity columns of its row."""
    clash = sorted(IDENTITY_COLUMNS & set(result))
    if clash:
        raise CfglabInputError(f"task {kind!r} returned result key(s) {clash}, which are identity columns "
                               f"({', '.join(sorted(IDENTITY_COLUMNS))}); rename them")


def row_problem(path, task) -> str | None:
    """Why the row file ``path`` is not ``task``'s finished row, or None when it is."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["task_id", "kind", "params"])
    except (OSError, pa.ArrowException, KeyError) as err:
        return f"unreadable: {' '.join(str(err).split()).split('. ')[0]}"
    if table.num_rows != 1:
        return f"{table.num_rows} rows, expected 1"
    row = {k: v[0] for k, v in table.to_pydict().items()}
    if row["task_id"] != task.id:
        return f"it holds task {row['task_id']!r}"
    if row["kind"] != task.kind or row["params"] != json.dumps(task.params, sort_keys=True):
        return "its kind or parameters differ from the task's"
    return None


@functools.lru_cache(maxsize=None)
def _load(path: str) -> Callable:
    from cfglab.sweep.tasks import load_function

    return load_function(path)


def _simulate(params: dict) -> dict:
    from cfglab.lab.simulate import SimulationConfig

    trajectory = _coerce("simulate", "trajectory", params.pop("trajectory", False), bool)
    resolved = _by_signature("simulate", SimulationConfig, params)
    try:
        resolved = SimulationConfig(**resolved).to_dict()
    except TypeError as err:
        raise CfglabInputError(f"bad simulate parameters: {err}") from None
    return {**resolved, "trajectory": True} if trajectory else resolved


def _validate_point(params: dict) -> dict:
    """``theory.validate`` / ``theory.crossing``: DEFAULTS filled, checked through ``SimulationConfig``."""
    from cfglab.lab.simulate import SimulationConfig
    DEFAULTS = _load("cfglab.experiments.validate:DEFAULTS")  # noqa: N806 (by name, like the registry)

    hints = typing.get_type_hints(SimulationConfig)
    known = {"d", *DEFAULTS}
    unknown = sorted(set(params) - known)
    if unknown:
        raise CfglabInputError(f"unknown parameter(s) {unknown} for theory.validate/crossing; expected {sorted(known)}")
    if "d" not in params:
        raise CfglabInputError("theory.validate/crossing tasks need the parameter 'd'")
    resolved = {k: _coerce("theory.validate", k, v, hints[k]) for k, v in {**DEFAULTS, **params}.items()}
    SimulationConfig(**resolved)  # every range and the memory budget, before anything runs
    return resolved


def _by_signature(kind: str, fn: Callable, params: dict) -> dict:
    """Fill the defaults of ``fn``'s keyword parameters; refuse unknown or missing names and wrong types."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    names = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = sorted(set(params) - {p.name for p in names})
    if unknown:
        raise CfglabInputError(f"unknown parameter(s) {unknown} for a {kind!r} task; "
                               f"expected {sorted(p.name for p in names)}")
    out = {}
    for p in names:
        if p.name in params:
            out[p.name] = _coerce(kind, p.name, params[p.name], hints.get(p.name, Any))
        elif p.default is not p.empty:
            out[p.name] = p.default
        else:
            raise CfglabInputError(f"a {kind!r} task needs the parameter {p.name!r}")
    return out


def _coerce(kind: str, name: str, value: Any, hint) -> Any:
    """``value`` as type ``hint`` (int stays int, int -> float, no bool for numbers, None if optional)."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for t in allowed:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            return value
    if all(t in (bool, int, float, str, type(None)) for t in allowed):
        want = " or ".join(t.__name__ for t in allowed if t is not type(None))
        raise CfglabInputError(f"parameter {name} of a {kind!r} task must be {want}, got {value!r}")
    return _plain(kind, name, value)


def _plain(kind: str, name: str, value: Any) -> Any:
    """An unannotated parameter: a TOML value (number, string, bool or a list of them)."""
    ok = (bool, int, float, str)
    if isinstance(value, ok) or (isinstance(value, list) and all(isinstance(v, ok) for v in value)):
        return value
    raise CfglabInputError(f"parameter {name} of a {kind!r} task must be a number, string, bool or list, "
                           f"got {value!r}")


def _check_ranges(kind: str, params: dict) -> dict:
    """Range checks by parameter name, and the schedule parsed, before any task runs."""
    from cfglab.guidance.schedules import parse_schedule

    for name, check in _RANGES.items():
        if params.get(name) is not None:
            check(name, params[name])
    if isinstance(params.get("schedule"), str):
        parse_schedule(params["schedule"])
    if kind == "latent.evaluate":
        from cfglab.latent.evaluate import check_sample_size
        from cfglab.latent.pipeline import resolve_config

        resolve_config(params["profile"], data=params["data"], seed=params["seed"])
        check_sample_size(params["n_per_class"])
    elif params.get("sampler") is not None and params["sampler"] not in ("sde", "ode"):
        raise CfglabInputError(f"unknown sampler {params['sampler']!r} for a {kind!r} task; choose sde or ode")
    return params
