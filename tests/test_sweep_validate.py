"""Sweeps that heal and sweep files that are data: result files checked, kinds from the registry,
parameters checked against each kind's signature, normalised ids, identity columns protected."""

import json
import shutil
import warnings

import pandas as pd
import pytest

from cfglab._validate import CfglabInputError
from cfglab.cli import main
from cfglab.sweep import TASKS, ResultStore, Task, run_sweep, tasks_from_dict
from cfglab.sweep.validate import MAX_TASKS

pytestmark = pytest.mark.usefixtures("float64")  # written for float64 defaults

TINY = {"kind": "simulate", "seeds": 2, "params": {"d": 5, "K": 3, "steps": 10, "n_samples": 40},
        "grid": {"schedule": ["constant:w=0", "constant:w=2"]}}


def _table(result):
    return result.table.drop(columns=["seconds", "cpu_seconds"]).sort_values("task_id").reset_index(drop=True)


def test_truncated_and_foreign_rows_are_moved_aside_and_recomputed(tmp_path):
    tasks = tasks_from_dict(TINY)
    clean = run_sweep(tasks, tmp_path / "clean", workers=0)
    out = tmp_path / "s"
    run_sweep(tasks, out, workers=0)
    store = ResultStore(out)
    truncated, foreign = store.row_path(tasks[0].id), store.row_path(tasks[1].id)
    truncated.write_bytes(truncated.read_bytes()[:100])
    shutil.copy(store.row_path(tasks[2].id), foreign)  # a valid file of another task, under this id
    with pytest.warns(UserWarning) as caught:
        again = run_sweep(tasks, out, workers=0)
    assert again.n_computed == 2 and again.n_cached == len(tasks) - 2 and again.n_failed == 0
    assert sorted(str(w.message).split("'")[1] for w in caught) == sorted(map(str, (truncated, foreign)))
    assert {p.name for p in (out / "tasks").glob("*.invalid-*")} == {
        f"{truncated.name}.invalid-1", f"{foreign.name}.invalid-1"}
    pd.testing.assert_frame_equal(_table(again), _table(clean))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed: a third run finds every row valid, warns nothing
        assert run_sweep(tasks, out, workers=0).n_cached == len(tasks)


def test_a_row_with_other_params_under_the_right_id_is_invalid(tmp_path):
    task = tasks_from_dict(TINY)[0]
    run_sweep([task], tmp_path, workers=0)
    path = ResultStore(tmp_path).row_path(task.id)
    frame = pd.read_parquet(path)
    frame.loc[0, "params"] = json.dumps({**task.params, "d": 6}, sort_keys=True)
    frame.to_parquet(path, index=False)
    with pytest.warns(UserWarning, match="parameters differ"):
        assert run_sweep([task], tmp_path, workers=0).n_computed == 1


def test_explicit_defaults_do_not_create_new_task_ids():
    implicit = tasks_from_dict({"kind": "theory.gaussian", "params": {"schedule": "constant:w=2"}})
    explicit = tasks_from_dict({"kind": "theory.gaussian", "params": {
        "schedule": "constant:w=2", "sigma2": 0.5, "s2": 1, "T": 6, "sampler": "sde", "start": "noise"}})
    assert implicit[0].id == explicit[0].id
    assert explicit[0].params["s2"] == 1.0 and isinstance(explicit[0].params["s2"], float)
    a = tasks_from_dict({"kind": "theory.validate", "params": {"d": 5}})
    b = tasks_from_dict({"kind": "theory.validate", "params": {"d": 5, "alpha": 0.2, "seed": 0, "T": 3}})
    assert a[0].id == b[0].id


@pytest.mark.parametrize("spec, match", [
    ({"kind": "simulate", "params": 5}, "params must be a table, got 5"),
    ({"kind": "simulate", "params": {"d": 5, "K": 3}, "seeds": 2.5}, "seeds must be .* got 2.5"),
    ({"kind": "simulate", "params": {"d": True, "K": 3}}, "parameter d of a 'simulate' task must be int, got True"),
    ({"kind": "theory.validate", "params": {"d": 5, "n_samples": 1e1}}, "n_samples .* must be int, got 10.0"),
    ({"kind": "theory.transition", "params": {"alpha": "abc"}}, "alpha .* must be float, got 'abc'"),
    ({"kind": "theory.transition", "params": {"alpha": -1}}, "alpha must be > 0"),
    ({"kind": "theory.gaussian", "params": {"schedule": "constant:w=2", "T": 400}}, "T must be <= 50"),
    ({"kind": "theory.gaussian", "params": {"schedule": "-5"}}, "w must be >= -1"),
    ({"kind": "theory.dmft", "params": {"alpha": 0.2, "bogus": 1}}, r"unknown parameter\(s\) \['bogus'\]"),
    ({"kind": "theory.transition", "params": {}}, "needs the parameter 'alpha'"),
    ({"kind": "simulate", "params": {"d": 5, "K": 3, "seconds": 1}}, r"\['seconds'\] .* identity columns"),
    ({"kind": "subprocess:run", "params": {"args": "true"}}, "not one of cfglab's kinds.*allow_import"),
    ({"kind": "simulate", "params": {"K": 3}, "grid": {"d": list(range(1, 1001)), "seed": list(range(1000))}},
     f"the grid has 1000000 combinations .* limit of {MAX_TASKS}"),
    ({"kind": "latent.evaluate", "params": {"n_per_class": 3}}, "n_per_class must be >= nearest_k"),
    ({"kind": "simulate", "params": {"d": 20000, "K": 3, "memory_gb": 0.001}}, "over the memory budget"),
])
def test_bad_sweep_parameters_are_refused_before_anything_runs(spec, match):
    with pytest.raises(CfglabInputError, match=match):
        tasks_from_dict(spec)


