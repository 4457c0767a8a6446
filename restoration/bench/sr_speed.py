"""`sr` on the CPU beside the `ncnn` runtime: the same shipped model on the same frame in one process, the analytic
GFLOP, this machine's 3×3 conv throughput measured in the same run, and the peak RSS of one frame through the stage
(in a fresh process, so the benchmark's own corpus does not count).

Every time is taken twice: wall clock, and process CPU time ÷ threads (what the wall time would be on otherwise idle
cores; other processes on the same cores stretch the wall clock of every method alike, not its CPU time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from restoration.bench.corpus import read_rgb

TARGET_SIZE = (720, 576)  # the frame for speed and memory
RSS_LIMIT_MB = 4096
SPEED_RATIO_TARGET = 1.0  # × the ncnn runtime's speed
PEAK_FRACTION_TARGET = 0.60  # of the measured conv throughput
CONV_CHANNELS, CONV_SIZE = 64, 192  # the reference conv: 64→64 3×3 on a 192×192 image, channels-last


@dataclass(frozen=True)
class SpeedModel:
    name: str   # shipped model (restoration.stages.sr.models)
    mode: str   # the stage mode that uses it
    runs: int   # timed runs after one warm-up (median reported)


@dataclass(frozen=True)
class SpeedPlan:
    size: tuple[int, int]            # frame (width, height)
    models: tuple[SpeedModel, ...]
    rss_modes: tuple[str, ...]       # stage modes whose one-frame peak RSS is measured (×4, automatic tiling)


PLANS: dict[str, SpeedPlan] = {
    "full": SpeedPlan(TARGET_SIZE, (SpeedModel("srmdnf-x4", "fidelity", 3),
                                    SpeedModel("realesrgan-x4plus", "perceptual", 1),
                                    SpeedModel("realesr-animevideov3-x4", "compact (anime video)", 3)),
                      ("fidelity", "perceptual")),
    "quick": SpeedPlan((352, 288), (SpeedModel("srmdnf-x4", "fidelity", 3),), ("fidelity",)),
    "tiny": SpeedPlan((64, 48), (SpeedModel("srmdnf-x4", "fidelity", 1),), ("fidelity",)),
}

Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------------------
# timing


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float  # process CPU time (all threads)


def timed(fn: Callable[[], Any]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def conv_flop() -> float:
    return 2.0 * CONV_CHANNELS * CONV_CHANNELS * 9 * CONV_SIZE * CONV_SIZE


def conv_peak(dtype: Any, repeats: int = 5, calls: int = 20) -> tuple[float, float]:
    """This machine's 3×3 conv throughput right now, GFLOP/s (wall, CPU time ÷ threads): best of `repeats`."""
    import torch
    import torch.nn.functional as F

    x = torch.randn(1, CONV_CHANNELS, CONV_SIZE, CONV_SIZE).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(CONV_CHANNELS, CONV_CHANNELS, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    with torch.inference_mode():
        F.conv2d(x, w, padding=1)
        samples = [timed(lambda: [F.conv2d(x, w, padding=1) for _ in range(calls)]) for _ in range(repeats)]
    flop = conv_flop() * calls / 1e9
    return (max(flop / s.wall_s for s in samples),
            max(flop / (s.cpu_s / threads) for s in samples if s.cpu_s > 0))


# ------------------------------------------------------------------------------------------------------------
# the two runtimes


def ncnn_unavailable() -> str | None:
    try:
        import ncnn  # noqa: F401
    except ImportError:
        return "unavailable: Python package ncnn not installed"
    return None


def ncnn_input(arch: str, chw: np.ndarray) -> np.ndarray:
    """What the original ncnn graph takes for a (3, h, w) picture: SRMD wants the degradation maps, waifu2x its
    7 px edge padding."""
    from restoration.stages.sr import archs

    if arch == "srmd":
        maps = np.broadcast_to(np.array(archs.SRMD_BICUBIC_DEGRADATION, np.float32)[:, None, None],
                               (15, *chw.shape[1:]))
        return np.concatenate([chw, maps], 0)
    if arch == "upconv7":
        return np.pad(chw, ((0, 0), (7, 7), (7, 7)), mode="edge")
    return chw


def ncnn_network(model_name: str, threads: int) -> Callable[[Any], Any]:
    """The original .param/.bin in the ncnn runtime (its default, fastest CPU options) as a network over
    (1, 3, h, w) float32 tensors, so it runs the same tiles as ours (a whole heavy-model frame would need >10 GB)."""
    import ncnn
    import torch

    from restoration.stages.sr import models
    from restoration.stages.sr.ncnn import read_param

    model = models.shipped_model(model_name)
    param, weights = models.model_files(model)
    graph = read_param(param)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(weights))
    name_in, name_out = graph.of_kind("Input")[0].outputs[0], graph.layers[-1].outputs[0]

    def run(tiles: torch.Tensor) -> torch.Tensor:
        outputs = []
        for tile in tiles:
            chw = ncnn_input(model.arch, tile.float().contiguous().numpy())
            source = np.ascontiguousarray(chw, dtype=np.float32)  # ncnn borrows it: keep it alive until extracted
            extractor = net.create_extractor()
            extractor.input(name_in, ncnn.Mat(source))
            _, out = extractor.extract(name_out)
            outputs.append(torch.from_numpy(np.array(out)))
        return torch.stack(outputs)
    return run


