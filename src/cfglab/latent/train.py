"""Training of the latent model: autoencoder, then EDM denoiser with label dropout (docs/latent.md).

Two phases, both deterministic for a seed on CPU (one ``torch.Generator`` drives batches,
noise and label dropout; network initialisation runs under a scoped seed):

1. ``AutoencoderKL``: reconstruction MSE + ``kl_weight`` × KL per pixel, latents drawn from
   the posterior during training; the training latents are the posterior means.
2. EDM denoiser (Karras et al. 2022, §5 and Table 1): ``ln σ ~ N(P_mean, P_std²)``, loss
   ``λ(σ) ‖D(y + σ n; σ, c) − y‖²`` with ``λ = (σ² + σ_d²)/(σ σ_d)²``; labels are replaced by
   the null class with probability ``p_uncond`` (Ho & Salimans 2022), and an exponential
   moving average of the weights is the model that samples.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from cfglab._validate import CfglabInputError, positive_int
from cfglab.latent.config import PROFILES, LatentConfig
from cfglab.latent.data import LatentData
from cfglab.latent.model import (
    EDMDenoiser,
    build_autoencoder,
    build_unet,
    latent_shape,
    seeded_init,
)

__all__ = ["PROFILES", "LatentConfig", "LatentModel", "cpu_threads", "train_model"]

Progress = Callable[[int, int], None]


@dataclass
class LatentModel:
    """A trained latent diffusion model: autoencoder, EMA denoiser and latent normalisation."""

    config: LatentConfig
    data_hash: str
    n_classes: int
    image_shape: tuple[int, int, int]
    autoencoder: torch.nn.Module
    denoiser: EDMDenoiser
    latent_mean: torch.Tensor  # [C]
    latent_std: torch.Tensor  # [C]

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return latent_shape(self.config.arch, self.image_shape)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] images in [−1, 1] -> normalised latents [N, c, h, w] (posterior means)."""
        z = self.autoencoder.encode(images.float()).latent_dist.mean
        return (z - self.latent_mean.view(1, -1, 1, 1)) / self.latent_std.view(1, -1, 1, 1)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [N, c, h, w] -> images [N, C, H, W] clamped to [−1, 1]."""
        z = latents.float() * self.latent_std.view(1, -1, 1, 1) + self.latent_mean.view(1, -1, 1, 1)
        return self.autoencoder.decode(z).sample.clamp(-1, 1)


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Scoped thread count for torch and BLAS (restored on exit); ``None`` leaves them alone.

    On a shared 2-core machine one thread avoids OpenMP spin contention (measured 10× faster).
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(positive_int("threads", n))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(old)


def train_model(
    cfg: LatentConfig, data: LatentData, *, progress: Progress | None = None
) -> LatentModel:
    """Train the autoencoder, then the EDM denoiser, on ``data``'s training split (float32, CPU)."""
    _check(cfg)
    progress = progress or (lambda done, total: None)
    total = cfg.ae_steps + cfg.steps
    gen = torch.Generator().manual_seed(cfg.seed)
    images = torch.from_numpy(data.train_images).float()  # [N, C, H, W]
    labels = torch.from_numpy(data.train_labels)  # [N]
    with seeded_init(cfg.seed):
        ae = build_autoencoder(cfg.arch, data.image_shape).float()
    _train_autoencoder(ae, images, cfg, gen, lambda i: progress(i, total))
    ae.eval().requires_grad_(False)
    with torch.no_grad():
        z = ae.encode(images).latent_dist.mean  # [N, c, h, w]
    mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3))
    latents = (z - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    with seeded_init(cfg.seed + 1):
        unet = build_unet(cfg.arch, tuple(latents.shape[1:]), data.n_classes).float()
    denoiser = EDMDenoiser(unet, data.n_classes)
    ema = _train_denoiser(
        denoiser, latents, labels, cfg, gen, lambda i: progress(cfg.ae_steps + i, total)
    )
    return LatentModel(cfg, data.data_hash, data.n_classes, data.image_shape, ae, ema, mean, std)


def _check(cfg: LatentConfig) -> None:
    for name in ("ae_steps", "ae_batch", "steps", "batch"):
        positive_int(name, getattr(cfg, name))
    if not 0 <= cfg.p_uncond < 1:
        raise CfglabInputError(f"p_uncond must lie in [0, 1), got {cfg.p_uncond!r}")


def _batches(n: int, batch: int, steps: int, gen: torch.Generator):
    """Indices of ``steps`` minibatches of size ``batch`` from epoch-wise permutations."""
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos : pos + min(batch, n)]
        pos += batch


def _train_autoencoder(
    ae, images: torch.Tensor, cfg: LatentConfig, gen: torch.Generator, tick
) -> None:
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.ae_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.ae_steps)
    n_pix = images[0].numel()
    ae.train()
    for i, idx in enumerate(_batches(len(images), cfg.ae_batch, cfg.ae_steps, gen)):
        x = images[idx]  # [B, C, H, W]
        post = ae.encode(x).latent_dist
        recon = ae.decode(post.sample(generator=gen)).sample
        loss = (recon - x).square().mean() + cfg.kl_weight * post.kl().mean() / n_pix
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        tick(i + 1)


def _train_denoiser(
    denoiser: EDMDenoiser, latents, labels, cfg: LatentConfig, gen, tick
) -> EDMDenoiser:
    ema = copy.deepcopy(denoiser).requires_grad_(False)
    opt = torch.optim.Adam(denoiser.parameters(), lr=cfg.lr)
    warmup = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    denoiser.train()
    for i, idx in enumerate(_batches(len(latents), cfg.batch, cfg.steps, gen)):
        y, c = latents[idx], labels[idx].clone()  # [B, c, h, w], [B]
        drop = torch.rand(len(idx), generator=gen, dtype=torch.float32) < cfg.p_uncond
        c[drop] = denoiser.null_class
        sigma = (
            cfg.p_mean + cfg.p_std * torch.randn(len(idx), generator=gen, dtype=y.dtype)
        ).exp()  # [B]
        noise = torch.randn(y.shape, generator=gen, dtype=y.dtype)
        weight = (sigma**2 + 1) / sigma**2  # λ(σ) with σ_d = 1
        d = denoiser(y + sigma.view(-1, 1, 1, 1) * noise, sigma, c)
        loss = (weight.view(-1, 1, 1, 1) * (d - y).square()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        _ema_update(ema, denoiser, cfg.ema_decay)
        tick(i + 1)
    return ema.eval()


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)
