"""Train the plate detector and export it to ONNX.

    cd models && python -m plate_detector.train --render 20000 --jobs 16 --minutes 4 \
        --out kozomol-detector

The model: a small convolutional backbone (strides 2 to 32) with a top-down feature
pyramid back to stride 4, and two heads there, as TTFNet does: a plate-centre heat map
(an elliptical Gaussian per plate, shaped like the plate, focal loss) and the distances
from each cell to the plate's four sides (GIoU loss, weighted by the Gaussian). Plates
are long and low, and a Kyrgyz plate at 30 m is a dozen pixels high in a 640 input:
stride 4 keeps such a plate several cells wide.

Input "image" [1, 3, 640, 640], RGB, pixel / 255, the frame letterboxed into the top
left corner on grey 114. Output "boxes" [1, 100, 5]: x1 y1 x2 y2 in input pixels and a
score, the heat map's 100 strongest local maxima (non-maximum suppression is the
caller's). Training runs on a GPU where there is one (CUDA, bf16), else on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synth.scenes import _box_iou as iou

from .dataset import SIZE, render

STRIDE = 4
TOP_K = 100
GREY = 114 / 255


def _conv(i, o, k=3, s=1):
    return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(_conv(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.body(x))


class PlateDetector(nn.Module):
    def __init__(self, width=(16, 32, 64, 96, 128), fpn=64):
        super().__init__()
        c1, c2, c3, c4, c5 = width
        self.s2 = _conv(3, c1, s=2)
        self.s4 = nn.Sequential(_conv(c1, c2, s=2), _Residual(c2))
        self.s8 = nn.Sequential(_conv(c2, c3, s=2), _Residual(c3), _Residual(c3))
        self.s16 = nn.Sequential(_conv(c3, c4, s=2), _Residual(c4), _Residual(c4))
        self.s32 = nn.Sequential(_conv(c4, c5, s=2), _Residual(c5))
        self.lat = nn.ModuleList(nn.Conv2d(c, fpn, 1) for c in (c2, c3, c4, c5))
        self.smooth = _conv(fpn, fpn)
        self.heat = nn.Sequential(_conv(fpn, fpn), nn.Conv2d(fpn, 1, 1))
        self.sides = nn.Sequential(_conv(fpn, fpn), nn.Conv2d(fpn, 4, 1))
        nn.init.constant_(self.heat[-1].bias, -4.6)  # a prior of 1 % plate centres

    def forward(self, x):
        f4 = self.s4(self.s2(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.lat[3](f32)
        for lat, f in ((self.lat[2], f16), (self.lat[1], f8), (self.lat[0], f4)):
            p = lat(f) + F.interpolate(p, size=f.shape[-2:], mode="nearest")
        p = self.smooth(p)
        # distances in input pixels; 16 per unit, as TTFNet scales them
        return self.heat(p), F.softplus(self.sides(p)) * 16.0


class Decoded(nn.Module):
    """The exported graph: the heat map's strongest local maxima as boxes."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        logits, sides = self.m(x)
        heat = torch.sigmoid(logits)
        heat = heat * (F.max_pool2d(heat, 3, 1, 1) == heat).float()
        n, _, h, w = heat.shape
        scores, idx = heat.reshape(n, -1).topk(TOP_K, dim=1)
        d = sides.reshape(n, 4, -1).gather(2, idx.unsqueeze(1).expand(n, 4, TOP_K))
        cx = (idx % w).float() * STRIDE + STRIDE / 2
        cy = torch.div(idx, w, rounding_mode="floor").float() * STRIDE + STRIDE / 2
        return torch.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3], scores], dim=2)


