"""Conditionings of the regime study: real images whose labels set α/α_c (issue 14; docs/latent.md).

A *conditioning* is an image set plus the labels the class-conditional model is trained on.
Its regime is α/α_c with α = ln K′/d (K′ classes, d latent dimensions) and α_c the capacity
of the measured within- and between-class spectra (:mod:`cfglab.theory.anisotropic`).

* ``digits``: scikit-learn's 8×8 digits, 10 classes (the baseline model);
* ``glyphs:char`` / ``glyphs:font``: the *same* images — the 26 capital letters rendered in
  code from 21 text fonts that matplotlib ships (:data:`GLYPH_FONTS`), each glyph in
  ``copies`` seeded small affine jitters, 16×16 — labelled by the character (content:
  resolvable classes) or by the font (style: heavily overlapping classes).

Data specs (accepted by :func:`cfglab.latent.load_data` and ``--data``):
``glyphs:<char|font>[,seed=S][,copies=C]``.  The rendering is deterministic for a seed
(FreeType rasterisation, then a seeded affine warp and an area-average downsampling).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from cfglab._validate import CfglabInputError

__all__ = [
    "CONDITIONINGS",
    "GLYPH_CHARS",
    "GLYPH_FONTS",
    "Conditioning",
    "conditioning_data",
    "parse_glyph_spec",
    "read_glyphs",
    "render_glyphs",
]

GLYPH_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# text fonts in matplotlib's mpl-data/fonts/ttf that map ASCII capitals to letters
GLYPH_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf",
    "cmti10.ttf", "cmtt10.ttf",
)  # fmt: skip
GLYPH_LABELS = ("char", "font")
IMAGE_SIZE = 16  # pixels of the final image
_SUPER = 4  # rendering oversampling: glyphs are drawn at 64×64, warped, then area-averaged
_JITTER = {"rotate_deg": 6.0, "scale": 0.08, "shear": 0.08, "shift_px": 0.75}  # in final pixels


@dataclass(frozen=True)
class Conditioning:
    """One conditioning of the regime study: its data spec, labels, K′ and training profile."""

    name: str
    data: str  # a spec accepted by cfglab.latent.load_data
    dataset: str
    labels: str
    n_classes: int  # K′
    profile: str  # training profile of its latent model (cfglab.latent.PROFILES)
    doc: str


CONDITIONINGS: dict[str, Conditioning] = {
    c.name: c
    for c in (
        Conditioning("digits", "digits", "digits", "digit", 10, "default",
                     "scikit-learn 8×8 digits by digit (baseline, few resolvable classes)"),
        Conditioning("glyphs-char", "glyphs:char", "glyphs", "char", len(GLYPH_CHARS), "glyphs",
                     "16×16 capitals of 21 fonts by character (content: resolvable classes)"),
        Conditioning("glyphs-font", "glyphs:font", "glyphs", "font", len(GLYPH_FONTS), "glyphs",
                     "the same glyph images by font (style: heavily overlapping classes)"),
    )
}  # fmt: skip


def conditioning_data(name: str) -> str:
    """The ``data`` spec of conditioning ``name`` (for ``load_data`` / ``resolve_config``)."""
    if name not in CONDITIONINGS:
        raise CfglabInputError(
            f"unknown conditioning {name!r}; choose from {', '.join(CONDITIONINGS)}"
        )
    return CONDITIONINGS[name].data


def parse_glyph_spec(spec: str) -> dict:
    """``glyphs:<char|font>[,seed=S][,copies=C]`` -> ``{"labels", "seed", "copies"}``."""
    head, _, rest = spec.partition(":")
    parts = rest.split(",")
    out = {"labels": parts[0], "seed": 0, "copies": 4}
    if head != "glyphs" or out["labels"] not in GLYPH_LABELS:
        raise CfglabInputError(
            f"bad glyph data spec {spec!r}: expected glyphs:<{'|'.join(GLYPH_LABELS)}>[,seed=S][,copies=C]"
        )
    for item in parts[1:]:
        key, _, value = item.partition("=")
        if key not in ("seed", "copies") or not value.lstrip("-").isdigit():
            raise CfglabInputError(f"bad option {item!r} in glyph data spec {spec!r}")
        out[key] = int(value)
    if out["copies"] < 2 or out["seed"] < 0:
        raise CfglabInputError(f"glyph data spec {spec!r} needs copies >= 2 and seed >= 0")
    return out


def read_glyphs(spec: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(images [N, H, W] in [0, 1], labels [N], class names)`` of a glyph data spec."""
    opts = parse_glyph_spec(spec)
    images, chars, fonts = render_glyphs(seed=opts["seed"], copies=opts["copies"])
    if opts["labels"] == "char":
        return images, chars, tuple(GLYPH_CHARS)
    return images, fonts, tuple(f.removesuffix(".ttf") for f in GLYPH_FONTS)