def test_user_functions_need_the_explicit_opt_in(tmp_path, capsys):
    spec = {"kind": "json:dumps", "params": {"a": 1}}
    with pytest.raises(CfglabInputError, match="allow_import"):
        tasks_from_dict(spec)
    assert tasks_from_dict({**spec, "allow_import": True})[0].kind == "json:dumps"
    assert tasks_from_dict(spec, allow_import=True)[0].kind == "json:dumps"
    path = tmp_path / "s.toml"
    path.write_text('kind = "subprocess:run"\nparams = { args = "touch PWNED" }\n')
    assert main(["sweep", str(path), "--workers", "0", "--json"]) == 2
    assert "allow_import" in capsys.readouterr().err and not (tmp_path / "PWNED").exists()


def _collides(params):
    return {"task_id": "forged", "value": 1.0}


def test_result_keys_may_not_overwrite_identity_columns(tmp_path):
    task = Task(f"{__name__}:_collides", {"a": 1})
    result = run_sweep([task], tmp_path, workers=0)
    assert result.n_failed == 1 and "['task_id']" in result.errors[task.id]
    assert not ResultStore(tmp_path).row_path(task.id).exists()


def test_every_registered_kind_runs_on_a_tiny_input(tmp_path, monkeypatch):
    """One task per kind through the sweep engine (latent.evaluate on a stubbed pipeline)."""
    import cfglab.latent.pipeline as pipeline

    calls = []
    monkeypatch.setattr(pipeline, "prepare", lambda cfg, **kw: calls.append(cfg.profile) or "prep")
    monkeypatch.setattr(pipeline, "evaluate_schedule", lambda prep, schedule, **kw: {
        "schedule": str(schedule), "vendi": 1.0, "reference": {"vendi": 2.0}})
    small = {"d": 4, "alpha": 0.3, "n_samples": 30, "steps": 5, "T": 2.0}
    params = {
        "simulate": {"d": 4, "K": 3, "n_samples": 30, "steps": 5},
        "theory.gaussian": {"schedule": "constant:w=2", "n_points": 3},
        "theory.transition": {"alpha": 0.2},
        "theory.dmft": {"alpha": 0.2, "schedule": "constant:w=1"},
        "theory.validate": small,
        "theory.crossing": small,
        "latent.evaluate": {"profile": "tiny", "n_per_class": 7, "steps": 2},
        "schedules.compare": {"d": 4, "alpha": 0.3, "n_samples": 40, "steps": 5, "seed": 0},
        "schedules.shrinkage": {"n": 2, "n_simulate": 0, "alpha": 0.2},
    }
    trained = {"latent.study", "latent.regime"}  # need a trained model: tests/test_sweep_tasks.py runs them
    assert set(params) == set(TASKS) - trained
    tasks = [t for kind, p in params.items() for t in tasks_from_dict({"kind": kind, "params": p})]
    result = run_sweep(tasks, tmp_path, workers=0)
    assert result.n_failed == 0, result.errors
    assert sorted(result.table["kind"]) == sorted(set(TASKS) - trained) and calls == ["tiny"]
    row = result.table.set_index("kind").loc["latent.evaluate"]
    assert row["vendi"] == 1.0 and row["reference_vendi"] == 2.0


def test_temporary_rows_of_a_killed_sweep_are_not_done_and_are_removed_by_the_next(tmp_path):
    """A SIGKILL mid-write leaves ``tasks/.<id>.parquet.<rand>.tmp.parquet``: never a finished
    task, and cleared once the next sweep holds the folder lock."""
    store = ResultStore(tmp_path)
    stray = tmp_path / "tasks" / ".9906b611368b6f4e.parquet.2pgvafkr.tmp.parquet"
    stray.write_bytes(b"PAR1 half-written")
    assert store.done_ids() == set()
    result = run_sweep(tasks_from_dict({"kind": "theory.transition", "params": {"alpha": 0.2}}), tmp_path, workers=0)
    assert result.n_computed == 1 and not stray.exists()
    assert store.done_ids() == {result.table["task_id"][0]}
