"""TEMPORARY stand-in for issue 14a's ``latent_regime_measure`` (deleted when issue-14a is merged).

Same signatures and keys; α_c and every prediction are left undetermined (NaN / None).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def measure_regime(prepared, *, seed: int = 0) -> dict:
    """α = ln K / d, the CFG force ‖D_c − D_u‖(σ) on noised training latents, σ of its peak."""
    model, data = prepared.model, prepared.data
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.train_labels), generator=gen)[:256]
    z0 = model.encode(torch.from_numpy(data.train_images[idx.numpy()]))  # [n, c, h, w]
    labels = torch.from_numpy(data.train_labels[idx.numpy()])
    net, sigmas, force = model.denoiser, np.geomspace(0.01, 80, 17), []
    with torch.no_grad():
        for s in sigmas:
            x = z0 + float(s) * torch.randn(z0.shape, generator=gen, dtype=z0.dtype)
            diff = net(x, float(s), labels) - net(x, float(s), torch.full_like(labels, net.null_class))
            force.append(float(diff.flatten(1).norm(dim=1).mean()))
    d = int(np.prod(model.latent_shape))
    peak = float(sigmas[int(np.argmax(force))])
    return {
        "name": str(data.source), "K": data.n_classes, "d": d,
        "alpha": math.log(data.n_classes) / d, "alpha_c": math.nan, "alpha_ratio": math.nan,
        "within_var": [], "between_var": [], "sigma_res_measured": peak,
        "sigma_res_predicted": math.nan,
        "force_profile": {"sigma": sigmas.tolist(), "force": force,
                          "force_rel": (np.array(force) / max(force)).tolist()},
    }  # fmt: skip


def predict(regime: dict, schedules: list[str], **kw) -> dict:
    """No forecast (the stand-in has no theory): every field undetermined."""
    return {
        "regime": regime, "model": "none (stand-in)", "calibrated_schedule": None,
        "schedules": {s: {"var_ratio": None, "window_helps": None} for s in schedules},
    }  # fmt: skip
