"""`cfglab simulate`: JSON contract, trajectory file, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from cfglab.cli import main

KEYS = {"K", "d", "mean_overlap", "var_parallel", "var_perp", "var_perp_ratio", "kl_per_dim", "class_accuracy"}
BASE = ["simulate", "--d", "6", "--K", "4", "--n-samples", "200", "--steps", "40"]


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_has_the_spec_keys(capsys):
    code, out, _ = run_cli(BASE + ["--json", "--schedule", "constant:w=2"], capsys)
    result = json.loads(out)
    assert code == 0 and KEYS <= set(result)
    assert result["K"] == 4 and result["d"] == 6


def test_alpha_and_infinite_ensembles(capsys):
    _, out, _ = run_cli(["simulate", "--d", "10", "--alpha", "0.2", "--n-samples", "100", "--steps", "20", "--json"],
                        capsys)
    assert json.loads(out)["K"] == 8  # ceil(e^2)
    _, out, _ = run_cli(["simulate", "--d", "10", "--infinite", "--n-samples", "100", "--steps", "20", "--json"],
                        capsys)
    result = json.loads(out)
    assert result["K"] is None and result["class_accuracy"] is None


def test_trajectory_file(tmp_path, capsys):
    path = tmp_path / "traj.json"
    code, _, _ = run_cli(BASE + ["--json", "--trajectory", str(path)], capsys)
    traj = json.loads(path.read_text())
    assert code == 0 and len(traj["m"]) == 40 and traj["config"]["K"] == 4
    assert {"t", "sigma", "w", "m", "v", "pi_target", "cfg_force"} <= set(traj)


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--sigma2", "-1"], "-1"),
        (["--sigma2", "nan"], "nan"),
        (["--s2", "-0.5"], "-0.5"),
        (["--schedule", "bogus:w=1"], "bogus"),
        (["--schedule", "constant:q=1"], "q"),
        (["--schedule", "constant:w=-3"], "-3"),
        (["--schedule", "interval:w=2,lo=3,hi=1"], "lo=3"),
        (["--steps", "0"], "0"),
        (["--T", "inf"], "inf"),
    ],
)
def test_bad_input_exits_2_with_one_line(extra, needle, capsys):
    code, out, err = run_cli(BASE + extra, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["simulate", "--d", "0", "--K", "3"], "d must be >= 1, got 0"),
        (["simulate", "--d", "5", "--alpha", "0"], "alpha must be > 0, got 0"),
        (["simulate", "--d", "5", "--alpha", "-0.2"], "-0.2"),
        (["simulate", "--d", "200", "--alpha", "0.5"], "memory budget"),
        (["simulate", "--d", "5", "--K", "3", "--device", "cuda"], "cuda"),
    ],
)
def test_bad_ensemble_exits_2(argv, needle, capsys):
    code, _, err = run_cli(argv, capsys)
    if needle == "cuda" and code == 0:
        pytest.skip("CUDA is available here")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_console_script_exit_status():
    proc = subprocess.run([sys.executable, "-m", "cfglab", "simulate", "--d", "3", "--K", "2", "--sigma2", "-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cfglab simulate: error: argument --sigma2: must be > 0, got -1.0"


def test_on_the_fly_means_give_the_same_run(capsys):
    argv = ["simulate", "--d", "8", "--alpha", "0.6", "--n-samples", "100", "--steps", "20", "--json"]
    _, stored, _ = run_cli(argv, capsys)
    _, regenerated, _ = run_cli(argv + ["--on-the-fly"], capsys)
    assert json.loads(stored) == json.loads(regenerated)
