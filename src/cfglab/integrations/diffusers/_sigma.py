"""Map a diffusers scheduler's timestep to cfglab's noise level σ (docs/design.md, docs/latent.md).

cfglab's σ is the VE noise level of the rescaled state: for any forward process
``x_t = a_t x_0 + b_t ε`` it is ``σ = b_t / a_t``, the noise level of ``x_t / a_t`` — exactly
the EDM / k-diffusion σ. Three conventions cover the diffusers schedulers:

* ``"alphas_cumprod"`` (DDIM, DDPM, PNDM): ``a = sqrt(ᾱ_t)``, ``b = sqrt(1 − ᾱ_t)`` at the integer
  training timestep ``t``, so ``σ = sqrt((1 − ᾱ_t) / ᾱ_t)``;
* ``"sigmas"`` (Euler, Euler ancestral, LMS, Heun, DPM-Solver++, UniPC, DEIS, EDM): the
  scheduler already works in this σ; it is ``scheduler.sigmas[i]`` for ``timesteps[i]``;
* ``"flow"`` (flow matching, and any scheduler with ``use_flow_sigmas``):
  ``x_t = (1 − s) x_0 + s ε`` with ``s = scheduler.sigmas[i]``, so ``σ = s / (1 − s)``
  (σ = ∞ at s = 1).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from cfglab._validate import CfglabInputError, positive_int

__all__ = ["CONVENTIONS", "sigma_convention", "scheduler_sigma", "scheduler_sigmas", "step_sigmas", "switch_sigma"]

_ALPHAS = ("DDIMScheduler", "DDPMScheduler", "PNDMScheduler", "DDIMParallelScheduler", "DDPMParallelScheduler")
_SIGMAS = (
    "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler",
    "HeunDiscreteScheduler", "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler",
    "UniPCMultistepScheduler", "DEISMultistepScheduler", "EDMEulerScheduler",
    "EDMDPMSolverMultistepScheduler", "SASolverScheduler",
)
_FLOW = ("FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler")

CONVENTIONS: dict[str, tuple[str, ...]] = {"alphas_cumprod": _ALPHAS, "sigmas": _SIGMAS, "flow": _FLOW}


def sigma_convention(scheduler, convention: str = "auto") -> str:
    """Which σ convention applies to ``scheduler`` (see the module docstring).

    ``convention="auto"`` looks the scheduler class (or a base class) up in :data:`CONVENTIONS`;
    any other value is checked against the scheduler's tables and returned.
    """
    name = type(scheduler).__name__
    if convention != "auto":
        if convention not in CONVENTIONS:
            raise CfglabInputError(
                f"sigma_convention must be 'auto' or one of {sorted(CONVENTIONS)}, got {convention!r}")
        table = "alphas_cumprod" if convention == "alphas_cumprod" else "sigmas"
        if getattr(scheduler, table, None) is None:
            raise CfglabInputError(f"sigma_convention={convention!r} needs {name}.{table}, which it does not have")
        return convention
    config = getattr(scheduler, "config", {}) or {}
    for cls in type(scheduler).__mro__:
        for conv, names in CONVENTIONS.items():
            if cls.__name__ in names:
                return "flow" if config.get("use_flow_sigmas", False) else conv
    supported = ", ".join(n for names in CONVENTIONS.values() for n in names)
    raise CfglabInputError(
        f"no σ mapping for scheduler {name}; supported: {supported} "
        "(or pass sigma_convention='alphas_cumprod'|'sigmas'|'flow' if one is right for it)"
    )


def _step_index(scheduler, t: float, step: int | None) -> int:
    """Index into ``scheduler.sigmas`` of the evaluation at timestep ``t``, by step index as diffusers does.

    Timesteps may repeat with different σ (Karras / exponential σ rounded to integer timesteps):
    the loop ``step`` (offset by the scheduler's ``begin_index``) is used when it points at
    ``t``, else the scheduler's own ``step_index``; a timestep found only once needs neither.
    """
    timesteps = getattr(scheduler, "timesteps", None)
    if timesteps is None:
        raise CfglabInputError(f"{type(scheduler).__name__} has no timesteps; call set_timesteps first")
    timesteps = torch.as_tensor(timesteps).double().cpu()  # [evaluations]
    hits = ((timesteps - t).abs() <= 1e-4 * max(1.0, abs(t))).nonzero().reshape(-1).tolist()
    if not hits:
        raise CfglabInputError(f"timestep {t!r} is not in {type(scheduler).__name__}.timesteps")
    begin = getattr(scheduler, "begin_index", None) or 0
    for i in (None if step is None else begin + int(step), getattr(scheduler, "step_index", None)):
        if i is not None and i in hits:
            return i
    sigmas = {float(scheduler.sigmas[i]) for i in hits}
    if len(sigmas) > 1:
        raise CfglabInputError(
            f"timestep {t!r} occurs at steps {hits} of {type(scheduler).__name__} with different σ; pass step=")
    return hits[0]


def _as_float(timestep) -> float:
    if isinstance(timestep, torch.Tensor):
        return float(timestep.reshape(-1)[0])
    return float(timestep)


def scheduler_sigma(scheduler, timestep, convention: str = "auto", step: int | None = None) -> float:
    """cfglab σ (VE noise level of ``x_t / a_t``) at ``timestep`` of a diffusers ``scheduler``.

    Parameters
    ----------
    scheduler : diffusers scheduler
        After ``set_timesteps`` for the ``"sigmas"`` and ``"flow"`` conventions.
    timestep : float, int or tensor
        The scheduler's timestep (a batch of equal timesteps is accepted).
    convention : str
        ``"auto"`` or one of :data:`CONVENTIONS`.
    step : int, optional
        Index of the evaluation in ``scheduler.timesteps`` (the sampling loop's counter); needed
        only where a timestep repeats with different σ and the scheduler's ``step_index`` does
        not identify the evaluation.
    """
    conv = sigma_convention(scheduler, convention)
    t = _as_float(timestep)
    if conv == "alphas_cumprod":
        abar = scheduler.alphas_cumprod.double().cpu().numpy()  # [num_train_timesteps]
        if not 0 <= t <= len(abar) - 1:
            raise CfglabInputError(
                f"timestep {t!r} is outside {type(scheduler).__name__}'s table [0, {len(abar) - 1}]")
        a = float(np.interp(t, np.arange(len(abar)), abar))
        return math.sqrt((1 - a) / a) if a > 0 else math.inf  # ᾱ = 0: zero terminal SNR
    s = float(scheduler.sigmas[_step_index(scheduler, t, step)])
    if conv == "flow":
        return math.inf if s >= 1 else s / (1 - s)
    return s


def scheduler_sigmas(scheduler, num_inference_steps: int | None = None, convention: str = "auto") -> torch.Tensor:
    """cfglab σ at every model evaluation of ``scheduler``, shape ``[len(timesteps)]`` (float64).

    One entry per timestep, by index (Heun-type schedulers evaluate twice per step: ``2N − 1``
    entries). With ``num_inference_steps`` the timesteps are set on a copy; the scheduler is not
    changed.
    """
    if num_inference_steps is not None:
        scheduler = copy.deepcopy(scheduler)
        scheduler.set_timesteps(positive_int("num_inference_steps", num_inference_steps))
    sigma_convention(scheduler, convention)
    sigmas = [scheduler_sigma(scheduler, t, convention, step=i) for i, t in enumerate(scheduler.timesteps)]
    return torch.tensor(sigmas, dtype=torch.float64)


def step_sigmas(scheduler, num_inference_steps: int | None = None, convention: str = "auto") -> torch.Tensor:
    """σ at the start of each sampling step, shape ``[steps]`` (float64).

    :func:`scheduler_sigmas` with repeated evaluations of one σ merged: a Heun step evaluates at
    its own σ and again at the next step's σ, so its ``2N − 1`` evaluations give ``N`` steps.
    """
    sigmas = scheduler_sigmas(scheduler, num_inference_steps, convention)  # [evaluations]
    keep = torch.ones_like(sigmas, dtype=torch.bool)
    keep[1:] = sigmas[1:] != sigmas[:-1]
    return sigmas[keep]


def switch_sigma(scheduler, num_inference_steps: int, last_fraction: float, convention: str = "auto") -> float:
    """σ_switch such that exactly the last ``round(last_fraction · steps)`` steps have σ ≤ σ_switch.

    Steps, not model evaluations: see :func:`step_sigmas` (Heun's correction at the first σ of
    the window already uses the window's weight, as any σ-schedule does).

    Returns the geometric mean of the σ of the two steps on either side of the switch, so the
    switch is robust to float rounding. Use it for ``NegativeWindow(w_pos, -1, sigma_switch)``
    (the paper's Stable Diffusion runs use the last 30–50% of the steps).
    """
    if not 0 < float(last_fraction) < 1:
        raise CfglabInputError(f"last_fraction must lie in (0, 1), got {last_fraction!r}")
    sigmas = step_sigmas(scheduler, num_inference_steps, convention)  # [steps], decreasing
    n = len(sigmas)
    k = n - round(float(last_fraction) * n)  # first step of the window
    if not 0 < k < n:
        raise CfglabInputError(
            f"last_fraction={last_fraction!r} leaves no step on one side of the switch ({n} steps)")
    hi, lo = float(sigmas[k - 1]), float(sigmas[k])
    if not hi > lo:
        raise CfglabInputError(f"σ does not decrease across step {k} ({hi} -> {lo}); cannot place a switch there")
    if math.isinf(hi):
        return 2 * lo
    return math.sqrt(hi * lo) if lo > 0 else hi / 2
