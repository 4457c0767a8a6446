"""Measurements for the `sr` stage's notes (not a test): quality of more variants than the benchmark runs (temporal,
back-projection, fp32, the waifu2x candidate) on the full Set5/Set14/Vid4 city, and the report's crop figure.
CPU speed against ncnn, GFLOP/s, the conv peak and one-frame RSS are measured by `filmrestore bench --stage sr`
(restoration/bench/sr_speed.py).

    .venv/bin/python -m restoration.bench.sr_measure quality [--sets Set5,Set14,Vid4/city] [--methods ...]
    .venv/bin/python -m restoration.bench.sr_measure crops [-o restoration/bench/sr_crops.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from restoration import metrics  # noqa: E402
from restoration.bench.corpus import default_data_dir, read_rgb  # noqa: E402
from restoration.pipeline import run_stage_on_frames  # noqa: E402
from restoration.stage import Shot  # noqa: E402

DATA = default_data_dir()


def pairs(name: str, every: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    gts = sorted((DATA / name / "GT").glob("*.png"))[::every]
    out = []
    for gt_path in gts:
        lr = read_rgb(DATA / name / "LRx4" / gt_path.name)
        gt = read_rgb(gt_path)[:lr.shape[0] * 4, :lr.shape[1] * 4]
        out.append((lr, gt))
    return out


def quantise(frame: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frame, 0, 1) * 255.0) / 255.0


METHODS = {
    "bicubic": None, "lanczos": None,
    "fidelity": {"mode": "fidelity"},
    "fidelity-fp32": {"mode": "fidelity", "precision": "fp32"},
    "fidelity-temporal": {"mode": "fidelity", "temporal": True},
    "fidelity-temporal-bp": {"mode": "fidelity", "temporal": True, "backprojection": 20},
    "waifu2x": {"mode": "fidelity", "model": "waifu2x-photo"},
    "perceptual": {"mode": "perceptual", "detail": 1.0},
    "perceptual-0.5": {"mode": "perceptual", "detail": 0.5},
    "perceptual-0.5-temporal": {"mode": "perceptual", "detail": 0.5, "temporal": True},
    "perceptual-temporal": {"mode": "perceptual", "detail": 1.0, "temporal": True},
}


def upscale(method: str, lrs: list[np.ndarray], video: bool) -> list[np.ndarray]:
    if method == "bicubic":
        return [cv2.resize(lr, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC) for lr in lrs]
    if method == "lanczos":
        return [cv2.resize(lr, None, fx=4, fy=4, interpolation=cv2.INTER_LANCZOS4) for lr in lrs]
    params = dict(METHODS[method], scale=4)
    if video:
        return run_stage_on_frames("sr", lrs, params, shots=[Shot(0, len(lrs))])
    return [run_stage_on_frames("sr", [lr], params, shots=[Shot(0, 1)])[0] for lr in lrs]


def cmd_quality(args: argparse.Namespace) -> dict:
    results: dict = {}
    for name in args.sets.split(","):
        video = name.startswith("Vid4")
        data = pairs(name)
        lrs, gts = [p[0] for p in data], [p[1] for p in data]
        for method in args.methods.split(","):
            if "temporal" in method and not video:
                continue
            start = time.perf_counter()
            outs = [quantise(o) for o in upscale(method, lrs, video)]
            seconds = time.perf_counter() - start
            psnr = float(np.mean([metrics.psnr_y(o, g, border=4) for o, g in zip(outs, gts)]))
            ssim = float(np.mean([metrics.ssim_y(o, g, border=4) for o, g in zip(outs, gts)]))
            record = {"psnr_y": round(psnr, 3), "ssim_y": round(ssim, 4), "seconds": round(seconds, 1)}
            if video:
                record["warping_error"] = round(metrics.warping_error(outs, gts), 5)
            results.setdefault(name, {})[method] = record
            print(name, method, record, flush=True)
        if video:
            results[name]["ground-truth"] = {"warping_error": round(metrics.warping_error(gts, gts), 5)}
    return results


def cmd_crops(args: argparse.Namespace) -> dict:
    """Side-by-side ×4 crops (ground truth, bicubic, Lanczos, fidelity, perceptual) with PSNR-Y, as one PNG."""
    name, frame = args.image.split(":")
    lr_full = read_rgb(DATA / name / "LRx4" / frame)
    gt_full = read_rgb(DATA / name / "GT" / frame)
    y, x, size, pad = args.y, args.x, args.size, 8
    lr = lr_full[y - pad:y + size + pad, x - pad:x + size + pad]
    gt = gt_full[y * 4:(y + size) * 4, x * 4:(x + size) * 4]
    inner = (slice(pad * 4, (pad + size) * 4), slice(pad * 4, (pad + size) * 4))
    panels = {"ground truth": gt}
    for method, label in (("bicubic", "bicubic"), ("lanczos", "Lanczos"), ("fidelity", "fidelity"),
                          ("perceptual", "perceptual")):
        panels[label] = quantise(upscale(method, [lr], False)[0])[inner]
    scores = {k: round(metrics.psnr_y(v, gt, border=4), 2) for k, v in panels.items() if k != "ground truth"}
    tiles = []
    for label, image in panels.items():
        tile = cv2.resize(image, None, fx=args.zoom, fy=args.zoom, interpolation=cv2.INTER_NEAREST)
        tile = (np.clip(np.pad(tile, ((26, 0), (0, 4), (0, 0)), constant_values=1.0), 0, 1) * 255 + 0.5)
        tile = np.ascontiguousarray(tile.astype(np.uint8))
        text = label + (f" {scores[label]:.2f} dB" if label in scores else "")
        cv2.putText(tile, text, (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    strip = np.concatenate(tiles, 1)
    cv2.imwrite(args.output, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    record = {"image": args.image, "crop_lr": [x, y, size], "psnr_y": scores, "file": args.output,
              "bytes": Path(args.output).stat().st_size}
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--sets", default="Set5,Set14,Vid4/city")
    q.add_argument("--methods", default="bicubic,lanczos,fidelity,waifu2x,perceptual,perceptual-0.5")
    q.add_argument("--json")
    c = sub.add_parser("crops")
    c.add_argument("--image", default="Vid4/city:0010.png")
    c.add_argument("--x", type=int, default=100)
    c.add_argument("--y", type=int, default=40)
    c.add_argument("--size", type=int, default=48)
    c.add_argument("--zoom", type=float, default=1.0)
    c.add_argument("-o", "--output", default="restoration/bench/sr_crops.png")
    c.add_argument("--json")
    args = parser.parse_args()
    result = {"quality": cmd_quality, "crops": cmd_crops}[args.command](args)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
