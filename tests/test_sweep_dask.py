"""Sweeps on real Dask processes: a lost worker, and an interrupted sweep resumed.

The tasks are a probe (in a module written to tmp_path) that leaves one marker file per
execution, sleeps a little so a sweep can be interrupted mid-way, and runs a tiny exact-score
simulation (d=5, K=3, 20 steps) whose numbers are checked against a direct run.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")

from cfglab.sweep import ResultStore, run_sweep, tasks_from_dict

PROBE = '''
import os, time, uuid
from pathlib import Path

def probe(params):
    Path(params["marker_dir"], f"{params['i']}-{uuid.uuid4().hex}").touch()
    time.sleep(params["sleep"])
    from cfglab.lab.simulate import SimulationConfig, simulate
    r = simulate(SimulationConfig(d=5, K=3, steps=20, n_samples=50, seed=params["i"]))
    return {"pid": os.getpid(), "mean_overlap": r["mean_overlap"]}
'''


@pytest.fixture
def probe_env(tmp_path, monkeypatch):
    """Write the probe module, make it importable here and in child processes."""
    (tmp_path / "cfglab_sweep_probe.py").write_text(PROBE)
    (tmp_path / "markers").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return tmp_path, env


def _tasks(tmp_path: Path, n: int, sleep: float):
    spec = {"kind": "cfglab_sweep_probe:probe", "allow_import": True, "grid": {"i": list(range(n))},
            "params": {"marker_dir": str(tmp_path / "markers"), "sleep": sleep}}
    return tasks_from_dict(spec)


def _executions(tmp_path: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for marker in (tmp_path / "markers").iterdir():
        i = int(marker.name.split("-")[0])
        counts[i] = counts.get(i, 0) + 1
    return counts


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _check_rows(table, tasks) -> None:
    from cfglab.lab.simulate import SimulationConfig, simulate

    assert sorted(table["task_id"]) == sorted(t.id for t in tasks)  # every row, exactly once
    for _, row in table.iterrows():
        direct = simulate(SimulationConfig(d=5, K=3, steps=20, n_samples=50, seed=int(row["i"])))
        assert row["mean_overlap"] == pytest.approx(direct["mean_overlap"], rel=1e-12)


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.slow  # a real scheduler and three worker processes (~20 s); runs in the slow tier
def test_sweep_survives_a_killed_worker_on_a_real_cluster(probe_env, processes):
    tmp_path, env = probe_env
    sched_file = tmp_path / "scheduler.json"
    quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(sched_file)], **quiet))
    _wait_for(sched_file.exists, 30, "the scheduler")
    workers = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
         "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{k}"], **quiet) for k in range(2)]
    processes.extend(workers)
    import json

    from distributed import Client

    address = json.loads(sched_file.read_text())["address"]
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)

    tasks = _tasks(tmp_path, n=12, sleep=0.4)
    store = ResultStore(tmp_path / "out")
    killed = {}

    by_pid = {w.pid: w for w in workers}

    def kill_a_worker_that_has_worked():
        # Which worker finishes the first rows is up to the scheduler; kill one that did, so
        # the assertions below hold for every interleaving.
        _wait_for(lambda: len(store.done_ids()) >= 2, 60, "two finished rows")
        first = sorted(store.done_ids())[0]
        pid = int(pd.read_parquet(store.row_path(first))["pid"].iloc[0])
        by_pid[pid].send_signal(signal.SIGKILL)
        killed.update(pid=pid, rows_at_kill=len(store.done_ids()))

    killer = threading.Thread(target=kill_a_worker_that_has_worked, daemon=True)
    killer.start()
    result = run_sweep(tasks, tmp_path / "out", scheduler=address)
    killer.join(timeout=5)

    victim = by_pid[killed["pid"]]
    survivor = next(w for w in workers if w is not victim)
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert killed["rows_at_kill"] < len(tasks)          # the kill happened mid-sweep
    assert result.n_failed == 0 and result.n_computed == len(tasks)
    _check_rows(result.table, tasks)
    pids = set(result.table["pid"])
    assert victim.pid in pids and pids <= {victim.pid, survivor.pid}  # the victim worked before the kill
    assert len(list((tmp_path / "out" / "tasks").iterdir())) == len(tasks)


def test_interrupted_local_sweep_resumes_without_recomputing(probe_env):
    tmp_path, env = probe_env
    tasks = _tasks(tmp_path, n=10, sleep=0.3)
    sweep_file = tmp_path / "probe.toml"
    sweep_file.write_text(
        f'allow_import = true\nkind = "cfglab_sweep_probe:probe"\n[params]\nmarker_dir = "{tmp_path / "markers"}"\n'
        f'sleep = 0.3\n[grid]\ni = {list(range(10))}\n')
    out = tmp_path / "out"
    store = ResultStore(out)
    cli = [sys.executable, "-m", "cfglab", "sweep", str(sweep_file), "--out", str(out), "--json"]
    proc = subprocess.Popen(cli, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(store.done_ids()) >= 3, 60, "three finished rows")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its local Dask workers, mid-run
        proc.wait(timeout=10)
    time.sleep(0.5)
    finished_before = store.done_ids()
    assert 3 <= len(finished_before) < len(tasks)
    assert {t.id for t in tasks} >= finished_before

    result = run_sweep(tasks, out, workers=0)  # resume (in this process)

    assert result.n_cached == len(finished_before)
    assert result.n_computed == len(tasks) - len(finished_before)
    _check_rows(result.table, tasks)
    runs = _executions(tmp_path)
    for task in tasks:
        i = task.params["i"]
        if task.id in finished_before:
            assert runs[i] == 1, f"finished task {i} was recomputed"
        else:
            assert 1 <= runs[i] <= 2  # at most once before the kill (in flight) and once after
