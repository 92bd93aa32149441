"""σ mapping, guider protocol, config round trip and errors of the diffusers integration (issue 5)."""

import copy
import json
import math
import subprocess
import sys

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from cfglab import CfglabInputError  # noqa: E402
from cfglab.guidance import Constant, Interval, NegativeWindow  # noqa: E402
from cfglab.integrations.diffusers import (  # noqa: E402
    CfglabGuidance,
    scheduler_sigma,
    scheduler_sigmas,
    sigma_convention,
    switch_sigma,
)

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

MAPPED = [
    "DDIMScheduler", "DDPMScheduler", "PNDMScheduler", "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler",
    "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
    "EDMEulerScheduler", "FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler",
]


def _forward_sigma(scheduler, t) -> float:
    """σ = b/a from the scheduler's own forward process x_t = a x0 + b ε (a fresh copy per call)."""
    s = copy.deepcopy(scheduler)
    t = torch.as_tensor(t).reshape(1)
    one, zero = torch.ones(1), torch.zeros(1)
    if hasattr(s, "add_noise"):
        b, a = s.add_noise(zero, one, t), s.add_noise(one, zero, t)
    else:  # flow matching: x_t = s ε + (1 − s) x0
        b, a = s.scale_noise(zero, t, one), copy.deepcopy(scheduler).scale_noise(one, t, zero)
    return math.inf if float(a) == 0 else float(b) / float(a)


@pytest.mark.parametrize("name", MAPPED)
def test_sigma_matches_scheduler_forward_process(name):
    scheduler = getattr(diffusers, name)()
    scheduler.set_timesteps(12)
    got = scheduler_sigmas(scheduler)
    ref = torch.tensor([_forward_sigma(scheduler, t) for t in scheduler.timesteps], dtype=torch.float64)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=0)


def test_sigma_is_decreasing_and_matches_tables():
    ddim, euler = diffusers.DDIMScheduler(), diffusers.EulerDiscreteScheduler()
    for s in (ddim, euler):
        s.set_timesteps(25)
    abar = ddim.alphas_cumprod.double()
    ref = ((1 - abar[ddim.timesteps]) / abar[ddim.timesteps]).sqrt()
    torch.testing.assert_close(scheduler_sigmas(ddim), ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(scheduler_sigmas(euler), euler.sigmas[:-1].double(), rtol=0, atol=0)
    assert (scheduler_sigmas(ddim).diff() < 0).all()


@pytest.mark.parametrize("name", ["DDIMScheduler", "EulerAncestralDiscreteScheduler"])
@pytest.mark.parametrize("fraction", [0.3, 0.5])
def test_switch_sigma_places_the_window_on_the_last_steps(name, fraction):
    scheduler = getattr(diffusers, name)()
    sigma_switch = switch_sigma(scheduler, 30, fraction)
    sigmas = scheduler_sigmas(scheduler, 30)
    window = sigmas <= sigma_switch
    n = round(fraction * 30)
    assert window.sum() == n and window[-n:].all()
    assert scheduler.timesteps is None or len(scheduler.timesteps) != 30  # the scheduler is not touched


def test_unmappable_scheduler_is_a_clear_error():
    kdpm2 = diffusers.KDPM2DiscreteScheduler()
    with pytest.raises(CfglabInputError, match="KDPM2DiscreteScheduler"):
        CfglabGuidance("constant:w=2", scheduler=kdpm2)
    with pytest.raises(CfglabInputError, match="KDPM2DiscreteScheduler"):
        scheduler_sigma(kdpm2, 999)
    with pytest.raises(CfglabInputError, match="sigma_convention"):
        CfglabGuidance("constant:w=2", sigma_convention="vp")
    ddim = diffusers.DDIMScheduler()
    with pytest.raises(CfglabInputError, match="needs DDIMScheduler.sigmas"):
        sigma_convention(ddim, "sigmas")
    euler = diffusers.EulerDiscreteScheduler()
    euler.set_timesteps(10)
    with pytest.raises(CfglabInputError, match="timestep 123.0 is not in EulerDiscreteScheduler"):
        scheduler_sigma(euler, 123)
    with pytest.raises(CfglabInputError, match="no scheduler"):
        CfglabGuidance("constant:w=2").set_state(0, 10, torch.tensor(999))


def test_guider_config_round_trip(tmp_path):
    schedule = NegativeWindow(w_pos=3.0, w_neg=-1.0, sigma_switch=0.8)
    guider = CfglabGuidance(schedule, sigma_convention="sigmas", enabled=False,
                            scheduler=diffusers.EulerDiscreteScheduler())
    guider.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "guider_config.json").read_text())
    assert raw["schedule"] == "negative_window:w_pos=3,w_neg=-1,sigma_switch=0.8"
    assert "scheduler" not in raw
    loaded = CfglabGuidance.from_pretrained(tmp_path)
    assert loaded.schedule == schedule
    assert loaded.config.sigma_convention == "sigmas" and loaded.config.enabled is False
    assert guider.new(schedule="interval:w=2,lo=0.3,hi=5").schedule == Interval(2.0, 0.3, 5.0)


