"""REM free energy and the class-resolution transition (docs/theory.md) against independent references."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from cfglab import CfglabInputError
from cfglab.theory.rem import rem_coefficients, rem_free_energy, rem_lambda, rem_lambda_prime
from cfglab.theory.transition import alpha_critical, resolution_gap, t_c_closed_form, transition


@pytest.mark.parametrize("theta,t,q", [(1.0, 0.3, 1.2), (0.4, 1.0, 0.7), (2.5, 0.05, 2.0)])
def test_lambda_is_the_gaussian_integral(theta, t, q):
    """Λ(θ) per coordinate equals log ∫ N(μ; 0, s²) e^{θ(a x μ − b μ²/2)} dμ (scipy quad), x² = q."""
    sigma2, s2 = 0.5, 1.3
    g = sigma2 * math.exp(-2 * t) + 1 - math.exp(-2 * t)
    a, b = math.exp(-t) / g, math.exp(-2 * t) / g
    x = math.sqrt(q)
    f = lambda mu: math.exp(-mu * mu / (2 * s2) + theta * (a * x * mu - 0.5 * b * mu * mu)) / math.sqrt(2 * math.pi * s2)
    ref = math.log(integrate.quad(f, -40, 40, epsabs=1e-14, epsrel=1e-12)[0])
    r, A = rem_coefficients(t, q, sigma2, s2)
    assert rem_lambda(theta, r, A) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    h = 1e-6
    fd = (rem_lambda(theta + h, r, A) - rem_lambda(theta - h, r, A)) / (2 * h)
    assert rem_lambda_prime(theta, r, A) == pytest.approx(fd, rel=1e-7)


def _brute_log_z(d, alpha, t, gen, sigma2=0.5, s2=1.0):
    K = math.ceil(math.exp(alpha * d))
    x = torch.randn(d, generator=gen, dtype=torch.float64) * 1.1
    g = sigma2 * math.exp(-2 * t) + 1 - math.exp(-2 * t)
    a, b = math.exp(-t) / g, math.exp(-2 * t) / g
    mu = torch.randn(K, d, generator=gen, dtype=torch.float64) * math.sqrt(s2)  # [K, d]
    E = a * mu @ x - 0.5 * b * (mu**2).sum(1)  # [K]
    r, A = rem_coefficients(t, float(x @ x) / d, sigma2, s2)
    return float(torch.logsumexp(E, 0)) / d, rem_free_energy(math.log(K) / d, r, A)


def test_free_energy_matches_brute_force_rem_liquid():
    """Liquid phase: (1/d) log Σ_k e^{E_k} of e^{αd} sampled means equals α + Λ(1) (d = 120)."""
    gen = torch.Generator().manual_seed(3)
    for t in (1.2, 2.0):
        brute, state = _brute_log_z(120, 0.08, t, gen)
        assert state.phase == "liquid"
        assert brute == pytest.approx(state.free_energy, abs=0.005)


def test_free_energy_matches_brute_force_rem_frozen():
    """Frozen phase: log Z = d Λ'(θ*) − O(log d / θ*) (the REM's extreme-value correction), d = 500."""
    gen = torch.Generator().manual_seed(4)
    d = 500
    for t in (0.05, 0.5):
        brute, state = _brute_log_z(d, 0.02, t, gen)
        assert state.phase == "frozen" and 0 < state.theta < 1
        assert -math.log(d) / (state.theta * d) - 0.005 < brute - state.free_energy < 0.005


@pytest.mark.parametrize("sigma2,s2", [(0.5, 1.0), (0.2, 2.0), (1.5, 1.0), (1.0, 0.3)])
def test_t_c_closed_form_matches_rem_solver(sigma2, s2):
    a_c = alpha_critical(sigma2, s2)
    for alpha in np.linspace(0.02, 0.98 * a_c, 7):
        res = transition(alpha, sigma2, s2)
        assert res.t_c == pytest.approx(t_c_closed_form(alpha, sigma2, s2), abs=1e-9)
        assert abs(resolution_gap(res.t_c, alpha, sigma2, s2)) < 1e-10
    # α_c is where the unguided target never wins, even at t = 0
    assert resolution_gap(0.0, 0.999 * a_c, sigma2, s2) > 0 > resolution_gap(0.0, 1.001 * a_c, sigma2, s2)


def test_known_values_and_nishimori_identity():
    assert alpha_critical(0.5, 1.0) == pytest.approx(0.5 * math.log(3), abs=1e-12)
    assert transition(0.2).t_c == pytest.approx(-0.5 * math.log(math.expm1(0.4) / (1 + 0.5 * math.expm1(0.4))))
    # along the unguided path Λ'(1) = r/2 = the target's log-weight, and freezing coincides with t_c
    for t in (0.1, 0.7, 2.0):
        g = 0.5 * math.exp(-2 * t) + 1 - math.exp(-2 * t)
        r, A = rem_coefficients(t, math.exp(-2 * t) + g, 0.5, 1.0)
        assert rem_lambda_prime(1.0, r, A) == pytest.approx(r / 2, rel=1e-12)
    t_c = transition(0.3).t_c
    r, A = rem_coefficients(t_c, 1.0 * math.exp(-2 * t_c) + 0.5 * math.exp(-2 * t_c) + 1 - math.exp(-2 * t_c), 0.5, 1.0)
    assert rem_free_energy(0.3, r, A).entropy == pytest.approx(0.0, abs=1e-9)


def test_above_alpha_c_gives_null_with_message():
    res = transition(0.7, 0.5, 1.0)
    assert res.t_c is None and res.t_c_closed_form is None
    assert "never" in res.message and res.alpha_c == pytest.approx(0.5 * math.log(3))


@pytest.mark.parametrize("kw", [dict(alpha=0.0), dict(alpha=-0.1), dict(alpha=0.2, sigma2=0.0),
                                dict(alpha=0.2, sigma2=-1.0), dict(alpha=float("nan"))])
def test_bad_parameters_raise(kw):
    with pytest.raises(CfglabInputError):
        transition(**kw)


@pytest.mark.slow
def test_crossing_in_simulation_approaches_t_c(slow_scale):
    """Mean π_c(t) along unguided runs (α = 0.2) crosses 1/2 at the REM time.

    Per seed, against the finite-d REM crossing conditioned on the drawn |μ_c|²/d (rms error
    0.066 → 0.020 from d = 20 to 40 measured in docs/theory.md); the seed mean against the
    d → ∞ t_c within the seed scatter (which is ∝ the target-norm fluctuation, ~ 1/√d).
    """
    from cfglab.experiments.validate import crossing_point

    alpha = 0.2
    t_c = transition(alpha).t_c
    dims, seeds = ((20, 50), 3) if slow_scale == "full" else ((20, 30), 2)
    rms, means = {}, {}
    for d in dims:
        pts = [crossing_point(dict(d=d, alpha=alpha, seed=s, n_samples=200, steps=150, T=3.0)) for s in range(seeds)]
        rms[d] = math.sqrt(np.mean([(p["t_cross"] - p["t_cross_finite_d"]) ** 2 for p in pts]))
        means[d] = (float(np.mean([p["t_cross"] for p in pts])), float(np.std([p["t_cross"] for p in pts])))
        assert all(p["t_c"] == pytest.approx(t_c) for p in pts)
    big = dims[-1]
    assert rms[big] < 0.05 and rms[big] < rms[dims[0]] + 0.01
    mean, spread = means[big]
    assert abs(mean - t_c) < 3 * spread / math.sqrt(seeds - 1) + 0.05


def test_zero_rate_is_the_typical_energy_and_dmft_handles_two_classes():
    """α_eff = log(K − 1)/d = 0 (K = 2): one non-target class sits at its typical energy Λ'(0)."""
    from cfglab.theory.dmft import solve_dmft
    from cfglab.theory.rem import rem_free_energy, rem_lambda_prime

    state = rem_free_energy(0.0, 0.7, 0.9)
    assert state.free_energy == pytest.approx(rem_lambda_prime(0.0, 0.7, 0.9)) == pytest.approx(-0.35)
    pred = solve_dmft(0.05, d=10, steps=200, schedule="constant:w=2")  # K = ceil(e^0.5) = 2
    assert pred.t_switch == pytest.approx(6.0) and abs(pred.mean_overlap - 1) < 0.1


