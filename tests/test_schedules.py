"""Schedule shapes (docs/schedules.md): values at the σ boundaries, clipping at −1, string round trip."""

import math

import pytest
import torch

from cfglab._validate import CfglabInputError
from cfglab.guidance.schedules import (
    SCHEDULES, Constant, Cosine, Interval, Linear, NegativeWindow, PaperLinear, PiecewiseConstant, as_schedule,
    parse_schedule,
)
from cfglab.noise import sigma_from_t, t_from_sigma

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

EXAMPLES = [
    Constant(2.0), Constant(-1), Interval(2.0, 0.28, 5.42), Linear(0.0, 4.0), Cosine(4.0, 0.0, 20.0),
    NegativeWindow(3.0, -1.0, 0.8), NegativeWindow(2.5, -0.3, 0.123456789, 5.42), PaperLinear(-1.0, 0.7),
    PiecewiseConstant((1.0, 0.5, 2.0), (3.0, 0.4)), PiecewiseConstant((1.5,), ()),
]


@pytest.mark.parametrize("sched", EXAMPLES, ids=str)
def test_string_round_trip(sched):
    again = parse_schedule(str(sched))
    assert again == sched and str(again) == str(sched)
    grid = torch.logspace(-3, 3, 97)
    torch.testing.assert_close(again(grid), sched(grid), rtol=0, atol=0)


def test_every_registered_schedule_has_an_example():
    assert {s.name for s in EXAMPLES} == set(SCHEDULES)


def test_interval_is_open_below_closed_above():
    s = Interval(2.0, 0.28, 5.42)
    assert s(0.28) == 0.0 and s(0.28 + 1e-12) == 2.0 and s(5.42) == 2.0 and s(5.42 + 1e-9) == 0.0


def test_negative_window_boundaries():
    s = NegativeWindow(3.0, -1.0, 0.8, 5.0)
    assert s(0.0) == -1.0 and s(0.8) == -1.0 and s(0.8 + 1e-12) == 3.0 and s(5.0) == 3.0 and s(5.0 + 1e-9) == 0.0
    assert NegativeWindow(3.0, -1.0, 0.8)(1e6) == 3.0  # no upper edge by default


def test_ramps_end_points_in_ou_time():
    sigma_max = sigma_from_t(6.0)
    lin, cos = Linear(0.0, 4.0, sigma_max), Cosine(4.0, 1.0, sigma_max)
    assert lin(sigma_max) == pytest.approx(0.0) and lin(0.0) == pytest.approx(4.0)
    assert lin(sigma_from_t(3.0)) == pytest.approx(2.0)  # halfway in OU time
    assert lin(10 * sigma_max) == pytest.approx(0.0)  # clamped above sigma_max
    assert cos(sigma_max) == pytest.approx(4.0) and cos(0.0) == pytest.approx(1.0)
    assert cos(sigma_from_t(3.0)) == pytest.approx(2.5)


def test_paper_linear_clips_at_minus_one():
    s = PaperLinear(-3.0, 1.0)  # w = −3 + t
    assert s(0.0) == -1.0 and s(sigma_from_t(1.5)) == -1.0
    assert s(sigma_from_t(2.0)) == pytest.approx(-1.0, abs=1e-12)
    assert s(sigma_from_t(3.5)) == pytest.approx(0.5)
    assert float(s(torch.logspace(-4, 4, 200)).min()) == -1.0


def test_piecewise_boundaries():
    s = PiecewiseConstant((1.0, 0.5, 2.0), (3.0, 0.4))
    assert s(3.0 + 1e-9) == 1.0 and s(3.0) == 0.5 and s(0.4 + 1e-9) == 0.5 and s(0.4) == 2.0 and s(0.0) == 2.0


@pytest.mark.parametrize("text", ["constant:w=-1.5", "interval:w=1,lo=3,hi=2", "negative_window:w_pos=1,w_neg=-2,sigma_switch=1",
                                  "piecewise:weights=1|2,edges=1|2", "piecewise:weights=1|2,edges=3|1",
                                  "piecewise:weights=1|-3,edges=1", "constant:w=1|2", "nope:w=1", "constant:w=nan"])
def test_bad_strings_raise_input_error(text):
    with pytest.raises(CfglabInputError):
        parse_schedule(text)


def test_as_schedule_accepts_numbers_and_callables():
    assert as_schedule(2) == Constant(2.0)
    f = as_schedule(lambda s: 1.0 + 0 * s)
    assert f(0.3) == 1.0
    assert t_from_sigma(sigma_from_t(1.25)) == pytest.approx(1.25)
    assert math.isinf(NegativeWindow(1, -1, 0.5).sigma_hi)


@pytest.mark.parametrize("schedule", EXAMPLES + [PaperLinear(1.0, -2.0)], ids=str)
def test_every_jump_and_kink_is_a_reported_breakpoint(schedule):
    """Between reported breakpoints w(σ) is smooth: no jump in w, no jump in its slope in t."""
    t = torch.linspace(1e-3, 8.0, 80001, dtype=torch.float64)  # [n] fine grid in OU time
    w = schedule(sigma_from_t(t))  # [n]
    slope = torch.diff(w) / torch.diff(t)  # [n - 1]
    h = float(t[1] - t[0])
    bad = (torch.diff(w).abs() > 1e-3) | torch.cat([torch.diff(slope).abs() > 1e-2, torch.tensor([False])])
    reported = [t_from_sigma(s) for s in schedule.breakpoints() if math.isfinite(s)]
    for i in torch.nonzero(bad).flatten().tolist():
        assert any(abs(float(t[i]) - b) <= 2 * h for b in reported), (str(schedule), float(t[i]), reported)
