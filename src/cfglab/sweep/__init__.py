"""Resumable parameter sweeps on Dask distributed (``cfglab sweep``, docs/sweeps.md).

A sweep is a list of :class:`Task` (a task kind and its resolved parameters, identified by
a stable hash).  :func:`run_sweep` runs the unfinished ones on a Dask cluster (a local one
by default, any scheduler address otherwise) and writes one Parquet row per finished task,
atomically, so an interrupted sweep resumes without recomputing or duplicating anything.
"""

from cfglab.sweep.config import Task, expand_grid, load_sweep, tasks_from_dict
from cfglab.sweep.engine import SweepResult, run_sweep
from cfglab.sweep.store import ResultStore
from cfglab.sweep.tasks import TASKS, resolve_params, run_task

__all__ = [
    "Task", "expand_grid", "load_sweep", "tasks_from_dict",
    "SweepResult", "run_sweep", "ResultStore",
    "TASKS", "resolve_params", "run_task",
]
