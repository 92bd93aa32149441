"""Samplers against closed forms: infinite-class ODE variance, Heun's order, unguided sampling."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import linregress

from cfglab.lab import (
    explicit_mixture,
    TrajectoryRecorder,
    exponential_mixture,
    infinite_class_mixture,
    random_mixture,
    sample_ode,
    sample_sde,
    sigma_grid,
)
from cfglab.lab.simulate import SimulationConfig, simulate

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

SIGMA2, S2 = 0.5, 1.0


def ode_linear_map(model, w, T, steps):
    """Per-coordinate gain A and offset of the (linear) infinite-class ODE map x_T -> x_0."""
    d = model.d
    x = torch.cat([torch.zeros(1, d), torch.eye(d)])  # [d + 1, d]
    out = sample_ode(model, x, sigma_grid(T, steps), schedule=w)
    gain = torch.diagonal(out[1:] - out[0])  # [d]
    return gain, out[0]


@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_ode_variance_matches_closed_form(w):
    """Infinite-class limit, constant w, T → ∞: Var = a (a/b)^w per direction (docs/theory.md)."""
    model = infinite_class_mixture(4, SIGMA2, S2, seed=0)
    gain, _ = ode_linear_map(model, w, T=12.0, steps=8000)
    a, b = SIGMA2, S2 + SIGMA2
    expected = a * (a / b) ** w
    np.testing.assert_allclose((gain**2).numpy(), expected, rtol=1e-5)  # Heun error at h = 1.5e-3


def test_heun_converges_at_second_order():
    model = infinite_class_mixture(3, SIGMA2, S2, seed=1)
    ref, _ = ode_linear_map(model, 2.0, T=6.0, steps=12800)
    steps = np.array([100, 200, 400, 800])
    errors = [float((ode_linear_map(model, 2.0, 6.0, n)[0] - ref).abs().max()) for n in steps]
    slope = linregress(np.log(6.0 / steps), np.log(errors)).slope
    assert 1.8 < slope < 2.2, (slope, errors)


def test_euler_maruyama_weak_order_one_in_variance():
    """EM's bias in the final variance shrinks ∝ h (exact reference: linear variance recursion)."""
    model = infinite_class_mixture(1, SIGMA2, S2, seed=0)

    def em_variance(steps):  # variance propagated exactly through the EM recursion (no sampling noise)
        grid = sigma_grid(6.0, steps).tolist()
        var = 1.0
        for s, s_next in zip(grid[:-1], grid[1:]):
            t = 0.5 * math.log1p(s * s)
            h = t - 0.5 * math.log1p(s_next * s_next)
            coef = 1 + h * (1 - 2 / model.gamma(t))  # x + 2 s_c, s_c linear with slope −1/Γ
            var = coef**2 * var + 2 * h
        return var

    steps = np.array([100, 200, 400, 800])
    errors = [abs(em_variance(n) - SIGMA2) for n in steps]
    slope = linregress(np.log(6.0 / steps), np.log(errors)).slope
    assert 0.9 < slope < 1.1, (slope, errors)


def _within(value, target, se, k=4.0):
    assert abs(value - target) < k * se, (value, target, se)


@pytest.mark.parametrize("kind", ["K", "alpha", "infinite"])
def test_unguided_sde_reproduces_target(kind):
    """w = 0 with exact scores: mean overlap ≈ 1 and variance ratio ≈ 1 within a few standard errors."""
    d, n = 20, 4000
    ens = {"K": dict(K=10), "alpha": dict(alpha=0.2), "infinite": dict(infinite=True)}[kind]
    cfg = SimulationConfig(d=d, sigma2=SIGMA2, s2=S2, schedule="constant:w=0", sampler="sde",
                           n_samples=n, steps=3000, seed=3, **ens)
    r = simulate(cfg)
    mu_sq = S2 * d  # |μ_c|² ≈ s² d; the overlap SE uses the realised norm below
    se_overlap = math.sqrt(SIGMA2 / (n * mu_sq))
    _within(r["mean_overlap"], 1.0, se_overlap * 1.5)
    _within(r["var_perp_ratio"], 1.0, math.sqrt(2 / (n * (d - 1))) + 0.004)  # + EM bias bound at h = 0.002
    _within(r["var_parallel_ratio"], 1.0, math.sqrt(2 / n) + 0.004)
    if kind != "infinite":  # Bayes accuracy of exact draws from the target class, same ensemble
        from cfglab.lab.simulate import build_model

        model = build_model(cfg)
        exact = model.bayes_is_target(model.sample_target(20_000, torch.Generator().manual_seed(9)))
        p = float(exact.double().mean())
        _within(r["class_accuracy"], p, math.sqrt(p * (1 - p) / n) + math.sqrt(p * (1 - p) / 20_000) + 1e-3)


def test_unguided_ode_reproduces_target_at_exponential_K():
    d, n = 20, 4000
    r = simulate(SimulationConfig(d=d, alpha=0.2, sampler="ode", n_samples=n, steps=200, seed=4))
    _within(r["var_perp_ratio"], 1.0, math.sqrt(2 / (n * (d - 1))))
    _within(r["mean_overlap"], 1.0, 1.5 * math.sqrt(SIGMA2 / (n * d)))


def test_cfg_shrinks_variance_and_pushes_mean():
    r0 = simulate(SimulationConfig(d=10, K=20, sampler="ode", n_samples=1000, steps=100, seed=0))
    r3 = simulate(SimulationConfig(d=10, K=20, sampler="ode", n_samples=1000, steps=100, seed=0,
                                   schedule="constant:w=3"))
    assert r3["var_parallel_ratio"] < 0.8 * r0["var_parallel_ratio"]
    assert r3["kl_per_dim"] > r0["kl_per_dim"]


def test_same_seed_same_samples_and_trajectory_recorded():
    model = random_mixture(30, 12, SIGMA2, seed=2)
    grid = sigma_grid(6.0, 50)
    runs = []
    for _ in range(2):
        rec = TrajectoryRecorder(model.target_mean)
        x = torch.randn(64, 12, generator=torch.Generator().manual_seed(7))
        out = sample_sde(model, x, grid, schedule="constant:w=1", generator=torch.Generator().manual_seed(8),
                         callback=rec)
        runs.append((out, rec.as_dict()))
    assert torch.equal(runs[0][0], runs[1][0])
    traj = runs[0][1]
    assert len(traj["t"]) == 50 and traj["t"][0] == pytest.approx(6.0) and traj["w"] == [1.0] * 50
    assert 0 <= min(traj["pi_target"]) and max(traj["pi_target"]) <= 1
    assert traj["pi_target"][-1] > 0.9 > traj["pi_target"][0]  # the target class is resolved along the run


def test_exponential_mixture_size():
    assert exponential_mixture(0.2, 20, SIGMA2).K == math.ceil(math.exp(4.0))


def test_float32_runs_close_to_float64():
    model64 = random_mixture(50, 10, SIGMA2, seed=1)
    model32 = explicit_mixture(model64.means, SIGMA2, dtype=torch.float32)
    x = torch.randn(500, 10, generator=torch.Generator().manual_seed(0))
    out64 = sample_ode(model64, x, sigma_grid(6.0, 60), schedule="constant:w=2")
    out32 = sample_ode(model32, x.float(), sigma_grid(6.0, 60, dtype=torch.float32), schedule="constant:w=2")
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-4)
