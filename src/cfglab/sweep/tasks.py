"""Task kinds of a sweep: a plain dict ``name -> "module:function"`` (imported lazily).

A task function takes the resolved parameters (a dict) and returns a flat dict of numbers
(``None`` allowed).  A sweep file may also name an importable ``"package.module:function"``
as its kind, which is how users add their own experiments, but only with the explicit
opt-in ``allow_import = true`` (``cfglab.sweep.validate``; docs/sweeps.md).
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable

from cfglab._validate import CfglabInputError

__all__ = ["TASKS", "load_function", "resolve_params", "run_task"]

# task kind -> "module:function"; modules are imported only when a task of that kind runs
TASKS: dict[str, str] = {
    "simulate": "cfglab.experiments.tasks:simulate_task",
    "theory.gaussian": "cfglab.experiments.tasks:theory_gaussian_task",
    "theory.transition": "cfglab.experiments.tasks:theory_transition_task",
    "theory.dmft": "cfglab.experiments.tasks:theory_dmft_task",
    "theory.validate": "cfglab.experiments.validate:run_point",
    "theory.crossing": "cfglab.experiments.validate:crossing_point",
    "latent.evaluate": "cfglab.experiments.tasks:latent_evaluate_task",
    "latent.study": "cfglab.experiments.latent_study:study_task",
    "schedules.compare": "cfglab.experiments.tasks:compare_task",
    "schedules.shrinkage": "cfglab.experiments.tasks:shrinkage_task",
    "latent.regime": "cfglab.experiments.latent_regimes:regime_task",
}


def load_function(path: str) -> Callable:
    """Import ``"package.module:function"``; a missing module is a clear input error."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise CfglabInputError(f"task kind {path!r} is neither a known kind ({', '.join(TASKS)}) "
                               "nor a 'module:function' path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise CfglabInputError(f"task function {path!r} is not available: {err}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise CfglabInputError(f"task function {path!r} is not available: "
                               f"{module_name} has no {attr!r}") from None


def _path_of(kind: str) -> str:
    return TASKS.get(kind, kind)


def resolve_params(kind: str, params: dict, *, allow_import: bool = True) -> dict:
    """The fully resolved parameters of one task (``cfglab.sweep.validate.normalize_params``)."""
    from cfglab.sweep.validate import check_kind, normalize_params

    return normalize_params(check_kind(kind, allow_import), params)


def run_task(kind: str, params: dict) -> dict:
    """Run one task and return its flat dict of results (what a Dask worker executes)."""
    result = load_function(_path_of(kind))(dict(params))
    if not isinstance(result, dict):
        raise TypeError(f"task {kind!r} returned {type(result).__name__}, expected a dict")
    return {str(k): _scalar(v) for k, v in result.items()}


def _scalar(value: Any):
    """Numbers and strings pass; anything else (arrays, dicts) is kept as JSON text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        import json

        return json.dumps(value, default=float)
