"""Render reader training data once, so training epochs cost no rendering.

    cd models && python -m plate_reader.dataset OUT.npz --count 150000 [--split train] [--seed 1]

Writes `images` (uint8, N x HEIGHT x WIDTH, grey) and `texts` (canonical plate text).
Sample i comes from numpy.random.default_rng([seed, i]): a set is reproducible.
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool

import numpy as np
from PIL import Image

from synth.effects import degrade, jpeg, paste_warped, random_quad, rounded_mask
from synth.make_eval_set import flat_plate
from synth.plates import TRAIN_MIX
from synth.scenes import _crop_background, reader_sample

HEIGHT, WIDTH = 32, 128


def grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as Pillow's "L" conversion and the recognizer compute it."""
    return np.asarray(Image.fromarray(rgb).convert("L"), np.uint8)


def frame_crop(rng, split):
    """A plate as the recognizer cuts it from a frame: degraded at frame scale, then shrunk.

    Margins run from a little inside the plate to a third of its height outside, as a box
    assembled from text lines or grown around them does.
    """
    pw = rng.uniform(160, 420)
    plate, img = flat_plate(rng, pw, list(TRAIN_MIX), split)
    ph = pw * img.height / img.width
    cw, ch = int(pw * 1.6), int(ph * 3.0)
    canvas = _crop_background(rng, cw, ch)
    quad = random_quad(rng, pw, ph, max_rot_deg=6, persp=0.08, shear=0.05) + np.array([cw / 2, ch / 2])
    paste_warped(canvas, img, quad, rounded_mask(img.size, max(1, img.height // 12)))
    canvas = degrade(rng, canvas, strength=rng.uniform(0.3, 1.0), split=split)
    (x0, y0), (x1, y1) = quad.min(0), quad.max(0)
    bw, bh = x1 - x0, y1 - y0
    box = (x0 - rng.uniform(-0.03, 0.15) * bw, y0 - rng.uniform(-0.06, 0.35) * bh,
           x1 + rng.uniform(-0.03, 0.15) * bw, y1 + rng.uniform(-0.06, 0.35) * bh)
    out = canvas.crop(tuple(int(round(v)) for v in box))
    sw = int(np.exp(rng.uniform(np.log(50), np.log(320))))
    out = out.resize((sw, max(8, round(sw * out.height / out.width))), Image.BOX)
    out = jpeg(rng, out, int(rng.integers(40, 95)))
    return np.asarray(out.resize((WIDTH, HEIGHT), Image.BILINEAR), np.uint8), plate.text


def _one(job):
    seed, i, split = job
    rng = np.random.default_rng([seed, i])
    if rng.random() < 0.5:
        img, text, _country = reader_sample(rng, split=split, out_w=WIDTH, out_h=HEIGHT)
    else:
        img, text = frame_crop(rng, split)
    return grey(img), text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=150_000)
    ap.add_argument("--split", default="train")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    images = np.zeros((a.count, HEIGHT, WIDTH), np.uint8)
    texts = []
    with Pool(a.jobs) as pool:
        jobs = ((a.seed, i, a.split) for i in range(a.count))
        for i, (img, text) in enumerate(pool.imap(_one, jobs, chunksize=256)):
            images[i] = img
            texts.append(text)
            if (i + 1) % 10_000 == 0:
                print(f"{i + 1}/{a.count}", flush=True)
    np.savez(a.out, images=images, texts=np.asarray(texts))


if __name__ == "__main__":
    main()
