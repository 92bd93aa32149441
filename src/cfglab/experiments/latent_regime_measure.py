"""Measured regime of a trained latent model, and the theory's forecast before sampling (issue 14).

:func:`measure_regime` reads one trained class-conditional latent model (a
:class:`cfglab.latent.Prepared`):

* from the encoded training latents (normalised, flattened to d = c·h·w): the pooled
  within-class and the between-class covariances, their spectra along the principal
  directions of the within-class covariance, the anisotropic capacity α_c
  (:mod:`cfglab.theory.anisotropic`), α = ln K′/d and α/α_c;
* the class-resolution σ three ways: *measured* — where the mean posterior of the true
  class under a shared-covariance LDA fitted on noised training latents, applied to noised
  held-out latents, crosses ½; *Gaussian mixture* — the same with the exact posterior of the
  mixture with the measured class means and within-class covariance; *predicted* — the
  anisotropic REM transition ``C(σ) = ln(K′ − 1)/d`` (finite-d, as
  :func:`cfglab.theory.transition.crossing_time`);
* from the trained network: the CFG force ``‖D_c − D_u‖`` on a σ grid (RMS per dimension and
  relative to ``‖D_c‖``) at noised held-out latents of the requested class, next to the same
  force of the Gaussian-mixture denoiser for the measured statistics.

:func:`predict` turns a measured regime into the forecast written to ``predictions.json``
before any sample is drawn (docs/latent.md "Regimes").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cfglab.theory.anisotropic import between_class_cov, capacity, resolution_sigma

__all__ = ["SIGMA_GRID", "gmm_posterior", "lda_resolution", "measure_regime", "predict"]

SIGMA_GRID = tuple(float(s) for s in np.geomspace(0.02, 20.0, 31))
N_NOISE = 4  # noise draws per latent when fitting / scoring the noisy-latent classifier
N_FORCE = 512  # held-out latents at which the CFG force is evaluated


def measure_regime(prepared, *, seed: int = 0, sigmas=SIGMA_GRID) -> dict:
    """Regime of ``prepared``'s model: spectra, α, α_c, resolution σ, CFG-force profile (JSON-ready)."""
    model, data = prepared.model, prepared.data
    z_train = _encode(model, data.train_images)  # [N, d]
    z_test = _encode(model, data.test_images)  # [M, d]
    y_train, y_test = data.train_labels, data.test_labels
    K, d = int(data.n_classes), int(z_train.shape[1])
    within, between = between_class_cov(z_train, y_train)
    w_var, vecs = np.linalg.eigh(within)
    order = np.argsort(w_var)[::-1]
    w_var, vecs = w_var[order], vecs[:, order]
    b_var = np.einsum("ij,ik,kj->j", vecs, between, vecs)  # diag(Vᵀ Σ_b V)
    alpha, alpha_c = math.log(K) / d, capacity(within, between)
    alpha_fd = math.log(K - 1) / d if K > 2 else 0.0
    sigmas = np.asarray(sigmas, dtype=np.float64)
    lda = lda_resolution(z_train, y_train, z_test, y_test, sigmas, seed=seed)
    means = np.stack([z_train[y_train == k].mean(0) for k in range(K)])  # [K, d]
    oracle = _gmm_resolution(means, within, z_test, y_test, sigmas, seed=seed)
    return {
        "name": _name(data.source),
        "data": data.source,
        "data_hash": data.data_hash,
        "checkpoint": str(prepared.checkpoint),
        "K": K,
        "d": d,
        "alpha": alpha,
        "alpha_finite_d": alpha_fd,
        "alpha_c": alpha_c,
        "alpha_ratio": alpha / alpha_c if alpha_c > 0 else math.inf,
        "alpha_c_isotropic": 0.5 * math.log1p(float(b_var.mean() / w_var.mean())),
        "within_var": w_var.tolist(),
        "between_var": b_var.tolist(),
        "sigma2": float(w_var.mean()),
        "s2": float(b_var.mean()),
        "sigma_res_measured": lda["sigma_res"],
        "sigma_res_gmm": oracle["sigma_res"],
        "sigma_res_predicted": _finite(resolution_sigma(alpha_fd, within, between)),
        "sigma_res_predicted_asymptotic": _finite(resolution_sigma(alpha, within, between)),
        "resolution_profile": {
            "sigma": sigmas.tolist(),
            "pi_c_lda": lda["pi_c"],
            "accuracy_lda": lda["accuracy"],
            "pi_c_gmm": oracle["pi_c"],
        },
        "force_profile": _force_profile(model, means, within, z_test, y_test, sigmas, seed=seed),
    }


def _name(source: str) -> str:
    from cfglab.latent.conditionings import CONDITIONINGS

    return next((c.name for c in CONDITIONINGS.values() if c.data == source), source)


def _finite(x):
    """JSON-safe σ: None (never resolved) stays None, ∞ (always resolved) becomes the string."""
    return "inf" if x is not None and math.isinf(x) else x


@torch.no_grad()
def _encode(model, images: np.ndarray) -> np.ndarray:
    """Normalised latents of images [N, C, H, W], flattened: float64 [N, d]."""
    z = model.encode(torch.from_numpy(images))  # [N, c, h, w]
    return z.reshape(len(images), -1).double().numpy()