def targets(boxes, h, w, alpha=0.54):
    """Heat map, per-cell assigned box and regression weight from padded boxes [B, M, 4]."""
    dev = boxes.device
    valid = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    x1, y1, x2, y2 = boxes.unbind(-1)
    bw, bh = (x2 - x1).clamp(min=1), (y2 - y1).clamp(min=1)
    ix = ((x1 + x2) / 2 / STRIDE).floor().clamp(0, w - 1)
    iy = ((y1 + y2) / 2 / STRIDE).floor().clamp(0, h - 1)
    gx, gy = ix * STRIDE + STRIDE / 2, iy * STRIDE + STRIDE / 2
    sx = (alpha * bw / 6).clamp(min=STRIDE / 3)
    sy = (alpha * bh / 6).clamp(min=STRIDE / 3)
    xs = torch.arange(w, device=dev).float() * STRIDE + STRIDE / 2
    ys = torch.arange(h, device=dev).float() * STRIDE + STRIDE / 2
    g = torch.exp(-((xs.view(1, 1, 1, w) - gx[..., None, None]) ** 2 / (2 * sx[..., None, None] ** 2)
                    + (ys.view(1, 1, h, 1) - gy[..., None, None]) ** 2 / (2 * sy[..., None, None] ** 2)))
    g = g * valid[..., None, None]
    heat, which = g.max(1)  # [B, H, W]
    assigned = boxes.gather(1, which.reshape(len(boxes), -1, 1).expand(-1, -1, 4)).reshape(len(boxes), h, w, 4)
    area = ((assigned[..., 2] - assigned[..., 0]) * (assigned[..., 3] - assigned[..., 1])).clamp(min=1)
    weight = torch.where(heat > 0.05, heat * torch.log(area), torch.zeros_like(heat))
    return heat, assigned, weight


def focal(logits, heat):
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 0.999
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * (~pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def giou(sides, assigned, weight):
    n, _, h, w = sides.shape
    xs = torch.arange(w, device=sides.device).float() * STRIDE + STRIDE / 2
    ys = torch.arange(h, device=sides.device).float() * STRIDE + STRIDE / 2
    d = sides.float()
    px1, py1 = xs.view(1, 1, w) - d[:, 0], ys.view(1, h, 1) - d[:, 1]
    px2, py2 = xs.view(1, 1, w) + d[:, 2], ys.view(1, h, 1) + d[:, 3]
    tx1, ty1, tx2, ty2 = assigned.unbind(-1)
    inter = ((torch.min(px2, tx2) - torch.max(px1, tx1)).clamp(min=0)
             * (torch.min(py2, ty2) - torch.max(py1, ty1)).clamp(min=0))
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    hull = (torch.max(px2, tx2) - torch.min(px1, tx1)) * (torch.max(py2, ty2) - torch.min(py1, ty1))
    g = inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)
    return ((1 - g) * weight).sum() / weight.sum().clamp(min=1e-6)


def augment(x, boxes, gen):
    """Photometric jitter per image; a whole batch shrunk onto grey now and then, for small plates."""
    n = len(x)
    dev = x.device
    bright = torch.empty(n, 1, 1, 1, device=dev).uniform_(-0.15, 0.15, generator=gen)
    contrast = torch.empty(n, 1, 1, 1, device=dev).uniform_(0.6, 1.4, generator=gen)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean + bright).clamp(0, 1)
    grey = torch.rand(n, 1, 1, 1, device=dev, generator=gen) < 0.1
    x = torch.where(grey, x.mean(1, keepdim=True).expand_as(x), x)
    if torch.rand(1, generator=gen, device=dev).item() < 0.3:
        s = float(torch.empty(1, device=dev).uniform_(0.4, 0.9, generator=gen))
        side = int(SIZE * s)
        ox = int(torch.randint(0, SIZE - side + 1, (1,), device=dev, generator=gen))
        oy = int(torch.randint(0, SIZE - side + 1, (1,), device=dev, generator=gen))
        small = F.interpolate(x, size=(side, side), mode="area")
        x = torch.full_like(x, GREY)
        x[:, :, oy:oy + side, ox:ox + side] = small
        valid = boxes[..., 2] > boxes[..., 0]
        moved = boxes * s + torch.tensor([ox, oy, ox, oy], device=dev, dtype=boxes.dtype)
        small_box = ((moved[..., 2] - moved[..., 0]) < 4) | ((moved[..., 3] - moved[..., 1]) < 2)
        boxes = torch.where((valid & ~small_box)[..., None], moved, torch.full_like(boxes, -1))
    return x, boxes


def to_input(images_u8):
    return images_u8.permute(0, 3, 1, 2).float() / 255.0


