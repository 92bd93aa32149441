"""Sweep files -> tasks: grid expansion, stable ids, defaults resolved, bad input rejected."""

import json

import pytest

from cfglab._validate import CfglabInputError
from cfglab.sweep import ResultStore, Task, expand_grid, load_sweep, run_sweep, tasks_from_dict
from cfglab.sweep.config import task_id


def test_expand_grid_is_the_cartesian_product_times_seeds():
    combos = expand_grid({"K": 3}, {"d": [5, 10], "schedule": ["a", "b", "c"]}, seeds=2)
    assert len(combos) == 2 * 3 * 2
    assert {(c["d"], c["schedule"], c["seed"]) for c in combos} == {
        (d, s, r) for d in (5, 10) for s in "abc" for r in (0, 1)}
    assert all(c["K"] == 3 for c in combos)


def test_task_id_is_stable_and_ignores_key_order():
    a = task_id("simulate", {"d": 5, "K": 3})
    assert a == task_id("simulate", {"K": 3, "d": 5})
    assert a != task_id("simulate", {"K": 3, "d": 6})
    assert a != task_id("theory.dmft", {"K": 3, "d": 5})
    assert len(a) == 16 and int(a, 16) >= 0


def test_explicit_default_and_omitted_default_are_the_same_task():
    t1 = tasks_from_dict({"kind": "simulate", "params": {"d": 5, "K": 3}})
    t2 = tasks_from_dict({"kind": "simulate", "params": {"d": 5, "K": 3, "sigma2": 0.5, "seed": 0}})
    assert t1[0].id == t2[0].id
    assert t1[0].params["steps"] == 500  # SimulationConfig default filled in


def test_blocks_merge_and_duplicates_are_dropped(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[[sweep]]\nkind = "simulate"\nparams = { d = 5, K = 3 }\ngrid = { seed = [0, 1] }\n'
        '[[sweep]]\nkind = "simulate"\nparams = { d = 5, K = 3 }\nseeds = [1, 2]\n')
    tasks = load_sweep(path)
    assert sorted(t.params["seed"] for t in tasks) == [0, 1, 2]


@pytest.mark.parametrize("spec, match", [
    ({"kind": "nope"}, "unknown task kind 'nope'"),
    ({"kind": "simulate", "params": {"d": -1, "K": 3}}, "d must be >= 1"),
    ({"kind": "simulate", "params": {"d": 5, "K": 3, "bogus": 1}}, "bogus"),
    ({"kind": "simulate", "grid": {"d": []}}, "grid.d must be a non-empty list"),
    ({"kind": "simulate", "colour": 1}, "unknown key"),
    ({"params": {}}, "missing 'kind'"),
])
def test_bad_sweep_specs_raise_one_line_errors(spec, match):
    with pytest.raises(CfglabInputError, match=match):
        tasks_from_dict(spec)


def test_missing_task_module_is_a_clear_error_at_run_time(tmp_path):
    task = Task("no_such_module_xyz:f", {"a": 1})
    result = run_sweep([task], tmp_path, workers=0)
    assert result.n_failed == 1 and "no_such_module_xyz" in result.errors[task.id]
    assert result.table.empty
    assert json.loads((tmp_path / "errors" / f"{task.id}.json").read_text())["id"] == task.id


def test_inline_sweep_rows_match_direct_simulation(tmp_path):
    from cfglab.lab.simulate import SimulationConfig, simulate

    tasks = tasks_from_dict({"kind": "simulate", "seeds": 2,
                             "params": {"d": 5, "K": 3, "steps": 20, "n_samples": 50}})
    result = run_sweep(tasks, tmp_path, workers=0)
    assert result.n_computed == 2 and list(result.table["task_id"]) == [t.id for t in tasks]
    for task, (_, row) in zip(tasks, result.table.iterrows()):
        direct = simulate(SimulationConfig(**task.params))
        assert row["kl_per_dim"] == pytest.approx(direct["kl_per_dim"], rel=1e-12)
    again = run_sweep(tasks, tmp_path, workers=0)
    assert again.n_cached == 2 and again.n_computed == 0
    assert ResultStore(tmp_path).done_ids() == {t.id for t in tasks}
    assert (tmp_path / "results.csv").read_text().count("\n") == 3


def test_cli_prints_one_json_object_and_rejects_bad_files(tmp_path, capsys):
    from cfglab.cli import main

    good = tmp_path / "s.toml"
    good.write_text('kind = "simulate"\nseeds = 2\n[params]\nd = 5\nK = 3\nsteps = 20\nn_samples = 50\n')
    assert main(["sweep", str(good), "--workers", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_tasks"] == 2 and summary["n_computed"] == 2 and summary["n_failed"] == 0
    assert summary["out"] == str(tmp_path / "s")
    bad = tmp_path / "bad.toml"
    bad.write_text("kind = [")
    assert main(["sweep", str(bad), "--json"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
