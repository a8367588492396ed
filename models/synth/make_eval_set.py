"""Render a synthetic evaluation set in the folder formats `eval-alpr` reads.

    cd models   # with numpy and Pillow, e.g. ppocr-v4/.venv/bin/python
    python -m synth.make_eval_set OUT [--count 200] [--countries kg,kz,ru] [--seed 20261203]
    python -m synth.make_eval_set --crops OUT --count 300

Photos mode (default): OUT/NAME.jpg, 1920x1080 street scenes with one plate (sometimes two),
and OUT/NAME.txt beside each, one line per plate, tab-separated:
`NAME.jpg  x  y  w  h  PLATE` (integer axis-aligned box of the plate's four warped corners).
Crops mode (--crops): OUT/NAME.jpg tight plate crops and OUT/groundtruth.csv with
header-less lines `file,state,plate` (state = country code, lower case).
PLATE is the canonical text: upper case, no spaces, Cyrillic letters as their Latin
look-alikes, no country marks ("KG", "RUS").

Held-out split (`--split test`, the default), as the generator defines it:
- fonts (fonts.py): the ParaType faces PTS75F, PTN77F and PTM55F are used only for test;
  training draws with OpenDIN, DejaVu, Liberation, Roboto, JetBrains Mono and Quicksand
  (the last two for their flat-topped 3). (So test KG-old plates are
  drawn in PT, not DIN: that measures unseen type, not the real KG-old face.)
- effects (effects.py): `rain` (streaks with haze) is applied only when split == "test",
  to about a third of the images, on top of the shared degradations.
- plate mix (plates.py TEST_MIX): `kg` here means KG 2016 and KG-old in 35:10.
Everything is procedural: no Open Images photos are used. Sample i is drawn from
numpy.random.default_rng([seed, mode, i]), so a set is reproducible and sample i is the
same whatever --count. OUT must be new or empty.
"""

from __future__ import annotations

import argparse
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from .effects import degrade, dirt, gaussian_blur, glare, jpeg, paste_warped, random_quad, rounded_mask
from .plates import LAYOUTS, TEST_MIX, TRAIN_MIX, render_plate
from .scenes import distractor_text, draw_car, procedural_background

W, H = 1920, 1080
JPEG_QUALITY = 90


def pick_country(rng, countries, split):
    """A layout among `countries`, weighted by the split's mix; `kg` brings `kg_old` along."""
    mix = TEST_MIX if split == "test" else TRAIN_MIX
    names = list(countries) + (["kg_old"] if "kg" in countries and "kg_old" not in countries else [])
    w = np.asarray([mix.get(n, 10) for n in names], np.float64)
    return names[rng.choice(len(names), p=w / w.sum())]


def flat_plate(rng, width_px, countries, split):
    """A flat plate rendered at twice its target width (warping shrinks it), with dirt and glare sometimes."""
    plate = render_plate(rng, split, width_px=int(width_px * 2), country=pick_country(rng, countries, split))
    img = plate.image
    if rng.random() < 0.3:
        img = dirt(rng, img)
    if rng.random() < 0.2:  # a reflection on the plate itself
        arr = glare(rng, np.asarray(img).astype(np.float32), rng.uniform(0.2, 0.6))
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    return plate, img


def photo(rng, countries, split):
    """One 1920x1080 scene. Returns (image, [(x, y, w, h, text)])."""
    canvas = procedural_background(rng, W, H)
    n = 2 if rng.random() < 0.2 else 1
    widths = rng.uniform(140, 260 if n == 2 else 400, size=n)
    # Plate centres: one anywhere, or two in separate halves of the frame.
    xs = [rng.uniform(0.15, 0.85) * W] if n == 1 else [rng.uniform(0.1, 0.4) * W, rng.uniform(0.6, 0.9) * W]
    ys = rng.uniform(0.3, 0.85, size=n) * H
    centres = []
    for cx, cy, pw in zip(xs, ys, widths):  # all cars first, so no car paints over a plate
        if rng.random() < 0.85:
            car_w = pw * rng.uniform(3.4, 4.5)
            cx, cy = draw_car(rng, canvas, cx, cy + 0.19 * car_w, car_w)
        centres.append((cx, cy))
    for _ in range(int(rng.integers(0, 4))):
        distractor_text(rng, canvas)
    labels = []
    for (cx, cy), pw in zip(centres, widths):
        plate, img = flat_plate(rng, pw, countries, split)
        quad = random_quad(rng, pw, pw * img.height / img.width, max_rot_deg=10, persp=0.12, shear=0.08)
        lo, hi = quad.min(0), quad.max(0)
        # Keep the whole plate in frame, 8 px from the edge.
        cx = float(np.clip(cx, 8 - lo[0], W - 8 - hi[0]))
        cy = float(np.clip(cy, 8 - lo[1], H - 8 - hi[1]))
        quad = quad + np.array([cx, cy])
        paste_warped(canvas, img, quad, rounded_mask(img.size, max(1, img.height // 12)))
        x0, y0 = np.floor(quad.min(0)).astype(int)
        x1, y1 = np.ceil(quad.max(0)).astype(int)
        labels.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0), plate.text))
    if rng.random() < 0.3:  # a soft camera: lose resolution, keep the frame size
        s = rng.uniform(0.45, 0.8)
        canvas = canvas.resize((int(W * s), int(H * s)), Image.BOX).resize((W, H), Image.BILINEAR)
    return degrade(rng, canvas, strength=0.7, split=split), labels