def match(pred, truth, thr):
    """Plates found (IoU >= 0.5 with a box scored >= thr) and boxes that found none."""
    found, spare = 0, 0
    used = set()
    keep = [b for b in pred if b[4] >= thr]
    keep = nms(keep, 0.45)
    for t in truth:
        best, bi = 0.0, -1
        for i, b in enumerate(keep):
            v = iou(b, t)
            if v > best:
                best, bi = v, i
        if best >= 0.5:
            found += 1
            used.add(bi)
    spare = len(keep) - len(used)
    return found, spare


def nms(boxes, max_iou):
    out = []
    for b in sorted(boxes, key=lambda b: -b[4]):
        if all(iou(b, k) <= max_iou for k in out):
            out.append(b)
    return out


def evaluate(decoded, images, boxes, dev, thresholds=(0.2, 0.3, 0.4, 0.5)):
    decoded.eval()
    plates = int((boxes[..., 2] > boxes[..., 0]).sum())
    found = {t: 0 for t in thresholds}
    spare = {t: 0 for t in thresholds}
    with torch.no_grad():
        for s in range(0, len(images), 64):
            x = to_input(torch.from_numpy(images[s:s + 64]).to(dev))
            out = decoded(x).float().cpu().numpy()
            for pred, truth in zip(out, boxes[s:s + 64]):
                truth = [t for t in truth if t[2] > t[0]]
                for t in thresholds:
                    f, sp = match(pred.tolist(), truth, t)
                    found[t] += f
                    spare[t] += sp
    decoded.train()
    return {str(t): {"recall": found[t] / max(1, plates), "false_boxes_per_image": spare[t] / len(images)}
            for t in thresholds} | {"plates": plates, "images": len(images)}


def export(model, out: Path):
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Decoded(model).cpu().float(), torch.zeros(1, 3, SIZE, SIZE), out / "detector.onnx",
                      input_names=["image"], output_names=["boxes"], opset_version=17, dynamo=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", help="a set written by plate_detector.dataset")
    ap.add_argument("--render", type=int, default=0, help="render this many training scenes instead")
    ap.add_argument("--test-count", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=4.0, help="training time (the schedule follows it)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", default="kozomol-detector")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    if a.train:
        d = np.load(a.train)
        images, boxes = d["images"], d["boxes"]
    else:
        images, boxes = render(a.render, a.seed, "train", a.jobs)
    test_images, test_boxes = render(a.test_count, a.seed + 1000, "test", a.jobs)
    print(f"rendered {len(images)} training and {len(test_images)} test scenes in {time.time() - t0:.0f} s",
          flush=True)
    pool = torch.from_numpy(images).to(dev)
    pool_boxes = torch.from_numpy(boxes).to(dev)
    model = PlateDetector().to(dev).to(memory_format=torch.channels_last)
    decoded = Decoded(model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed)
    budget = a.minutes * 60
    start, step, seen = time.time(), 0, 0
    log = []
    while (elapsed := time.time() - start) < budget:
        frac = elapsed / budget
        lr = a.lr * (min(1.0, step / 300) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, len(pool), (a.batch,), device=dev, generator=gen)
        x, b = augment(to_input(pool[idx]), pool_boxes[idx], gen)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits, sides = model(x)
        heat, assigned, weight = targets(b, logits.shape[2], logits.shape[3])
        lf = focal(logits[:, 0], heat)
        lg = giou(sides, assigned, weight)
        loss = lf + 5 * lg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        step += 1
        seen += a.batch
        if step % 200 == 0:
            print(f"step {step} {elapsed:.0f} s lr {lr:.2e} focal {lf.item():.3f} giou {lg.item():.3f} "
                  f"{seen / elapsed:.0f} scenes/s", flush=True)
            log.append({"step": step, "seconds": round(elapsed), "focal": lf.item(), "giou": lg.item()})
    metrics = evaluate(decoded, test_images, test_boxes, dev)
    print(json.dumps(metrics), flush=True)
    export(model, Path(a.out))
    summary = {"args": vars(a), "steps": step, "scenes_seen": seen, "train_scenes": len(images),
               "test": metrics, "log": log}
    (Path(a.out) / "training.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
