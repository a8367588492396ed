"""Render detector training scenes once, so training epochs cost no rendering.

    cd models && python -m plate_detector.dataset OUT.npz --count 20000 [--split train] [--seed 1]

Writes `images` (uint8, N x SIZE x SIZE x 3, RGB) and `boxes` (float32, N x MAX_BOXES x 4,
x1 y1 x2 y2 in input pixels, unused rows all -1). Scene i comes from
numpy.random.default_rng([seed, i]): a set is reproducible.
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool

import numpy as np

from synth.scenes import detector_sample

SIZE = 640
MAX_BOXES = 16


def _one(job):
    seed, i, split = job
    rng = np.random.default_rng([seed, i])
    img, boxes = detector_sample(rng, size=SIZE, split=split)
    out = np.full((MAX_BOXES, 4), -1.0, np.float32)
    boxes = boxes[:MAX_BOXES]
    out[: len(boxes)] = boxes
    return img, out


def render(count: int, seed: int, split: str, jobs: int):
    images = np.zeros((count, SIZE, SIZE, 3), np.uint8)
    boxes = np.zeros((count, MAX_BOXES, 4), np.float32)
    with Pool(jobs) as pool:
        work = ((seed, i, split) for i in range(count))
        for i, (img, b) in enumerate(pool.imap(_one, work, chunksize=32)):
            images[i], boxes[i] = img, b
            if (i + 1) % 5_000 == 0:
                print(f"rendered {i + 1}/{count}", flush=True)
    return images, boxes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--split", default="train")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    images, boxes = render(a.count, a.seed, a.split, a.jobs)
    np.savez(a.out, images=images, boxes=boxes)


if __name__ == "__main__":
    main()
