"""Data loading for the latent model: digits split, user .npz / image folders, hashes, bad input."""

import numpy as np
import pytest

from cfglab._validate import CfglabInputError
from cfglab.latent.data import load_data


def test_digits_split_is_stratified_complete_and_scaled():
    from sklearn.datasets import load_digits

    d = load_data("digits", test_fraction=0.3, split_seed=0)
    ref = load_digits()
    assert d.n_classes == 10 and d.image_shape == (1, 8, 8)
    assert len(d.train_labels) + len(d.test_labels) == len(ref.target)
    # every class is split 70/30 up to rounding
    for k in range(10):
        n = int((ref.target == k).sum())
        assert int((d.test_labels == k).sum()) == round(0.3 * n)
    assert d.train_images.min() >= -1 and d.train_images.max() <= 1
    # pixels are the sklearn pixels mapped 0..16 -> -1..1: the multiset of images is preserved
    all_imgs = np.concatenate([d.train_images, d.test_images])[:, 0]
    assert np.allclose(
        np.sort(((all_imgs + 1) * 8).ravel()), np.sort(ref.images.ravel()), atol=1e-5
    )


def test_hash_depends_on_split_and_is_stable():
    a, b = load_data(split_seed=0), load_data(split_seed=0)
    c = load_data(split_seed=1)
    assert a.data_hash == b.data_hash and a.data_hash != c.data_hash
    assert np.array_equal(a.train_labels, b.train_labels)


def test_npz_and_folder_round_trip(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 6, 6)).astype(np.uint8)
    labels = np.repeat(["cat", "dog"], 20)
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    d = load_data(str(tmp_path / "d.npz"), test_fraction=0.25)
    assert d.class_names == ("cat", "dog") and d.image_shape == (1, 6, 6)
    assert len(d.test_labels) == 10 and np.isclose(
        d.train_images.max(), images.max() / 255 * 2 - 1, atol=1e-6
    )
    for name, img, lab in zip(range(40), images, labels):
        (tmp_path / "folder" / lab).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "folder" / lab / f"{name}.png")
    f = load_data(str(tmp_path / "folder"), test_fraction=0.25)
    assert f.class_names == ("cat", "dog")
    every = lambda x: np.sort(np.concatenate([x.train_images, x.test_images]).ravel())
    assert np.allclose(
        every(f), every(d)
    )  # file order differs from the .npz order, the pixels do not


@pytest.mark.parametrize("source", ["nope", "missing.npz"])
def test_bad_sources_raise(source):
    with pytest.raises(CfglabInputError, match="data source"):
        load_data(source)


def test_bad_npz_and_fraction(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(CfglabInputError, match="'images' and 'labels'"):
        load_data(str(tmp_path / "bad.npz"))
    with pytest.raises(CfglabInputError, match="test_fraction"):
        load_data("digits", test_fraction=1.5)
