"""Calibrated negative window: theory root, simulated variance ratio, errors (issue: schedules that keep diversity)."""

import math

import numpy as np
import pytest
import torch

from cfglab._validate import CfglabInputError
from cfglab.experiments.calibrate import calibrate, predict
from cfglab.guidance.schedules import NegativeWindow, parse_schedule
from cfglab.lab import SimulationConfig, simulate
from cfglab.theory.gaussian import solve_gaussian


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("base", ["constant:w=2", "interval:w=3,lo=0.28,hi=5.42"])
@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_root_restores_variance_and_keeps_overlap(base, sampler, window_moments):
    """Checked by an independent solve_ivp integration of the moment ODEs (tests/conftest.py), not a re-solve.

    Tolerance 1e-6: the root's xtol (1e-9 in OU time) times dv/dt_switch (O(1)), plus both integrators'
    rtol ≈ 1e-10; the calibrated window moves the ratio by ≥ 0.3 (base ratio < 0.7).
    """
    cal = calibrate(base, sampler=sampler)
    assert isinstance(cal.schedule, NegativeWindow) and cal.schedule.w_neg == -1.0
    win = parse_schedule(str(cal.schedule))  # the printed string is usable
    m, v = window_moments(win.w_pos, win.w_neg, win.sigma_switch, win.sigma_hi, sampler=sampler)
    assert v == pytest.approx(1.0, abs=1e-6)
    assert cal.mean_overlap == pytest.approx(m, abs=1e-6) and cal.mean_overlap > 1
    assert cal.base_var_ratio < 0.7
    if base.startswith("interval"):
        assert cal.schedule.sigma_hi == 5.42


def test_fixed_switch_solves_the_strength(window_moments):
    cal = calibrate("constant:w=2", w_neg=None, sigma_switch=2.0, sampler="ode")
    assert -1 <= cal.schedule.w_neg < 0 and cal.sigma_switch == 2.0
    assert window_moments(2.0, cal.schedule.w_neg, 2.0, sampler="ode")[1] == pytest.approx(1.0, abs=1e-6)


def test_anisotropic_target_is_the_mean_ratio():
    a, b = np.array([0.2, 0.5, 1.0]), np.array([0.6, 1.0, 1.2])
    cal = calibrate("constant:w=2", sampler="ode", cond_var=a, uncond_var=b)
    pred = solve_gaussian(cal.schedule, sampler="ode", cond_var=a, uncond_var=b)
    assert float(np.mean(pred.var_ratio)) == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("sampler,steps", [("sde", 500), ("ode", 100)])
def test_calibrated_schedule_simulated_in_the_infinite_class_limit(sampler, steps):
    """Exact-score lab, infinite-class ensemble: simulated var ratio within 2% of 1, mean overlap > 1.

    Calibrated for the lab's discretised sampler (``steps``), so Euler–Maruyama's bias (~+5% on
    the variance at 500 steps with w = 2) is part of the prediction, not of the error.
    """
    n, d = 2000, 64
    cal = calibrate("constant:w=2", sampler=sampler, steps=steps)
    out = simulate(SimulationConfig(d=d, infinite=True, schedule=str(cal.schedule), sampler=sampler,
                                    n_samples=n, steps=steps, seed=3))
    se = math.sqrt(2 / (n * (d - 1)))  # ≈ 0.4% relative
    assert abs(out["var_perp_ratio"] - 1) < min(0.02, 4 * se + 1e-3)
    assert out["mean_overlap"] > 1.2 and cal.mean_overlap > 1.2
    assert abs(out["mean_overlap"] - cal.mean_overlap) < 0.02
    base = simulate(SimulationConfig(d=d, infinite=True, schedule="constant:w=2", sampler=sampler, n_samples=n,
                                     steps=steps, seed=3))
    assert base["var_perp_ratio"] < 0.7  # what the window repairs


def test_late_window_is_inert_only_before_alpha_c_in_the_dmft():
    """The late window (σ_switch = 0.8, w_neg = −1) across the class-resolution boundary (docs/schedules.md).

    Not a by-construction check: the finite-d DMFT (d = 40, smooth switch) carries the residual
    CFG force after resolution, and above α_c (σ² = 0.5: α_c = ln 3/2 = 0.549) the target is never
    resolved, so the DMFT must reproduce the infinite-class value of the same window (solve_ivp,
    conftest) to 3e-3 (the window's jump falls inside one Heun step, h = 2e-3: an O(h) error), while
    the base shrinks to 0.30 and the window lifts the ratio by ≈ 1.06.
    """
    from cfglab.theory.dmft import solve_dmft

    from conftest import _window_moments

    late = "negative_window:w_pos=2,w_neg=-1,sigma_switch=0.8"
    below = [solve_dmft(0.2, schedule=s, d=40, sampler="ode").var_perp / 0.5 for s in ("constant:w=2", late)]
    assert below[0] < 0.95 and abs(below[1] - below[0]) < 0.1 * (1 - below[0])  # inert: < 10% of the shrinkage undone
    base, window = (solve_dmft(1.0, schedule=s) for s in ("constant:w=2", late))
    assert base.t_switch is None and base.var_perp / 0.5 < 0.35
    assert window.var_perp / 0.5 == pytest.approx(_window_moments(2.0, -1.0, 0.8)[1], abs=3e-3)
    assert window.var_perp / 0.5 > 1.3  # the window overshoots the target variance there


