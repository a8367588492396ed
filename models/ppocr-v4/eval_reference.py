#!/usr/bin/env python3
"""Reference evaluation of the PP-OCRv4 reader on the alpr-dev plate crops.

Runs exactly the preprocessing and CTC decoding that model.toml's [reader] describes,
one crop per run (N = 1), and prints JSON figures. The Rust recognizer should give the
same texts; reference.json (written with --write-reference) holds per-crop values and,
for the first three crops, the top class of every time step to compare numerically.

Needs numpy, onnxruntime and Pillow only:

    python3 -m venv models/ppocr-v4/.venv
    models/ppocr-v4/.venv/bin/pip install numpy onnxruntime==1.32.0 Pillow
    models/ppocr-v4/.venv/bin/python models/ppocr-v4/eval_reference.py [--write-reference]

The crops are evaluation data only (never train on them) and are read from
../shared/data/alpr-dev/crops beside the repository; nothing of them is copied here.
"""

import argparse
import csv
import hashlib
import json
import os
import re
import statistics
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_CROPS = REPO.parent / "shared" / "data" / "alpr-dev" / "crops"
FILTERS = {"triangle": Image.Resampling.BILINEAR}
REFERENCE_CROPS = 20
STEP_DUMPS = 3


def load_manifest(path):
    with open(path, "rb") as f:
        m = tomllib.load(f)
    r = m["reader"]
    if r["format"] != "ctc":
        sys.exit(f"unsupported reader format `{r['format']}`")
    if r["channels"] not in ("bgr", "rgb"):
        sys.exit(f"unknown channel order `{r['channels']}`")
    if r["resize_filter"] not in FILTERS:
        sys.exit(f"unknown resize filter `{r['resize_filter']}`")
    return m


def load_alphabet(path):
    # Split on '\n' only and never strip: the last class is " " and one is U+3000.
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return ["<blank>"] + lines


def resized_width(w, h, r):
    """ceil(height * w / h) in integers, clamped to [1, max_width]."""
    rw = (r["height"] * w + h - 1) // h
    return max(1, min(rw, r["max_width"]))


def preprocess(img, r):
    """PIL RGB image -> ([1,3,height,padded] float32, resized width)."""
    w, h = img.size
    rw = resized_width(w, h, r)
    img = img.resize((rw, r["height"]), FILTERS[r["resize_filter"]])
    a = np.asarray(img, dtype=np.float32)  # H, W, RGB
    if r["channels"] == "bgr":
        a = a[:, :, ::-1]
    mean = np.asarray(r["mean"], dtype=np.float32)
    std = np.asarray(r["std"], dtype=np.float32)
    a = (a / np.float32(r["scale"]) - mean) / std
    padded = max(rw, r["min_width"])
    x = np.zeros((1, 3, r["height"], padded), dtype=np.float32)
    x[0, :, :, :rw] = a.transpose(2, 0, 1)
    return x, rw


def ctc_decode(probs, alphabet):
    """probs [T, C] -> (text, confidence, top classes, top probabilities)."""
    idx = probs.argmax(axis=1)
    top = probs.max(axis=1)
    keep = idx != 0
    keep[1:] &= idx[1:] != idx[:-1]
    text = "".join(alphabet[i] for i in idx[keep])
    conf = float(top[keep].mean()) if keep.any() else 0.0
    return text, conf, idx, top


def norm(s):
    return re.sub(r"[^A-Z0-9]", "", s.upper())


