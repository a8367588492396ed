"""Plate layouts in the real formats, drawn flat and front-on.

Each layout draws in millimetres scaled by `k` pixels per mm and returns the
plate image with its canonical text (upper case, no separators, Cyrillic
letters written as their Latin look-alikes, country marks such as "KG" or
"RUS" excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .fonts import pick_font, text_mask

DIGITS = "0123456789"
LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The 12 letters Russian plates allow, in their Latin look-alikes.
RU_LETTERS = "ABEKMHOPCTYX"

US_STATES = [
    "CALIFORNIA", "TEXAS", "NEW YORK", "FLORIDA", "OHIO", "ILLINOIS", "GEORGIA",
    "ARIZONA", "NEVADA", "OREGON", "MICHIGAN", "VIRGINIA", "MARYLAND", "IOWA",
    "COLORADO", "UTAH", "KANSAS", "MAINE", "IDAHO", "NEW JERSEY",
]
US_SLOGANS = [
    "THE GOLDEN STATE", "EMPIRE STATE", "SUNSHINE STATE", "LAND OF LINCOLN",
    "GRAND CANYON STATE", "PEACH STATE", "FAMOUS POTATOES", "GARDEN STATE",
    "THE LONE STAR STATE", "DMV.CA.GOV", "VACATIONLAND", "LIFE ELEVATED",
]
EU_CODES = ["D", "F", "PL", "LT", "LV", "EST", "NL", "B", "I", "E", "CZ", "SK", "A", "FIN", "S"]

TRAIN_MIX = {"kg": 20, "kg_old": 8, "kz": 18, "ru": 18, "eu": 12, "us": 16, "br": 8}
TEST_MIX = {"kg": 35, "kg_old": 10, "kz": 30, "ru": 25}


@dataclass
class Plate:
    image: Image.Image  # RGB, flat
    text: str  # canonical
    country: str


def _pick(rng, s, n):
    return "".join(s[i] for i in rng.integers(len(s), size=n))


def _off_white(rng, base=(245, 245, 242)):
    d = rng.integers(-18, 8)
    return tuple(int(np.clip(c + d + rng.integers(-5, 6), 0, 255)) for c in base)


def _ink(rng, base=(18, 18, 20)):
    d = rng.integers(-10, 40)
    return tuple(int(np.clip(c + d, 0, 255)) for c in base)


class Canvas:
    """A plate drawn in millimetres."""

    def __init__(self, w_mm, h_mm, k, bg, rng, split):
        self.k = k
        self.rng = rng
        self.split = split
        self.font = pick_font(rng, split)
        self.img = Image.new("RGB", (int(w_mm * k), int(h_mm * k)), bg)
        self.draw = ImageDraw.Draw(self.img)
        self.squeeze = float(rng.uniform(0.8, 1.1))
        self.spacing = float(rng.uniform(0.06, 0.2))

    def px(self, v):
        return int(round(v * self.k))

    def rect(self, x0, y0, x1, y1, fill=None, outline=None, width_mm=0.0, radius_mm=0.0):
        bx0, by0 = self.px(x0), self.px(y0)
        box = [bx0, by0, max(bx0, self.px(x1) - 1), max(by0, self.px(y1) - 1)]
        w = max(1, self.px(width_mm)) if outline is not None else 0
        if radius_mm > 0:
            self.draw.rounded_rectangle(box, radius=self.px(radius_mm), fill=fill, outline=outline, width=w)
        else:
            self.draw.rectangle(box, fill=fill, outline=outline, width=w)

    def text(self, s, x0, y0, x1, y1, color, align="center", font=None, squeeze=None, spacing=None):
        """Draw `s` with cap height y1 - y0, shrunk horizontally to fit x0..x1."""
        h = self.px(y1 - y0)
        m = text_mask(s, font or self.font, h, self.spacing if spacing is None else spacing,
                      self.squeeze if squeeze is None else squeeze)
        w_max = max(1, self.px(x1 - x0))
        if m.width > w_max:
            m = m.resize((w_max, m.height), Image.BILINEAR)
        if align == "center":
            x = self.px((x0 + x1) / 2) - m.width // 2
        elif align == "left":
            x = self.px(x0)
        else:
            x = self.px(x1) - m.width
        self.img.paste(Image.new("RGB", m.size, color), (x, self.px(y0)), m)

    def flag_kg(self, x0, y0, x1, y1):
        self.rect(x0, y0, x1, y1, fill=(228, 30, 38))
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (y1 - y0) * 0.3
        self.draw.ellipse([self.px(cx - r), self.px(cy - r), self.px(cx + r), self.px(cy + r)], fill=(255, 215, 0))

    def flag_kz(self, x0, y0, x1, y1):
        self.rect(x0, y0, x1, y1, fill=(0, 175, 202))
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2 - (y1 - y0) * 0.08, (y1 - y0) * 0.22
        self.draw.ellipse([self.px(cx - r), self.px(cy - r), self.px(cx + r), self.px(cy + r)], fill=(254, 197, 0))

    def flag_ru(self, x0, y0, x1, y1):
        h = (y1 - y0) / 3
        for i, c in enumerate([(255, 255, 255), (0, 57, 166), (213, 43, 30)]):
            self.rect(x0, y0 + i * h, x1, y0 + (i + 1) * h, fill=c)
        self.rect(x0, y0, x1, y1, outline=(60, 60, 60), width_mm=0.4)


def kg(rng, k, split):
    """Kyrgyzstan since 2016: region over flag and KG on the left, then `123 ABC`."""
    c = Canvas(520, 112, k, _off_white(rng), rng, split)
    ink = _ink(rng)
    c.rect(2, 2, 518, 110, outline=ink, width_mm=2.5, radius_mm=6)
    region = f"{rng.integers(1, 10):02d}"
    digits, letters = _pick(rng, DIGITS, 3), _pick(rng, LATIN, 3)
    c.text(region, 12, 9, 82, 40, ink)
    c.flag_kg(22, 46, 72, 76)
    c.text("KG", 22, 82, 72, 102, ink, squeeze=1.0)
    if rng.random() < 0.7:
        c.rect(92, 10, 94, 102, fill=ink)
    c.text(f"{digits} {letters}", 104, 18, 508, 94, ink)
    return Plate(c.img, region + digits + letters, "kg")


def kg_old(rng, k, split):
    """Kyrgyzstan before 2016: `B 1234 AB` in DIN 1451."""
    c = Canvas(520, 112, k, _off_white(rng), rng, split)
    ink = _ink(rng)
    c.rect(2, 2, 518, 110, outline=ink, width_mm=2.5, radius_mm=5)
    text = f"{_pick(rng, LATIN, 1)} {_pick(rng, DIGITS, 4)} {_pick(rng, LATIN, 2)}"
    x0 = 12
    if rng.random() < 0.5:
        c.flag_kg(10, 40, 46, 64)
        x0 = 54
    c.text(text, x0, 17, 508, 95, ink)
    return Plate(c.img, text.replace(" ", ""), "kg")


def kz(rng, k, split):
    """Kazakhstan since 2012: flag and KZ left, `123 ABC`, region box right; yellow/red variants."""
    variant = rng.choice(["white", "white", "white", "yellow", "red"])
    bg, ink = {"white": (_off_white(rng), _ink(rng)), "yellow": ((245, 200, 30), _ink(rng)),
               "red": ((200, 25, 30), (245, 245, 245))}[variant]
    c = Canvas(520, 112, k, bg, rng, split)
    c.rect(2, 2, 518, 110, outline=ink, width_mm=2.5, radius_mm=6)
    c.flag_kz(10, 12, 62, 50)
    c.text("KZ", 12, 62, 60, 96, ink, squeeze=1.0)
    n_letters = 3 if rng.random() < 0.8 else 2
    digits, letters = _pick(rng, DIGITS, 3), _pick(rng, LATIN, n_letters)
    region = f"{rng.integers(1, 21):02d}"
    c.text(f"{digits} {letters}", 70, 18, 420, 94, ink)
    c.rect(430, 10, 510, 102, outline=ink, width_mm=2.0)
    c.text(region, 436, 26, 504, 86, ink)
    return Plate(c.img, digits + letters + region, "kz")


def ru(rng, k, split):
    """Russia, GOST R 50577: `A123BC` (letters lower than digits), region box with RUS and flag; taxi variant."""
    taxi = rng.random() < 0.12
    c = Canvas(520, 112, k, (246, 196, 30) if taxi else _off_white(rng), rng, split)
    ink = _ink(rng)
    c.rect(2, 2, 518, 110, outline=ink, width_mm=2.5, radius_mm=6)
    region = f"{rng.integers(1, 100):02d}" if rng.random() < 0.75 else f"{rng.choice([1, 7])}{rng.integers(0, 10)}{rng.integers(0, 10)}"
    if region in ("00", "000"):
        region = "77"
    c.rect(378, 2, 381, 110, fill=ink)
    c.text(region, 386, 10, 512, 68, ink)
    c.text("RUS", 390, 78, 452, 96, ink, squeeze=1.0)
    c.flag_ru(458, 78, 506, 96)
    if taxi:
        letters, digits = _pick(rng, RU_LETTERS, 2), _pick(rng, DIGITS, 3)
        c.text(letters[0], 14, 28, 84, 86, ink)
        c.text(letters[1], 84, 28, 154, 86, ink)
        c.text(digits, 160, 14, 372, 94, ink)
        return Plate(c.img, letters + digits + region, "ru")
    l1, digits, l2 = _pick(rng, RU_LETTERS, 1), _pick(rng, DIGITS, 3), _pick(rng, RU_LETTERS, 2)
    c.text(l1, 14, 30, 72, 88, ink)
    c.text(digits, 80, 14, 252, 94, ink)
    c.text(l2, 258, 30, 372, 88, ink)
    return Plate(c.img, l1 + digits + l2 + region, "ru")


def eu(rng, k, split):
    """Common EU layout: blue band with stars and country code, black text."""
    c = Canvas(520, 112, k, _off_white(rng), rng, split)
    ink = _ink(rng)
    c.rect(2, 2, 518, 110, outline=ink, width_mm=2.0, radius_mm=5)
    c.rect(4, 4, 48, 108, fill=(0, 51, 153))
    for i in range(12):
        a = 2 * np.pi * i / 12
        x, y = 26 + 12 * np.cos(a), 34 + 12 * np.sin(a)
        c.draw.ellipse([c.px(x - 1.8), c.px(y - 1.8), c.px(x + 1.8), c.px(y + 1.8)], fill=(255, 204, 0))
    c.text(EU_CODES[rng.integers(len(EU_CODES))], 8, 66, 44, 96, (255, 255, 255), squeeze=1.0)
    form = rng.integers(4)
    if form == 0:  # German-like
        parts = [_pick(rng, LATIN, rng.integers(1, 4)), _pick(rng, LATIN, rng.integers(1, 3)), _pick(rng, DIGITS, rng.integers(1, 5))]
        text = " ".join(parts)
    elif form == 1:  # French-like
        text = f"{_pick(rng, LATIN, 2)}-{_pick(rng, DIGITS, 3)}-{_pick(rng, LATIN, 2)}"
    elif form == 2:  # Polish/Baltic-like
        text = f"{_pick(rng, LATIN, rng.integers(2, 4))} {_pick(rng, DIGITS + LATIN, rng.integers(3, 6))}"
    else:
        text = f"{_pick(rng, LATIN, 3)} {_pick(rng, DIGITS, 3)}"
    c.text(text, 56, 18, 510, 94, ink)
    return Plate(c.img, text.replace(" ", "").replace("-", ""), "eu")


def us(rng, k, split):
    """US-style: 12x6 inch, state name on top, slogan below, varied colours."""
    bgs = [(250, 250, 250), (235, 240, 250), (250, 245, 215), (245, 215, 60), (225, 235, 225), (240, 240, 235)]
    bg = bgs[rng.integers(len(bgs))]
    c = Canvas(305, 152, k, bg, rng, split)
    if rng.random() < 0.5:  # a soft gradient band, as many state plates have
        top = tuple(int(v) for v in rng.integers(120, 255, size=3))
        arr = np.asarray(c.img).astype(np.float32)
        t = np.linspace(1, 0, arr.shape[0])[:, None, None] ** 2 * rng.uniform(0.2, 0.7)
        arr = arr * (1 - t) + np.asarray(top, np.float32) * t
        c.img.paste(Image.fromarray(arr.astype(np.uint8)))
    inks = [(20, 30, 110), (130, 20, 20), (20, 20, 20), (20, 80, 30), (40, 40, 90)]
    ink = inks[rng.integers(len(inks))]
    c.rect(3, 3, 302, 149, outline=ink, width_mm=1.5, radius_mm=8)
    state = US_STATES[rng.integers(len(US_STATES))]
    state_ink = inks[rng.integers(len(inks))]
    c.text(state, 40, 10, 265, 32, state_ink, spacing=0.15)
    n = rng.integers(5, 8)
    body = _pick(rng, DIGITS + LATIN, n)
    if rng.random() < 0.4:
        body = _pick(rng, DIGITS, 1) + _pick(rng, LATIN, 3) + _pick(rng, DIGITS, 3)
    shown = body
    if rng.random() < 0.3:
        cut = rng.integers(2, len(body) - 1)
        shown = body[:cut] + (" " if rng.random() < 0.5 else "-") + body[cut:]
    c.text(shown, 18, 42, 287, 116, ink)
    if rng.random() < 0.8:
        c.text(US_SLOGANS[rng.integers(len(US_SLOGANS))], 50, 124, 255, 140, state_ink, spacing=0.12)
    if rng.random() < 0.3:  # registration sticker in a corner
        sx = 12 if rng.random() < 0.5 else 255
        c.rect(sx, 10, sx + 38, 34, fill=tuple(int(v) for v in rng.integers(0, 255, size=3)))
    return Plate(c.img, body, "us")


def br(rng, k, split):
    """Brazil / Mercosul: blue band with BRASIL, `ABC1D23`."""
    c = Canvas(400, 130, k, _off_white(rng), rng, split)
    ink = _ink(rng)
    c.rect(2, 2, 398, 128, outline=ink, width_mm=2.0, radius_mm=6)
    c.rect(4, 4, 396, 30, fill=(0, 56, 168))
    c.text("BRASIL", 140, 9, 260, 25, (255, 255, 255), squeeze=1.0)
    text = _pick(rng, LATIN, 3) + _pick(rng, DIGITS, 1) + _pick(rng, LATIN + DIGITS, 1) + _pick(rng, DIGITS, 2)
    c.text(text, 14, 42, 386, 118, ink)
    return Plate(c.img, text, "br")


LAYOUTS = {"kg": kg, "kg_old": kg_old, "kz": kz, "ru": ru, "eu": eu, "us": us, "br": br}


def render_plate(rng: np.random.Generator, split: str = "train", width_px: int = 320, country: str | None = None) -> Plate:
    mix = TEST_MIX if split == "test" else TRAIN_MIX
    if country is None:
        names = list(mix)
        w = np.asarray([mix[n] for n in names], dtype=np.float64)
        country = names[rng.choice(len(names), p=w / w.sum())]
    mm_w = 305 if country == "us" else 400 if country == "br" else 520
    return LAYOUTS[country](rng, max(0.15, width_px / mm_w), split)
