"""Latent statistics of the trained model: per-direction conditional / unconditional variances.

The paper's Gaussian picture needs, per direction, the conditional (within-class) and the
unconditional variance.  They are estimated from the encoded training latents (normalised,
flattened to d = c·h·w): the within-class covariance ``Σ_c`` (per class, averaged over
classes) is eigen-decomposed, ``cond_var`` are its eigenvalues and ``uncond_var`` the total
covariance's variances along the same eigenvectors.  The scalar summaries are
``sigma2 = mean(cond_var)`` and ``s2 = mean(uncond_var − cond_var)`` (between-class variance).
"""

from __future__ import annotations

import numpy as np
import torch


__all__ = ["latent_variances"]


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
