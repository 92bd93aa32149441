"""Tiny real diffusers pipelines built in code (nothing downloaded), shared by the diffusers tests.

Models built from configs start in train mode and with some zero-initialised layers: every
model is put in ``.eval()`` and the UNet's weights are perturbed so the conditional and
unconditional predictions differ (otherwise the guidance tests would be vacuous).
"""

from __future__ import annotations

import json
import string

import pytest
import torch

diffusers = __import__("diffusers")

TEXT_DIM = 16


def tokenizer(folder):
    """A CLIPTokenizer over single letters (plus one merge), written into ``folder``."""
    import transformers

    letters = list(string.ascii_lowercase)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in letters + [c + "</w>" for c in letters] + ["an", "an</w>"]:
        vocab[token] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\na n\na n</w>\n")
    return transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


def _text_config():
    import transformers

    return transformers.CLIPTextConfig(
        vocab_size=64, hidden_size=TEXT_DIM, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=16, projection_dim=TEXT_DIM, bos_token_id=0, eos_token_id=1, pad_token_id=1)


def _perturb(model, seed: int, scale: float):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def vae():
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4,
                                   layers_per_block=1).eval()


def sd_pipeline(folder, scheduler=None):
    """A real ``StableDiffusionPipeline`` (float32, latents 8×8, images 8×8)."""
    import transformers

    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(4, 8),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM, norm_num_groups=2, attention_head_dim=2)
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae(), text_encoder=transformers.CLIPTextModel(_text_config()).eval(), tokenizer=tokenizer(folder),
        unet=_perturb(unet, 1, 0.2), scheduler=scheduler or diffusers.EulerAncestralDiscreteScheduler(steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.float32)


def sdxl_modular(folder, guider, scheduler=None):
    """A real modular SDXL text-to-image pipeline with ``guider`` as its guider component."""
    import transformers
    from diffusers.modular_pipelines import StableDiffusionXLAutoBlocks

    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(4, 8),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=2 * TEXT_DIM, norm_num_groups=2, attention_head_dim=2, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + TEXT_DIM)
    scheduler = scheduler or diffusers.EulerDiscreteScheduler()
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(
        unet=_perturb(unet, 1, 0.2), vae=vae(), scheduler=scheduler,
        text_encoder=transformers.CLIPTextModel(_text_config()).eval(),
        text_encoder_2=transformers.CLIPTextModelWithProjection(_text_config()).eval(),
        tokenizer=tokenizer(folder / "t1"), tokenizer_2=tokenizer(folder / "t2"), guider=guider)
    return pipe.to(torch.float32)


def dit_pipeline(scheduler=None):
    """A real ``DiTPipeline`` (float32). Weights re-drawn at scale 0.3: adaLN-zero would make cond = uncond."""
    gen = torch.Generator().manual_seed(0)
    transformer = diffusers.DiTTransformer2DModel(
        sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2,
        in_channels=4, out_channels=8, norm_num_groups=4, num_embeds_ada_norm=1000,
    ).to(torch.float32)
    autoencoder = diffusers.AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4,
                                          layers_per_block=1).to(torch.float32)
    with torch.no_grad():
        for p in transformer.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for p in autoencoder.parameters():
            p.copy_(p + 0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    pipe = diffusers.DiTPipeline(transformer=transformer.eval(), vae=autoencoder.eval(),
                                 scheduler=scheduler or diffusers.DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one torch thread avoids OpenMP spin-waiting on a shared 2-core machine.

    Import it into a test module (``from _tiny_pipelines import one_thread``) to apply it there.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
