"""Bundled fonts, split into the training set and the held-out test set.

The PT (ParaType) family is never used for training: the synthetic test set is
rendered with it only, so its figures measure generalisation to unseen type.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"

TRAIN_FONTS = [
    "OSP-DIN.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationMono-Bold.ttf",
    "Roboto-Bold.ttf",
    "Roboto-Medium.ttf",
    "RobotoCondensed-Bold.ttf",
    "RobotoCondensed-Regular.ttf",
    # Faces whose 3 has a flat top, as many real plate faces draw it; trained without
    # them, the reader read such a 3 as 5.
    "JetBrainsMono-Bold.ttf",
    "JetBrainsMono-ExtraBold.ttf",
    "Quicksand-Bold.ttf",
]
# DIN-like faces are what real KG/KZ/RU/EU plates use, so they are drawn more often.
TRAIN_WEIGHTS = [4, 1, 2, 1, 1, 1, 1, 1, 2, 1, 2, 1, 1]

TEST_FONTS = ["PTS75F.ttf", "PTN77F.ttf", "PTM55F.ttf"]

_RENDER_SIZE = 96


def pick_font(rng: np.random.Generator, split: str) -> str:
    if split == "test":
        return TEST_FONTS[rng.integers(len(TEST_FONTS))]
    w = np.asarray(TRAIN_WEIGHTS, dtype=np.float64)
    return TRAIN_FONTS[rng.choice(len(TRAIN_FONTS), p=w / w.sum())]


@lru_cache(maxsize=None)
def _font(name: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), _RENDER_SIZE)


@lru_cache(maxsize=4096)
def glyph(name: str, ch: str) -> Image.Image:
    """Ink of one character, cropped tight, as an 8-bit mask."""
    font = _font(name)
    pad = _RENDER_SIZE // 2
    img = Image.new("L", (_RENDER_SIZE * 2, _RENDER_SIZE * 2), 0)
    ImageDraw.Draw(img).text((pad, pad // 2), ch, font=font, fill=255)
    box = img.getbbox()
    if box is None:
        return Image.new("L", (1, 1), 0)
    return img.crop(box)


def text_mask(text: str, font: str, height: int, spacing: float = 0.12, squeeze: float = 1.0) -> Image.Image:
    """Render `text` with every glyph scaled to cap height `height` (plates are all caps and digits).

    Spaces become gaps of 0.4 * height and '-' a short bar; `squeeze` narrows glyphs.
    """
    height = max(2, int(round(height)))
    parts = []
    for ch in text:
        if ch == " ":
            parts.append(("gap", int(0.4 * height)))
        elif ch == "-":
            w = max(2, int(0.35 * height))
            bar = Image.new("L", (w, height), 0)
            t = max(1, height // 9)
            ImageDraw.Draw(bar).rectangle([0, height // 2 - t, w - 1, height // 2 + t], fill=255)
            parts.append(("img", bar))
        else:
            g = glyph(font, ch)
            w = max(1, int(round(g.width * height / max(1, g.height) * squeeze)))
            parts.append(("img", g.resize((w, height), Image.BILINEAR)))
    gap = max(1, int(round(spacing * height)))
    total = sum(p[1] if p[0] == "gap" else p[1].width for p in parts) + gap * max(0, len(parts) - 1)
    out = Image.new("L", (max(1, total), height), 0)
    x = 0
    for kind, p in parts:
        if kind == "gap":
            x += p + gap
        else:
            out.paste(p, (x, 0))
            x += p.width + gap
    return out
