"""σ mapping, guider protocol, config round trip and errors of the diffusers integration (issue 5)."""

import copy
import inspect
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
    step_sigmas,
    switch_sigma,
)

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

MAPPED = [
    "DDIMScheduler", "DDPMScheduler", "PNDMScheduler", "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler",
    "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
    "EDMEulerScheduler", "FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler", "SASolverScheduler",
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


# --- σ by step index on every mapped scheduler (issue 15) -------------------------------------

SIGMA_SCHEDULERS = [n for conv in ("sigmas", "flow") for n in __import__(
    "cfglab.integrations.diffusers._sigma", fromlist=["CONVENTIONS"]).CONVENTIONS[conv]]
OPTIONS = ["default", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"]


def _make(name: str, option: str, **config):
    """The scheduler with ``option=True``, or ``None`` where it does not support the option."""
    cls = getattr(diffusers, name)
    if option != "default":
        if option not in inspect.signature(cls.__init__).parameters:
            return None
        config[option] = True
    return cls(**config)


def sigma_errors(name: str, option: str, steps: int) -> float | None:
    """max |σ_cfglab − σ_scheduler| over a sampling run, σ_scheduler read by the scheduler's step index.

    The guider's state is set before ``scale_model_input`` (so it sees ``step_index`` unset at
    step 0); the reference is the σ at the index the scheduler's own ``step`` used. The model
    output is a fixed fraction of the sample, enough to drive multistep schedulers through
    their real ``step``.
    """
    scheduler = _make(name, option)
    if scheduler is None:
        return None
    scheduler.set_timesteps(steps)
    guider = CfglabGuidance(Constant(1.0), scheduler=scheduler)
    flow = sigma_convention(scheduler) == "flow"
    x = torch.ones(1, 2, dtype=torch.float32)
    scale = getattr(scheduler, "scale_model_input", lambda sample, t: sample)  # flow matching has none
    worst = 0.0
    for i, t in enumerate(scheduler.timesteps):
        guider.set_state(i, steps, t)
        x_in = scale(x, t)
        x = scheduler.step(0.5 * x_in, t, x).prev_sample
        s = float(scheduler.sigmas[scheduler.step_index - 1])  # the index this step() used
        ref = (math.inf if s >= 1 else s / (1 - s)) if flow else s
        worst = max(worst, 0.0 if guider.sigma == ref else abs(guider.sigma - ref))
    return worst


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("name", SIGMA_SCHEDULERS)
def test_sigma_is_the_schedulers_own_sigma_by_step_index(name, option):
    """Timesteps repeat under Karras / exponential / beta σ at many steps; σ must follow the index."""
    torch.set_default_dtype(torch.float32)  # UniPC's step mixes its float32 tables with default-dtype ones
    for steps in (10, 30, 100):
        err = sigma_errors(name, option, steps)
        if err is None:
            pytest.skip(f"{name} has no {option}")
        assert err == 0.0, f"{name} {option} {steps} steps: max |Δσ| = {err}"


def test_repeated_timestep_without_step_is_an_error_not_a_wrong_sigma():
    dpm = diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True)
    dpm.set_timesteps(100)
    t = dpm.timesteps
    repeated = next(int(t[i]) for i in range(1, len(t)) if t[i] == t[i - 1])
    with pytest.raises(CfglabInputError, match="with different σ; pass step="):
        scheduler_sigma(dpm, repeated)
    first = int((t == repeated).nonzero()[0])
    assert scheduler_sigma(dpm, repeated, step=first + 1) == float(dpm.sigmas[first + 1])


@pytest.mark.parametrize("name", ["DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler",
                                  "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler",
                                  "UniPCMultistepScheduler"])
def test_zero_terminal_snr_schedulers_give_sigma_infinity_or_their_own_sigma(name):
    """``rescale_betas_zero_snr=True`` with trailing spacing: ᾱ_T = 0 is σ = ∞ (no ZeroDivisionError)."""
    scheduler = getattr(diffusers, name)(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    scheduler.set_timesteps(10)
    sigmas = scheduler_sigmas(scheduler)  # [10]
    if sigma_convention(scheduler) == "alphas_cumprod":
        assert math.isinf(sigmas[0]) and torch.isfinite(sigmas[1:]).all()
    else:  # Euler-type clamp ᾱ_T to 2⁻²⁴; the σ is theirs
        torch.testing.assert_close(sigmas, scheduler.sigmas[:10].double(), rtol=0, atol=0)
    assert (sigmas.diff() < 0).all()
    guider = CfglabGuidance(NegativeWindow(w_pos=3.0, w_neg=-1.0, sigma_switch=1.0), scheduler=scheduler)
    guider.set_state(0, 10, scheduler.timesteps[0])
    assert guider.w == 3.0 and guider.sigma == float(sigmas[0])
    assert switch_sigma(scheduler, 10, 0.3) > 0


@pytest.mark.parametrize("name", ["HeunDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"])
@pytest.mark.parametrize("steps,fraction", [(30, 0.35), (30, 0.5), (10, 0.3)])
def test_switch_sigma_counts_steps_not_evaluations_on_heun(name, steps, fraction):
    scheduler = getattr(diffusers, name)()
    sigma_switch = switch_sigma(scheduler, steps, fraction)
    per_step = step_sigmas(scheduler, steps)  # [steps]
    evaluations = scheduler_sigmas(scheduler, steps)  # [2 steps − 1]
    assert len(per_step) == steps and len(evaluations) == 2 * steps - 1
    n = round(fraction * steps)
    assert (per_step <= sigma_switch).sum() == n and (per_step[-n:] <= sigma_switch).all()
    # evaluations in the window: both of each window step but the last (first-order), + the correction before it
    assert (evaluations <= sigma_switch).sum() == 2 * n


def test_guider_new_and_from_config_keep_the_scheduler():
    euler = diffusers.EulerDiscreteScheduler()
    euler.set_timesteps(5)
    guider = CfglabGuidance(Constant(2.0), scheduler=euler)
    for other in (guider.new(), guider.new(schedule="constant:w=1"),
                  CfglabGuidance.from_config(guider.config, scheduler=euler)):
        other.set_state(0, 5, euler.timesteps[0])  # raises "no scheduler" when the binding is lost
        assert other.sigma == float(euler.sigmas[0])
    assert guider.new(schedule="constant:w=1").schedule == Constant(1.0)


def test_num_conditions_outside_a_step_is_what_a_run_may_need():
    """After a run ending at w = −1, a pipeline asking before the next run must still get 2."""
    ddim = diffusers.DDIMScheduler()
    ddim.set_timesteps(4)
    guider = CfglabGuidance(Constant(-1.0), scheduler=ddim)
    assert guider.num_conditions == 2
    guider.set_state(0, 4, ddim.timesteps[0])
    assert guider.num_conditions == 1
    (batch,) = guider.prepare_inputs({"x": (torch.ones(1), torch.zeros(1))})
    guider.prepare_models(None)
    batch.noise_pred = torch.zeros(1)
    guider([batch])  # the step's guided prediction ends the step
    assert guider.num_conditions == 2 and guider.w == -1.0  # state still readable after the step
    assert CfglabGuidance(Constant(0.0)).num_conditions == 1
    assert CfglabGuidance(Constant(2.0), enabled=False).num_conditions == 1


def test_scheduler_sigmas_of_a_scheduler_in_mid_run_follow_the_index():
    """``step_index`` of a half-run scheduler must not override the explicit index of each evaluation."""
    dpm = diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True)
    dpm.set_timesteps(100)
    t = dpm.timesteps
    first = next(i for i in range(1, len(t)) if t[i] == t[i - 1]) - 1  # t[first] == t[first + 1]
    x = torch.ones(1, 2, dtype=torch.float32)
    for k in range(first + 1):  # step_index is now first + 1: the second of the repeated timesteps
        x = dpm.step(0.5 * x, t[k], x).prev_sample
    assert dpm.step_index == first + 1
    torch.testing.assert_close(scheduler_sigmas(dpm), dpm.sigmas[:-1].double(), rtol=0, atol=0)
