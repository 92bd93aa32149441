"""Real image data for the latent diffusion model (docs/latent.md).

The embedded default is scikit-learn's ``load_digits`` (1,797 real 8×8 handwritten digits,
10 classes; it ships inside scikit-learn, nothing is downloaded); ``glyphs:char`` /
``glyphs:font`` render matplotlib's fonts (:mod:`cfglab.latent.conditionings`).  User data comes as an
``.npz`` file with arrays ``images`` [N, H, W] or [N, C, H, W] and ``labels`` [N], or as an
image folder with one subfolder per class.  Pixels are scaled to [−1, 1]; the train /
held-out split is a seeded, stratified permutation, and a SHA-256 hash of the pixels, labels
and split identifies the data in every checkpoint.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfglab._validate import CfglabInputError

__all__ = ["DEFAULT_DATA", "LatentData", "load_data"]

DEFAULT_DATA = "digits"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm"}


@dataclass(frozen=True)
class LatentData:
    """A labelled image set split into training and held-out parts.

    Attributes
    ----------
    train_images, test_images : float32 arrays [N, C, H, W] in [−1, 1]
    train_labels, test_labels : int64 arrays [N] in ``0 .. n_classes − 1``
    class_names : names of the classes, index = label
    source : where the data came from (``"digits"`` or a path)
    data_hash : SHA-256 (hex) of pixels, labels and split
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    data_hash: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # (C, H, W)


def load_data(
    source: str = DEFAULT_DATA, *, test_fraction: float = 0.3, split_seed: int = 0
) -> LatentData:
    """Load ``source`` (``"digits"``, an ``.npz`` or a class-per-folder directory) and split it.

    Parameters
    ----------
    source : ``"digits"`` (embedded default), a path to ``.npz`` or to an image folder
    test_fraction : fraction of each class held out for evaluation, in (0, 1)
    split_seed : seed of the stratified split
    """
    if not 0 < float(test_fraction) < 1:
        raise CfglabInputError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    images, labels, names = _read(str(source))
    images = _to_unit_range(images)
    train, test = _stratified_split(labels, test_fraction, split_seed)
    digest = _hash(images, labels, train, test)
    return LatentData(
        images[train], labels[train], images[test], labels[test], names, str(source), digest
    )


def _read(source: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    if source == DEFAULT_DATA:
        from sklearn.datasets import load_digits

        d = load_digits()
        return (
            d.images.astype(np.float32) / 16.0,
            d.target.astype(np.int64),
            tuple(map(str, d.target_names)),
        )
    if source.startswith("glyphs:"):  # rendered fonts (cfglab.latent.conditionings)
        from cfglab.latent.conditionings import read_glyphs

        return read_glyphs(source)
    path = Path(source)
    if path.is_dir():
        return _read_folder(path)
    if path.suffix == ".npz" and path.is_file():
        return _read_npz(path)
    raise CfglabInputError(
        f"data source {source!r} is neither 'digits', 'glyphs:...', an existing .npz file nor a folder"
    )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = np.asarray(f["images"]), np.asarray(f["labels"])
    except KeyError:
        raise CfglabInputError(f"{str(path)!r} must contain arrays 'images' and 'labels'") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated or not an .npz
        raise CfglabInputError(f"cannot read {str(path)!r}: {' '.join(str(err).split())}") from None
    if images.ndim not in (3, 4) or labels.ndim != 1 or len(images) != len(labels):
        raise CfglabInputError(
            f"{str(path)!r}: images must be [N,H,W] or [N,C,H,W] and labels [N],"
            f" got {images.shape} and {labels.shape}"
        )
    images = images.astype(np.float32)
    if not np.isfinite(images).all():
        raise CfglabInputError(f"{str(path)!r}: images contain NaN or inf")
    if images.max() > 1.0:
        images = images / 255.0
    values, labels = np.unique(labels, return_inverse=True)
    if len(values) < 2:  # guidance needs a class to be guided away from
        raise CfglabInputError(f"{str(path)!r}: labels must hold at least 2 classes, got {values.tolist()}")
    return images, labels.astype(np.int64), tuple(map(str, values))


def _read_folder(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from PIL import Image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise CfglabInputError(
            f"image folder {str(path)!r} needs one subfolder per class (>= 2), found {len(classes)}"
        )
    images, labels = [], []
    for k, folder in enumerate(classes):
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as im:
                    images.append(np.asarray(im.convert("L"), dtype=np.float32) / 255.0)
            except OSError:
                raise CfglabInputError(f"cannot read image {str(file)!r}") from None
            labels.append(k)
    if not images or len({im.shape for im in images}) != 1:
        raise CfglabInputError(
            f"image folder {str(path)!r} has no images or images of different sizes"
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64), tuple(p.name for p in classes)


def _to_unit_range(images: np.ndarray) -> np.ndarray:
    """[N, H, W] or [N, C, H, W] in [0, 1] -> float32 [N, C, H, W] in [−1, 1]."""
    if images.ndim == 3:
        images = images[:, None]
    return np.ascontiguousarray(images * 2.0 - 1.0, dtype=np.float32)


def _stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_test = int(round(fraction * len(idx)))
        if n_test < 1 or n_test >= len(idx):
            raise CfglabInputError(
                f"class {k} has {len(idx)} images: too few for test_fraction={fraction}"
            )
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _hash(images: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray) -> str:
    h = hashlib.sha256()
    for arr in (images, labels, train, test):
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
