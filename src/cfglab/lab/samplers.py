"""Reverse-time samplers for the exact-score lab (docs/design.md).

In reverse time τ = T − t the guided dynamics is

* SDE: ``dx = [x + 2 s_w(x, t)] dτ + sqrt(2) dB`` — Euler–Maruyama;
* probability-flow ODE: ``dx = [x + s_w(x, t)] dτ`` — Heun (2nd order; Karras et al. 2022).

Samplers are stateless functions of a model with ``score_pair(x, σ)`` (and ``target_mean``),
a decreasing σ grid, a schedule w(σ) and a guidance rule (:mod:`cfglab.guidance.rules`,
plain CFG by default); the rule is ``reset()`` at the start of every run.  ``callback`` receives, at every step, a dict with
``i, sigma, t, w, x, score, cfg_force, log_pi_target`` evaluated at the step's start.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from cfglab._validate import CfglabInputError
from cfglab.guidance.rules import CFG
from cfglab.guidance.schedules import sampler_inputs
from cfglab.noise import ou_time_grid, sigma_from_t, t_from_sigma

__all__ = ["sample_sde", "sample_ode", "sigma_grid", "SAMPLERS"]


def sigma_grid(T: float = 6.0, steps: int = 500, *, dtype=torch.float64) -> torch.Tensor:
    """σ grid uniform in OU time from t = T down to t = 0, shape [steps + 1]."""
    return sigma_from_t(ou_time_grid(T, steps, dtype=dtype))


def _check_state(model, x: torch.Tensor) -> None:
    ref = model.target_mean
    if x.ndim != 2 or x.shape[1] != ref.shape[0]:
        raise CfglabInputError(f"x must have shape [N, {ref.shape[0]}], got {tuple(x.shape)}")
    if x.dtype != ref.dtype or x.device != ref.device:
        raise CfglabInputError(
            f"x is {x.dtype} on {x.device} but the model is {ref.dtype} on {ref.device}; convert x with .to()"
        )


def _steps(model, x: torch.Tensor, sigmas, rule):
    """Validate the state, reset the rule, then yield ``(i, σ_i, t_i, σ_{i+1}, t_{i+1})`` over the grid.

    σ ↔ t is converted here, once per grid point, at the sampler's edge (docs/design.md).
    """
    _check_state(model, x)
    rule.reset()
    grid = [float(s) for s in sigmas]
    ts = [t_from_sigma(s) for s in grid]
    yield from ((i, grid[i], ts[i], grid[i + 1], ts[i + 1]) for i in range(len(grid) - 1))


def _step_inputs(model, rule, x, sigma: float, t: float, schedule, callback, i):
    w = schedule(sigma)
    out = rule.guided(model, x, sigma, w)
    if callback is not None:
        callback({"i": i, "sigma": sigma, "t": t, "w": w, "x": x, "score": out.score,
                  "cfg_force": out.cfg_force, "log_pi_target": out.log_pi_target})
    return out


def sample_sde(
    model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    schedule=0.0,
    rule=None,
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
) -> torch.Tensor:
    """Euler–Maruyama for the guided reverse SDE ``dx = [x + 2 s_w] dτ + √2 dB``.

    x : [N, d] start at σ = sigmas[0]; returns [N, d] at σ = sigmas[-1].
    """
    schedule, rule = sampler_inputs(x, sigmas, schedule, generator), CFG() if rule is None else rule
    for i, sigma, t, sigma_next, t_next in _steps(model, x, sigmas, rule):
        out = _step_inputs(model, rule, x, sigma, t, schedule, callback, i)
        h = t - t_next  # step in reverse time τ
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + h * (x + 2 * out.score) + math.sqrt(2 * h) * noise
    return x


def sample_ode(
    model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    schedule=0.0,
    rule=None,
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
) -> torch.Tensor:
    """Heun's method for the probability-flow ODE ``dx = [x + s_w] dτ`` (w evaluated per stage).

    ``generator`` is unused (the ODE is deterministic) and accepted for a uniform signature.
    """
    schedule, rule = sampler_inputs(x, sigmas, schedule, generator), CFG() if rule is None else rule
    for i, sigma, t, sigma_next, t_next in _steps(model, x, sigmas, rule):
        out = _step_inputs(model, rule, x, sigma, t, schedule, callback, i)
        h = t - t_next
        d1 = x + out.score  # [N, d]  drift at the step's start
        x_pred = x + h * d1
        d2 = x_pred + rule.guided(model, x_pred, sigma_next, schedule(sigma_next)).score
        x = x + 0.5 * h * (d1 + d2)
    return x


SAMPLERS = {"sde": sample_sde, "ode": sample_ode}
