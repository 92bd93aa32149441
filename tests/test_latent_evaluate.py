"""Evaluator metrics against independent references (scipy, vendi-score, scikit-learn)."""

import numpy as np
import pytest
import scipy.linalg

from cfglab.latent.data import load_data
from cfglab.latent.evaluate import (
    frechet_distance,
    reference_row,
    score_images,
    train_evaluator,
    vendi_cosine,
)


def test_frechet_distance_matches_closed_form_and_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3)) @ np.diag([1.0, 2.0, 0.5])
    b = rng.normal(size=(4000, 3)) + np.array([1.0, 0.0, 0.0])
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real
    )
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    # population value: |Δμ|² + Σ (σ_a − σ_b)² = 1 + 0 + 1 + 0.25, within sampling error
    assert frechet_distance(a, b) == pytest.approx(2.25, abs=0.15)


def test_vendi_cosine_matches_dual_form():
    from vendi_score import vendi

    x = np.abs(np.random.default_rng(1).normal(size=(60, 8)))
    assert vendi_cosine(x) == pytest.approx(vendi.score_dual(x, normalize=True), rel=1e-8)
    assert vendi_cosine(np.ones((10, 4))) == pytest.approx(1.0, abs=1e-6)  # identical samples -> 1


@pytest.fixture(scope="module")
def digits_and_evaluator():
    from threadpoolctl import threadpool_limits

    data = load_data()
    with threadpool_limits(1):
        return data, train_evaluator(data, seed=0)


def test_evaluator_is_deterministic_and_independent(digits_and_evaluator):
    from threadpoolctl import threadpool_limits

    data, ev = digits_and_evaluator
    with threadpool_limits(1):
        again = train_evaluator(data, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(ev.classifier.coefs_, again.classifier.coefs_))
    assert ev.heldout_accuracy > 0.9  # a real classifier of real digits
    # features: the network's last hidden layer, consistent with sklearn's own prediction
    logits = (
        ev.features(data.test_images) @ ev.classifier.coefs_[-1] + ev.classifier.intercepts_[-1]
    )
    assert np.array_equal(logits.argmax(1), ev.predict(data.test_images))


def test_reference_row_scores_real_data(digits_and_evaluator):
    data, ev = digits_and_evaluator
    ref = reference_row(ev, data, n_per_class=None)
    assert ref["separability"] == pytest.approx(ev.heldout_accuracy)
    assert ref["precision"] > 0.8 and ref["recall"] > 0.8 and ref["fd"] < 5
    # collapsed samples (one image per class repeated) lose diversity and recall
    idx = np.array([np.flatnonzero(data.test_labels == k)[0] for k in range(10)]).repeat(20)
    col = score_images(ev, data.test_images[idx], data.test_labels[idx])
    assert col["within_class_var"] == pytest.approx(0.0, abs=1e-12) and col[
        "vendi"
    ] == pytest.approx(1.0, abs=1e-6)
    assert col["recall"] < ref["recall"] and col["fd"] > ref["fd"]
