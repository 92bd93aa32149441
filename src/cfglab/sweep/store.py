"""On-disk results of a sweep: one Parquet row per finished task, written atomically.

Layout under the output folder::

    sweep.json            the resolved sweep (every task's id, kind and parameters)
    tasks/<id>.parquet    one row per finished task (temp file + ``os.replace``)
    errors/<id>.json      the last error of a failed task (retried on the next run)
    results.parquet/.csv  all rows of the current sweep, one per task

A task is finished exactly when its Parquet file exists, so a killed sweep resumes where
it stopped and a row can never be written twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cfglab._io import write_atomic, write_json_atomic
from cfglab._validate import CfglabInputError
from cfglab.sweep.config import Task

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
        """Ids of the finished tasks (those with a Parquet row)."""
        return {p.stem for p in (self.root / "tasks").glob("*.parquet")}

    def write_config(self, tasks: list[Task], meta: dict) -> None:
        """The resolved sweep, next to its results."""
        write_json_atomic(self.root / "sweep.json", {**meta, "tasks": [t.to_dict() for t in tasks]})

    def write_row(self, task: Task, result: dict, timing: dict) -> None:
        """Write the row of a finished task atomically (``timing``: seconds, cpu_seconds); clears its error file."""
        import pandas as pd

        row = {"task_id": task.id, "kind": task.kind, "name": task.name,
               "params": json.dumps(task.params, sort_keys=True), **timing}
        row.update({k: v for k, v in task.params.items() if not isinstance(v, (list, dict))})
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