def _noised(z: np.ndarray, y: np.ndarray, sigma: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """``N_NOISE`` noisy copies ``z + σ n`` [N·N_NOISE, d] and their labels."""
    zz = np.repeat(z, N_NOISE, axis=0)
    return zz + sigma * rng.standard_normal(zz.shape), np.repeat(y, N_NOISE)


def crossing(sigmas: np.ndarray, pi_c: np.ndarray, level: float = 0.5) -> float | None:
    """Largest σ where ``pi_c`` (decreasing in σ) crosses ``level``, log-linear interpolation.

    None if it is below ``level`` at every σ; ``inf`` if above at every σ.
    """
    above = np.asarray(pi_c) >= level
    if not above.any():
        return None
    if above.all():
        return math.inf
    i = int(np.flatnonzero(above).max())
    if i + 1 >= len(sigmas):
        return math.inf
    x0, x1 = math.log(sigmas[i]), math.log(sigmas[i + 1])
    p0, p1 = pi_c[i], pi_c[i + 1]
    return math.exp(x0 + (level - p0) * (x1 - x0) / (p1 - p0))


def lda_resolution(z_train, y_train, z_test, y_test, sigmas, *, seed: int = 0) -> dict:
    """Mean posterior of the true class under an LDA refitted at each σ; its ½ crossing.

    The LDA (shared covariance, empirical priors; scikit-learn) is fitted on noised training
    latents and scores noised held-out latents, so the curve is a held-out estimate.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(seed)
    pi_c, acc = [], []
    for sigma in sigmas:
        xt, yt = _noised(z_train, y_train, sigma, rng)
        xs, ys = _noised(z_test, y_test, sigma, rng)
        lda = LinearDiscriminantAnalysis(solver="lsqr").fit(xt, yt)
        proba = lda.predict_proba(xs)  # [M, K]
        idx = np.searchsorted(lda.classes_, ys)
        pi_c.append(float(proba[np.arange(len(ys)), idx].mean()))
        acc.append(float((lda.classes_[proba.argmax(1)] == ys).mean()))
    sig = np.asarray(sigmas, dtype=float)
    return {"pi_c": pi_c, "accuracy": acc, "sigma_res": _finite(crossing(sig, np.asarray(pi_c)))}


def gmm_posterior(x: np.ndarray, means: np.ndarray, within: np.ndarray, sigma: float) -> np.ndarray:
    """Class posterior [N, K] of the equal-weight mixture ``N(μ_k, Σ_w + σ² I)`` at x [N, d]."""
    from scipy.special import softmax

    cov = within + sigma**2 * np.eye(len(within))
    chol = np.linalg.cholesky(cov)
    diff = x[:, None, :] - means[None]  # [N, K, d]
    white = np.linalg.solve(chol, diff.reshape(-1, diff.shape[-1]).T).T.reshape(diff.shape)
    return softmax(-0.5 * np.square(white).sum(-1), axis=1)


def _gmm_resolution(means, within, z_test, y_test, sigmas, *, seed: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    pi_c = []
    for sigma in sigmas:
        xs, ys = _noised(z_test, y_test, sigma, rng)
        pi_c.append(float(gmm_posterior(xs, means, within, sigma)[np.arange(len(ys)), ys].mean()))
    return {"pi_c": pi_c, "sigma_res": _finite(crossing(np.asarray(sigmas, float), np.asarray(pi_c)))}


def _gmm_denoise(x, means, within, sigma) -> tuple[np.ndarray, np.ndarray]:
    """``(D_k(x) [N, K, d], π(x) [N, K])`` of the mixture: ``D_k = μ_k + Σ_w(Σ_w + σ²I)⁻¹(x − μ_k)``."""
    cov = within + sigma**2 * np.eye(len(within))
    gain = np.linalg.solve(cov, within).T  # Σ_w (Σ_w + σ² I)⁻¹ [d, d]
    diff = x[:, None, :] - means[None]  # [N, K, d]
    return means[None] + diff @ gain.T, gmm_posterior(x, means, within, sigma)


@torch.no_grad()
def _force_profile(model, means, within, z_test, y_test, sigmas, *, seed: int) -> dict:
    """RMS ‖D_c − D_u‖/√d and ‖D_c − D_u‖/‖D_c‖ of the network and of the Gaussian mixture."""
    rng = np.random.default_rng(seed + 2)
    pick = rng.permutation(len(z_test))[:N_FORCE]
    z, y = z_test[pick], y_test[pick]
    shape = (len(z), *model.latent_shape)
    d = z.shape[1]
    out = {"sigma": [float(s) for s in sigmas], "force": [], "force_rel": [], "force_gmm": [],
           "force_rel_gmm": []}  # fmt: skip
    labels = torch.from_numpy(y).long()
    for sigma in sigmas:
        x = z + sigma * rng.standard_normal(z.shape)  # [n, d]
        xt = torch.from_numpy(x).float().reshape(shape)
        dc = model.denoiser(xt, float(sigma), labels).reshape(len(z), -1).double().numpy()
        du = model.denoiser(xt, float(sigma), None).reshape(len(z), -1).double().numpy()
        out["force"].append(float(np.linalg.norm(dc - du, axis=1).mean() / math.sqrt(d)))
        out["force_rel"].append(float((np.linalg.norm(dc - du, axis=1) / np.linalg.norm(dc, axis=1)).mean()))
        dk, post = _gmm_denoise(x, means, within, sigma)
        gc = dk[np.arange(len(y)), y]  # [n, d]
        gu = np.einsum("nk,nkd->nd", post, dk)
        out["force_gmm"].append(float(np.linalg.norm(gc - gu, axis=1).mean() / math.sqrt(d)))
        out["force_rel_gmm"].append(float((np.linalg.norm(gc - gu, axis=1) / np.linalg.norm(gc, axis=1)).mean()))
    return out


def predict(regime: dict, schedules, **kw) -> dict:
    """The theory's forecast for ``schedules`` in the measured ``regime`` (see :mod:`cfglab.experiments.latent_predict`)."""
    from cfglab.experiments.latent_predict import forecast

    return forecast(regime, schedules, **kw)
