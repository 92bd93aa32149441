"""Configurations of the latent model: network sizes, training settings and the named profiles (docs/latent.md).

Plain dataclasses without torch, so the command line can check ``--profile`` before torch
loads (docs/performance.md, start-up).  A config's JSON form keys the checkpoint cache.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from cfglab.latent.data import DEFAULT_DATA

__all__ = ["PROFILES", "ArchConfig", "LatentConfig", "profile_config"]


@dataclass(frozen=True)
class ArchConfig:
    """Network sizes (part of the checkpoint key)."""

    ae_channels: tuple[int, ...] = (16, 32)
    latent_channels: int = 2
    unet_channels: tuple[int, ...] = (32, 64)
    unet_layers: int = 1
    norm_groups: int = 8

    @property
    def downsample(self) -> int:
        """Spatial factor of the autoencoder: one 2× downsampling per block after the first."""
        return 2 ** (len(self.ae_channels) - 1)


@dataclass(frozen=True)
class LatentConfig:
    """Everything that determines a trained model (its JSON form keys the checkpoint cache)."""

    profile: str = "default"
    data: str = DEFAULT_DATA
    test_fraction: float = 0.3
    split_seed: int = 0
    seed: int = 0
    arch: ArchConfig = field(default_factory=ArchConfig)
    ae_steps: int = 800
    ae_batch: int = 128
    ae_lr: float = 2e-3
    kl_weight: float = 1e-4
    steps: int = 1500
    batch: int = 128
    lr: float = 2e-3
    p_uncond: float = 0.1
    p_mean: float = -1.2
    p_std: float = 1.2
    ema_decay: float = 0.998

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LatentConfig:
        d = dict(d)
        arch = d.pop("arch", {})
        arch = ArchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
        return cls(arch=arch, **d)

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PROFILES: dict[str, LatentConfig] = {
    "default": LatentConfig(),
    "tiny": LatentConfig(
        profile="tiny",
        arch=ArchConfig(ae_channels=(8, 8), unet_channels=(8, 16), norm_groups=4),
        ae_steps=30,
        ae_batch=64,
        steps=40,
        batch=64,
        ema_decay=0.9,
    ),
    # 16×16 images (glyphs, docs/latent.md "Regimes"): one more downsampling, latent 4×4×2 (d = 32)
    "glyphs": LatentConfig(profile="glyphs", arch=ArchConfig(ae_channels=(16, 32, 32))),
}


def profile_config(name: str) -> LatentConfig:
    """The config of the named training profile; an unknown name is an input error naming the choices."""
    if name not in PROFILES:
        from cfglab._validate import CfglabInputError

        raise CfglabInputError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]
