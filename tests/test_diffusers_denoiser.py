"""CFGDenoiser: k-diffusion-style guided denoiser against exact scores and a closed form (issue 5)."""

import math

import pytest
import torch

from cfglab.guidance import Constant, Interval, NegativeWindow
from cfglab.integrations.diffusers import CFGDenoiser
from cfglab.lab import explicit_mixture
from cfglab.noise import t_from_sigma

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64


def _exact_denoiser(mixture):
    """VE denoiser of the lab's mixture: D(x, σ) = x + σ² ∇log p_σ(x), x = e^t x_t (cond 0 = target, 1 = none)."""
    def model(x, sigma, cond):  # x [B, d], sigma [B], cond [B] in {0, 1}
        out = torch.empty_like(x)
        for i in range(len(x)):
            s, t = float(sigma[i]), t_from_sigma(float(sigma[i]))
            s_c, s_u, _ = mixture.score_pair(x[i : i + 1] * math.exp(-t), s)  # scores in x_t
            score = s_c if int(cond[i]) == 0 else s_u
            out[i] = x[i] + s**2 * math.exp(-t) * score[0]  # ∇_x = e^{-t} ∇_{x_t}
        return out
    return model


def test_guided_denoiser_equals_the_labs_guided_score():
    gen = torch.Generator().manual_seed(0)
    mixture = explicit_mixture(torch.randn(5, 3, generator=gen), sigma2=0.5)
    schedule = NegativeWindow(w_pos=2.5, w_neg=-0.7, sigma_switch=1.0)
    denoiser = CFGDenoiser(_exact_denoiser(mixture), schedule)
    sigma = torch.tensor([0.3, 0.9, 1.1, 4.0])  # [B], both sides of the switch
    x = 2 * torch.randn(4, 3, generator=gen)
    d_w = denoiser(x, sigma, cond=torch.zeros(4), uncond=torch.ones(4))
    for i in range(4):
        t = t_from_sigma(float(sigma[i]))
        s_w = mixture.guided(x[i : i + 1] * math.exp(-t), float(sigma[i]), schedule(float(sigma[i]))).score[0]
        torch.testing.assert_close((d_w[i] - x[i]) / (sigma[i] ** 2 * math.exp(-t)), s_w, rtol=1e-10, atol=1e-10)


class _Counting:
    """Affine toy denoiser that records the batch size of every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, cond):
        self.calls.append(len(x))
        return 0.5 * x + cond[:, None] * sigma[:, None]


@pytest.mark.parametrize("batch", [True, False])
def test_passes_are_skipped_where_w_is_zero_or_minus_one(batch):
    model = _Counting()
    x, cond, uncond = torch.ones(2, 4), torch.tensor([1.0, 2.0]), torch.tensor([5.0, 5.0])
    d_c, d_u = 0.5 * x + 2.0 * cond[:, None], 0.5 * x + 2.0 * uncond[:, None]  # at σ = 2
    denoiser = CFGDenoiser(model, Interval(w=2.0, lo=1.0, hi=3.0), batch_cond_uncond=batch)
    torch.testing.assert_close(denoiser(x, 0.5, cond=cond, uncond=uncond), 0.5 * x + 0.5 * cond[:, None])  # w = 0
    torch.testing.assert_close(denoiser(x, 2.0, cond=cond, uncond=uncond), d_c + 2.0 * (d_c - d_u))  # w = 2
    torch.testing.assert_close(CFGDenoiser(model, Constant(-1.0))(x, 2.0, cond=cond, uncond=uncond), d_u)
    # w = 0: cond only; w = 2: one batched call or two calls; w = -1: uncond only
    assert model.calls == ([2, 4, 2] if batch else [2, 2, 2, 2])


def _heun(denoiser, x, sigmas, **extra):
    """Heun's 2nd-order sampler in σ (Karras et al. 2022, Alg. 1) — any σ-passing sampler works."""
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoiser(x, s, **extra)) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:
            x_next = x + (s_next - s) * 0.5 * (d + (x_next - denoiser(x_next, s_next, **extra)) / s_next)
        x = x_next
    return x


def test_cfg_denoiser_in_a_sampler_gives_the_closed_form_variance():
    """Gaussian class N(μ, a) in a Gaussian population N(0, b): the guided ODE ends at Var = a (a/b)^w (docs/theory.md)."""
    a, b, mu, w = 0.5, 1.5, 0.8, 2.0

    def model(x, sigma, cond):  # posterior means of the two Gaussians at VE noise σ
        s2 = sigma[:, None] ** 2
        d_c = (a * x + s2 * mu) / (a + s2)
        d_u = b * x / (b + s2)
        return torch.where(cond[:, None] == 0, d_c, d_u)

    sigma_max = 2000.0
    sigmas = torch.cat([torch.logspace(math.log10(sigma_max), -3, 400, dtype=torch.float64), torch.zeros(1)])
    x_t = math.sqrt(b + sigma_max**2) * torch.tensor([[-1.0], [1.0]])  # ±1 sd of the noised population
    x_0 = _heun(CFGDenoiser(model, Constant(w)), x_t, sigmas, cond=torch.zeros(2), uncond=torch.ones(2))
    gain = float((x_0[1] - x_0[0]) / (x_t[1] - x_t[0]))  # the guided ODE is affine in x
    var = gain**2 * (b + sigma_max**2)
    assert var == pytest.approx(a * (a / b) ** w, rel=2e-3)
    assert abs(var - a) > 0.1  # guidance visibly shrinks the variance
