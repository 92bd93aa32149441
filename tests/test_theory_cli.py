"""``cfglab theory`` command line: JSON keys of docs/sweeps.md, exit status 2 on bad input."""

import json
import math

import pytest

from cfglab.cli import main


def _json(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def test_transition_json_keys(capsys):
    rc, out, _ = _json(capsys, ["theory", "transition", "--alpha", "0.2", "--sigma2", "0.5", "--s2", "1", "--json"])
    assert rc == 0 and {"t_c", "alpha_c"} <= set(out)
    assert out["t_c"] == pytest.approx(out["t_c_closed_form"]) and out["alpha_c"] == pytest.approx(0.5 * math.log(3))


def test_transition_above_alpha_c_is_null_with_message(capsys):
    rc, out, _ = _json(capsys, ["theory", "transition", "--alpha", "0.8", "--json"])
    assert rc == 0 and out["t_c"] is None and "never" in out["message"]


@pytest.mark.parametrize("argv", [
    ["theory", "transition", "--alpha", "0"],
    ["theory", "transition", "--alpha", "-0.3"],
    ["theory", "transition", "--alpha", "0.2", "--sigma2", "0"],
    ["theory", "transition", "--alpha", "0.2", "--sigma2", "-1"],
    ["theory", "dmft", "--alpha", "0", "--json"],
    ["theory", "dmft", "--alpha", "0.2", "--sigma2", "-0.5", "--json"],
    ["theory", "dmft", "--alpha", "0.2", "--schedule", "nonsense:w=1", "--json"],
    ["theory", "dmft", "--alpha", "nan", "--json"],
    ["theory", "validate", "--alphas", "-0.1", "--dims", "20", "--json"],
])
def test_bad_input_exits_2_with_one_line(capsys, argv):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse-level rejection (NaN)
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_dmft_json_keys_and_trajectory(capsys, tmp_path):
    traj = tmp_path / "traj.json"
    rc, out, _ = _json(capsys, ["theory", "dmft", "--alpha", "0.2", "--schedule", "constant:w=2", "--sampler", "ode",
                                "--T", "6", "--json", "--trajectory", str(traj)])
    assert rc == 0 and {"mean_overlap", "var_perp", "t_switch", "var_parallel", "kl_per_dim"} <= set(out)
    saved = json.loads(traj.read_text())
    assert {"t", "m", "v_perp", "pi_target"} <= set(saved) and len(saved["t"]) == len(saved["m"])
    assert saved["m"][-1] == pytest.approx(out["mean_overlap"])


def test_dmft_finite_d_flag(capsys):
    rc, inf, _ = _json(capsys, ["theory", "dmft", "--alpha", "0.2", "--schedule", "constant:w=2", "--json"])
    rc2, fin, _ = _json(capsys, ["theory", "dmft", "--alpha", "0.2", "--schedule", "constant:w=2", "--d", "30",
                                 "--json"])
    assert rc == rc2 == 0 and fin["d"] == 30 and fin["mean_overlap"] > inf["mean_overlap"]


def test_dmft_flags_the_frozen_phase(capsys):
    """α = 0.7, σ² = 0.5, late window: the prediction passes through the frozen phase — flagged in JSON and on stderr."""
    argv = ["theory", "dmft", "--alpha", "0.7", "--schedule", "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8", "--json"]
    assert main(argv) == 0
    out = capsys.readouterr()
    res = json.loads(out.out)
    assert res["frozen_before_switch"] is True and res["approximations"][0].startswith("frozen phase")
    assert "warning: frozen phase" in out.err
    assert main(["theory", "dmft", "--alpha", "0.2", "--schedule", "constant:w=2", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["approximations"] == [] and out.err == ""


def test_gaussian_json_keys(capsys):
    pytest.importorskip("cfglab.theory.gaussian")
    rc, out, _ = _json(capsys, ["theory", "gaussian", "--schedule", "constant:w=2", "--sampler", "ode", "--json"])
    assert rc == 0 and {"mean_overlap", "var", "var_ratio"} <= set(out)
    # probability-flow ODE, constant w, T large: Var = a (a/b)^w (docs/theory.md)
    assert out["var"] == pytest.approx(0.5 * (0.5 / 1.5) ** 2, rel=1e-3)


def test_potential_writes_png(capsys, tmp_path):
    png = tmp_path / "pot.png"
    rc, out, _ = _json(capsys, ["theory", "potential", "--alpha", "0.2", "--w", "2", "--out", str(png), "--json"])
    assert rc == 0 and png.stat().st_size > 1000 and out["t_switch"] > 0


def test_validate_tiny_run_writes_table_and_plot(capsys, tmp_path):
    rc, out, _ = _json(capsys, ["theory", "validate", "--alphas", "0.2", "--dims", "8,12", "--seeds", "2",
                                "--n-samples", "100", "--steps", "30", "--out", str(tmp_path), "--json"])
    assert rc == 0 and [r["d"] for r in out["table"]] == [8, 12]
    row = out["table"][0]
    assert {"sim_mean_overlap", "inf_mean_overlap", "fin_mean_overlap", "err_mean_overlap", "se_mean_overlap"} <= set(row)
    assert (tmp_path / "scaling.png").stat().st_size > 1000 and (tmp_path / "table.json").exists()


def test_run_point_is_a_pure_function_of_its_params():
    from cfglab.experiments.validate import run_point

    p = dict(d=8, alpha=0.2, seed=1, n_samples=50, steps=20, T=2.0)
    a, b = run_point(dict(p)), run_point(dict(p))
    assert a == b and all(isinstance(v, (int, float)) or v is None for v in a.values())
