"""Score the exported plate detector alone on a folder of labelled photos.

    cd models && python -m plate_detector.evaluate kozomol-detector/detector.onnx \
        ../../shared/data/alpr-dev/photos

The folder is in alpr-dev's format (NAME.jpg with NAME.txt: tab-separated
`file x y w h plate`). Each photo is letterboxed as the recognizer does (longer side to
640, Pillow BILINEAR, top left, grey 114); a plate counts as found when a box scored at
least the threshold overlaps it at IoU >= 0.5 after NMS (0.45). Prints, per threshold,
the recall and the boxes a photo that match no plate, and the model's median time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from synth.scenes import _box_iou as iou

from .dataset import SIZE
from .train import nms


def letterbox(img: Image.Image):
    scale = SIZE / max(img.size)
    small = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    canvas = np.full((SIZE, SIZE, 3), 114, np.uint8)
    canvas[: small.height, : small.width] = np.asarray(small)
    return canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0, scale


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("photos")
    ap.add_argument("--thresholds", default="0.1,0.2,0.3,0.4")
    a = ap.parse_args(argv)
    thresholds = [float(t) for t in a.thresholds.split(",")]
    session = ort.InferenceSession(a.model)
    found = {t: 0 for t in thresholds}
    spare = {t: 0 for t in thresholds}
    plates, times = 0, []
    photos = sorted(Path(a.photos).glob("*.jpg"))
    for path in photos:
        x, scale = letterbox(Image.open(path).convert("RGB"))
        start = time.perf_counter()
        out = session.run(None, {"image": x})[0][0].tolist()
        times.append(time.perf_counter() - start)
        truth = []
        for line in path.with_suffix(".txt").read_text().strip().split("\n"):
            x0, y0, w, h = (float(v) * scale for v in line.split("\t")[1:5])
            truth.append((x0, y0, x0 + w, y0 + h))
        plates += len(truth)
        for t in thresholds:
            kept = nms([b for b in out if b[4] >= t], 0.45)
            used = set()
            for box in truth:
                overlaps = [iou(b, box) for b in kept]
                if overlaps and max(overlaps) >= 0.5:
                    found[t] += 1
                    used.add(int(np.argmax(overlaps)))
            spare[t] += len(kept) - len(used)
    print(json.dumps({
        "photos": len(photos), "plates": plates,
        "median_ms": round(1000 * float(np.median(times)), 1),
        "thresholds": {str(t): {"recall": round(found[t] / max(1, plates), 4),
                                "false_boxes_per_photo": round(spare[t] / max(1, len(photos)), 2)}
                       for t in thresholds},
    }))


if __name__ == "__main__":
    main()
