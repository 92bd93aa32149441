"""Metrics that do not saturate and diversity on features not trained with labels (docs/latent.md).

* **separability**: mean log-posterior of the requested class under a shared-covariance LDA
  (scikit-learn ``LinearDiscriminantAnalysis``, uniform priors, Ledoit–Wolf shrinkage that
  vanishes as the sample grows) fitted on the real *training*
  latents only, plus its top-1 accuracy.  The log-posterior keeps moving after top-1
  saturates at 1, so "more separated" stays measurable.
* **variance ratio**: within-class variance of generated / real samples, pooled over classes,
  per principal direction of the real within-class covariance and in total — in the model's
  latent space (where the theory's variance ratio lives, paper §3) and in pixel space.
* **unsupervised features**: PCA of real training pixels; per class precision / recall /
  density / coverage (``prdc``), Vendi (cosine kernel) and the pooled Fréchet distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfglab.latent.evaluate import frechet_distance, prdc_scores, vendi_cosine

__all__ = [
    "MetricContext",
    "fit_lda",
    "fit_context",
    "lda_separability",
    "score_generated",
    "variance_ratio",
    "within_class_scatter",
]


def fit_lda(features: np.ndarray, labels: np.ndarray):
    """Shared-covariance LDA (Ledoit–Wolf shrinkage, uniform priors) fitted on real features [N, F]."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    k = len(np.unique(labels))
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=np.full(k, 1.0 / k))
    return lda.fit(np.asarray(features, dtype=np.float64), labels)


def lda_separability(lda, features: np.ndarray, labels: np.ndarray) -> dict:
    """Mean log-posterior of the requested class, its standard error, and top-1 accuracy."""
    logp = lda.predict_log_proba(np.asarray(features, dtype=np.float64))  # [N, K]
    cols = np.searchsorted(lda.classes_, labels)
    own = logp[np.arange(len(labels)), cols]  # [N]
    return {
        "log_posterior": float(own.mean()),
        "log_posterior_sem": float(own.std(ddof=1) / np.sqrt(len(own))),
        "top1": float((lda.classes_[logp.argmax(1)] == labels).mean()),
    }


def within_class_scatter(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Pooled within-class covariance [F, F]: class means removed, ddof = number of classes."""
    x = np.asarray(features, dtype=np.float64)
    classes = np.unique(labels)
    centred = np.concatenate([x[labels == k] - x[labels == k].mean(0) for k in classes])
    return centred.T @ centred / (len(x) - len(classes))


@dataclass(frozen=True)
class _Spectrum:
    """Principal directions of the real within-class covariance and the variances along them."""

    vecs: np.ndarray  # [F, F], columns by decreasing variance
    var: np.ndarray  # [F]

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> _Spectrum:
        vals, vecs = np.linalg.eigh(within_class_scatter(features, labels))
        order = np.argsort(vals)[::-1]
        return cls(vecs[:, order], vals[order])


def variance_ratio(spec: _Spectrum, features: np.ndarray, labels: np.ndarray) -> dict:
    """Generated / real pooled within-class variance, per real principal direction and total."""
    gen = within_class_scatter(features, labels)
    per_dir = np.einsum("fi,fg,gi->i", spec.vecs, gen, spec.vecs)  # diag(Vᵀ Σ_gen V)  [F]
    keep = spec.var > 1e-12 * spec.var.max()
    return {
        "total": float(np.trace(gen) / spec.var.sum()),
        "per_direction": (per_dir[keep] / spec.var[keep]).tolist(),
    }


@dataclass(frozen=True)
class MetricContext:
    """Everything fitted on the real training split once, reused for every generated set."""

    lda: object
    latent_spectrum: _Spectrum
    pixel_spectrum: _Spectrum
    pca: object  # sklearn.decomposition.PCA on pixels
    real_pca: np.ndarray  # [N, P]
    real_labels: np.ndarray  # [N]


def fit_context(
    train_latents: np.ndarray, train_pixels: np.ndarray, labels: np.ndarray, *, n_pca: int = 16
) -> MetricContext:
    """Fit LDA, the within-class spectra and the pixel PCA on real training data only."""
    from sklearn.decomposition import PCA

    pixels = _flat(train_pixels)
    pca = PCA(n_components=min(n_pca, *pixels.shape), random_state=0).fit(pixels)
    return MetricContext(
        lda=fit_lda(_flat(train_latents), labels),
        latent_spectrum=_Spectrum.fit(_flat(train_latents), labels),
        pixel_spectrum=_Spectrum.fit(pixels, labels),
        pca=pca,
        real_pca=pca.transform(pixels),
        real_labels=np.asarray(labels),
    )


def score_generated(
    ctx: MetricContext,
    latents: np.ndarray,
    pixels: np.ndarray,
    labels: np.ndarray,
    *,
    nearest_k: int = 5,
) -> dict:
    """All metrics of one generated set: latents [N, ...], pixels [N, ...], requested labels [N]."""
    labels = np.asarray(labels)
    z, x = _flat(latents), _flat(pixels)
    lat = variance_ratio(ctx.latent_spectrum, z, labels)
    pix = variance_ratio(ctx.pixel_spectrum, x, labels)
    out = {
        **lda_separability(ctx.lda, z, labels),
        "var_ratio_latent": lat["total"],
        "var_ratio_latent_top": lat["per_direction"][0],
        "var_ratio_latent_per_direction": lat["per_direction"],
        "var_ratio_pixel": pix["total"],
        **_unsupervised(ctx, ctx.pca.transform(x), labels, nearest_k),
    }
    out["n"] = len(labels)
    return out


def _unsupervised(ctx: MetricContext, feats: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """prdc and Vendi per class (averaged) and the pooled Fréchet distance, on PCA features."""
    rows = []
    for c in np.unique(labels):
        fake = feats[labels == c]
        prdc = prdc_scores(ctx.real_pca[ctx.real_labels == c], fake, k)
        rows.append({**prdc, "vendi": vendi_cosine(fake)})
    out = {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}
    out["fd_pca"] = frechet_distance(feats, ctx.real_pca)
    return out


def _flat(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)
