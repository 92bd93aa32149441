"""Checkpoints of the latent diffusion model: safetensors + config JSON + data hash (docs/latent.md).

A checkpoint is a folder with ``config.json`` (training config, data hash, latent
normalisation), ``autoencoder.safetensors`` and ``denoiser.safetensors``.  By default it lives
in the cache (``$CFGLAB_CACHE`` or ``~/.cache/cfglab``) under ``latent/<profile>-<key>``,
where the key hashes the config and the data hash, so a matching model is reused.  A corrupt,
incomplete or mismatched checkpoint raises :class:`CfglabInputError` naming the file — it is
never retrained over silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from cfglab._io import atomic_path
from cfglab._validate import CfglabInputError
from cfglab.latent.data import LatentData
from cfglab.latent.model import (
    EDMDenoiser,
    build_autoencoder,
    build_unet,
    latent_shape,
    seeded_init,
)
from cfglab.latent.train import LatentConfig, LatentModel, Progress, train_model

__all__ = ["cache_dir", "checkpoint_dir", "load_model", "load_or_train", "save_model"]

_FILES = ("config.json", "autoencoder.safetensors", "denoiser.safetensors")
_FORMAT = 1


def cache_dir() -> Path:
    """Root of cfglab's cache: ``$CFGLAB_CACHE`` or ``~/.cache/cfglab``."""
    return Path(os.environ.get("CFGLAB_CACHE") or Path.home() / ".cache" / "cfglab")


def checkpoint_dir(cfg: LatentConfig, data_hash: str) -> Path:
    """Cache folder of the model trained with ``cfg`` on data ``data_hash``."""
    key = hashlib.sha256((cfg.key() + data_hash).encode()).hexdigest()[:16]
    return cache_dir() / "latent" / f"{cfg.profile}-{key}"


def save_model(model: LatentModel, folder: str | os.PathLike) -> Path:
    """Write ``model`` to ``folder`` atomically (temp folder, then rename); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    try:
        with atomic_path(folder, directory=True) as tmp:
            save_file(_contiguous(model.autoencoder.state_dict()), tmp / "autoencoder.safetensors")
            save_file(_contiguous(model.denoiser.state_dict()), tmp / "denoiser.safetensors")
            (tmp / "config.json").write_text(json.dumps(_meta(model), indent=1))
    except OSError as err:
        raise CfglabInputError(f"cannot write checkpoint {str(folder)!r}: {err.strerror}") from None
    return folder


def load_model(
    folder: str | os.PathLike, *, expect: LatentConfig | None = None, data_hash: str | None = None
) -> LatentModel:
    """Load a checkpoint folder; check its config and data hash against ``expect``/``data_hash``."""
    folder = Path(folder)
    missing = [f for f in _FILES if not (folder / f).is_file()]
    if missing:
        raise CfglabInputError(
            f"checkpoint {str(folder / missing[0])!r} is missing (incomplete checkpoint)"
        )
    meta = _read_meta(folder / "config.json")
    cfg = meta["config"]
    if expect is not None and cfg.key() != expect.key():
        raise CfglabInputError(
            f"checkpoint {str(folder / 'config.json')!r} was trained with a different config"
        )
    if data_hash is not None and meta["data_hash"] != data_hash:
        raise CfglabInputError(
            f"checkpoint {str(folder / 'config.json')!r} was trained on different data"
            " (hash mismatch)"
        )
    shape = tuple(meta["image_shape"])
    with seeded_init(0):  # weights are overwritten below; pins the dtype of the construction
        ae = build_autoencoder(cfg.arch, shape).float()
        denoiser = EDMDenoiser(
            build_unet(cfg.arch, latent_shape(cfg.arch, shape), meta["n_classes"]),
            meta["n_classes"],
        ).float()
    _load_weights(ae, folder / "autoencoder.safetensors")
    _load_weights(denoiser, folder / "denoiser.safetensors")
    return LatentModel(
        cfg,
        meta["data_hash"],
        meta["n_classes"],
        shape,
        ae.eval().requires_grad_(False),
        denoiser.eval().requires_grad_(False),
        torch.tensor(meta["latent_mean"], dtype=torch.float32),
        torch.tensor(meta["latent_std"], dtype=torch.float32),
    )


def load_or_train(
    cfg: LatentConfig,
    data: LatentData,
    *,
    checkpoint: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> tuple[LatentModel, Path, bool]:
    """Reuse the checkpoint for (``cfg``, ``data``) or train and save it.

    Returns ``(model, folder, trained)``.  ``checkpoint`` overrides the cache folder; a folder
    that exists and is not empty must hold a matching checkpoint, otherwise the error names it.
    """
    folder = Path(checkpoint) if checkpoint is not None else checkpoint_dir(cfg, data.data_hash)
    with _training_lock(folder):  # a second process waits, then loads what the first one saved
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            return load_model(folder, expect=cfg, data_hash=data.data_hash), folder, False
        model = train_model(cfg, data, progress=progress)
        if folder.exists():
            folder.rmdir()  # empty folder given by the user
        return model, save_model(model, folder), True


def _training_lock(folder: Path):
    """An exclusive lock (``filelock``: ``fcntl`` on POSIX) in the cache, keyed by the folder's path.

    The OS drops the lock when its process dies, so a killed training never blocks the next one;
    lock files stay in ``<cache>/locks`` (deleting one while held would let two owners in).
    """
    from filelock import FileLock

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    locks = cache_dir() / "locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CfglabInputError(f"cannot create the cache folder {str(locks)!r}: {err.strerror}") from None
    return FileLock(locks / f"latent-{key}.lock")


def _meta(model: LatentModel) -> dict:
    return {
        "format": _FORMAT,
        "config": model.config.to_dict(),
        "data_hash": model.data_hash,
        "n_classes": model.n_classes,
        "image_shape": list(model.image_shape),
        "latent_mean": model.latent_mean.tolist(),
        "latent_std": model.latent_std.tolist(),
    }


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
        if meta.get("format") != _FORMAT:
            raise KeyError("format")
        meta["config"] = LatentConfig.from_dict(meta["config"])
        for key in ("data_hash", "n_classes", "image_shape", "latent_mean", "latent_std"):
            meta[key]
        stats = {k: torch.tensor(meta[k], dtype=torch.float64) for k in ("latent_mean", "latent_std")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError):
        raise CfglabInputError(
            f"checkpoint config {str(path)!r} is corrupt or not a cfglab latent checkpoint"
        ) from None
    _check_latent_stats(path, **stats)
    return meta


def _check_latent_stats(path: Path, latent_mean: torch.Tensor, latent_std: torch.Tensor) -> None:
    """Latent normalisation: finite means, finite stds > 0 (a zero std divides every latent by 0)."""
    if latent_mean.ndim != 1 or latent_std.shape != latent_mean.shape or not torch.isfinite(latent_mean).all():
        raise CfglabInputError(f"checkpoint config {str(path)!r}: latent_mean/latent_std are not matching "
                               "lists of finite numbers")
    if not torch.isfinite(latent_std).all() or (latent_std <= 0).any():
        raise CfglabInputError(f"checkpoint config {str(path)!r}: latent_std must be finite and > 0, "
                               f"got {latent_std.tolist()}")


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(path)
        module.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError, ValueError):
        raise CfglabInputError(
            f"checkpoint weights {str(path)!r} are corrupt or do not match the config"
        ) from None
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CfglabInputError(f"checkpoint weights {str(path)!r}: tensor {bad!r} contains NaN or inf")


def _contiguous(state: dict) -> dict:
    return {k: v.detach().contiguous().clone() for k, v in state.items()}