def our_upscaler(model_name: str) -> Any:
    """The model as the stage runs it on the CPU (its precision, allocator setting and automatic tile)."""
    from restoration.bench.variants import Variant, our_params
    from restoration.stages import stage_class

    stage = stage_class("sr")()
    chain = stage.chain(model_name, our_params("sr", Variant("speed", {"model": model_name, "device": "cpu"})))
    return next(iter(chain.values()))


def allocator_text() -> str:
    from restoration.stages.sr.allocator import _GLIBC_TUNED

    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return "tcmalloc (preloaded)"
    return "glibc, freed memory retained" if _GLIBC_TUNED and _GLIBC_TUNED[0] else "glibc"


# ------------------------------------------------------------------------------------------------------------
# measuring


def speed_frame(data: Path, size: tuple[int, int]) -> np.ndarray:
    """A real picture at `size`: Vid4 city's first ground-truth frame, area-resized (704×576 → 720×576 in full)."""
    first = sorted((Path(data) / "Vid4" / "city" / "GT").glob("*.png"))[0]
    return cv2.resize(read_rgb(first), size, interpolation=cv2.INTER_AREA)


def _median(timings: list[Timing], threads: int) -> tuple[float, float]:
    return (float(np.median([t.wall_s for t in timings])), float(np.median([t.cpu_s for t in timings])) / threads)


