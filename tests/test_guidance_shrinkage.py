"""Shrinkage theorem (docs/schedules.md): non-negative schedules never raise the final variance above σ²."""

import json

import numpy as np
import pytest
import torch

from cfglab.cli import main
from cfglab.experiments.shrinkage import random_nonnegative_schedule, random_nonnegative_schedules, shrinkage_check
from cfglab.guidance.schedules import parse_schedule
from cfglab.theory.gaussian import solve_gaussian


def test_random_schedules_are_nonnegative_and_serialisable():
    rng = np.random.default_rng(5)
    for _ in range(40):
        s = random_nonnegative_schedule(rng)
        assert s.is_nonnegative()
        assert parse_schedule(str(s)) == s


def test_report_cloud_is_the_shrinkage_check_generator():
    """One random-schedule generator feeds the claim: the report's theory cloud draws the same schedules."""
    from cfglab.report import PROFILES
    from cfglab.report.schedule_section import _tasks

    p = PROFILES["test"]
    cloud = [t.params["schedule"] for t in _tasks(p) if t.kind == "theory.gaussian"]
    expected = random_nonnegative_schedules(p.shrinkage.n_random, p.shrinkage.seed, p.lab.T)
    assert cloud == [str(s) for s in expected]


def test_theorem_holds_and_can_fail_for_negative_weights():
    out = shrinkage_check(12, seed=1, n_simulate=1, sim_d=16, sim_samples=400, sim_steps=60)
    assert out["holds"] and out["max_var_ratio_theory"] <= 1 + 1e-6
    assert out["max_var_ratio_simulated_ode"] <= 1 + 4 * out["simulated_standard_error"]
    # the comparison argument needs w ≥ 0: one negative piece breaks the bound
    assert solve_gaussian("piecewise:weights=2|-0.5,edges=1", start="marginal").var_ratio > 1


def test_bound_is_attained_only_by_w_zero():
    assert solve_gaussian(0.0, start="marginal").var_ratio == pytest.approx(1.0, abs=1e-9)
    assert solve_gaussian("constant:w=0.01", start="marginal").var_ratio < 1


def _cli(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out


def test_cli_shrinkage_json(capsys):
    rc, out = _cli(["schedules", "shrinkage", "--n", "4", "--n-simulate", "0", "--json"], capsys)
    assert rc == 0
    res = json.loads(out.out)
    assert res["n"] == 4 and res["holds"] is True


def test_cli_calibrate_prints_a_usable_schedule(capsys, window_moments):
    """The printed window, integrated independently (solve_ivp on the moment ODEs), restores the variance."""
    rc, out = _cli(["schedules", "calibrate", "--base", "constant:w=2", "--sampler", "ode", "--json"], capsys)
    assert rc == 0
    res = json.loads(out.out)
    assert set(res) >= {"schedule", "sigma_switch", "mean_overlap", "var_ratio", "frozen_before_switch"}
    win = parse_schedule(res["schedule"])
    m, v = window_moments(win.w_pos, win.w_neg, win.sigma_switch, win.sigma_hi, sampler="ode")
    assert v == pytest.approx(1.0, abs=1e-6) and m == pytest.approx(res["mean_overlap"], abs=1e-6) and m > 1
    assert res["frozen_before_switch"] is None  # the infinite-class limit has no frozen phase


@pytest.mark.parametrize("argv", [
    ["schedules", "calibrate", "--base", "constant:w=2", "--regime", "dmft", "--json"],
    ["schedules", "calibrate", "--base", "constant:w=2", "--w-neg", "-3", "--json"],
    ["schedules", "calibrate", "--base", "bogus:w=2", "--json"],
    ["schedules", "calibrate", "--base", "constant:w=2", "--sigma2", "nan", "--json"],
    # a base compare cannot calibrate from is the caller's error, not a table without the calibrated row
    ["schedules", "compare", "--base", "bogus:w=2", "--json"],
    ["schedules", "compare", "--base", "linear:start=2,end=1", "--d", "4", "--json"],
    ["schedules", "compare", "--base", "constant:w=-0.5", "--d", "4", "--json"],
])
def test_cli_bad_input_exits_2(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse rejects NaN before the command runs
        rc = exc.code
    out = capsys.readouterr()
    assert rc == 2 and "error" in out.err and out.out == ""


def test_cli_compare_writes_table_and_plot(tmp_path, capsys):
    torch.set_num_threads(1)
    from cfglab.experiments.compare import Entry, compare_table, pareto_plot

    rows = compare_table([Entry("cfg w=2", "constant", "constant:w=2"),
                          Entry("apg", "apg", "constant:w=2", "apg", (("eta", 0.0),)),
                          Entry("power", "power_law", "constant:w=2", "power_law", (("gamma", -0.5),))],
                         d=8, n_samples=200, steps=30)
    assert [r["label"] for r in rows] == ["cfg w=2", "apg", "power"]
    assert all(np.isfinite(r["var_perp_ratio"]) for r in rows)
    pareto_plot(rows, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
