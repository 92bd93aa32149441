"""Conditionings of the regime study: seeded glyph rendering, data specs, the 16×16 architecture."""

import numpy as np
import pytest
import torch

from cfglab._validate import CfglabInputError
from cfglab.latent.conditionings import (
    CONDITIONINGS,
    GLYPH_CHARS,
    GLYPH_FONTS,
    conditioning_data,
    parse_glyph_spec,
    render_glyphs,
)
from cfglab.latent.data import load_data
from cfglab.latent.model import ArchConfig, build_autoencoder, latent_shape, seeded_init
from cfglab.latent.train import PROFILES


@pytest.fixture(scope="module")
def glyphs():
    return render_glyphs(seed=0, copies=2)


def test_render_is_seeded_and_reproducible(glyphs):
    images, chars, fonts = glyphs
    n = len(GLYPH_FONTS) * len(GLYPH_CHARS) * 2
    assert images.shape == (n, 16, 16) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.mean() > 0.05  # ink, not blank
    assert np.bincount(chars).tolist() == [len(GLYPH_FONTS) * 2] * len(GLYPH_CHARS)
    assert np.bincount(fonts).tolist() == [len(GLYPH_CHARS) * 2] * len(GLYPH_FONTS)
    again = render_glyphs(seed=0, copies=2)
    assert all(np.array_equal(a, b) for a, b in zip(glyphs, again))
    other = render_glyphs(seed=1, copies=2)[0]
    assert np.abs(other - images).max() > 0.1  # a different jitter moves whole pixels
    # the two copies of one glyph differ only by the small jitter: closer than different glyphs
    same = np.abs(images[0] - images[1]).mean()
    assert same < np.abs(images[0] - images[2]).mean() and same > 0


def test_char_and_font_specs_label_the_same_images():
    by_char, by_font = load_data("glyphs:char,copies=2"), load_data("glyphs:font,copies=2")
    assert by_char.n_classes == 26 and by_font.n_classes == 21
    assert by_char.image_shape == (1, 16, 16)
    pool = lambda d: np.sort(np.concatenate([d.train_images, d.test_images]).reshape(-1, 256), axis=0)  # noqa: E731
    assert np.array_equal(pool(by_char), pool(by_font))
    assert by_char.data_hash != by_font.data_hash
    assert load_data("glyphs:char,copies=2").data_hash == by_char.data_hash
    assert load_data("glyphs:char,copies=2,seed=1").data_hash != by_char.data_hash


@pytest.mark.parametrize("spec", ["glyphs:size", "glyphs:char,seed=x", "glyphs:char,copies=1",
                                  "glyphs:font,colour=2", "glyph:char"])  # fmt: skip
def test_bad_glyph_specs_raise(spec):
    with pytest.raises(CfglabInputError, match="glyph"):
        parse_glyph_spec(spec)


def test_conditionings_name_their_data_and_profile():
    assert conditioning_data("digits") == "digits"
    assert {conditioning_data(n) for n in ("glyphs-char", "glyphs-font")} == {"glyphs:char", "glyphs:font"}
    assert all(c.profile in PROFILES for c in CONDITIONINGS.values())
    with pytest.raises(CfglabInputError, match="'nope'"):
        conditioning_data("nope")


def test_glyph_profile_maps_16x16_to_the_digits_latent_size():
    arch = PROFILES["glyphs"].arch
    assert latent_shape(arch, (1, 16, 16)) == latent_shape(PROFILES["default"].arch, (1, 8, 8)) == (2, 4, 4)
    small = ArchConfig(ae_channels=(4, 4, 4), norm_groups=2)
    with seeded_init(0):
        ae = build_autoencoder(small, (1, 16, 16)).float()
    z = ae.encode(torch.zeros(2, 1, 16, 16, dtype=torch.float32)).latent_dist.mean
    assert tuple(z.shape[1:]) == latent_shape(small, (1, 16, 16))
    with pytest.raises(CfglabInputError, match="10x10"):
        latent_shape(small, (1, 10, 10))
