"""The negative-window phase diagram (cfglab.theory.windows, ``cfglab theory windows``)."""

import json
import math

import pytest

from cfglab.cli import main
from cfglab.experiments.window_checks import SimCheck, simulate_checks
from cfglab.theory.windows import INF, WindowGrid, window_diagram, window_point

LATE = dict(sigma_switch=0.8, w_neg=-1.0)


def test_infinite_class_point_matches_an_independent_integration(window_moments):
    """K → ∞: the late window lifts var⊥/σ² from 0.299 to 1.356 (solve_ivp, tests/conftest.py), to 1e-6."""
    p = window_point(INF, sampler="sde", **LATE)
    m, v = window_moments(2.0, -1.0, 0.8)
    assert p["var_ratio"] == pytest.approx(v, abs=1e-6) and p["mean_overlap"] == pytest.approx(m, abs=1e-6)
    assert p["var_ratio_base"] < 0.31 and p["effect"] == "overshoots" and p["approximations"] == []


@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_the_boundary_is_the_base_resolution_level(sampler):
    """d → ∞: a window is inert just below σ_res of the base and acts just above it (α/α_c = 0.7, w_neg = −0.2)."""
    g = WindowGrid(ratios=(0.7,), switches=(1.0,), w_negs=(-0.2,), samplers=(sampler,))
    row = window_diagram(g)["diagram"]["0.7"]
    s_res = row["sigma_resolution_base"][sampler]
    below, above = (window_point(0.7, s, -0.2, sampler, g) for s in (0.9 * s_res, 1.1 * s_res))
    assert below["effect"] == "inert" and below["var_ratio"] == pytest.approx(below["var_ratio_base"], abs=1e-9)
    assert abs(above["var_ratio"] - above["var_ratio_base"]) > 0.01


def test_late_window_acts_above_alpha_c_and_is_flagged_frozen():
    """α = 0.7 (α/α_c = 1.27, σ² = 0.5): the late window works, and rests on the frozen-phase approximation."""
    p = window_point(0.7 / (math.log(3) / 2), sampler="sde", **LATE)
    assert p["var_ratio_base"] == pytest.approx(0.738, abs=2e-3) and p["var_ratio"] == pytest.approx(1.354, abs=2e-3)
    assert p["frozen_before_switch"] is True and p["approximations"] == ["frozen_phase"]
    below = window_point(0.3, sampler="sde", **LATE)  # α/α_c = 0.3: resolved long before σ = 0.8
    assert below["effect"] == "inert" and below["approximations"] == []


def test_cli_json_is_indexed_by_ratio_and_writes_a_figure(tmp_path, capsys):
    png = tmp_path / "w.png"
    assert main(["theory", "windows", "--ratios", "0.3,1.2", "--switches", "0.8,3", "--w-negs", "-1",
                 "--samplers", "sde", "--json", "--out", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["diagram"]) == ["0.3", "1.2", "inf"] and out["alpha_c"] == pytest.approx(math.log(3) / 2)
    assert all("approximations" in p and "effect" in p for row in out["diagram"].values() for p in row["points"])
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, match", [(["--w-negs", "0.5"], "w_neg"), (["--ratios", "-1"], "alpha/alpha_c"),
                                         (["--samplers", "euler"], "sampler"), (["--simulate", "--w-pos", "3"], "standard")])
def test_cli_bad_input_exits_2(argv, match, capsys):
    assert main(["theory", "windows", "--json", *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


@pytest.mark.slow
def test_simulation_agrees_with_the_diagram_at_a_window(slow_scale):
    """α/α_c = 0.3, d = 40: the window just above the boundary, simulated, agrees with the finite-d DMFT."""
    n, seeds = (2000, 5) if slow_scale == "full" else (500, 3)
    (r,) = simulate_checks([SimCheck(0.3, "negative_window:w_pos=2,w_neg=-0.2,sigma_switch=4.5", 40, n_samples=n,
                                     seeds=seeds)])
    assert abs(r["gap_v"]) <= 3 * r["se_v"] + 0.01 and abs(r["gap_m"]) <= 3 * r["se_m"] + 0.01
