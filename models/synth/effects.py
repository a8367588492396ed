"""Geometry and image degradations shared by the scene and crop renderers.

`rain` is the held-out effect: it is applied only to the synthetic test set,
never to training data.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def perspective_coeffs(dst, src):
    """PIL PERSPECTIVE coefficients mapping output points `dst` to input points `src` (4 x 2 each)."""
    a = []
    b = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.extend([u, v])
    return np.linalg.solve(np.asarray(a, np.float64), np.asarray(b, np.float64)).tolist()


def random_quad(rng, w, h, max_rot_deg=8.0, persp=0.08, shear=0.05):
    """Corners (TL, TR, BR, BL) of a w x h plate after rotation, shear and perspective, centred on 0."""
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float64)
    pts[:, 0] += pts[:, 1] * rng.uniform(-shear, shear) * 2
    # Perspective: one side shorter than the other (camera looking from the side or from above).
    sx, sy = rng.uniform(-persp, persp), rng.uniform(-persp, persp)
    pts[:, 1] *= 1 + sx * np.sign(pts[:, 0])
    pts[:, 0] *= 1 + sy * np.sign(pts[:, 1])
    pts += rng.uniform(-persp / 3, persp / 3, size=pts.shape) * np.array([w, h])
    a = np.deg2rad(rng.uniform(-max_rot_deg, max_rot_deg))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T


def paste_warped(canvas: Image.Image, patch: Image.Image, quad, mask: Image.Image | None = None):
    """Warp `patch` onto `canvas` so its corners land on `quad` (canvas pixels). Returns the clipped box or None."""
    quad = np.asarray(quad, np.float64)
    x0, y0 = np.floor(quad.min(0)).astype(int)
    x1, y1 = np.ceil(quad.max(0)).astype(int)
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(canvas.width, x1), min(canvas.height, y1)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return None
    # Pre-shrink so the perspective resampling does not alias.
    tw = max(2, int(np.linalg.norm(quad[1] - quad[0]) * 1.5))
    if patch.width > tw:
        th = max(2, int(patch.height * tw / patch.width))
        patch = patch.resize((tw, th), Image.BOX)
        if mask is not None:
            mask = mask.resize((tw, th), Image.BOX)
    pw, ph = patch.size
    src = [(0, 0), (pw, 0), (pw, ph), (0, ph)]
    dst = [(x - cx0, y - cy0) for x, y in quad]
    coeffs = perspective_coeffs(dst, src)
    size = (cx1 - cx0, cy1 - cy0)
    warped = patch.transform(size, Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    m = mask if mask is not None else Image.new("L", patch.size, 255)
    wm = m.transform(size, Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    canvas.paste(warped, (cx0, cy0), wm)
    return (cx0, cy0, cx1, cy1)


def rounded_mask(size, radius):
    m = Image.new("L", size, 0)
    ImageDraw.Draw(m).rounded_rectangle([0, 0, size[0] - 1, size[1] - 1], radius=radius, fill=255)
    return m


def dirt(rng, img: Image.Image, amount=None) -> Image.Image:
    """Brownish blotches and grime on a flat plate."""
    amount = rng.uniform(0.05, 0.5) if amount is None else amount
    w, h = img.size
    layer = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(3, 25))):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.01, 0.12) * w
        d.ellipse([x - r, y - r * rng.uniform(0.3, 1), x + r, y + r * rng.uniform(0.3, 1)], fill=int(rng.integers(60, 255)))
    layer = layer.filter(ImageFilter.GaussianBlur(max(1, w / 80)))
    arr = np.asarray(img).astype(np.float32)
    a = np.asarray(layer).astype(np.float32)[..., None] / 255 * amount
    col = np.array([rng.uniform(60, 120), rng.uniform(50, 90), rng.uniform(30, 60)], np.float32)
    return Image.fromarray((arr * (1 - a) + col * a).clip(0, 255).astype(np.uint8))


def gaussian_blur(img, r):
    return img.filter(ImageFilter.GaussianBlur(r)) if r > 0.2 else img


def motion_blur(rng, arr, length):
    n = max(2, int(length))
    a = rng.uniform(0, np.pi)
    dx, dy = np.cos(a), np.sin(a)
    acc = np.zeros_like(arr)
    for i in range(n):
        t = i - (n - 1) / 2
        acc += np.roll(arr, (int(round(t * dy)), int(round(t * dx))), axis=(0, 1))
    return acc / n


def glare(rng, arr, strength=None):
    h, w = arr.shape[:2]
    s = rng.uniform(0.3, 1.0) if strength is None else strength
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    rx, ry = rng.uniform(0.1, 0.6) * w, rng.uniform(0.2, 1.0) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
    return arr + (255 - arr) * (g[..., None] * s)


def shadow(rng, arr):
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    off = rng.uniform(-0.3, 0.3) * (w + h)
    side = (xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a) > off
    k = rng.uniform(0.35, 0.75)
    return np.where(side[..., None], arr * k, arr)


def night(rng, arr):
    g = rng.uniform(0.15, 0.45)
    tint = np.array([rng.uniform(0.8, 1.1), rng.uniform(0.8, 1.0), rng.uniform(0.7, 1.1)], np.float32)
    out = 255 * (arr / 255) ** rng.uniform(1.0, 1.8) * g * tint
    return out + rng.normal(0, rng.uniform(3, 12), arr.shape)


def low_contrast(rng, arr):
    c = rng.uniform(0.3, 0.7)
    m = arr.mean() + rng.uniform(-30, 30)
    return m + (arr - m) * c


def noise(rng, arr, sigma=None):
    s = rng.uniform(2, 14) if sigma is None else sigma
    return arr + rng.normal(0, s, arr.shape)


def rain(rng, img: Image.Image) -> Image.Image:
    """Held-out effect: bright diagonal streaks with a slight haze."""
    w, h = img.size
    layer = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(layer)
    a = rng.uniform(-0.5, 0.5)
    for _ in range(int(rng.integers(20, 80))):
        x, y = rng.uniform(-0.2 * w, w), rng.uniform(0, h)
        ln = rng.uniform(0.1, 0.4) * h
        d.line([x, y, x + ln * np.sin(a), y + ln * np.cos(a)], fill=int(rng.integers(80, 200)), width=1)
    arr = np.asarray(img).astype(np.float32)
    arr = arr * 0.85 + 35
    s = np.asarray(layer).astype(np.float32)[..., None] / 255
    return Image.fromarray((arr * (1 - s) + 230 * s).clip(0, 255).astype(np.uint8))


def jpeg(rng, img: Image.Image, q=None) -> Image.Image:
    q = int(rng.integers(20, 95)) if q is None else q
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def degrade(rng, img: Image.Image, strength=1.0, split="train") -> Image.Image:
    """Random photometric degradations of a finished image (crop or scene)."""
    arr = np.asarray(img).astype(np.float32)
    if rng.random() < 0.25 * strength:
        arr = glare(rng, arr)
    if rng.random() < 0.2 * strength:
        arr = shadow(rng, arr)
    if rng.random() < 0.15 * strength:
        arr = night(rng, arr)
    elif rng.random() < 0.2 * strength:
        arr = low_contrast(rng, arr)
    if rng.random() < 0.5:
        # Colour cast / white balance and exposure.
        arr = arr * rng.uniform(0.85, 1.15, size=3) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    if rng.random() < 0.2 * strength:
        arr = motion_blur(rng, arr, rng.uniform(2, 7))
    if rng.random() < 0.5:
        arr = noise(rng, arr)
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if split == "test" and rng.random() < 0.35:
        img = rain(rng, img)
    if rng.random() < 0.4 * strength:
        img = gaussian_blur(img, rng.uniform(0.3, 1.6))
    if rng.random() < 0.6:
        img = jpeg(rng, img)
    return img