def lenient(s):
    return norm(s).replace("O", "0").replace("I", "1")


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crops", type=Path, default=DEFAULT_CROPS)
    ap.add_argument("--manifest", type=Path, default=HERE / "model.toml")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = its default)")
    ap.add_argument("--write-reference", action="store_true", help=f"write {HERE.name}/reference.json")
    ap.add_argument("--show-errors", action="store_true", help="print misreads to stderr")
    args = ap.parse_args()

    gt_path = args.crops / "groundtruth.csv"
    if not gt_path.is_file():
        print(f"skipped: {gt_path} not found (alpr-dev is not checked out beside the repository)", file=sys.stderr)
        return 0

    manifest = load_manifest(args.manifest)
    r = manifest["reader"]
    model_path = args.manifest.parent / r["file"]
    alphabet = load_alphabet(args.manifest.parent / r["alphabet"])

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if args.threads:
        so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if inp.name != r["input_name"]:
        sys.exit(f"model input is `{inp.name}`, manifest says `{r['input_name']}`")
    classes = sess.get_outputs()[0].shape[2]
    if classes != len(alphabet):
        sys.exit(f"model has {classes} classes, blank + alphabet gives {len(alphabet)}")

    with open(gt_path, newline="") as f:
        rows = sorted((row[0], row[2]) for row in csv.reader(f) if row)

    # Warm-up run, not timed.
    first = Image.open(args.crops / rows[0][0]).convert("RGB")
    sess.run(None, {inp.name: preprocess(first, r)[0]})

    n = exact = len_ok = empty = non_ascii = 0
    edits = chars = 0
    total_s, infer_s = [], []
    reference = []
    for i, (name, plate) in enumerate(rows):
        t0 = time.perf_counter()
        img = Image.open(args.crops / name).convert("RGB")
        x, rw = preprocess(img, r)
        t1 = time.perf_counter()
        probs = sess.run(None, {inp.name: x})[0][0]
        t2 = time.perf_counter()
        text, conf, idx, top = ctc_decode(probs, alphabet)
        t3 = time.perf_counter()
        total_s.append(t3 - t0)
        infer_s.append(t2 - t1)

        got, want = norm(text), norm(plate)
        n += 1
        exact += got == want
        len_ok += lenient(text) == lenient(plate)
        empty += got == ""
        non_ascii += any(ord(c) > 127 for c in text)
        edits += edit_distance(got, want)
        chars += len(want)
        if args.show_errors and got != want:
            print(f"{name}\t{plate}\t{text!r}\t{conf:.3f}", file=sys.stderr)

        if i < REFERENCE_CROPS:
            entry = {
                "file": name,
                "width": img.size[0],
                "height": img.size[1],
                "resized_width": rw,
                "input_width": x.shape[3],
                "input_sum": round(float(x.astype(np.float64).sum()), 3),
                "text": text,
                "confidence": round(conf, 6),
            }
            if i < STEP_DUMPS:
                entry["steps_top_class"] = idx.tolist()
                entry["steps_top_prob"] = [round(float(p), 6) for p in top]
            reference.append(entry)

    ms = lambda v: round(1000 * v, 2)
    figures = {
        "model": f"{manifest['name']} reader ({r['file']})",
        "data": "alpr-dev crops (evaluation only, never trained on)",
        "crops": n,
        "exact": exact,
        "exact_rate": round(exact / n, 4),
        "lenient_O0_I1": len_ok,
        "lenient_rate": round(len_ok / n, 4),
        "empty_reads": empty,
        "reads_with_non_ascii": non_ascii,
        "char_error_rate": round(edits / chars, 4),
        "ms_per_crop_mean": ms(statistics.mean(total_s)),
        "ms_per_crop_median": ms(statistics.median(total_s)),
        "ms_per_crop_p95": ms(sorted(total_s)[int(0.95 * (n - 1))]),
        "ms_inference_median": ms(statistics.median(infer_s)),
        "onnxruntime": ort.__version__,
        "intra_op_threads": args.threads or "default",
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures, indent=2))

    if args.write_reference:
        out = {
            "about": "PP-OCRv4 reader on the first 20 alpr-dev crops in sorted order, "
            "preprocessed as model.toml [reader] says (Pillow BILINEAR resize, Pillow JPEG decoding). "
            "input_sum is the sum of the input tensor; steps_* are per time step (argmax class, its probability). "
            "A port may differ by a pixel value here and there (decoder and resize rounding): "
            "expect equal texts and confidences within about 1e-3.",
            "manifest": args.manifest.name,
            "rec_sha256": sha256(model_path),
            "onnxruntime": ort.__version__,
            "crops": reference,
        }
        path = HERE / "reference.json"
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
