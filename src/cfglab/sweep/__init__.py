"""Resumable parameter sweeps on Dask distributed (``cfglab sweep``, docs/sweeps.md).

A sweep is a list of :class:`Task` (a task kind and its resolved parameters, identified by
a stable hash).  :func:`run_sweep` runs the unfinished ones on a Dask cluster (a local one
by default, any scheduler address otherwise) and writes one Parquet row per finished task,
atomically, so an interrupted sweep resumes without recomputing or duplicating anything.
"""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.sweep.config": ("Task", "expand_grid", "load_sweep", "tasks_from_dict"),
    "cfglab.sweep.engine": ("SweepResult", "run_sweep"),
    "cfglab.sweep.store": ("ResultStore",),
    "cfglab.sweep.tasks": ("TASKS", "resolve_params", "run_task"),
})

__all__ = [
    "Task", "expand_grid", "load_sweep", "tasks_from_dict",
    "SweepResult", "run_sweep", "ResultStore",
    "TASKS", "resolve_params", "run_task",
]
