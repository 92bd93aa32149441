"""Latent statistics of the trained model; the calibrated schedule on its σ range (SPEC §6–7).

The paper's Gaussian picture needs, per direction, the conditional (within-class) and the
unconditional variance.  They are estimated from the encoded training latents (normalised,
flattened to d = c·h·w): the within-class covariance ``Σ_c`` (per class, averaged over
classes) is eigen-decomposed, ``cond_var`` are its eigenvalues and ``uncond_var`` the total
covariance's variances along the same eigenvectors.  The scalar summaries are
``sigma2 = mean(cond_var)`` and ``s2 = mean(uncond_var − cond_var)`` (between-class variance).
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from cfglab._validate import CfglabInputError
from cfglab.noise import t_from_sigma

__all__ = ["calibrated_schedule", "latent_variances"]


def latent_variances(model, data) -> dict:
    """Per-direction conditional / unconditional variances of the encoded training latents."""
    z = (
        model.encode(torch.from_numpy(data.train_images))
        .reshape(len(data.train_images), -1)
        .double()
        .numpy()
    )  # [N, d]
    labels = data.train_labels
    within = np.mean(
        [np.cov(z[labels == k], rowvar=False) for k in np.unique(labels)], axis=0
    )  # [d, d]
    total = np.cov(z, rowvar=False)  # [d, d]
    cond_var, vecs = np.linalg.eigh(within)
    uncond_var = np.einsum("ij,ik,kj->j", vecs, total, vecs)  # diag(Vᵀ Σ_u V)
    return {
        "d": int(z.shape[1]),
        "cond_var": cond_var.tolist(),
        "uncond_var": uncond_var.tolist(),
        "sigma2": float(cond_var.mean()),
        "s2": float((uncond_var - cond_var).mean()),
    }


def calibrated_schedule(model, data, *, w: float, sigma_max: float, w_neg: float = -1.0) -> dict:
    """Call ``cfglab.guidance.calibrate.calibrate`` with this model's latent statistics.

    Returns a JSON-able dict (``available``, the statistics, and when available the schedule
    string, ``sigma_switch``, ``mean_overlap``, ``var_ratio``) plus ``schedule_object``.
    """
    stats = latent_variances(model, data)
    info = {"available": False, "w": float(w), "T": t_from_sigma(sigma_max), **stats}
    try:
        from cfglab.guidance.calibrate import calibrate
    except ImportError:
        info["reason"] = "cfglab.guidance.calibrate is not available in this tree"
        return info
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
    accepted = inspect.signature(calibrate).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    from cfglab.guidance.schedules import Constant

    try:
        cal = calibrate(Constant(w), **kwargs)
    except CfglabInputError as err:  # the theory finds no window for these statistics: report why
        info["reason"] = f"calibrate: {err}"
        return info
    info.update(
        available=True,
        schedule=str(cal.schedule),
        sigma_switch=_num(cal.sigma_switch),
        mean_overlap=_num(getattr(cal, "mean_overlap", None)),
        var_ratio=_num(getattr(cal, "var_ratio", None)),
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
