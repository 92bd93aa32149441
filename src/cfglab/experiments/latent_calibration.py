"""The theory-calibrated negative window for the trained latent model (paper §4; docs/latent.md).

The infinite-class calibration (:func:`cfglab.experiments.calibrate.calibrate`) is fed the
model's per-direction latent variances (:func:`cfglab.latent.stats.latent_variances`) and
solved on the σ range of the latent sampler.
"""

from __future__ import annotations

import numpy as np

from cfglab._validate import CfglabInputError
from cfglab.experiments.calibrate import calibrate
from cfglab.guidance.schedules import Constant
from cfglab.latent.stats import latent_variances
from cfglab.noise import t_from_sigma

__all__ = ["calibrated_schedule"]


def calibrated_schedule(model, data, *, w: float, sigma_max: float, w_neg: float = -1.0) -> dict:
    """Call :func:`cfglab.experiments.calibrate.calibrate` with this model's latent statistics.

    Returns a JSON-able dict (``available``, the statistics, and when available the schedule
    string, ``sigma_switch``, ``mean_overlap``, ``var_ratio``) plus ``schedule_object``.
    """
    stats = latent_variances(model, data)
    info = {"available": False, "w": float(w), "T": t_from_sigma(sigma_max), **stats}
    kwargs = dict(
        regime="infinite",
        w_neg=w_neg,
        sigma2=stats["sigma2"],
        s2=stats["s2"],
        sampler="ode",
        T=info["T"],
        cond_var=np.asarray(stats["cond_var"]),
        uncond_var=np.asarray(stats["uncond_var"]),
    )
    try:
        cal = calibrate(Constant(w), **kwargs)
    except CfglabInputError as err:  # the theory finds no window for these statistics: report why
        info["reason"] = f"calibrate: {err}"
        return info
    info.update(
        available=True,
        schedule=str(cal.schedule),
        sigma_switch=_num(cal.sigma_switch),
        mean_overlap=_num(cal.mean_overlap),
        var_ratio=_num(cal.var_ratio),
    )
    info["schedule_object"] = cal.schedule
    return info


def _num(x):
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return np.asarray(x, dtype=float).tolist()
