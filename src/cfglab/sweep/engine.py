"""Run a sweep's unfinished tasks on Dask distributed and store each row as it finishes.

Local by default (a ``LocalCluster`` of worker processes with one thread each); any
running cluster with ``scheduler="tcp://host:port"`` (dask-jobqueue on Slurm, Kubernetes,
``dask scheduler`` + ``dask worker`` by hand).  Results travel back to this process, which
alone writes them, so a task re-run by Dask after a lost worker still yields one row.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from cfglab._validate import CfglabInputError
from cfglab.sweep.config import Task
from cfglab.sweep.store import ResultStore
from cfglab.sweep.tasks import run_task
from cfglab.sweep.validate import check_result_keys

__all__ = ["SweepResult", "run_sweep"]

Progress = Callable[[int, int], None]


@dataclass
class SweepResult:
    """Outcome of :func:`run_sweep`; ``table`` has one row per finished task."""

    table: object  # pandas.DataFrame
    n_tasks: int
    n_cached: int
    n_computed: int
    n_failed: int
    errors: dict = field(default_factory=dict)  # task id -> error text
    seconds: float = 0.0

    def summary(self, out: str | os.PathLike) -> dict:
        return {"out": str(out), "n_tasks": self.n_tasks, "n_cached": self.n_cached,
                "n_computed": self.n_computed, "n_failed": self.n_failed,
                "results": str(os.path.join(out, "results.parquet")),
                "csv": str(os.path.join(out, "results.csv")),
                "errors": self.errors, "seconds": round(self.seconds, 3)}


def _timed(kind: str, params: dict) -> tuple[dict, dict]:
    """What a worker runs: one task, its wall time and the CPU time of the worker process."""
    start, cpu = time.perf_counter(), time.process_time()
    result = run_task(kind, params)
    check_result_keys(kind, result)  # fails the task, not the sweep
    return result, {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int):
    """A Dask client on ``scheduler``, or on a fresh local cluster of ``workers`` processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CfglabInputError("sweeps need Dask: pip install 'cfglab[sweep]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as err:  # unreachable, or not an address
            raise CfglabInputError(f"cannot reach Dask scheduler {scheduler!r}: {err}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _run_inline(todo: list[Task], store: ResultStore, tick: Callable[[], None], errors: dict) -> None:
    """Run tasks one after another in this process (``workers=0``: debugging, tiny sweeps)."""
    for task in todo:
        try:
            result, timing = _timed(task.kind, task.params)
        except Exception as err:  # a failed task is recorded, the others go on
            errors[task.id] = f"{type(err).__name__}: {err}"
            store.write_error(task, traceback.format_exc())
        else:
            store.write_row(task, result, timing)
        tick()


def _run_dask(client, todo: list[Task], store: ResultStore, tick: Callable[[], None], errors: dict) -> None:
    """Submit every task (keyed by its id, so none runs twice at once); store rows as they land."""
    from distributed import as_completed

    by_key, futures = {}, []
    for task in todo:
        future = client.submit(_timed, task.kind, task.params, key=f"cfglab-task-{task.id}")
        by_key[future.key] = task
        futures.append(future)
    del future
    for future in as_completed(futures):
        task = by_key[future.key]
        if future.status == "finished":
            result, timing = future.result()
            store.write_row(task, result, timing)
        else:
            err = future.exception()
            errors[task.id] = f"{type(err).__name__}: {err}"
            store.write_error(task, "".join(traceback.format_exception(err)))
        tick()


def run_sweep(tasks: list[Task], out: str | os.PathLike, *, scheduler: str | None = None,
              workers: int = 2, progress: Progress | None = None, meta: dict | None = None) -> SweepResult:
    """Run the unfinished ``tasks`` and collect every row into ``out/results.parquet`` (+ CSV).

    ``workers=0`` (and no scheduler) runs in this process without Dask.  ``progress(done,
    total)`` is called as tasks finish (cached ones count as done).
    """
    if workers < 0:
        raise CfglabInputError(f"workers must be >= 0, got {workers!r}")
    start = time.perf_counter()
    store = ResultStore(out)
    with store.lock():  # a second sweep on this folder waits, then finds these rows done
        return _run_locked(tasks, store, scheduler, workers, progress, meta, start)


def _run_locked(tasks, store, scheduler, workers, progress, meta, start) -> SweepResult:
    store.write_config(tasks, meta or {})
    done = store.valid_ids(tasks)
    todo = [t for t in tasks if t.id not in done]
    counter = {"done": len(tasks) - len(todo)}
    errors: dict = {}

    def tick() -> None:
        counter["done"] += 1
        if progress is not None:
            progress(counter["done"], len(tasks))

    if progress is not None:
        progress(counter["done"], len(tasks))
    if todo and workers == 0 and not scheduler:
        _run_inline(todo, store, tick, errors)
    elif todo:
        with _client(scheduler, workers) as client:
            _run_dask(client, todo, store, tick, errors)
    table = store.collect(tasks)
    return SweepResult(table, len(tasks), len(tasks) - len(todo), len(todo) - len(errors),
                       len(errors), errors, time.perf_counter() - start)
