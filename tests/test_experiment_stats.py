"""cfglab.experiments.stats against textbook cases and known coverage."""

import math

import numpy as np
import pytest

from cfglab.experiments.stats import (
    attainment,
    compare_paired,
    frontier_gap,
    holm,
    paired_difference,
    verdict,
)


def test_holm_textbook():
    # p sorted 0.005, 0.01, 0.03, 0.04 -> 4·0.005, 3·0.01, 2·0.03, max(1·0.04, 0.06)
    got = holm([0.01, 0.04, 0.03, 0.005])
    assert np.allclose(got, [0.03, 0.06, 0.06, 0.02])
    assert np.allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1


def test_bootstrap_ci_coverage_is_nominal_on_a_normal_mean():
    """400 replications of n = 40 normal draws: coverage within 3 binomial s.e. (0.033) of 0.95,
    plus 0.015 for the percentile interval's known O(1/n) under-coverage."""
    rng = np.random.default_rng(0)
    hits = 0
    for r in range(400):
        x = rng.normal(1.3, 2.0, size=40)
        ci = paired_difference(x, np.zeros(40), n_resamples=1000, seed=r)["ci"]
        hits += ci[0] <= 1.3 <= ci[1]
    assert hits / 400 == pytest.approx(0.95, abs=3 * math.sqrt(0.95 * 0.05 / 400) + 0.015)


def test_verdicts_three_way_with_holm():
    rng = np.random.default_rng(1)
    base = rng.normal(size=10)
    noise = 0.01 * rng.normal(size=(3, 10))
    pairs = {
        "up": (base + 1.0 + noise[0], base),
        "down": (base - 1.0 + noise[1], base),
        "same": (base + noise[2], base),
    }
    rows = compare_paired(pairs)
    assert [rows[k]["verdict"] for k in pairs] == ["better", "worse", "no detectable difference"]
    assert compare_paired(pairs, higher_is_better=False)["up"]["verdict"] == "worse"
    assert rows["up"]["p_holm"] >= rows["up"]["p"]
    assert verdict(0.3, 0.2) == "no detectable difference"


def test_attainment_is_the_pareto_step_function():
    sep, div = [0.1, 0.5, 0.9], [3.0, 2.0, 1.0]
    assert np.allclose(attainment(sep, div, [0.0, 0.1, 0.3, 0.5, 0.9]), [3, 3, 2, 2, 1])
    assert math.isnan(attainment(sep, div, [0.95])[0])
    # a dominated point does not change the frontier
    assert np.allclose(attainment(sep + [0.4], div + [0.5], [0.3, 0.45]), [2, 2])


def test_frontier_gap_of_a_shifted_frontier():
    sep = np.linspace(0, 1, 7)
    div = 2 - sep**2
    assert frontier_gap((sep, div), (sep, div + 0.1)) == pytest.approx(0.1)
    assert frontier_gap((sep, div), (sep, div - 0.2)) == pytest.approx(-0.2)
    assert math.isnan(frontier_gap((sep, div), (sep + 2, div)))
