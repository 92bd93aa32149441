"""Independent evaluator and sample metrics for the latent model (docs/latent.md).

The evaluator is a scikit-learn ``MLPClassifier`` trained on the real *training* split only
(never on generated data, never on the diffusion model).  On a set of generated images with
requested classes:

* **separability**: the evaluator's accuracy for the requested class;
* **vendi**: Vendi score (Friedman & Dieng 2023) of the evaluator's penultimate features
  with a cosine kernel, per class, averaged over classes (``vendi-score`` package);
* **within_class_var**: per-class mean variance of those features, averaged over classes;
* **precision, recall, density, coverage**: k-NN manifold metrics (Kynkäänniemi et al. 2019;
  Naeem et al. 2020; ``prdc`` package) of generated against real training features, per
  class, averaged over classes;
* **fd**: Fréchet distance between the pooled generated and real training features.

Real held-out images scored by the same evaluator give the reference row.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from cfglab._validate import CfglabInputError

__all__ = [
    "METRICS",
    "Evaluator",
    "check_sample_size",
    "prdc_scores",
    "reference_row",
    "score_images",
    "train_evaluator",
]

METRICS = (
    "separability",
    "vendi",
    "within_class_var",
    "precision",
    "recall",
    "coverage",
    "density",
    "fd",
)


@dataclass(frozen=True)
class Evaluator:
    """Trained classifier + the real training features that define the real manifolds."""

    classifier: object  # sklearn.neural_network.MLPClassifier
    train_features: np.ndarray  # [N, F]
    train_labels: np.ndarray  # [N]
    heldout_accuracy: float

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate ReLU features [N, F] of images [N, C, H, W] in [−1, 1]."""
        h = _flat(images)
        for w, b in zip(self.classifier.coefs_[:-1], self.classifier.intercepts_[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        return h

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted class [N] of images [N, C, H, W]."""
        return self.classifier.predict(_flat(images))


def train_evaluator(data, *, seed: int = 0, hidden: tuple[int, ...] = (128, 64)) -> Evaluator:
    """Fit the evaluator on ``data``'s real training split (deterministic for ``seed``)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=hidden, alpha=1e-3, max_iter=400, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(_flat(data.train_images), data.train_labels)
    acc = float((clf.predict(_flat(data.test_images)) == data.test_labels).mean())
    ev = Evaluator(clf, np.empty((0, 0)), data.train_labels, acc)
    return Evaluator(clf, ev.features(data.train_images), data.train_labels, acc)


def score_images(
    ev: Evaluator, images: np.ndarray, labels: np.ndarray, *, nearest_k: int = 5
) -> dict:
    """All :data:`METRICS` for images [N, C, H, W] generated for classes ``labels`` [N]."""
    labels = np.asarray(labels)
    feats = ev.features(images)  # [N, F]
    per_class = [_class_metrics(ev, feats[labels == k], k, nearest_k) for k in np.unique(labels)]
    out = {"separability": float((ev.predict(images) == labels).mean())}
    for key in ("vendi", "within_class_var", "precision", "recall", "coverage", "density"):
        out[key] = float(np.mean([m[key] for m in per_class]))
    out["fd"] = frechet_distance(feats, ev.train_features)
    out["n"] = len(labels)
    return out


def reference_row(
    ev: Evaluator, data, *, n_per_class: int | None = None, seed: int = 0, nearest_k: int = 5
) -> dict:
    """Metrics of real held-out images (``n_per_class`` per class, drawn with ``seed``)."""
    idx = _per_class_subset(data.test_labels, n_per_class, seed)
    return score_images(ev, data.test_images[idx], data.test_labels[idx], nearest_k=nearest_k)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance (Heusel et al. 2017) of feature sets a [N, F], b [M, F].

    ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}).
    """
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # [F, F]
    root_a = _psd_sqrt(ca)
    # tr (Σ_a Σ_b)^{1/2} = Σ sqrt(eig(Σ_a^{1/2} Σ_b Σ_a^{1/2})): symmetric, stable for singular Σ
    cross = np.sqrt(np.clip(scipy.linalg.eigvalsh(root_a @ cb @ root_a), 0, None)).sum()
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * cross)


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    vals, vecs = scipy.linalg.eigh(c)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def vendi_cosine(feats: np.ndarray) -> float:
    """Vendi score, cosine kernel (``vendi_score.vendi.score_K``; its scipy warning silenced)."""
    from vendi_score import vendi

    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(vendi.score_K(unit @ unit.T))


def check_sample_size(n_per_class: int, nearest_k: int = 5) -> None:
    """The k-NN metrics need ``n_per_class ≥ nearest_k + 2``; raise before any sampling."""
    if int(n_per_class) < nearest_k + 2:
        raise CfglabInputError(
            f"n_per_class must be >= nearest_k + 2 = {nearest_k + 2} for the k-NN metrics,"
            f" got {n_per_class}"
        )


def _class_metrics(ev: Evaluator, fake: np.ndarray, k: int, nearest_k: int) -> dict:
    if len(fake) < nearest_k + 2:  # prdc's k-NN radii need k + 1 neighbours besides the point
        raise CfglabInputError(
            f"need at least nearest_k + 2 = {nearest_k + 2} samples per class,"
            f" got {len(fake)} for class {k}"
        )
    real = ev.train_features[ev.train_labels == k]
    return {
        "vendi": vendi_cosine(fake),
        "within_class_var": float(fake.var(axis=0, ddof=1).mean()),
        **prdc_scores(real, fake, nearest_k),
    }


def prdc_scores(real: np.ndarray, fake: np.ndarray, nearest_k: int) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020, ``prdc``) of fake [n, f] vs real [m, f].

    Quiet: prdc prints its sample counts, and inside a Dask worker its joblib call warns
    once per call that it runs on one thread (which is what a sweep worker should do).
    """
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Inside a Dask worker", category=UserWarning)
        scores = compute_prdc(real_features=real, fake_features=fake, nearest_k=nearest_k)
    return {key: float(v) for key, v in scores.items()}


def _per_class_subset(labels: np.ndarray, n_per_class: int | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        take = len(members) if n_per_class is None else min(int(n_per_class), len(members))
        idx.append(np.sort(rng.choice(members, size=take, replace=False)))
    return np.concatenate(idx)


def _flat(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    return images.reshape(len(images), -1)
