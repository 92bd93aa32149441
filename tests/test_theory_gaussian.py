"""Infinite-class limit (docs/theory.md): moment ODEs vs closed forms, the lab's samplers and their orders."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import linregress

from cfglab._validate import CfglabInputError
from cfglab.lab import InfiniteClassMixture, SimulationConfig, sample_ode, sample_sde, sigma_grid, simulate
from cfglab.lab.simulate import build_model
from cfglab.theory.gaussian import closed_form_constant, solve_discrete, solve_gaussian

A, B = 0.5, 1.5  # σ² and s² + σ² of the lab's defaults


@pytest.mark.parametrize("sampler", ["sde", "ode"])
@pytest.mark.parametrize("w", [-1.0, -0.5, 0.0, 1.0, 4.0])
def test_solver_matches_closed_form_finite_T(sampler, w):
    pred = solve_gaussian(w, sampler=sampler, T=6.0)
    mean, var = closed_form_constant(w, a=A, b=B, sampler=sampler, T=6.0, v_T=1.0)
    assert pred.mean_overlap == pytest.approx(mean, abs=1e-6)
    assert pred.var == pytest.approx(var, abs=1e-6)


@pytest.mark.parametrize("sampler", ["sde", "ode"])
@pytest.mark.parametrize("w", [-0.7, 0.0, 2.0])
def test_solver_matches_closed_form_T_infinite(sampler, w):
    pred = solve_gaussian(w, sampler=sampler, T=25.0, start="marginal")
    mean, var = closed_form_constant(w, a=A, b=B, sampler=sampler)
    assert pred.mean_overlap == pytest.approx(mean, abs=1e-6)
    assert pred.var == pytest.approx(var, abs=1e-6)


def test_ode_power_law_per_direction():
    """Probability flow, T → ∞: Var = a (a/b)^w in every eigendirection (anisotropic)."""
    a, b = np.array([0.05, 0.5, 2.0, 3.0]), np.array([0.2, 1.5, 2.5, 1.0])
    for w in (-0.5, 1.0, 3.0):
        pred = solve_gaussian(w, sampler="ode", T=25.0, cond_var=a, uncond_var=b, start="marginal")
        np.testing.assert_allclose(pred.var, a * (a / b) ** w, rtol=1e-6)
        np.testing.assert_allclose(pred.var_ratio, (a / b) ** w, rtol=1e-6)


def test_conditional_sampling_is_exact_from_the_marginal():
    """w = 0 started from the noised law returns the data law N(μ, a) for both samplers."""
    for sampler in ("sde", "ode"):
        pred = solve_gaussian(0.0, sampler=sampler, T=3.0, cond_var=[0.3, 1.0], uncond_var=[0.3, 1.0],
                              start="marginal")
        np.testing.assert_allclose(pred.var_ratio, 1.0, atol=1e-8)


def test_breakpoints_interval_ode_product_formula():
    """Interval schedule, ODE: log V changes by (1+w)Δlog Γ_a − w Δlog Γ_b on each piece."""
    lo, hi, w, T = 0.4, 3.0, 2.5, 6.0
    pred = solve_gaussian(f"interval:w={w},lo={lo},hi={hi}", sampler="ode", T=T)
    t_lo, t_hi = 0.5 * math.log1p(lo**2), 0.5 * math.log1p(hi**2)
    g = lambda v, t: v * math.exp(-2 * t) + 1 - math.exp(-2 * t)  # noqa: E731
    log_v = (math.log(g(A, 0)) - math.log(g(A, T))  # w = 0 everywhere ...
             + w * (math.log(g(A, t_lo)) - math.log(g(A, t_hi)))  # ... plus the guided piece
             - w * (math.log(g(B, t_lo)) - math.log(g(B, t_hi))))
    assert pred.var == pytest.approx(math.exp(log_v), rel=1e-7)


@pytest.fixture(autouse=True)
def _one_thread():
    """The lab's per-step tensors are small: one thread avoids oversubscribing a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _lab(sampler, d, steps, n, w, seed=0):
    cfg = SimulationConfig(d=d, infinite=True, schedule=f"constant:w={w}", sampler=sampler, steps=steps,
                           n_samples=n, seed=seed)
    mu_sq = float(build_model(cfg).target_mean.square().sum())
    return simulate(cfg), mu_sq


