"""Samplers in σ and EDM preconditioning, against closed forms for Gaussian data."""

import math

import numpy as np
import pytest
import torch

from cfglab.latent.model import ArchConfig, EDMDenoiser
from cfglab.latent.sample import (
    karras_sigmas,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
    sigma_at_fraction,
)

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

S2 = 0.5  # data variance of the Gaussian test class


def gaussian_denoiser(means):
    """Exact denoiser of N(μ_c, S2 I): D(x; σ) = (S2 x + σ² μ_c)/(S2 + σ²); cond indexes means."""
    calls = []

    def model(x, sigma, cond):
        calls.append(int(x.shape[0]))
        mu = means[cond]  # [B, d]
        s2 = sigma.reshape(-1, 1) ** 2
        return (S2 * x + s2 * mu) / (S2 + s2)

    return model, calls


def exact_flow(x_start, mu, sigma_start, sigma_end):
    """Probability-flow ODE for N(μ, S2 I): x − μ scales by sqrt((S2 + σ²)/(S2 + σ_start²))."""
    return mu + (x_start - mu) * math.sqrt((S2 + sigma_end**2) / (S2 + sigma_start**2))


def test_karras_grid_matches_eq5_and_fraction_switch():
    s = karras_sigmas(10, 0.002, 80.0)
    i = torch.arange(10, dtype=torch.float64)
    ref = (80 ** (1 / 7) + i / 9 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert torch.allclose(s[:-1], ref, rtol=1e-12) and s[-1] == 0
    sw = sigma_at_fraction(s, 0.3)  # last 3 of 10 steps (σ_7, σ_8, σ_9) at or below the switch
    assert int((s[:-1] <= sw).sum()) == 3


@pytest.mark.parametrize("sampler, order", [(sample_euler, 1), (sample_heun, 2)])
def test_convergence_order_on_gaussian_flow(sampler, order):
    means = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    model, _ = gaussian_denoiser(means)
    x0 = torch.tensor([[3.0, 0.5]], dtype=torch.float64) * 5.0
    cond = torch.zeros(1, dtype=torch.long)
    errs, hs = [], []
    for n in (8, 16, 32, 64):
        sig = torch.linspace(5.0, 0.5, n + 1, dtype=torch.float64)
        x = sampler(model, x0, sig, schedule=0.0, cond=cond, uncond=cond)
        errs.append(float((x - exact_flow(x0, means[0], 5.0, 0.5)).norm()))
        hs.append(4.5 / n)
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.25, (slope, errs)


def test_heun_reaches_data_law_and_guidance_composition():
    means = torch.tensor(
        [[2.0, 0.0], [0.0, 0.0]], dtype=torch.float64
    )  # class 0, "unconditional" 1
    model, calls = gaussian_denoiser(means)
    gen = torch.Generator().manual_seed(0)
    n, sig = 4000, karras_sigmas(40, 0.002, 80.0)
    x = sig[0] * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    cond, uncond = torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)
    out = sample_heun(model, x.clone(), sig, schedule=0.0, cond=cond, uncond=uncond)
    se = math.sqrt(S2 / n)
    assert torch.allclose(out.mean(0), means[0], atol=4 * se)
    assert abs(float(out.var(0).mean()) - S2) < 4 * S2 * math.sqrt(2 / n)
    assert set(calls) == {n}  # w = 0: one (conditional) pass per evaluation, never 2n
    # w = 1 on the exact Gaussian denoisers: D_w = D_c + (D_c − D_u) has mean 2μ_c − μ_u = (4, 0)
    # and, being linear in x with the same slope, the same variance S2 at σ → 0
    calls.clear()
    guided = sample_heun(model, x.clone(), sig, schedule="constant:w=1", cond=cond, uncond=uncond)
    assert torch.allclose(
        guided.mean(0), torch.tensor([4.0, 0.0], dtype=torch.float64), atol=4 * se
    )
    assert max(calls) == 2 * n


def test_ancestral_euler_reaches_data_law():
    means = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    model, _ = gaussian_denoiser(means)
    gen = torch.Generator().manual_seed(1)
    n, sig = 2000, karras_sigmas(500, 0.002, 80.0)  # first-order: the variance bias is O(1/steps)
    x = sig[0] * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    c = torch.zeros(n, dtype=torch.long)
    out = sample_euler_ancestral(model, x, sig, cond=c, uncond=c, generator=gen)
    assert torch.allclose(out.mean(0), means[0], atol=4 * math.sqrt(S2 / n))
    # bias ≈ 6.5/steps (measured variance 0.347, 0.413, 0.473, 0.495 at 30, 60, 240, 1000 steps)
    # + 3 standard errors; no noise would give ≈ 0, doubled noise ≈ 1
    assert abs(float(out.var(0).mean()) - S2) < 6.5 / 500 + 3 * S2 * math.sqrt(1 / n)


def test_edm_preconditioning_table1():
    class Zero(torch.nn.Module):
        def forward(self, x, t, class_labels=None):
            return type("O", (), {"sample": torch.zeros_like(x)})()

    net = EDMDenoiser(Zero(), n_classes=3, sigma_data=1.0)
    sigma = torch.tensor([0.01, 0.5, 1.0, 10.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = net.coefficients(sigma)
    # EDM eqs. 7–8: unit-variance network input and training target
    assert torch.allclose(c_in**2 * (sigma**2 + 1), torch.ones(4, dtype=torch.float64))
    assert torch.allclose((1 - c_skip) ** 2 * 1 + c_skip**2 * sigma**2, c_out**2)
    assert torch.allclose(c_noise, sigma.log() / 4)
    x = torch.randn(4, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(net(x, sigma), c_skip.view(4, 1, 1, 1) * x)  # F = 0 -> D = c_skip x
    assert ArchConfig().latent_channels == 2