def _pred(value: float) -> torch.Tensor:
    return torch.full((2, 3), value)


def test_guider_steps_weights_and_passes_on_ddim():
    ddim = diffusers.DDIMScheduler()
    ddim.set_timesteps(20)
    sigmas = scheduler_sigmas(ddim)
    lo, hi = float(sigmas[14]), float(sigmas[4])  # σ in (lo, hi]: w on steps 4..13
    guider = CfglabGuidance(Interval(w=-0.5, lo=lo, hi=hi), scheduler=ddim)
    data = {"class_labels": (torch.tensor([3, 4]), torch.tensor([9, 9]))}
    for i, t in enumerate(ddim.timesteps):
        guider.set_state(i, 20, t)
        inside = 4 <= i <= 13
        assert guider.sigma == pytest.approx(float(sigmas[i]), rel=1e-12)
        assert guider.w == (-0.5 if inside else 0.0) and guider.guidance_scale == 1 + guider.w
        batches = guider.prepare_inputs(data)
        assert guider.num_conditions == len(batches) == (2 if inside else 1)
        assert batches[0].class_labels.tolist() == [3, 4]
        for b, v in zip(batches, (2.0, 5.0)):
            guider.prepare_models(None)
            b.noise_pred = _pred(v)
        out = guider(batches).pred  # cond = 2, uncond = 5: 2 + w (2 − 5)
        torch.testing.assert_close(out, _pred(2.0 - 3.0 * guider.w))


def test_guider_runs_only_the_unconditional_pass_at_w_minus_one():
    ddim = diffusers.DDIMScheduler()
    ddim.set_timesteps(5)
    guider = CfglabGuidance(Constant(-1.0), scheduler=ddim)
    guider.set_state(0, 5, ddim.timesteps[0])
    (batch,) = guider.prepare_inputs({"class_labels": (torch.tensor([3]), torch.tensor([9]))})
    assert batch.class_labels.tolist() == [9] and not guider.is_conditional
    batch.noise_pred = _pred(7.0)
    torch.testing.assert_close(guider([batch]).pred, _pred(7.0))


def test_importing_cfglab_does_not_import_diffusers_and_missing_extra_is_named():
    code = (
        "import sys; import cfglab, cfglab.integrations, cfglab.integrations.diffusers as D\n"
        "assert 'diffusers' not in sys.modules, 'diffusers imported'\n"
        "sys.modules['diffusers'] = None\n"
        "try:\n    D.CfglabGuidance\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cfglab[diffusers]" in out.stdout


def test_guider_follows_the_modular_pipeline_protocol():
    """``prepare_inputs_from_block_state`` (diffusers modular pipelines) picks the same batches."""
    from diffusers.modular_pipelines.modular_pipeline import BlockState

    ddim = diffusers.DDIMScheduler()
    ddim.set_timesteps(4)
    state = BlockState(prompt_embeds=torch.ones(1, 2), negative_prompt_embeds=torch.zeros(1, 2))
    fields = {"encoder_hidden_states": ("prompt_embeds", "negative_prompt_embeds")}
    for w, expected in ((2.0, [1.0, 0.0]), (0.0, [1.0]), (-1.0, [0.0])):
        guider = CfglabGuidance(Constant(w), scheduler=ddim)
        guider.set_state(0, 4, ddim.timesteps[0])
        batches = guider.prepare_inputs_from_block_state(state, fields)
        assert [float(b.encoder_hidden_states[0, 0]) for b in batches] == expected