def measure_model(spec: SpeedModel, frame: np.ndarray, log: Log) -> dict[str, Any]:
    """Ours and ncnn on one frame in the same tiles, interleaved run by run with the conv peak (same load for all)."""
    import torch

    from restoration.stages.sr.engine import RAMP, frame_to_tensor
    from restoration.stages.sr.tiling import upscale_tiled

    height, width = frame.shape[:2]
    upscaler = our_upscaler(spec.name)
    threads = torch.get_num_threads()
    tile = upscaler.tile_size(0)
    image = frame_to_tensor(frame, upscaler.device)
    ours = lambda: upscaler.run(image, tile)  # noqa: E731
    unavailable = ncnn_unavailable()
    theirs = None
    if unavailable is None:
        network = ncnn_network(spec.name, threads)
        theirs = lambda: upscale_tiled(network, image, upscaler.scale, tile, upscaler.context, RAMP)  # noqa: E731
    gflop = upscaler.net.macs_per_pixel() * 2 * width * height / 1e9
    record: dict[str, Any] = {"model": spec.name, "mode": spec.mode, "size": [width, height], "tile": tile,
                              "precision": str(upscaler.dtype).removeprefix("torch."), "threads": threads,
                              "runs": spec.runs, "gflop": round(gflop, 2), "status": "ok",
                              "ncnn_status": unavailable or "ok"}
    ours()  # warm-up: oneDNN primitives, allocator pools
    if theirs is not None:
        theirs()
    times: dict[str, list[Timing]] = {"ours": [], "ncnn": []}
    peaks = []
    for run in range(spec.runs):
        times["ours"].append(timed(ours))
        if theirs is not None:
            times["ncnn"].append(timed(theirs))
        peaks.append(conv_peak(upscaler.dtype))
        log(f"[sr] cpu speed {spec.name} run {run + 1}/{spec.runs}: ours {times['ours'][-1].wall_s:.2f} s"
            + (f", ncnn {times['ncnn'][-1].wall_s:.2f} s" if theirs is not None else ""))
    ours_wall, ours_cpu = _median(times["ours"], threads)
    record |= {"ours_s": round(ours_wall, 4), "ours_cpu_s": round(ours_cpu, 4),
               "ours_gflops": round(gflop / ours_wall, 1), "ours_gflops_cpu": round(gflop / ours_cpu, 1),
               "conv_peak_gflops": round(max(p[0] for p in peaks), 1),
               "conv_peak_gflops_cpu": round(max(p[1] for p in peaks), 1)}
    if times["ncnn"]:
        ncnn_wall, ncnn_cpu = _median(times["ncnn"], threads)
        record |= {"ncnn_s": round(ncnn_wall, 4), "ncnn_cpu_s": round(ncnn_cpu, 4),
                   "ncnn_gflops": round(gflop / ncnn_wall, 1), "ncnn_gflops_cpu": round(gflop / ncnn_cpu, 1),
                   "speed_ratio": round(ncnn_wall / ours_wall, 3), "speed_ratio_cpu": round(ncnn_cpu / ours_cpu, 3)}
    return record


def rss_of_one_frame(frame: np.ndarray, mode: str, scale: int = 4) -> dict[str, Any]:
    """Peak RSS of a fresh process that runs `frame` through the stage (×`scale`, `mode`, other params default)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.npy"
        np.save(path, frame)
        done = subprocess.run([sys.executable, "-m", "restoration.bench.sr_speed", str(path), mode, str(scale)],
                              capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parents[2])
    height, width = frame.shape[:2]
    record: dict[str, Any] = {"mode": mode, "size": [width, height], "scale": scale}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return record | {"status": f"failed: {tail}"[:300]}
    return record | {"status": "ok"} | json.loads(done.stdout.strip().splitlines()[-1])


def own_peak_rss_mb() -> float:
    """Peak RSS of this process image, MiB: Linux's VmHWM, which (unlike getrusage's maxrss) does not carry over
    the parent's resident memory from before fork + exec."""
    from restoration import metrics

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return metrics.peak_rss_mb()


def _rss_child(path: str, mode: str, scale: str) -> None:
    from restoration.pipeline import run_stage_on_frames

    frame = np.load(path)
    before = own_peak_rss_mb()
    start = time.perf_counter()
    out = run_stage_on_frames("sr", [frame], {"scale": int(scale), "mode": mode, "device": "cpu"})[0]
    print(json.dumps({"out": [out.shape[1], out.shape[0]], "seconds": round(time.perf_counter() - start, 2),
                      "peak_rss_mb_before": round(before), "peak_rss_mb": round(own_peak_rss_mb()),
                      "allocator": allocator_text()}))


def measure(profile: str, data: Path, log: Log) -> dict[str, Any]:
    """The CPU speed and memory figures of `profile`'s plan (full: 720×576, every model the modes use)."""
    plan = PLANS[profile]
    frame = speed_frame(data, plan.size)
    started = time.perf_counter()
    models = []
    for spec in plan.models:
        try:
            models.append(measure_model(spec, frame, log))
        except Exception as exc:  # one model failing (e.g. its package missing) must not sink the benchmark
            models.append({"model": spec.name, "mode": spec.mode, "size": list(plan.size),
                           "status": f"failed: {type(exc).__name__}: {exc}"[:300]})
            log(f"[sr] cpu speed {spec.name}: {models[-1]['status']}")
    peak = run_peak(models)
    rss = []
    for mode in plan.rss_modes:
        rss.append(rss_of_one_frame(frame, mode))
        log(f"[sr] peak RSS of one {plan.size[0]}×{plan.size[1]} → ×4 frame, {mode}: "
            f"{rss[-1].get('peak_rss_mb')} MiB ({rss[-1]['status']})")
    return {"size": list(plan.size), "models": models, "conv_peak": peak, "rss": rss, "allocator": allocator_text(),
            "ncnn": _ncnn_version(), "seconds": round(time.perf_counter() - started, 1)}


