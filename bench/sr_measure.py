"""Measurements for the `sr` stage's report (not a test): quality on Set5/Set14/Vid4 city, temporal warping error,
speed against the ncnn runtime on the same model and frames, achieved GFLOP/s, and peak RSS.

    .venv/bin/python bench/sr_measure.py quality [--sets Set5,Set14,Vid4/city] [--methods ...]
    .venv/bin/python bench/sr_measure.py temporal [--frames 34]
    .venv/bin/python bench/sr_measure.py speed --model realesr-animevideov3-x4 [--size 176x144]
    .venv/bin/python bench/sr_measure.py rss [--size 720x576] [--scale 4]
    .venv/bin/python bench/sr_measure.py crops [-o bench/sr_crops.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from restoration import metrics  # noqa: E402
from restoration.pipeline import run_stage_on_frames  # noqa: E402
from restoration.stage import Shot  # noqa: E402

DATA = Path(os.environ.get("FILMRESTORE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


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


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--sets", default="Set5,Set14,Vid4/city")
    q.add_argument("--methods", default="bicubic,lanczos,fidelity,waifu2x,perceptual,perceptual-0.5")
    q.add_argument("--json")
    args = parser.parse_args()
    result = {"quality": cmd_quality}[args.command](args)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
