"""Drive the scale of any two-pass diffusers guider by a cfglab schedule w(σ) (docs/diffusers.md).

:class:`ScheduledGuidance` wraps a diffusers guider (``ClassifierFreeGuidance``,
``AdaptiveProjectedGuidance``, ``ClassifierFreeZeroStarGuidance``,
``TangentialClassifierFreeGuidance``, … with or without ``guidance_rescale``): at each step
it reads ``w = schedule(σ)`` like :class:`~cfglab.integrations.diffusers.CfglabGuidance` and

* w = 0: runs the conditional pass only and returns ``pred_cond``;
* w = −1: runs the unconditional pass only and returns ``pred_uncond`` (the paper's window);
* otherwise sets the wrapped guider's ``guidance_scale`` to ``1 + w`` (diffusers' default
  formulation, anchored at ``pred_uncond``) or ``w`` (``use_original_formulation=True``,
  anchored at ``pred_cond``), and lets the wrapped guider prepare the batches and combine.
"""

from __future__ import annotations

from typing import Any

from diffusers.configuration_utils import register_to_config
from diffusers.guiders.guider_utils import BaseGuidance, GuiderOutput

from cfglab._validate import CfglabInputError
from cfglab.integrations.diffusers.guider import CfglabGuidance

__all__ = ["ScheduledGuidance", "guidance_scale_for"]


def guidance_scale_for(guider: BaseGuidance, w: float) -> float:
    """The wrapped guider's ``guidance_scale`` for the paper's weight ``w`` (see the module docstring)."""
    return float(w) if getattr(guider, "use_original_formulation", False) else 1.0 + float(w)


class ScheduledGuidance(CfglabGuidance):
    """A diffusers guider whose ``guidance_scale`` follows a cfglab schedule ``w(σ)``.

    Parameters
    ----------
    guider : diffusers BaseGuidance
        A guider with the two predictions ``pred_cond``, ``pred_uncond`` and a
        ``guidance_scale`` attribute. Its other settings (``guidance_rescale``, ``eta``,
        ``start``/``stop``, momentum, zero-init steps, …) act as usual on the guided steps.
    schedule, sigma_convention, enabled, scheduler
        As for :class:`CfglabGuidance`. The wrapped guider is not part of the config.
    """

    ignore_for_config = ["scheduler", "guider"]

    @register_to_config
    def __init__(self, guider: BaseGuidance = None, schedule: Any = "constant:w=6.5", sigma_convention: str = "auto",
                 enabled: bool = True, *, scheduler=None):
        if not isinstance(guider, BaseGuidance) or isinstance(guider, CfglabGuidance):
            raise CfglabInputError(f"guider must be a diffusers guider, got {type(guider).__name__}")
        if list(guider._input_predictions) != ["pred_cond", "pred_uncond"] or not hasattr(guider, "guidance_scale"):
            raise CfglabInputError(
                f"{type(guider).__name__} is not a two-pass guider with a guidance_scale "
                f"(predictions {guider._input_predictions})")
        self.guider = guider
        super().__init__(schedule, sigma_convention, enabled, scheduler=scheduler)
        self.register_to_config(schedule=str(self.schedule))

    def new(self, **kwargs) -> "ScheduledGuidance":
        """A copy with updated values, wrapping the same guider and bound to the same scheduler."""
        config = {k: self.config[k] for k in ("schedule", "sigma_convention", "enabled")}
        config.update(kwargs)
        guider, scheduler = config.pop("guider", self.guider), config.pop("scheduler", self._scheduler)
        return type(self)(guider, **config, scheduler=scheduler)

    def set_state(self, step: int, num_inference_steps: int, timestep) -> None:
        """Read ``w`` for this step and hand the wrapped guider its step and ``guidance_scale``."""
        super().set_state(step, num_inference_steps, timestep)
        self.guider.set_state(step, num_inference_steps, timestep)
        self.guider.guidance_scale = guidance_scale_for(self.guider, self._w)
        buffer = getattr(self.guider, "adaptive_projected_guidance_momentum", None)
        if step == 0 and buffer is not None:  # APG: a new run starts a new momentum buffer
            from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

            self.guider.momentum_buffer = MomentumBuffer(buffer)

    def prepare_inputs(self, data: dict[str, Any]) -> list:
        if self._mode() != "cfg":
            return super().prepare_inputs(data)
        return self.guider.prepare_inputs(data)

    def prepare_inputs_from_block_state(self, data, input_fields: dict[str, Any]) -> list:
        if self._mode() != "cfg":
            return super().prepare_inputs_from_block_state(data, input_fields)
        return self.guider.prepare_inputs_from_block_state(data, input_fields)

    def prepare_models(self, denoiser) -> None:
        self._count_prepared += 1
        if self._mode() == "cfg":
            self.guider.prepare_models(denoiser)

    def cleanup_models(self, denoiser) -> None:
        if self._mode() == "cfg":
            self.guider.cleanup_models(denoiser)

    @property
    def num_conditions(self) -> int:
        if self._in_step and self._mode() == "cfg":
            return self.guider.num_conditions  # 1 outside the wrapped guider's own start/stop
        return super().num_conditions

    def forward(self, pred_cond=None, pred_uncond=None) -> GuiderOutput:
        """The wrapped guider's combination on guided steps; a single prediction passes through."""
        if self._mode() != "cfg":
            return super().forward(pred_cond, pred_uncond)
        self._in_step = False
        return self.guider.forward(pred_cond, pred_uncond)
