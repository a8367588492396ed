"""Training samples: whole scenes with plate boxes (detector) and plate crops with text (reader).

Backgrounds are the licence-clean Open Images photos in
`../shared/data/plates-train/openimages` (their own plates keep their labels)
and procedural streets with simple cars.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import ALPHABET
from .effects import degrade, dirt, paste_warped, random_quad, rounded_mask
from .fonts import pick_font, text_mask
from .plates import render_plate

# Read in place beside the checkout; KOZOMOL_OPENIMAGES points elsewhere (a training
# machine that holds a copy outside any checkout).
OPENIMAGES = Path(os.environ.get("KOZOMOL_OPENIMAGES")
                  or Path(__file__).resolve().parents[3] / "shared" / "data" / "plates-train" / "openimages")
LETTERBOX_FILL = 114


@lru_cache(maxsize=1)
def photo_index(root: str = str(OPENIMAGES)):
    """Stems of the Open Images photos with their YOLO plate boxes (normalised cx, cy, w, h)."""
    out = []
    root_p = Path(root)
    for img in sorted((root_p / "images").glob("*.jpg")):
        lab = root_p / "labels" / (img.stem + ".txt")
        boxes = []
        if lab.exists():
            for line in lab.read_text().split("\n"):
                f = line.split()
                if len(f) == 5:
                    boxes.append([float(v) for v in f[1:]])
        out.append((str(img), np.asarray(boxes, np.float32).reshape(-1, 4)))
    return out


@lru_cache(maxsize=512)
def _photo(path: str) -> Image.Image:
    return Image.open(path).convert("RGB")


def _rand_color(rng, lo=0, hi=255):
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def procedural_background(rng, w, h) -> Image.Image:
    """Sky/buildings/road with lane marks and clutter: cheap but varied."""
    top, bottom = np.asarray(_rand_color(rng, 60, 230), np.float32), np.asarray(_rand_color(rng, 30, 160), np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()
    arr += rng.normal(0, rng.uniform(2, 10), (h, w, 1))
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 10))):  # buildings, poles, signs
        x, y = rng.uniform(-0.2, 1) * w, rng.uniform(-0.2, 0.8) * h
        d.rectangle([x, y, x + rng.uniform(0.02, 0.5) * w, y + rng.uniform(0.02, 0.6) * h], fill=_rand_color(rng))
    for _ in range(int(rng.integers(0, 6))):  # lane marks
        x, y = rng.uniform(0, w), rng.uniform(0.5, 1) * h
        d.line([x, y, x + rng.uniform(-0.3, 0.3) * w, y + rng.uniform(0.05, 0.4) * h], fill=(235, 235, 225),
               width=int(rng.integers(1, 6)))
    return img


def photo_background(rng, w, h) -> Image.Image:
    idx = photo_index()
    path, _ = idx[rng.integers(len(idx))]
    p = _photo(path)
    s = rng.uniform(0.5, 2.0)
    cw, ch = max(8, int(w / s)), max(8, int(h / s))
    x = int(rng.integers(0, max(1, p.width - cw + 1)))
    y = int(rng.integers(0, max(1, p.height - ch + 1)))
    return p.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)


def draw_car(rng, canvas: Image.Image, cx, bottom, width):
    """A box-shaped car seen from front or back; returns where its plate centre goes."""
    d = ImageDraw.Draw(canvas)
    h = width * rng.uniform(0.55, 0.85)
    body = _rand_color(rng)
    x0, x1, y0 = cx - width / 2, cx + width / 2, bottom - h
    d.rounded_rectangle([x0, y0, x1, bottom], radius=width * 0.08, fill=body)
    shade = tuple(max(0, c - 60) for c in body)
    d.rectangle([x0 + width * 0.1, y0 + h * 0.05, x1 - width * 0.1, y0 + h * 0.4], fill=_rand_color(rng, 10, 90))
    lamp = (255, 230, 180) if rng.random() < 0.5 else (200, 20, 20)
    for lx in (x0 + width * 0.04, x1 - width * 0.2):
        d.rectangle([lx, y0 + h * 0.5, lx + width * 0.16, y0 + h * 0.62], fill=lamp)
    d.rectangle([x0, bottom - h * 0.12, x1, bottom], fill=shade)
    return cx, bottom - h * 0.27


def distractor_text(rng, canvas: Image.Image):
    """Signs and lettering that are not plates, so the detector learns text alone is no plate."""
    w, h = canvas.size
    n = int(rng.integers(1, 8))
    s = "".join(ALPHABET[i] for i in rng.integers(len(ALPHABET), size=n))
    th = max(4, int(rng.uniform(0.01, 0.08) * h))
    m = text_mask(s, pick_font(rng, "train"), th, 0.15)
    x, y = int(rng.uniform(-0.1, 0.95) * w), int(rng.uniform(0, 0.95) * h)
    if rng.random() < 0.6:
        pad = int(th * rng.uniform(0.2, 1.5))
        ImageDraw.Draw(canvas).rectangle([x - pad, y - pad, x + m.width + pad, y + th + pad], fill=_rand_color(rng))
    canvas.paste(Image.new("RGB", m.size, _rand_color(rng)), (x, y), m)


def _box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def _place_plate(rng, canvas, boxes, cx, cy, width_px, split):
    plate = render_plate(rng, split, width_px=max(40, int(width_px * 2)))
    img = plate.image
    if rng.random() < 0.3:
        img = dirt(rng, img)
    scale = width_px / img.width
    quad = random_quad(rng, img.width * scale, img.height * scale, max_rot_deg=10, persp=0.12, shear=0.08)
    quad = quad + np.array([cx, cy])
    x0, y0 = quad.min(0)
    x1, y1 = quad.max(0)
    full = (x0, y0, x1, y1)
    if any(_box_iou(full, b) > 0.0 for b in boxes):
        return
    area = (x1 - x0) * (y1 - y0)
    got = paste_warped(canvas, img, quad, rounded_mask(img.size, max(1, img.height // 12)))
    if got is None:
        return
    cx0, cy0 = max(0.0, x0), max(0.0, y0)
    cx1, cy1 = min(canvas.width, x1), min(canvas.height, y1)
    # Half-visible plates at the frame edge still count: real frames cut plates too.
    if (cx1 - cx0) * (cy1 - cy0) >= 0.35 * area:
        boxes.append((cx0, cy0, cx1, cy1))


def detector_sample(rng: np.random.Generator, size: int = 384, split: str = "train"):
    """One square training scene in letterbox pixel space. Returns (uint8 HxWx3, float32 [n, 4] boxes x1y1x2y2)."""
    boxes: list[tuple[float, float, float, float]] = []
    if rng.random() < 0.5:
        idx = photo_index()
        path, yolo = idx[rng.integers(len(idx))]
        p = _photo(path)
        s = float(np.exp(rng.uniform(np.log(0.35), np.log(1.8))))
        pw, ph = int(p.width * s), int(p.height * s * rng.uniform(0.8, 1.25))
        canvas = procedural_background(rng, size, size) if (pw < size or ph < size) else Image.new("RGB", (size, size))
        ox = int(rng.integers(min(0, size - pw), max(0, size - pw) + 1))
        oy = int(rng.integers(min(0, size - ph), max(0, size - ph) + 1))
        canvas.paste(p.resize((pw, ph), Image.BILINEAR), (ox, oy))
        for cx, cy, bw, bh in yolo:
            b = ((cx - bw / 2) * pw + ox, (cy - bh / 2) * ph + oy, (cx + bw / 2) * pw + ox, (cy + bh / 2) * ph + oy)
            area = (b[2] - b[0]) * (b[3] - b[1])
            c = (max(0.0, b[0]), max(0.0, b[1]), min(size, b[2]), min(size, b[3]))
            if c[2] - c[0] > 1 and c[3] - c[1] > 1 and (c[2] - c[0]) * (c[3] - c[1]) >= 0.5 * area:
                boxes.append(c)
            elif c[2] - c[0] > 0 and c[3] - c[1] > 0:
                # A sliver of a real plate would be an unlabelled positive: paint it over.
                ImageDraw.Draw(canvas).rectangle(c, fill=_rand_color(rng))
        n_free = int(rng.choice([0, 0, 1, 1, 2]))
    else:
        canvas = procedural_background(rng, size, size)
        n_free = int(rng.choice([0, 1, 1, 2, 3]))
        for _ in range(int(rng.integers(0, 4))):
            plate_w = float(np.exp(rng.uniform(np.log(12), np.log(200))))
            car_w = plate_w * rng.uniform(4.0, 7.0)
            cx, cy = draw_car(rng, canvas, rng.uniform(0, size), rng.uniform(0.3, 1.2) * size, car_w)
            _place_plate(rng, canvas, boxes, cx, cy, plate_w, split)
    for _ in range(int(rng.integers(0, 5))):
        distractor_text(rng, canvas)
    for _ in range(n_free):
        plate_w = float(np.exp(rng.uniform(np.log(12), np.log(220))))
        _place_plate(rng, canvas, boxes, rng.uniform(0, size), rng.uniform(0, size), plate_w, split)
    if rng.random() < 0.2:  # letterbox band of a 16:9 frame
        band = int(rng.uniform(0.05, 0.4) * size)
        top = rng.random() < 0.5
        ImageDraw.Draw(canvas).rectangle([0, 0, size, band] if top else [0, size - band, size, size],
                                         fill=(LETTERBOX_FILL,) * 3)
        boxes = [b for b in boxes if (b[1] > band if top else b[3] < size - band)]
    canvas = degrade(rng, canvas, strength=0.7, split=split)
    return np.asarray(canvas, np.uint8), np.asarray(boxes, np.float32).reshape(-1, 4)


def _crop_background(rng, w, h) -> Image.Image:
    if rng.random() < 0.5:
        return photo_background(rng, w, h)
    base = np.asarray(_rand_color(rng), np.float32)
    arr = np.broadcast_to(base, (h, w, 3)) + rng.normal(0, rng.uniform(1, 12), (h, w, 1))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def reader_sample(rng: np.random.Generator, split: str = "train", out_w: int = 192, out_h: int = 48):
    """One plate crop as the recognizer would cut it from a detection, stretched to out_w x out_h.

    Returns (uint8 out_h x out_w x 3, text, country).
    """
    plate = render_plate(rng, split, width_px=int(rng.uniform(180, 420)))
    img = plate.image
    if rng.random() < 0.3:
        img = dirt(rng, img)
    W, H = int(img.width * 1.6), int(img.height * 2.6)
    canvas = _crop_background(rng, W, H)
    quad = random_quad(rng, img.width, img.height, max_rot_deg=8, persp=0.08, shear=0.05) + np.array([W / 2, H / 2])
    paste_warped(canvas, img, quad, rounded_mask(img.size, max(1, img.height // 12)))
    x0, y0 = quad.min(0)
    x1, y1 = quad.max(0)
    bw, bh = x1 - x0, y1 - y0
    # Detector boxes are loose or tight and a little off-centre.
    cx0 = x0 - rng.uniform(-0.03, 0.10) * bw
    cx1 = x1 + rng.uniform(-0.03, 0.10) * bw
    cy0 = y0 - rng.uniform(-0.06, 0.22) * bh
    cy1 = y1 + rng.uniform(-0.06, 0.22) * bh
    crop = canvas.crop((int(cx0), int(cy0), int(np.ceil(cx1)), int(np.ceil(cy1))))
    # Resolution of the plate in the camera frame: 40..300 px wide.
    sw = int(np.exp(rng.uniform(np.log(40), np.log(300))))
    sh = max(8, int(round(sw * crop.height / max(1, crop.width))))
    crop = crop.resize((sw, sh), Image.BOX if sw < crop.width else Image.BILINEAR)
    crop = degrade(rng, crop, strength=1.0, split=split)
    crop = crop.resize((out_w, out_h), Image.BILINEAR)
    return np.asarray(crop, np.uint8), plate.text, plate.country
