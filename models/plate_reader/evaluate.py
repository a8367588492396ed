"""Score the exported reader alone on a folder of plate crops (`groundtruth.csv`: file,state,plate).

    cd models && python -m plate_reader.evaluate kozomol-reader /tmp/synth-eval/crops
    cd models && python -m plate_reader.evaluate kozomol-reader ../../shared/data/alpr-dev/crops \
        --reference kozomol-reader/reference.json

Each crop is stretched to the reader's input as the recognizer does and read greedily;
prints exact and lenient (O/0, I/1 ignored) rates as JSON. This measures the model, not
the pipeline: `kozomol eval-alpr --crops` gives the figures that count. `--reference`
also writes the reads of the first 20 crops (sorted by name) for the Rust port's test
(recognizer/tests/recognize.rs) to match.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from .dataset import HEIGHT, WIDTH, grey
from .train import ALPHABET


def lenient(s: str) -> str:
    return s.replace("O", "0").replace("I", "1")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("crops")
    ap.add_argument("--misreads", action="store_true")
    ap.add_argument("--reference", type=Path)
    a = ap.parse_args(argv)
    model = Path(a.model_dir) / "reader.onnx"
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rows = sorted(csv.reader(open(Path(a.crops) / "groundtruth.csv")))
    exact = loose = 0
    reference = []
    for file, _state, truth in rows:
        read = read_crop(sess, Path(a.crops) / file)
        if len(reference) < 20:
            reference.append({"file": file, "text": read})
        truth = truth.upper()
        exact += read == truth
        loose += lenient(read) == lenient(truth)
        if a.misreads and read != truth:
            print(f"{file}\t{truth}\t{read}")
    print(json.dumps({"crops": len(rows), "exact_rate": exact / len(rows), "lenient_rate": loose / len(rows)}))
    if a.reference:
        about = ("plate reader on the first 20 crops of a folder in sorted order, preprocessed as "
                 "model.toml [plate_reader] says (Pillow BILINEAR stretch to 128x32, then luma)")
        a.reference.write_text(json.dumps({
            "about": about,
            "reader_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "onnxruntime": ort.__version__,
            "crops": reference,
        }, indent=1) + "\n")


def read_crop(sess, path: Path) -> str:
    """Greedy CTC read of one crop file."""
    img = Image.open(path).convert("RGB").resize((WIDTH, HEIGHT), Image.BILINEAR)
    x = (grey(np.asarray(img)).astype(np.float32)[None, None] / 255.0 - 0.5) / 0.5
    probs = sess.run(None, {"image": x})[0][0]
    read, prev = [], 0
    for k in probs.argmax(-1):
        if k != prev and k != 0:
            read.append(ALPHABET[k - 1])
        prev = k
    return "".join(read)


if __name__ == "__main__":
    main()
