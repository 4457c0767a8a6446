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


def conv_peak(dtype_name: str, size: int = 192, repeats: int = 5) -> float:
    """This machine's 3×3 conv throughput right now (GFLOP/s): 64→64 channels, channels-last, one image."""
    import torch
    import torch.nn.functional as F

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    x = torch.randn(1, 64, size, size).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        F.conv2d(x, w, padding=1)
        best = min(_timed(lambda: F.conv2d(x, w, padding=1)) for _ in range(repeats))
    return 2 * 64 * 64 * 9 * size * size / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ncnn_runner(model_name: str, frame: np.ndarray, threads: int):
    """A callable running the original .param/.bin through the ncnn runtime with its default (fastest) options."""
    import ncnn

    from restoration.sr import archs, models
    from restoration.sr.ncnn import read_param

    model = models.shipped_model(model_name)
    param, weights = models.model_files(model)
    graph = read_param(param)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(weights))
    chw = frame.transpose(2, 0, 1)
    if model.arch == "srmd":
        maps = np.broadcast_to(np.array(archs.SRMD_BICUBIC_DEGRADATION, np.float32)[:, None, None],
                               (15, *frame.shape[:2]))
        chw = np.concatenate([chw, maps], 0)
    if model.arch == "upconv7":
        chw = np.pad(chw, ((0, 0), (7, 7), (7, 7)), mode="edge")
    source = np.ascontiguousarray(chw, dtype=np.float32)
    name_in, name_out = graph.of_kind("Input")[0].outputs[0], graph.layers[-1].outputs[0]

    def run() -> np.ndarray:
        extractor = net.create_extractor()
        extractor.input(name_in, ncnn.Mat(source))
        _, out = extractor.extract(name_out)
        return np.array(out)
    return run


def cmd_speed(args: argparse.Namespace) -> dict:
    import torch

    from restoration.device import pick_dtype
    from restoration.sr import models
    from restoration.sr.engine import frame_to_tensor, prepare

    if args.threads:
        torch.set_num_threads(args.threads)
    frames = [read_rgb(p) for p in sorted((DATA / "Vid4/city/LRx4").glob("*.png"))[:args.frames]]
    width, height = (int(v) for v in args.size.split("x"))
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) if f.shape[:2] != (height, width)
              else f for f in frames]
    device = torch.device("cpu")
    dtype = pick_dtype(device, args.precision)
    upscaler = prepare(args.model, models.load_model(args.model), device, dtype)
    tile = upscaler.tile_size(args.tile)
    ours = lambda f: upscaler.run(frame_to_tensor(f, device), tile)  # noqa: E731
    runners = [ncnn_runner(args.model, f, torch.get_num_threads()) for f in frames]
    gflop = upscaler.net.macs_per_pixel() * 2 * width * height / 1e9
    ours(frames[0]), runners[0]()  # warm-up: primitive creation, allocator pools
    times: dict[str, list[float]] = {"ours": [], "ncnn": []}
    peaks = []
    for _ in range(args.repeats):  # interleaved so all three see the same machine load
        times["ours"].append(_timed(lambda: [ours(f) for f in frames]) / len(frames))
        times["ncnn"].append(_timed(lambda: [run() for run in runners]) / len(frames))
        peaks.append(conv_peak("bf16" if dtype == torch.bfloat16 else "fp32"))
    peak = max(peaks)
    best = {k: min(v) for k, v in times.items()}
    record = {"model": args.model, "size": args.size, "frames": len(frames), "precision": str(dtype)[6:],
              "tile": tile, "threads": torch.get_num_threads(), "gflop_per_frame": round(gflop, 2),
              "ours_s": round(best["ours"], 3), "ncnn_s": round(best["ncnn"], 3),
              "speed_ratio_vs_ncnn": round(best["ncnn"] / best["ours"], 3),
              "ours_gflops": round(gflop / best["ours"], 1), "ncnn_gflops": round(gflop / best["ncnn"], 1),
              "conv_peak_gflops_now": round(peak, 1), "fraction_of_conv_peak": round(gflop / best["ours"] / peak, 3),
              "ld_preload": os.environ.get("LD_PRELOAD", "")}
    print(json.dumps(record), flush=True)
    return record


def cmd_rss(args: argparse.Namespace) -> dict:
    """Peak RSS of one width×height frame through the stage at ×scale with automatic tiling (run in a fresh process)."""
    width, height = (int(v) for v in args.size.split("x"))
    frame = cv2.resize(read_rgb(DATA / "Vid4/city/GT/0000.png"), (width, height), interpolation=cv2.INTER_AREA)
    params = {"scale": args.scale, "mode": args.mode, "detail": 1.0 if args.mode == "perceptual" else 0.5}
    before = metrics.peak_rss_mb()
    start = time.perf_counter()
    out = run_stage_on_frames("sr", [frame], params, shots=[Shot(0, 1)])[0]
    record = {"size": args.size, "scale": args.scale, "mode": args.mode, "out": list(out.shape),
              "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb_before": round(before),
              "peak_rss_mb": round(metrics.peak_rss_mb()), "ld_preload": os.environ.get("LD_PRELOAD", "")}
    print(json.dumps(record), flush=True)
    return record


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
    sp = sub.add_parser("speed")
    sp.add_argument("--model", default="realesr-animevideov3-x4")
    sp.add_argument("--size", default="176x144")
    sp.add_argument("--frames", type=int, default=2)
    sp.add_argument("--repeats", type=int, default=3)
    sp.add_argument("--tile", type=int, default=0)
    sp.add_argument("--precision", default="auto")
    sp.add_argument("--threads", type=int, default=0, help="0: torch's default (all cores)")
    sp.add_argument("--json")
    r = sub.add_parser("rss")
    r.add_argument("--size", default="720x576")
    r.add_argument("--scale", type=int, default=4)
    r.add_argument("--mode", default="fidelity")
    r.add_argument("--json")
    c = sub.add_parser("crops")
    c.add_argument("--image", default="Vid4/city:0010.png")
    c.add_argument("--x", type=int, default=100)
    c.add_argument("--y", type=int, default=40)
    c.add_argument("--size", type=int, default=48)
    c.add_argument("--zoom", type=float, default=1.0)
    c.add_argument("-o", "--output", default="bench/sr_crops.png")
    c.add_argument("--json")
    args = parser.parse_args()
    result = {"quality": cmd_quality, "speed": cmd_speed, "rss": cmd_rss, "crops": cmd_crops}[args.command](args)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
