"""Model pieces of the latent diffusion model: diffusers networks + EDM preconditioning (docs/latent.md).

* :func:`build_autoencoder`: a small diffusers ``AutoencoderKL`` (8×8×1 → 4×4×2 for digits;
  ``len(ae_channels) − 1`` 2× downsamplings, e.g. three blocks map 16×16 glyphs to 4×4).
* :func:`build_unet`: a class-conditional diffusers ``UNet2DModel`` on the latent, with
  ``num_class_embeds = n_classes + 1`` — the extra index is the null class used for label
  dropout, so one network gives the conditional and the unconditional prediction.
* :class:`EDMDenoiser`: Karras et al. 2022 (EDM, Table 1) preconditioning
  ``D(x; σ, c) = c_skip(σ) x + c_out(σ) F(c_in(σ) x; c_noise(σ), c)`` with
  ``c_skip = σ_d²/(σ² + σ_d²)``, ``c_out = σ σ_d / sqrt(σ² + σ_d²)``,
  ``c_in = 1/sqrt(σ² + σ_d²)``, ``c_noise = ln(σ)/4``.

Latents are normalised per channel (mean and std of the encoded training set) so that
σ_d = 1 and EDM's σ range applies.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from cfglab.latent.config import ArchConfig

__all__ = [
    "ArchConfig",
    "EDMDenoiser",
    "build_autoencoder",
    "build_unet",
    "latent_shape",
    "seeded_init",
]


def latent_shape(arch: ArchConfig, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(latent_channels, H / f, W / f) of images [C, H, W] under ``arch`` (f = ``arch.downsample``)."""
    _, height, width = image_shape
    f = arch.downsample
    if height % f or width % f:
        from cfglab._validate import CfglabInputError

        raise CfglabInputError(
            f"image size {height}x{width} is not divisible by the autoencoder's downsampling {f}"
        )
    return (arch.latent_channels, height // f, width // f)


@contextlib.contextmanager
def seeded_init(seed: int):
    """Scoped RNG and float32 default dtype for diffusers' constructors; both are restored.

    diffusers draws initial weights from the global RNG in the default dtype, so both are
    pinned here: the same seed gives the same float32 weights whatever the caller's settings.
    """
    old = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            yield
        finally:
            torch.set_default_dtype(old)


def build_autoencoder(arch: ArchConfig, image_shape: tuple[int, int, int]):
    """diffusers ``AutoencoderKL`` mapping [N, C, H, W] images to [N, latent_channels, H/f, W/f]."""
    from diffusers import AutoencoderKL

    channels, height, _ = image_shape
    n = len(arch.ae_channels)
    return AutoencoderKL(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(arch.ae_channels),
        layers_per_block=1,
        latent_channels=arch.latent_channels,
        norm_num_groups=arch.norm_groups,
        sample_size=height,
        mid_block_add_attention=False,
        scaling_factor=1.0,
    )


def build_unet(arch: ArchConfig, latent_shape: tuple[int, int, int], n_classes: int):
    """Class-conditional diffusers ``UNet2DModel``; class index ``n_classes`` is the null class."""
    from diffusers import UNet2DModel

    n = len(arch.unet_channels)
    return UNet2DModel(
        sample_size=latent_shape[1],
        in_channels=latent_shape[0],
        out_channels=latent_shape[0],
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        block_out_channels=tuple(arch.unet_channels),
        layers_per_block=arch.unet_layers,
        norm_num_groups=arch.norm_groups,
        num_class_embeds=n_classes + 1,
        add_attention=False,
    )


class EDMDenoiser(nn.Module):
    """EDM-preconditioned denoiser ``D(x; σ, class)`` (Karras et al. 2022, Table 1), σ_d = 1.

    ``forward(x, sigma, labels)``: x [N, C, h, w] latents, sigma [N] or scalar, labels [N]
    long (``None`` or ``null_class`` = unconditional).  Returns the denoised latent [N, C, h, w].
    """

    def __init__(self, unet: nn.Module, n_classes: int, sigma_data: float = 1.0):
        super().__init__()
        self.unet = unet
        self.n_classes = int(n_classes)
        self.sigma_data = float(sigma_data)

    @property
    def null_class(self) -> int:
        return self.n_classes

    def coefficients(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(c_skip, c_out, c_in, c_noise) of EDM Table 1 at noise levels ``sigma`` [N]."""
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = sigma.log() / 4
        return c_skip, c_out, c_in, c_noise

    def forward(self, x: torch.Tensor, sigma, labels: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(n)  # [N]
        if labels is None:
            labels = torch.full((n,), self.null_class, dtype=torch.long, device=x.device)
        c_skip, c_out, c_in, c_noise = (c.reshape(n, 1, 1, 1) for c in self.coefficients(sigma))
        f = self.unet(c_in * x, c_noise.reshape(n), class_labels=labels).sample  # [N, C, h, w]
        return c_skip * x + c_out * f
