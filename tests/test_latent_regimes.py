"""The regime study (cfglab.experiments.latent_regimes): σ grid, schedules, answer rule, and a
tiny-profile end-to-end run of ``cfglab latent regimes`` (slow: trains the tiny model once)."""

import json
import math
import subprocess
import sys

import pytest

from cfglab.experiments.latent_regimes import (
    REGIME_PRESETS,
    regime_answer,
    regime_schedules,
    sigma_grid,
)


def test_sigma_grid_places_a_step_exactly_at_the_switch():
    base = sigma_grid(16)
    grid = sigma_grid(16, 0.7312)
    assert len(grid) == len(base) + 1 and float(grid[-1]) == 0.0
    assert 0.7312 in grid.tolist()
    assert bool((grid[:-1] > grid[1:]).all())  # strictly decreasing
    assert sigma_grid(16, float(base[3])).tolist() == base.tolist()  # already a step: unchanged
    assert sigma_grid(16, None).tolist() == base.tolist()


def test_schedules_sweep_switches_around_the_resolution_sigma():
    preset = REGIME_PRESETS["full"]
    rows = regime_schedules(preset, 2.0)
    windows = [r for r in rows if r["family"] != "constant"]
    assert {r["w_neg"] for r in windows} == {-0.1, -0.25, -0.5, -1.0}
    assert sorted({r["sigma_switch"] for r in windows}) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(windows) == len(preset.window_w_pos) * 4 * 5 and preset.seeds >= 10
    assert set(preset.samplers) == {"heun", "euler_ancestral"}


def _cond(ratio, verdicts):
    fams = {f"f{i}": {"verdict": v} for i, v in enumerate(verdicts)}
    return {"alpha_ratio": ratio, "samplers": {"heun": {"frontier": fams}}}


@pytest.mark.parametrize(
    "conds, expected",
    [
        ({"a": _cond(0.3, ["no detectable difference"]), "b": _cond(1.5, ["better"])}, True),
        ({"a": _cond(0.3, ["better"]), "b": _cond(1.5, ["better"])}, False),
        ({"a": _cond(0.3, ["worse"]), "b": _cond(1.5, ["no detectable difference"])}, False),
        ({"a": _cond(0.3, ["no detectable difference"]), "b": _cond(0.8, ["better"])}, None),
        ({"a": _cond(math.nan, ["better"]), "b": _cond(1.5, ["better"])}, None),
    ],
)
def test_answer_rule(conds, expected):
    assert regime_answer(conds)["supported"] is expected


@pytest.mark.slow
def test_regimes_command_end_to_end_tiny(tmp_path, monkeypatch, slow_scale):
    monkeypatch.setenv("CFGLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "cfglab", "latent", "regimes", "--profile", "tiny",
           "--preset", "test", "--conditionings", "digits", "--out", str(out), "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    c = result["conditionings"]["digits"]
    for key in ("alpha", "alpha_c", "alpha_ratio", "sigma_res_measured", "sigma_res_predicted"):
        assert key in c
    rows = c["samplers"]["heun"]["schedules"]
    assert [r["family"] for r in rows][:2] == ["constant", "constant"]
    window = next(r for r in rows if r["family"].startswith("window"))
    for metric in ("log_posterior", "var_ratio_latent", "var_ratio_pixel"):
        lo, hi = window[metric]["ci"]
        assert lo <= window[metric]["mean"] <= hi
    assert window["vs_constant_same_w_pos"]["var_ratio_latent"]["verdict"] in (
        "better", "worse", "no detectable difference")  # fmt: skip
    assert result["n_tasks"] == 3 * len(rows)  # 3 seeds; 2 constants, 1 window, the calibrated one(s)
    assert result["answer"]["supported"] in (True, False, None)
    predictions = json.loads((out / "predictions.json").read_text())
    assert window["schedule"] in predictions["digits"]["heun"]["schedules"]
    assert all((out / f).read_bytes()[:4] == b"\x89PNG" for f in ("force.png", "gain.png"))
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert again["n_cached"] == again["n_tasks"]  # resumed from the sweep store, nothing resampled
    assert again["conditionings"]["digits"]["samplers"] == c["samplers"]


def test_predictions_are_written_before_any_task_runs(tmp_path, monkeypatch):
    import cfglab.experiments.latent_regimes as lr
    import cfglab.sweep.engine as engine

    seen = {}

    def fake_plan(name, data, profile, cfg):
        regime = {"sigma_res_measured": 1.0}
        return dict(data=data, profile=profile, regime=regime, predictions={"heun": {"model": "x"}},
                    schedules=regime_schedules(cfg, 1.0))  # fmt: skip

    def fake_sweep(tasks, out, **kw):
        seen["exists"] = (tmp_path / "predictions.json").exists()
        raise RuntimeError("stop")

    monkeypatch.setattr(lr, "_plan", fake_plan)
    monkeypatch.setattr(engine, "run_sweep", fake_sweep)
    with pytest.raises(RuntimeError, match="stop"):
        lr.regime_study(profile="tiny", preset="test", conditionings=("digits",), out=tmp_path)
    assert seen["exists"]


def test_bad_input_exits_2_before_any_work(tmp_path):
    for extra in (["--conditionings", "nope"], ["--seeds", "1"], ["--preset", "huge"]):
        done = subprocess.run([sys.executable, "-m", "cfglab", "latent", "regimes", "--out",
                               str(tmp_path / "x"), *extra], capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 2, extra
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_report_section_on_the_test_profile(tmp_path, monkeypatch, slow_scale):
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    from cfglab.report import PROFILES
    from cfglab.report.latent_regimes_section import REGIMES

    monkeypatch.setenv("CFGLAB_CACHE", str(tmp_path / "cache"))
    test = PROFILES["test"]
    assert REGIMES.skip(test)  # off in the test profile's full run: it trains a model
    profile = dataclasses.replace(test, regimes=dataclasses.replace(test.regimes, enabled=True))
    result = REGIMES.analyze(profile, None, tmp_path / "figures")
    assert [f.path for f in result.figures] == [
        "figures/latent_regimes_force.png", "figures/latent_regimes_gain.png"]  # fmt: skip
    assert all((tmp_path / f.path).read_bytes()[:4] == b"\x89PNG" for f in result.figures)
    assert result.supported is result.numbers["answer"]["supported"]
    assert "digits: α/α_c" in result.sentence