def run_peak(models: list[dict[str, Any]]) -> dict[str, float]:
    """The run's conv peak (best sample over every model's runs: short samples read low whenever another process
    takes a core) and each model's share of it, set on the model records."""
    measured = [m for m in models if m.get("status", "ok") == "ok"]
    if not measured:
        return {}
    peak = {"gflops": max(m["conv_peak_gflops"] for m in measured),
            "gflops_cpu": max(m["conv_peak_gflops_cpu"] for m in measured)}
    for m in measured:
        m["peak_fraction"] = round(m["ours_gflops"] / peak["gflops"], 3)
        m["peak_fraction_cpu"] = round(m["ours_gflops_cpu"] / peak["gflops_cpu"], 3)
    return peak


def _ncnn_version() -> str | None:
    try:
        import ncnn
    except ImportError:
        return None
    return str(getattr(ncnn, "__version__", "?"))


# ------------------------------------------------------------------------------------------------------------
# report


def _met(value: float | None, ok: bool) -> str:
    return "—" if value is None else ("yes" if ok else "no")


def target_rows(result: dict[str, Any]) -> list[str]:
    """Rows for the stage's targets table: ×ncnn, % of the conv peak (per model), one-frame peak RSS (per mode);
    judged on CPU time ÷ threads, the wall-clock figure beside it."""
    speed = result.get("cpu_speed")
    if not speed:
        return []
    rows = []
    for m in speed["models"]:
        frame = f"{m['size'][0]}×{m['size'][1]}"
        if m.get("status", "ok") != "ok":
            rows.append(f"| speed vs ncnn, {m['model']} {frame} | ≥ {SPEED_RATIO_TARGET:.1f}× | — | {m['status']} "
                        "| — | — |")
            continue
        if m["ncnn_status"] != "ok":
            rows.append(f"| speed vs ncnn, {m['model']} {frame} | ≥ {SPEED_RATIO_TARGET:.1f}× | — | — "
                        f"| ncnn {m['ncnn_status']} | — |")
        else:
            rows.append(f"| speed vs ncnn, {m['model']} {frame} (CPU time; wall) | ≥ {SPEED_RATIO_TARGET:.1f}× | — "
                        f"| {m['speed_ratio_cpu']:.2f}× ({m['speed_ratio']:.2f}×) | ncnn {m['ncnn_s']:.2f} s "
                        f"| {_met(m['speed_ratio_cpu'], m['speed_ratio_cpu'] >= SPEED_RATIO_TARGET)} |")
        rows.append(f"| share of the conv peak, {m['model']} {frame} (CPU time; wall) "
                    f"| ≥ {100 * PEAK_FRACTION_TARGET:.0f} % | — "
                    f"| {100 * m['peak_fraction_cpu']:.0f} % ({100 * m['peak_fraction']:.0f} %) | — "
                    f"| {_met(m['peak_fraction_cpu'], m['peak_fraction_cpu'] >= PEAK_FRACTION_TARGET)} |")
    for r in speed["rss"]:
        frame = f"{r['size'][0]}×{r['size'][1]}"
        if r["status"] != "ok":
            rows.append(f"| peak RSS, one {frame} → ×{r['scale']} frame, {r['mode']} | < 4 GB | — | {r['status']} "
                        "| — | — |")
            continue
        at_target = tuple(r["size"]) == TARGET_SIZE and r["scale"] == 4
        met = _met(r["peak_rss_mb"], r["peak_rss_mb"] < RSS_LIMIT_MB) if at_target else "— (not 720×576)"
        rows.append(f"| peak RSS, one {frame} → ×{r['scale']} frame, {r['mode']} | < 4 GB | — "
                    f"| {r['peak_rss_mb'] / 1024:.2f} GB | — | {met} |")
    return rows


