"""Torch-free checks of a simulation's fields, shared by ``SimulationConfig`` and ``cfglab simulate``.

``cfglab simulate`` runs them before it imports torch, so a bad value answers at once
(docs/performance.md, start-up); :class:`cfglab.lab.simulate.SimulationConfig` runs the same
function, then the checks that need torch (schedule, sampler, device).
"""

from __future__ import annotations

import math

from cfglab._validate import CfglabInputError, horizon, memory_fits, nonnegative, positive, positive_int, seed
from cfglab.noise import exponential_K

__all__ = ["check_run_fields", "DTYPE_BYTES", "SAMPLE_ARRAYS"]

DTYPE_BYTES = {"float64": 8, "float32": 4}
SAMPLE_ARRAYS = 12  # [n_samples, d] arrays alive at once: state, noise, scores, force, Heun stages, temporaries


def check_run_fields(run) -> None:
    """Check every field of ``run`` (a ``SimulationConfig`` or the parsed ``cfglab simulate`` arguments) that needs no torch.

    Raises :class:`~cfglab.CfglabInputError` naming the first bad value, and refuses runs whose
    stored means and sample arrays exceed ``memory_gb`` before anything is allocated.
    """
    positive_int("d", run.d)
    if sum([run.K is not None, run.alpha is not None, bool(run.infinite)]) != 1:
        raise CfglabInputError("choose exactly one of K, alpha or infinite")
    if run.K is not None:
        positive_int("K", run.K)
    if run.alpha is not None:
        positive("alpha", run.alpha)
    positive("sigma2", run.sigma2)
    (positive if run.infinite else nonnegative)("s2", run.s2)
    positive_int("n_samples", run.n_samples)
    positive_int("steps", run.steps)
    horizon("T", run.T)
    seed("seed", run.seed)
    if run.dtype not in DTYPE_BYTES:
        raise CfglabInputError(f"unknown dtype {run.dtype!r}; choose float64 or float32")
    if run.start not in ("noise", "marginal"):
        raise CfglabInputError(f"unknown start {run.start!r}; choose noise or marginal")
    positive("memory_gb", run.memory_gb)
    _check_budget(run)


def _check_budget(run) -> None:
    """Stored class means plus the ``SAMPLE_ARRAYS`` sample-sized arrays must fit ``memory_gb``."""
    item = DTYPE_BYTES[run.dtype]
    K = 1 if run.infinite else run.K if run.K is not None else _classes(run.alpha, run.d)
    means = 0 if run.on_the_fly else K * run.d * item
    samples = SAMPLE_ARRAYS * run.n_samples * run.d * item
    k_text = f"e^{run.alpha * run.d:.4g}" if run.alpha is not None and run.alpha * run.d > 43 else f"{K}"
    memory_fits(f"K={k_text} class means and n_samples={run.n_samples} samples at d={run.d}",
                means + samples, run.memory_gb * 2**30)


def _classes(alpha: float, d: int) -> int | float:
    """K = ceil(e^{αd}) when it is a count torch can index, else e^{αd} as a float (for the budget message)."""
    return exponential_K(alpha, d) if alpha * d <= 43 else math.exp(min(alpha * d, 700.0))
