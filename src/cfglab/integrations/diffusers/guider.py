"""A diffusers guider that applies any cfglab schedule w(σ) (docs/design.md, docs/schedules.md, docs/latent.md).

Weight convention: the paper's ``s_w = s_c + w (s_c − s_u)``; diffusers' ``guidance_scale``
is ``G = 1 + w`` and the guided prediction is ``pred_u + G (pred_c − pred_u)``, the same thing.
The combination is linear, so it holds for ε-, x0-, v- and flow-predictions alike.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.guiders.guider_utils import BaseGuidance, GuiderOutput

from cfglab._validate import CfglabInputError
from cfglab.guidance.schedules import Constant, Schedule, as_schedule
from cfglab.integrations.diffusers._sigma import scheduler_sigma, sigma_convention

__all__ = ["CfglabGuidance"]

_BATCHES = {  # mode -> [(tuple index, prediction name)]
    "cfg": [(0, "pred_cond"), (1, "pred_uncond")],
    "cond": [(0, "pred_cond")],
    "uncond": [(1, "pred_uncond")],
}


class CfglabGuidance(BaseGuidance):
    """Classifier-free guidance (Ho & Salimans 2022) with a cfglab schedule ``w(σ)`` (paper §4).

    At each step the bound scheduler's timestep is mapped to σ (see
    :func:`~cfglab.integrations.diffusers.scheduler_sigma`), the weight ``w = schedule(σ)`` is
    read, and the prediction is ``pred_c + w (pred_c − pred_u)`` (``guidance_scale = 1 + w``).
    Where ``w = 0`` only the conditional pass is run, where ``w = −1`` only the unconditional one.

    Parameters
    ----------
    schedule : str, number or Schedule
        A cfglab schedule or its string form, e.g. ``"negative_window:w_pos=3,w_neg=-1,sigma_switch=0.8"``
        (default ``constant:w=6.5``, i.e. diffusers' default ``guidance_scale = 7.5``).
        The config stores the string form, so ``save_pretrained``/``from_pretrained`` round-trip it
        (a :class:`~cfglab.guidance.FromCallable` schedule cannot be reloaded).
    sigma_convention : str
        ``"auto"`` (by scheduler class), ``"alphas_cumprod"``, ``"sigmas"`` or ``"flow"``.
    enabled : bool
        When ``False`` only the conditional prediction is used (as diffusers' guiders do).
    scheduler : diffusers scheduler, optional
        The sampling scheduler; not part of the config. Bind later with :meth:`bind_scheduler`.
    """

    _input_predictions = ["pred_cond", "pred_uncond"]
    ignore_for_config = ["scheduler"]

    @register_to_config
    def __init__(self, schedule: Any = "constant:w=6.5", sigma_convention: str = "auto", enabled: bool = True, *,
                 scheduler=None):
        super().__init__(0.0, 1.0, enabled)
        self._schedule: Schedule = as_schedule(schedule)
        if sigma_convention not in ("auto", "alphas_cumprod", "sigmas", "flow"):
            raise CfglabInputError(
                f"sigma_convention must be auto|alphas_cumprod|sigmas|flow, got {sigma_convention!r}")
        self.register_to_config(schedule=str(self._schedule))  # plain string in the config
        self._scheduler = None
        self._sigma: float | None = None
        self._w: float | None = None
        self._in_step = False  # between set_state and the guided prediction of that step
        if scheduler is not None:
            self.bind_scheduler(scheduler)

    @property
    def schedule(self) -> Schedule:
        """The cfglab schedule ``w(σ)``."""
        return self._schedule

    @property
    def sigma(self) -> float | None:
        """cfglab σ of the current step (``None`` before :meth:`set_state`)."""
        return self._sigma

    @property
    def w(self) -> float | None:
        """The paper's guidance weight at the current step."""
        return self._w

    @property
    def guidance_scale(self) -> float | None:
        """diffusers' ``guidance_scale = 1 + w`` at the current step."""
        return None if self._w is None else 1.0 + self._w

    def bind_scheduler(self, scheduler) -> "CfglabGuidance":
        """Use ``scheduler``'s tables to map timesteps to σ; raises if it has no σ mapping."""
        sigma_convention(scheduler, self.config.sigma_convention)
        self._scheduler = scheduler
        return self

    def set_state(self, step: int, num_inference_steps: int, timestep: torch.Tensor) -> None:
        """Record the step and read ``w = schedule(σ(timestep))`` for it."""
        super().set_state(step, num_inference_steps, timestep)
        if self._scheduler is None:
            raise CfglabInputError("CfglabGuidance has no scheduler: call guider.bind_scheduler(pipe.scheduler)")
        sigma = scheduler_sigma(self._scheduler, timestep, self.config.sigma_convention, step=step)
        w = float(self._schedule(sigma))
        if not math.isfinite(w) or w < -1:
            raise CfglabInputError(f"schedule {self._schedule} gave w={w!r} at sigma={sigma!r}; need finite w >= -1")
        self._sigma, self._w, self._in_step = sigma, w, True

    def _mode(self) -> str:
        if not self._enabled or self._w == 0.0:
            return "cond"
        return "uncond" if self._w == -1.0 else "cfg"

    def prepare_inputs(self, data: dict[str, Any]) -> list:
        """Split ``{name: (cond, uncond) or shared}`` into the batches this step needs."""
        return [self._prepare_batch(data, i, name) for i, name in _BATCHES[self._mode()]]

    def prepare_inputs_from_block_state(self, data, input_fields: dict[str, Any]) -> list:
        """Modular-pipeline variant of :meth:`prepare_inputs`."""
        return [self._prepare_batch_from_block_state(input_fields, data, i, name)
                for i, name in _BATCHES[self._mode()]]

    def forward(self, pred_cond: torch.Tensor | None = None, pred_uncond: torch.Tensor | None = None) -> GuiderOutput:
        """``pred_u + (1 + w)(pred_c − pred_u)``; a single prediction passes through."""
        mode = self._mode()
        if mode == "cond":
            pred = pred_cond
        elif mode == "uncond":
            pred = pred_uncond
        else:
            pred = pred_uncond + self.guidance_scale * (pred_cond - pred_uncond)
        self._in_step = False
        return GuiderOutput(pred=pred, pred_cond=pred_cond, pred_uncond=pred_uncond)

    @property
    def is_conditional(self) -> bool:
        mode = self._mode()
        return mode == "cond" or (mode == "cfg" and self._count_prepared == 1)

    @property
    def num_conditions(self) -> int:
        """Passes of the current step; outside a step, the most any step of a run may need.

        Pipelines ask before the loop whether to encode the negative prompt, after the previous
        run left its last weight (often w = −1, one pass) in the state.
        """
        if self._in_step:
            return len(_BATCHES[self._mode()])
        return 2 if self._enabled and self._schedule != Constant(0.0) else 1

    def new(self, **kwargs) -> "CfglabGuidance":
        """A copy with updated config values, bound to the same scheduler unless ``scheduler=`` is given."""
        return type(self).from_config(self.config, **{"scheduler": self._scheduler, **kwargs})

    @classmethod
    def from_config(cls, config=None, return_unused_kwargs: bool = False, scheduler=None, **kwargs):
        """diffusers' ``from_config``, plus ``scheduler=`` to bind (it is not part of the config)."""
        out = super().from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)
        guider = out[0] if return_unused_kwargs else out
        if scheduler is not None:
            guider.bind_scheduler(scheduler)
        return out

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "sigma": self._sigma, "w": self._w}
