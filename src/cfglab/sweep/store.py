"""On-disk results of a sweep: one Parquet row per finished task, written atomically.

Layout under the output folder::

    sweep.json            the resolved sweep (every task's id, kind and parameters)
    tasks/<id>.parquet    one row per finished task (temp file + ``os.replace``)
    errors/<id>.json      the last error of a failed task (retried on the next run)
    results.parquet/.csv  all rows of the current sweep, one per task

A task is finished exactly when its Parquet file exists and is valid (one readable row whose
task id, kind and parameters are the task's), so a killed sweep resumes where it stopped and
a row can never be written twice.  An invalid file (truncated, foreign, edited) is moved aside
to ``tasks/<id>.parquet.invalid-<n>`` with a warning and the task is computed again.
``.lock`` serialises sweeps on one folder (the OS drops it when its process dies).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from cfglab._io import write_atomic, write_json_atomic
from cfglab._validate import CfglabInputError
from cfglab.sweep.config import Task
from cfglab.sweep.validate import check_result_keys, row_problem

__all__ = ["ResultStore"]


class ResultStore:
    """The result folder of one sweep (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        try:
            (self.root / "tasks").mkdir(parents=True, exist_ok=True)
            (self.root / "errors").mkdir(exist_ok=True)
        except OSError as err:
            raise CfglabInputError(f"cannot create sweep folder {str(self.root)!r}: {err.strerror}") from None

    def row_path(self, task_id: str) -> Path:
        return self.root / "tasks" / f"{task_id}.parquet"

    def done_ids(self) -> set[str]:
        """Ids of the tasks with a Parquet row file (unchecked; see :meth:`valid_ids`).

        Hidden names are temporary files of rows being written (``cfglab._io.atomic_path``).
        """
        return {p.stem for p in (self.root / "tasks").glob("*.parquet") if not p.name.startswith(".")}

    @contextlib.contextmanager
    def lock(self):
        """An exclusive lock on the folder: a second sweep on it waits (saying so) instead of redoing work."""
        from filelock import FileLock, Timeout

        lock = FileLock(self.root / ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"cfglab: another sweep is running in {str(self.root)!r}; waiting for it", file=sys.stderr)
            lock.acquire()
        try:
            self._remove_stale_temporaries()
            yield
        finally:
            lock.release()

    def _remove_stale_temporaries(self) -> None:
        """Temporary row files left by a killed sweep (only the lock holder writes rows)."""
        for tmp in (self.root / "tasks").glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)

    def valid_ids(self, tasks: list[Task]) -> set[str]:
        """Ids of ``tasks`` whose row file is valid; invalid files are moved aside (with a warning)."""
        done = self.done_ids()
        return {t.id for t in tasks if t.id in done and self._check_row(t)}

    def _check_row(self, task: Task) -> bool:
        path = self.row_path(task.id)
        reason = row_problem(path, task)
        if reason is None:
            return True
        n = 1 + sum(1 for _ in path.parent.glob(f"{path.name}.invalid-*"))
        aside = path.with_name(f"{path.name}.invalid-{n}")
        os.replace(path, aside)
        warnings.warn(f"sweep result {str(path)!r} is invalid ({reason}); moved to {aside.name!r}, "
                      "the task runs again", stacklevel=2)
        return False

    def write_config(self, tasks: list[Task], meta: dict) -> None:
        """The resolved sweep, next to its results."""
        write_json_atomic(self.root / "sweep.json", {**meta, "tasks": [t.to_dict() for t in tasks]})

    def write_row(self, task: Task, result: dict, timing: dict) -> None:
        """Write the row of a finished task atomically (``timing``: seconds, cpu_seconds); clears its error file."""
        import pandas as pd

        row = {"task_id": task.id, "kind": task.kind, "name": task.name,
               "params": json.dumps(task.params, sort_keys=True), **timing}
        row.update({k: v for k, v in task.params.items() if not isinstance(v, (list, dict))})
        check_result_keys(task.kind, result)
        row.update(result)
        frame = pd.DataFrame([row])
        write_atomic(self.row_path(task.id), lambda tmp: frame.to_parquet(tmp, index=False))
        (self.root / "errors" / f"{task.id}.json").unlink(missing_ok=True)

    def write_error(self, task: Task, error: str) -> None:
        write_json_atomic(self.root / "errors" / f"{task.id}.json", {**task.to_dict(), "error": error})

    def rows(self, tasks: list[Task]):
        """DataFrame of the finished rows of ``tasks`` (in task order, one per task)."""
        import pandas as pd

        frames = [pd.read_parquet(self.row_path(t.id)) for t in tasks if self.row_path(t.id).exists()]
        frames = [f.dropna(axis=1, how="all") for f in frames]
        if not frames:
            return pd.DataFrame(columns=["task_id", "kind", "name", "params", "seconds"])
        return pd.concat(frames, ignore_index=True)

    def collect(self, tasks: list[Task]):
        """Write ``results.parquet`` and ``results.csv`` for ``tasks``; return the table."""
        table = self.rows(tasks)
        write_atomic(self.root / "results.parquet", lambda tmp: table.to_parquet(tmp, index=False))
        write_atomic(self.root / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
        return table
