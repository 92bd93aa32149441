"""CFGDenoiser driven by the ``k-diffusion`` package's own samplers (issue 15).

k-diffusion is optional (extra ``cfglab[kdiffusion]``, outside ``all``): its package imports
torchvision, which does not import beside a CPU-only torch build. The test skips, with the
reason, wherever ``import k_diffusion.sampling`` fails.

Model: the exact denoiser of Gaussian classes, x₀ ~ N(μ_c, s² I), ``D(x, σ) = (s² x + σ² μ)/(s² + σ²)``,
with μ = ``cond`` (the unconditional "class" is μ = 0 with variance s² + m²). The reference is
the CFG wrapper of k-diffusion's example scripts (uncond and cond batched, ``cond_scale = 1 + w``).
Float64: the two wrappers differ only in the order of the batched rows, so they agree to ~1e-15.
"""

import pytest
import torch

from cfglab.guidance import Constant, NegativeWindow
from cfglab.integrations.diffusers import CFGDenoiser

pytestmark = pytest.mark.usefixtures("float64")  # written for float64 defaults

try:
    import k_diffusion.sampling as K
except Exception as err:  # ImportError, or torchvision's RuntimeError on a CPU-only torch
    pytest.skip(f"k-diffusion's samplers do not import here: {type(err).__name__}: {err}", allow_module_level=True)

S2, M2 = 0.5, 2.0
W = 2.0
SAMPLERS = ["sample_euler", "sample_euler_ancestral", "sample_heun", "sample_dpmpp_2m"]


class GaussianClasses(torch.nn.Module):
    """Exact denoiser; logs (σ, batch size) of every call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, sigma, cond):  # x [B, d], sigma [B], cond [B, d] (zeros: unconditional)
        self.calls.append((float(sigma[0]), len(x)))
        uncond = (cond == 0).all(dim=1, keepdim=True)  # [B, 1]
        var = torch.where(uncond, S2 + M2, S2)
        s2 = sigma[:, None] ** 2
        return (var * x + s2 * cond) / (var + s2)


class StockCFG(torch.nn.Module):
    """The CFG wrapper of k-diffusion's example scripts."""

    def __init__(self, model):
        super().__init__()
        self.inner_model = model

    def forward(self, x, sigma, uncond, cond, cond_scale):
        x_in, sigma_in = torch.cat([x] * 2), torch.cat([sigma] * 2)
        d_uncond, d_cond = self.inner_model(x_in, sigma_in, cond=torch.cat([uncond, cond])).chunk(2)
        return d_uncond + (d_cond - d_uncond) * cond_scale


def _setup():
    gen = torch.Generator().manual_seed(0)
    cond = torch.randn(3, 8, generator=gen, dtype=torch.float64)  # [B, d] class means
    sigmas = K.get_sigmas_karras(10, 0.02, 20.0, device="cpu").double()  # [11], ends at 0
    x = torch.randn(3, 8, generator=gen, dtype=torch.float64) * sigmas[0]
    return cond, sigmas, x


def _sample(name, denoiser, x, sigmas, extra_args):
    torch.manual_seed(1)  # ancestral noise
    return getattr(K, name)(denoiser, x.clone(), sigmas, extra_args=extra_args, disable=True)


@pytest.mark.parametrize("name", SAMPLERS)
def test_constant_weight_matches_the_stock_cfg_wrapper(name):
    cond, sigmas, x = _setup()
    model = GaussianClasses()
    ours = _sample(name, CFGDenoiser(model, Constant(W)), x, sigmas, {"cond": cond, "uncond": torch.zeros_like(cond)})
    stock = _sample(name, StockCFG(model), x, sigmas,
                    {"cond": cond, "uncond": torch.zeros_like(cond), "cond_scale": 1 + W})
    weaker = _sample(name, StockCFG(model), x, sigmas, {"cond": cond, "uncond": torch.zeros_like(cond), "cond_scale": W})
    assert (ours - stock).abs().max() < 1e-12
    assert (weaker - stock).abs().max() > 1e-2  # the comparison can fail


@pytest.mark.parametrize("name", SAMPLERS)
def test_negative_window_switches_at_sigma_switch_inside_the_samplers(name):
    cond, sigmas, x = _setup()
    sigma_switch = float((sigmas[5] * sigmas[6]).sqrt())  # steps 6.. at w = −1
    model = GaussianClasses()
    _sample(name, CFGDenoiser(model, NegativeWindow(W, -1.0, sigma_switch)), x, sigmas,
            {"cond": cond, "uncond": torch.zeros_like(cond)})
    assert {n for s, n in model.calls if s > sigma_switch} == {6}  # both passes, batched
    assert {n for s, n in model.calls if s <= sigma_switch} == {3}  # the unconditional pass only
    assert min(s for s, _ in model.calls if s > sigma_switch) == pytest.approx(float(sigmas[5]))
