"""Train the plate reader and export it to ONNX.

    cd models && python -m plate_reader.train --train /tmp/reader/train.npz \
        --val /tmp/reader/val.npz --epochs 3 --out kozomol-reader

The model: a small CNN that folds the crop's height away, two width-wise convolutions
for context, and a per-column classifier read with CTC (class 0 = blank, then
ALPHABET). Input [N, 1, 32, 128] grey, (pixel / 255 - 0.5) / 0.5, the crop stretched to
128 x 32 whatever its shape; output "probs" [N, 32, 37], softmax per column.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .dataset import HEIGHT, WIDTH

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _block(i, o, k=3, pad=1):
    return [nn.Conv2d(i, o, k, padding=pad, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]


class PlateReader(nn.Module):
    def __init__(self, classes: int = len(ALPHABET) + 1):
        super().__init__()
        self.features = nn.Sequential(
            *_block(1, 16), nn.MaxPool2d(2),  # 16 x 64
            *_block(16, 32), nn.MaxPool2d(2),  # 8 x 32
            *_block(32, 64), *_block(64, 64), nn.MaxPool2d((2, 1)),  # 4 x 32
            *_block(64, 96), *_block(96, 96), nn.MaxPool2d((2, 1)),  # 2 x 32
            *_block(96, 128, k=(2, 1), pad=0),  # 1 x 32
        )
        self.context = nn.Sequential(
            nn.Conv1d(128, 128, 3, padding=1, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 3, padding=1, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
        )
        self.head = nn.Conv1d(128, classes, 1)

    def forward(self, x):  # x: [N, 1, 32, 128]
        f = self.features(x).squeeze(2)  # [N, C, 32]
        return self.head(self.context(f)).permute(0, 2, 1)  # [N, T, classes] logits


def encode(texts):
    idx = {c: i + 1 for i, c in enumerate(ALPHABET)}
    targets = [torch.tensor([idx[c] for c in t], dtype=torch.long) for t in texts]
    return torch.cat(targets), torch.tensor([len(t) for t in targets], dtype=torch.long)


def greedy(logits):
    """Arg-max per column, repeats merged, blanks dropped."""
    out = []
    for row in logits.argmax(-1).tolist():
        s, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                s.append(ALPHABET[k - 1])
            prev = k
        out.append("".join(s))
    return out


def to_input(images: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(images).float().unsqueeze(1) / 255.0 - 0.5) / 0.5


def evaluate(model, images, texts, batch=512):
    model.eval()
    right = 0
    with torch.no_grad():
        for s in range(0, len(images), batch):
            reads = greedy(model(to_input(images[s:s + batch])))
            right += sum(r == t for r, t in zip(reads, texts[s:s + batch]))
    model.train()
    return right / len(images)


def export(model, out: Path):
    model.eval()

    class WithSoftmax(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x).softmax(-1)

    out.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(WithSoftmax(model), torch.zeros(1, 1, HEIGHT, WIDTH), out / "reader.onnx",
                      input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "n"}, "probs": {0: "n"}}, opset_version=17, dynamo=False)
    (out / "reader_alphabet.txt").write_text("\n".join(ALPHABET) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", default="kozomol-reader")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    tr, va = np.load(a.train), np.load(a.val)
    images, texts = tr["images"], [str(t) for t in tr["texts"]]
    val_images, val_texts = va["images"], [str(t) for t in va["texts"]]
    model = PlateReader()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    steps = a.epochs * (len(images) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.15)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    rng = np.random.default_rng(a.seed)
    step, t0 = 0, time.time()
    log = []
    for epoch in range(a.epochs):
        order = rng.permutation(len(images))
        for s in range(0, len(order) - a.batch + 1, a.batch):
            idx = np.sort(order[s:s + a.batch])
            x = to_input(images[idx])
            targets, lengths = encode([texts[i] for i in idx])
            logp = model(x).log_softmax(-1).permute(1, 0, 2)  # [T, N, C]
            loss = ctc(logp, targets, torch.full((len(idx),), logp.shape[0], dtype=torch.long), lengths)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 200 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.3f} "
                      f"{step * a.batch / (time.time() - t0):.0f} samples/s", flush=True)
        acc = evaluate(model, val_images, val_texts)
        log.append({"epoch": epoch, "val_exact": acc})
        print(f"epoch {epoch} validation exact {acc:.4f}", flush=True)
        export(model, Path(a.out))
    (Path(a.out) / "training.json").write_text(json.dumps({"args": vars(a), "epochs": log}, indent=1) + "\n")


if __name__ == "__main__":
    main()