@pytest.mark.parametrize("sigma2, s2", [(0.5, 1.0), (1.0, 1.0), (0.2, 3.0), (2.0, 0.7)])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_bisection_roots_equal_scipy_brentq(fraction, sigma2, s2):
    """t_c, the finite-d crossing and θ* (pure-Python bisection) equal scipy's brentq roots to 1e-12.

    Both bracket a sign change of the same function to xtol ≤ 1e-13, so they agree to ~2e-13
    (docs/performance.md, start-up); a wrong bracket update moves the answer by ≥ 1e-3.
    """
    from scipy.optimize import brentq

    from cfglab.theory.transition import T_SEARCH, crossing_time

    alpha = fraction * alpha_critical(sigma2, s2)  # below capacity: the target is resolved at some t_c
    got = transition(alpha, sigma2, s2).t_c
    assert abs(got - brentq(resolution_gap, 0.0, T_SEARCH, args=(alpha, sigma2, s2), xtol=1e-13)) <= 1e-12
    d = min(400, int(40 / alpha))  # K = e^{αd} ≤ e^40 < 2^62, and at least 54 classes
    a_eff = math.log(math.ceil(math.exp(alpha * d)) - 1) / d
    ref = brentq(resolution_gap, 0.0, T_SEARCH, args=(a_eff, sigma2, s2, 1.1 * s2), xtol=1e-12)
    assert abs(crossing_time(alpha, d, sigma2=sigma2, s2=s2, target_s2=1.1 * s2) - ref) <= 1e-12
    r, A = rem_coefficients(0.05, 10.0, sigma2, s2)  # small t, large |x|²/d: frozen for every alpha here
    state = rem_free_energy(alpha, r, A)
    legendre = lambda th: th * rem_lambda_prime(th, r, A) - rem_lambda(th, r, A) - alpha
    assert state.phase == "frozen" and abs(state.theta - brentq(legendre, 0.0, 1.0, xtol=1e-14)) <= 1e-12


def test_bisection_rejects_a_bracket_without_sign_change():
    from cfglab.theory.rem import bisect_root

    with pytest.raises(ValueError, match="same sign"):
        bisect_root(lambda x: x * x + 1, -1.0, 1.0, 1e-12)
    assert bisect_root(lambda x: x - 0.25, 0.0, 1.0, 1e-14) == pytest.approx(0.25, abs=1e-14)