def _peak_text(peak: dict[str, float] | None) -> str:
    return f"{peak['gflops']:.0f} / {peak['gflops_cpu']:.0f}" if peak else "—"


def _pair(record: dict[str, Any], wall: str, cpu: str, digits: int) -> str:
    """'wall / CPU' figures of a record, or why ncnn has none."""
    if wall not in record:
        return record["ncnn_status"]
    return f"{record[wall]:.{digits}f} / {record[cpu]:.{digits}f}"


def speed_section(result: dict[str, Any]) -> list[str]:
    """The 'Speed at W×H on CPU' table: ours beside ncnn per model, GFLOP/s and the share of the conv peak."""
    speed = result.get("cpu_speed")
    if not speed:
        return []
    width, height = speed["size"]
    models = speed["models"]
    threads = next((m["threads"] for m in models if "threads" in m), 0)
    lines = [f"**Speed at {width}×{height} on CPU** — ours beside the `ncnn` runtime ({speed.get('ncnn') or 'absent'}"
             f", its default CPU options, {threads} threads like ours) on the same model, frame (Vid4 city's "
             "first GT frame, area-resized) and tiles (one tile where the tile column says it covers the frame), "
             "run by run interleaved with the reference conv (64→64 3×3, "
             f"{CONV_SIZE}×{CONV_SIZE}, channels-last, in our precision; best of 5 per run); the run's conv peak is "
             f"the best of all of them: {_peak_text(speed.get('conv_peak'))} GFLOP/s. Seconds: median; each as "
             "wall clock / CPU time ÷ threads (the second holds when other processes share the cores). GFLOP "
             f"counted from the architecture (2 × MACs). Allocator: {speed['allocator']}.", "",
             "| model (mode) | precision, tile | GFLOP | ours s | ncnn s | ours ÷ ncnn speed | ours GFLOP/s "
             "| ncnn GFLOP/s | conv peak in its runs GFLOP/s | ours % of the run's peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        if m.get("status", "ok") != "ok":
            lines.append(f"| {m['model']} ({m['mode']}) | {m['status']} |" + " |" * 8)
            continue
        lines.append(f"| {m['model']} ({m['mode']}) | {m['precision']}, {m['tile']} px | {m['gflop']:.1f} "
                     f"| {_pair(m, 'ours_s', 'ours_cpu_s', 2)} | {_pair(m, 'ncnn_s', 'ncnn_cpu_s', 2)} "
                     f"| {_pair(m, 'speed_ratio', 'speed_ratio_cpu', 2)} "
                     f"| {_pair(m, 'ours_gflops', 'ours_gflops_cpu', 0)} "
                     f"| {_pair(m, 'ncnn_gflops', 'ncnn_gflops_cpu', 0)} "
                     f"| {_pair(m, 'conv_peak_gflops', 'conv_peak_gflops_cpu', 0)} "
                     f"| {100 * m['peak_fraction']:.0f} / {100 * m['peak_fraction_cpu']:.0f} % |")
    rss = [r for r in speed["rss"] if r["status"] == "ok"]
    if rss:
        lines += ["", "Peak RSS of one frame through the stage (×4, automatic tiling, other parameters at their "
                  "defaults) in a fresh process: " + "; ".join(
                      f"{r['mode']} {r['size'][0]}×{r['size'][1]} → {r['out'][0]}×{r['out'][1]}: "
                      f"{r['peak_rss_mb']} MiB ({r['peak_rss_mb_before']} MiB after start-up), {r['seconds']} s"
                      for r in rss) + "."]
    return lines + [""]


if __name__ == "__main__":
    _rss_child(*sys.argv[1:4])
