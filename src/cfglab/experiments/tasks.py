"""The functions the built-in sweep task kinds point to (registry: :data:`cfglab.sweep.tasks.TASKS`).

A task function takes the resolved parameters (a dict) and returns a flat dict of numbers
(``None`` allowed); nested results are dropped or kept as JSON text (see ``docs/sweeps.md``).
"""

from __future__ import annotations

import dataclasses
import json

from cfglab.lab.simulate import SimulationConfig, simulate
from cfglab.theory.dmft import solve_dmft
from cfglab.theory.gaussian import solve_gaussian
from cfglab.theory.transition import transition

__all__ = [
    "simulate_task", "theory_gaussian_task", "theory_transition_task",
    "theory_dmft_task", "latent_evaluate_task", "compare_task", "shrinkage_task",
]


def simulate_task(params: dict) -> dict:
    """:func:`cfglab.lab.simulate` on one :class:`SimulationConfig` (distortion metrics)."""
    trajectory = bool(params.pop("trajectory", False))
    result = simulate(SimulationConfig(**params), trajectory=trajectory)
    traj = result.pop("trajectory", None)
    if traj is not None:
        result.update({f"traj_{k}": list(map(float, v)) for k, v in traj.items()})
    return result


def theory_gaussian_task(params: dict) -> dict:
    """Infinite-class limit: :func:`cfglab.theory.gaussian.solve_gaussian` ``(**params)``."""
    return _as_dict(solve_gaussian(**params))


def theory_transition_task(params: dict) -> dict:
    """Class-resolution transition: :func:`cfglab.theory.transition.transition` ``(**params)``."""
    return _as_dict(transition(**params))


def theory_dmft_task(params: dict) -> dict:
    """DMFT of the guided dynamics: :func:`cfglab.theory.dmft.solve_dmft` ``(**params)``."""
    return _as_dict(solve_dmft(**params))


def latent_evaluate_task(params: dict) -> dict:
    """One schedule on the (cached) latent model: :func:`cfglab.latent.pipeline.evaluate_point`, one thread."""
    from cfglab.latent.pipeline import evaluate_point
    from cfglab.latent.train import cpu_threads

    with cpu_threads(1):
        return _as_dict(evaluate_point(**params))


def compare_task(params: dict) -> dict:
    """One seed of :func:`cfglab.experiments.compare.compare_table` in the exponential regime (rows as JSON)."""
    from cfglab.experiments.compare import compare_table

    return {"rows": json.dumps(compare_table(regime="exponential", **params))}


def shrinkage_task(params: dict) -> dict:
    """One chunk of :func:`cfglab.experiments.shrinkage.shrinkage_check` (random w ≥ 0 schedules)."""
    from cfglab.experiments.shrinkage import shrinkage_check

    return shrinkage_check(**params)


def _as_dict(result) -> dict:
    """A flat row: nested dicts dropped, dataclasses and ``to_dict()`` results unpacked."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if not isinstance(v, dict)}
    if hasattr(result, "to_dict"):
        return _as_dict(result.to_dict())
    if dataclasses.is_dataclass(result):
        return _as_dict(dataclasses.asdict(result))
    raise TypeError(f"cannot turn {type(result).__name__} into a result row")