def render_glyphs(*, seed: int = 0, copies: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (font, char) in ``copies`` seeded jitters: images [N, 16, 16] in [0, 1], char and font ids [N].

    Order: font-major, then character, then copy; copy ``j`` of every glyph uses its own draw
    from ``numpy.random.default_rng(seed)``, so a seed fixes every pixel.
    """
    rng = np.random.default_rng(seed)
    n = len(GLYPH_FONTS) * len(GLYPH_CHARS) * copies
    jitter = _draw_jitter(rng, n)  # [N, 6]
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    i = 0
    for font in GLYPH_FONTS:
        ft = _font(font)
        for ch in GLYPH_CHARS:
            glyph = _raster(ft, ch)  # [64, 64] centred, in [0, 1]
            for _ in range(copies):
                images[i] = _warp(glyph, jitter[i])
                i += 1
    font_ids = np.repeat(np.arange(len(GLYPH_FONTS)), len(GLYPH_CHARS) * copies)
    char_ids = np.tile(np.repeat(np.arange(len(GLYPH_CHARS)), copies), len(GLYPH_FONTS))
    return images, char_ids.astype(np.int64), font_ids.astype(np.int64)


def _font(name: str):
    import matplotlib
    from matplotlib.ft2font import FT2Font

    return FT2Font(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name))


def _raster(ft, ch: str) -> np.ndarray:
    """The glyph rasterised by FreeType, its ink box centred and fitted into 52 of 64 pixels."""
    from matplotlib.ft2font import LoadFlags
    from PIL import Image

    side = IMAGE_SIZE * _SUPER
    ft.set_size(48, 72)
    ft.set_text(ch, 0.0, flags=LoadFlags.NO_HINTING)
    ft.draw_glyphs_to_bitmap(antialiased=True)
    ink = np.asarray(ft.get_image(), dtype=np.float32) / 255.0  # [h, w]
    rows, cols = np.flatnonzero(ink.max(1) > 0), np.flatnonzero(ink.max(0) > 0)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    fit = 0.8125 * side / max(ink.shape)  # 52 of 64 pixels: room for the jitter
    h, w = (max(1, round(s * fit)) for s in ink.shape)
    ink = np.asarray(Image.fromarray(ink).resize((w, h), Image.BILINEAR))
    canvas = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = ink
    return canvas


def _draw_jitter(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 6] uniform draws: rotation, log-scale x/y, shear, shift x/y."""
    j = _JITTER
    lo = np.array([-j["rotate_deg"], -j["scale"], -j["scale"], -j["shear"], -j["shift_px"], -j["shift_px"]])
    return rng.uniform(lo, -lo, size=(n, 6))


def _warp(glyph: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Affine-warp a [64, 64] glyph about its centre, then area-average to [16, 16]."""
    from scipy.ndimage import affine_transform

    rot, sx, sy, shear, dx, dy = p
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    forward = np.array([[c, -s], [s, c]]) @ np.array([[1, shear], [0, 1]]) @ np.diag(np.exp([sy, sx]))
    inverse = np.linalg.inv(forward)  # output (row, col) -> input (row, col)
    centre = np.full(2, (glyph.shape[0] - 1) / 2)
    offset = centre - inverse @ (centre + _SUPER * np.array([dy, dx]))
    out = affine_transform(glyph, inverse, offset=offset, order=1, mode="constant", cval=0.0)
    out = out.reshape(IMAGE_SIZE, _SUPER, IMAGE_SIZE, _SUPER).mean(axis=(1, 3))
    return np.clip(out, 0.0, 1.0)