def crop(rng, countries, split):
    """One tight plate crop, as cut from a camera frame. Returns (image, text, state)."""
    pw = rng.uniform(200, 400)
    plate, img = flat_plate(rng, pw, countries, split)
    ph = pw * img.height / img.width
    cw, ch = int(pw * 1.5), int(ph * 2.5)
    base = np.asarray([rng.integers(0, 256) for _ in range(3)], np.float32)
    bg = np.broadcast_to(base, (ch, cw, 3)) + rng.normal(0, rng.uniform(1, 12), (ch, cw, 1))
    canvas = Image.fromarray(bg.clip(0, 255).astype(np.uint8))
    quad = random_quad(rng, pw, ph, max_rot_deg=5, persp=0.06, shear=0.04) + np.array([cw / 2, ch / 2])
    paste_warped(canvas, img, quad, rounded_mask(img.size, max(1, img.height // 12)))
    # Degrade at render scale, as a camera frame is, then shrink: rain and noise stay frame-sized.
    canvas = degrade(rng, canvas, strength=1.0, split=split)
    (x0, y0), (x1, y1) = quad.min(0), quad.max(0)
    mx, my = rng.uniform(0, 0.06) * (x1 - x0), rng.uniform(0, 0.12) * (y1 - y0)
    out = canvas.crop((int(x0 - mx), int(y0 - my), int(np.ceil(x1 + mx)), int(np.ceil(y1 + my))))
    # Resolution of the plate in the camera frame: 80..320 px wide.
    sw = int(np.exp(rng.uniform(np.log(80), np.log(320))))
    out = out.resize((sw, max(8, round(sw * out.height / out.width))), Image.BOX)
    out = gaussian_blur(out, rng.uniform(0.3, 0.8)) if rng.random() < 0.3 else out
    return jpeg(rng, out, int(rng.integers(40, 95))), plate.text, plate.country


def _render(job):
    out, mode, i, countries, split, seed = job
    rng = np.random.default_rng([seed, 1 if mode == "crops" else 0, i])
    if mode == "crops":
        img, text, state = crop(rng, countries, split)
        name = f"{state}_{i:04d}.jpg"
        img.save(out / name, quality=JPEG_QUALITY)
        return f"{name},{state},{text}\n"
    img, labels = photo(rng, countries, split)
    name = f"scene_{i:04d}"
    img.save(out / f"{name}.jpg", quality=JPEG_QUALITY)
    lines = "".join(f"{name}.jpg\t{x}\t{y}\t{w}\t{h}\t{t}\n" for x, y, w, h, t in labels)
    (out / f"{name}.txt").write_text(lines)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--crops", action="store_true", help="tight crops with groundtruth.csv instead of photos")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--countries", default="kg,kz,ru")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--split", default="test", choices=["test", "train"])
    a = ap.parse_args(argv)
    countries = [c.strip().lower() for c in a.countries.split(",") if c.strip()]
    bad = [c for c in countries if c not in LAYOUTS]
    if bad or not countries:
        sys.exit(f"unknown countries {bad}; known: {','.join(LAYOUTS)}")
    if a.out.exists() and any(a.out.iterdir()):
        sys.exit(f"{a.out} is not empty; give a new or empty folder")
    a.out.mkdir(parents=True, exist_ok=True)
    mode = "crops" if a.crops else "photos"
    jobs = [(a.out, mode, i, countries, a.split, a.seed) for i in range(a.count)]
    with Pool() as pool:
        rows = pool.map(_render, jobs, chunksize=4)
    if mode == "crops":
        (a.out / "groundtruth.csv").write_text("".join(rows))
    print(f"wrote {a.count} {mode} ({a.split} split, {','.join(countries)}) to {a.out}")


if __name__ == "__main__":
    main()