def test_dmft_calibration_places_the_switch_before_resolution():
    pytest.importorskip("cfglab.theory.dmft")
    from cfglab.theory.dmft import solve_dmft

    cal = calibrate("constant:w=2", regime="dmft", alpha=0.2, sampler="ode", w_neg=-1.0)
    t_c = solve_dmft(0.2, schedule="constant:w=2", sampler="ode").t_switch
    assert cal.sigma_switch > math.sqrt(math.expm1(2 * t_c))
    assert abs(cal.var_ratio - 1) < 0.01 and cal.mean_overlap > 1


@pytest.mark.parametrize("kwargs,match", [
    (dict(base="constant:w=0"), "weight must be > 0"),
    (dict(base="linear:start=0,end=2"), "constant or interval"),
    (dict(base="constant:w=2", w_neg=0.0), "not negative"),
    (dict(base="constant:w=2", regime="dmft"), "needs alpha"),
    (dict(base="constant:w=2", regime="dmft", alpha=-1.0), "alpha"),
    (dict(base="constant:w=2", regime="bogus"), "unknown regime"),
    (dict(base="constant:w=4", w_neg=None, sigma_switch=0.01), "even w_neg=-1"),
    (dict(base="interval:w=6,lo=0.1,hi=0.5", w_neg=-0.05, sampler="ode"), "mean overlap"),
])
def test_clear_errors(kwargs, match):
    base = kwargs.pop("base")
    with pytest.raises(CfglabInputError, match=match):
        calibrate(base, **kwargs)


@pytest.mark.slow
def test_exponential_regime_late_window_is_inert_in_simulation(slow_scale):
    """K = e^{αd} at d ≥ 40: a negative window that starts after class resolution changes nothing.

    Same ensemble, same start noise, Heun (deterministic): the window at σ ≤ 1 (the guided
    class-resolution level is σ_c ≈ 3.1 at α = 0.2, w = 2) leaves the samples' variance and
    class accuracy where constant w = 2 puts them, because s_c = s_u once π_c → 1.
    """
    n = 1000 if slow_scale == "full" else 300
    kw = dict(d=40, alpha=0.2, sampler="ode", n_samples=n, steps=100, seed=0)
    base = simulate(SimulationConfig(schedule="constant:w=2", **kw))
    late = simulate(SimulationConfig(schedule="negative_window:w_pos=2,w_neg=-1,sigma_switch=1", **kw))
    se = base["var_perp_ratio"] * math.sqrt(2 / (n * 39))
    assert base["var_perp_ratio"] < 0.85 and base["class_accuracy"] == 1.0  # CFG shrinks the variance
    assert abs(late["var_perp_ratio"] - base["var_perp_ratio"]) < se  # ... and a late window cannot undo it
    assert late["class_accuracy"] == 1.0


@pytest.mark.slow
def test_exponential_regime_weak_calibrated_window_restores_most_of_the_variance(slow_scale):
    """K = e^{αd}, d = 40, α = 0.2, Heun: the DMFT-calibrated weak window (w_neg auto → −0.1).

    Measured at full scale (3 ensembles, N = 1000): constant w = 2 gives var ratio
    0.743 ± 0.041 (DMFT at d = 40: 0.811, so the finite-size error is ≈ 0.07); the window
    (w_neg = −0.1, σ_switch ≈ 9.15) gives 1.031 ± 0.051 with class accuracy ≥ 0.999 and mean
    overlap 1.10–1.12 (DMFT 1.116).
    """
    n, seeds = (1000, (0, 1, 2)) if slow_scale == "full" else (300, (0, 1))
    cal = calibrate("constant:w=2", regime="dmft", alpha=0.2, sampler="ode", w_neg=None, steps=100)
    assert -0.35 <= cal.schedule.w_neg < 0 and cal.sigma_switch > 3.1  # weak, before class resolution
    kw = dict(d=40, alpha=0.2, sampler="ode", n_samples=n, steps=100)
    base = [simulate(SimulationConfig(schedule="constant:w=2", seed=s, **kw)) for s in seeds]
    win = [simulate(SimulationConfig(schedule=str(cal.schedule), seed=s, **kw)) for s in seeds]
    err = lambda rows: float(np.mean([abs(r["var_perp_ratio"] - 1) for r in rows]))  # noqa: E731
    assert err(base) > 0.2
    assert err(win) < 0.5 * err(base)
    assert min(r["class_accuracy"] for r in win) >= 0.98
    assert min(r["mean_overlap"] for r in win) > 1.0
    # the seed-averaged ratio is 1 within the finite-size error measured on the base itself
    from cfglab.theory.dmft import solve_dmft

    v_base, v_win = (np.array([r["var_perp_ratio"] for r in rows]) for rows in (base, win))
    theory_base = solve_dmft(0.2, schedule="constant:w=2", sampler="ode", steps=100, d=40).var_perp / 0.5
    finite_size = abs(v_base.mean() - theory_base)
    se = v_win.std(ddof=1) / math.sqrt(len(seeds))
    assert abs(v_win.mean() - 1) < finite_size + 3 * se


def test_dmft_calibration_reports_the_frozen_phase():
    """Above α_c (α = 0.7, σ² = 0.5) the calibrated window rests on the frozen phase, and says so;
    at α = 0.2 it does not; the infinite-class limit has no such flag."""
    pytest.importorskip("cfglab.theory.dmft")
    above = calibrate("constant:w=2", regime="dmft", alpha=0.7, w_neg=None, sigma_switch=0.8)
    below = calibrate("constant:w=2", regime="dmft", alpha=0.2, sampler="ode", w_neg=-1.0)
    assert above.frozen_before_switch is True and above.to_dict()["frozen_before_switch"] is True
    assert below.frozen_before_switch is False
    assert calibrate("constant:w=2", sampler="ode").frozen_before_switch is None