@pytest.mark.parametrize("sampler,steps,w", [("sde", 500, 2.0), ("ode", 100, 2.0), ("sde", 500, -0.5)])
@pytest.mark.parametrize("d", [4, 64])
def test_lab_samplers_match_theory_at_any_d(sampler, steps, w, d):
    """The lab at d = 4 and d = 64 agrees with one d-free prediction: the distortion does not vanish with d.

    The SDE reference is the exact moment recursion of Euler–Maruyama on the same grid (its
    bias at 500 steps is 1–5% of the variance, see ``test_euler_maruyama_bias_is_first_order``);
    Heun at 100 steps is within 1e-3 of the continuum.
    """
    n = 2000
    out, mu_sq = _lab(sampler, d, steps, n, w)
    pred = solve_discrete(w, steps, sampler="sde") if sampler == "sde" else solve_gaussian(w, sampler="ode")
    se_var = pred.var_ratio * math.sqrt(2 / (n * (d - 1)))
    assert abs(out["var_perp_ratio"] - pred.var_ratio) < 4 * se_var + 1e-3
    se_m = math.sqrt(pred.var / (n * mu_sq))
    assert abs(out["mean_overlap"] - pred.mean_overlap) < 4 * se_m + 1e-3
    r, m = pred.var_ratio, pred.mean_overlap  # KL per dim with this draw's |μ_c|² (≈ s² d for large d)
    kl = 0.5 * (r - 1 - math.log(r)) + 0.5 * (m - 1) ** 2 * mu_sq / (d * A)
    se_kl = abs(m - 1) * mu_sq / (d * A) * se_m  # the mean-shift term's sampling error
    assert abs(out["kl_per_dim"] - kl) < 4 * se_kl + 0.05 * kl + (d + 1) / n


def test_euler_maruyama_bias_is_first_order():
    """The EM moment recursion tends to the continuum theory with error ∝ h."""
    exact = solve_gaussian(2.0).var
    errs = [abs(solve_discrete(2.0, steps).var - exact) for steps in (250, 500, 1000, 2000)]
    slope = linregress(np.log([6 / 250, 6 / 500, 6 / 1000, 6 / 2000]), np.log(errs)).slope
    assert 0.95 < slope < 1.05
    assert 0.04 < errs[1] / exact < 0.06  # w = 2: the SDE variance is ~5% high at 500 steps


def test_heun_recursion_equals_the_lab_sampler():
    beta, var = _heun_moments(30, 1.5)
    pred = solve_discrete(1.5, 30, sampler="ode")
    assert beta == pytest.approx(pred.mean_overlap, rel=1e-10)
    assert var == pytest.approx(pred.var, rel=1e-10)


def _heun_moments(steps, w):
    model = InfiniteClassMixture(torch.tensor([1.0, 0.0], dtype=torch.float64), sigma2=A, s2=B - A)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # the flow is affine: x_0 = α x_T + β μ
    out = sample_ode(model, x, sigma_grid(6.0, steps), schedule=w)
    beta, alpha = float(out[0, 0]), float(out[1, 1] - out[0, 1])
    return beta, alpha**2  # mean overlap and variance from x_T ~ N(0, I)


def test_heun_converges_with_order_two():
    """Slope of log error vs log h for the lab's Heun sampler (mean and variance)."""
    w = 1.0
    exact = solve_gaussian(w, sampler="ode")
    steps = (40, 80, 160, 320)
    moments = [_heun_moments(n, w) for n in steps]
    log_h = np.log([6.0 / n for n in steps])
    for k, ref in enumerate((exact.mean_overlap, exact.var)):
        slope = linregress(log_h, np.log([abs(mom[k] - ref) for mom in moments])).slope
        assert 1.8 < slope < 2.3, slope


def test_euler_maruyama_weak_order_one():
    """The lab's EM sampler: variance error vs h has slope ≈ 1 (common random numbers across h)."""
    w, n, d = 1.0, 200, 1000
    exact = solve_gaussian(w, sampler="sde")
    model = InfiniteClassMixture(torch.zeros(d, dtype=torch.float64), sigma2=A, s2=B - A)
    steps = (60, 120, 240)
    errs = []
    for k in steps:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        out = sample_sde(model, x, sigma_grid(6.0, k), schedule=w, generator=g)
        errs.append(abs(float(out.var(0).mean()) - exact.var))
    slope = linregress(np.log([6.0 / k for k in steps]), np.log(errs)).slope
    assert 0.8 < slope < 1.2, (slope, errs)


@pytest.mark.parametrize("kwargs", [dict(sigma2=-1.0), dict(sampler="heun"), dict(start="data"), dict(T=0.0),
                                    dict(cond_var=[0.5, -1.0]), dict(cond_var=[0.5, 1.0], uncond_var=[1.0, 2.0, 3.0])])
def test_bad_input_names_the_value(kwargs):
    with pytest.raises(CfglabInputError):
        solve_gaussian(1.0, **kwargs)
