"""`filmrestore bench --stage render`: the render engine end to end (decode, every cleaning stage, FFV1) beside the
FFmpeg chain on the same damaged 16-bit PNG sequence, each a subprocess timed as a whole, plus the cost of a resume.

Everything here runs the `filmrestore render` command line as a user would; nothing is imported from the engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from restoration.bench.memory import tree_rss_mb

SECTION = "render"
CLEANING = ("dust", "stabilize", "deflicker", "denoise", "color")
DAMAGE = ("dust", "scratches", "grain", "flicker", "weave", "fade")  # the chain corpus clip's damage
SEED = 1895
FRAME_RATE = 24
DEFAULT_FRAMES = 48
DEFAULT_REPEATS = 1
QUICK_CROP = (352, 288)
KILL_FRACTION = 0.5
CALL_COUNTS_ENV = "FILMRESTORE_CALL_COUNTS"
RSS_INTERVAL_S = 0.1
RUN_TIMEOUT_S = 1800.0

SPEEDUP_TARGET = 1.7           # 2 workers over 1
CALLS_TARGET = 1.0             # process calls per frame per stage
FFMPEG_RATIO_TARGET, FFMPEG_RATIO_GOAL = 1.0, 2.0   # ours (all cores) ÷ the FFmpeg nlmeans chain

Log = Callable[[str], None]


@dataclass(frozen=True)
class OurRun:
    """One way of running `filmrestore render`: in-process, a worker pool, or a Ray runtime."""

    name: str
    workers: int | None = None
    ray: str | None = None


OUR_RUNS = (OurRun("workers-1", workers=1), OurRun("workers-2", workers=2), OurRun("ray-local", ray="local"))
ALL_CORES_RUN = "workers-2"    # --workers defaults to all cores; this machine has two
RESUMED_RUN = "workers-2"

# FFmpeg's chain at the bench peers' fixed settings (peers.py), in our stage order
TMEDIAN = "tmedian=radius=1"
VIDSTAB_DETECT = "vidstabdetect=result=transforms.trf:shakiness=5:accuracy=15"
VIDSTAB_TRANSFORM = "vidstabtransform=input=transforms.trf:smoothing=5:optzoom=0:crop=black:interpol=bicubic"
DEFLICKER = "deflicker=size=15:mode=am"
DENOISERS = {"nlmeans": "nlmeans=s=5.0",
             "hqdn3d": "hqdn3d=luma_spatial=8.0:chroma_spatial=6.0:luma_tmp=12.0:chroma_tmp=9.0"}
CHAIN_FILTERS = ("tmedian", "vidstabdetect", "vidstabtransform", "deflicker", *DENOISERS, "colorlevels")
FFV1_OPTIONS = ("-c:v", "ffv1", "-level", "3", "-slicecrc", "1", "-g", "1", "-slices", "16", "-pix_fmt", "gbrp16le")


# ------------------------------------------------------------------------------------------------------------
# the source


def bounce_indices(available: int, count: int) -> list[int]:
    """Frame order forward then back (0 … n−1, n−2 … 1, 0 …): a longer clip from a short one without a cut."""
    if available < 1:
        raise ValueError("no frames to build the clip from")
    if available == 1:
        return [0] * count
    period = 2 * (available - 1)
    return [i % period if i % period < available else period - i % period for i in range(count)]


def frame_pattern(folder: Path) -> Path:
    return Path(folder) / "frame_%06d.png"


def make_source(data: Path, folder: Path, frames: int, crop: tuple[int, int] | None, log: Log) -> dict[str, Any]:
    """Vid4 city's GT frames (bounced to `frames`) with every damage, as a 16-bit RGB PNG sequence in `folder`."""
    import cv2

    from restoration.bench import corpus as C
    from restoration.synth import simulate

    started = time.perf_counter()
    clean = C.load_city(data, 10 ** 6, crop)
    order = bounce_indices(len(clean), frames)
    height, width = clean[0].shape[:2]
    pad = weave_pad(width, height, frames)
    padded = [cv2.copyMakeBorder(clean[i], pad, pad, pad, pad, cv2.BORDER_REFLECT_101) for i in order]
    clip = simulate(padded, DAMAGE, seed=SEED, overlay_dir=Path(data) / C.OVERLAY_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    pattern = str(frame_pattern(folder))
    for i, frame in enumerate(C.centre_crop(f, (width, height)) for f in clip.degraded):
        rgb16 = np.round(np.clip(frame, 0.0, 1.0) * 65535.0).astype(np.uint16)
        cv2.imwrite(pattern % i, np.ascontiguousarray(rgb16[..., ::-1]))
    log(f"[render] source: {frames} damaged city frames {width}×{height} ({time.perf_counter() - started:.1f} s)")
    return {"frames": frames, "size": [width, height], "clean_frames": len(clean), "damage": list(DAMAGE),
            "seed": SEED, "order": "forward then back (bounced) over Vid4 city's GT frames", "bits": 16,
            "edge_pad": pad}


def weave_pad(width: int, height: int, frames: int) -> int:
    """Mirrored border to add so that the simulator's weave crop leaves the frame at its own size."""
    from restoration.synth import DamageSettings
    from restoration.synth import geometry as geo

    settings = DamageSettings()
    pad = 0
    while True:
        size = (width + 2 * pad, height + 2 * pad)
        margin = geo.weave_margin_px(size, settings.weave_translation_sigma_px, settings.weave_rotation_sigma_deg)
        out_w, out_h = geo.plan_geometry(size, frames, (0.0, 0.0), margin).output_size
        if out_w >= width and out_h >= height:
            return pad
        pad += 2


def colour_levels(folder: Path, frames: int, clip_percent: float = 0.5) -> dict[str, float]:
    """The FFmpeg chain's auto levels: per-channel percentiles of the damaged frames (as the colorlevels peer)."""
    import cv2

    from restoration.bench.peers import auto_levels

    pattern = str(frame_pattern(folder))
    stills = [cv2.imread(pattern % i, cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32) / 65535.0
              for i in range(0, frames, 4)]
    return auto_levels(stills, clip_percent)


# ------------------------------------------------------------------------------------------------------------
# command lines


def filmrestore_program() -> list[str]:
    """How to call `filmrestore`: this Python on this checkout's package."""
    return [sys.executable, "-m", "restoration.cli"]


def render_command(source: Path | str, output: Path | str, run: OurRun, stages: Sequence[str] = CLEANING,
                   program: Sequence[str] | None = None, fresh: bool = False) -> list[str]:
    """`filmrestore render SOURCE -o OUT --stages … --workers N | --ray ADDRESS`, progress on every frame."""
    command = [*(program or filmrestore_program()), "render", str(source), "-o", str(output),
               "--stages", ",".join(stages), "--progress-every", "0"]
    if run.workers is not None:
        command += ["--workers", str(run.workers)]
    if run.ray is not None:
        command += ["--ray", run.ray]
    if fresh:
        command.append("--fresh")
    return command


def levels_text(levels: Mapping[str, float]) -> str:
    return ":".join(f"{key}={levels[key]:.6f}" for key in sorted(levels))


def chain_graphs(denoiser: str, levels: Mapping[str, float], have: set[str] | frozenset[str] | None = None
                 ) -> tuple[str | None, str]:
    """The two passes' filter graphs (detect, transform → … → colorlevels); filters not in `have` are left out.

    Formats follow the bench peers: vid.stab in 8-bit yuv444p, deflicker and the denoisers in yuv444p16le,
    colorlevels in gbrp16le (its float path scrambles unaligned widths).
    """
    def has(name: str) -> bool:
        return have is None or name in have

    detect = f"{TMEDIAN},format=yuv444p,{VIDSTAB_DETECT}" if has("vidstabdetect") and has("vidstabtransform") else None
    steps = [TMEDIAN] if has("tmedian") else []
    if detect is not None:
        if not has("tmedian"):
            detect = detect.replace(f"{TMEDIAN},", "")
        steps += ["format=yuv444p", VIDSTAB_TRANSFORM]
    steps.append("format=yuv444p16le")
    if has("deflicker"):
        steps.append(DEFLICKER)
    if has(denoiser):
        steps.append(DENOISERS[denoiser])
    steps.append("format=gbrp16le")
    if has("colorlevels"):
        steps.append(f"colorlevels={levels_text(levels)}")
    return detect, ",".join(steps)


def ffmpeg_commands(binary: str, source_pattern: Path | str, output: Path | str, denoiser: str,
                    levels: Mapping[str, float], have: set[str] | frozenset[str] | None = None) -> list[list[str]]:
    """The FFmpeg chain as the commands to run in one work folder (vid.stab's transforms file is relative)."""
    detect, transform = chain_graphs(denoiser, levels, have)
    source = [binary, "-hide_banner", "-nostdin", "-v", "error", "-y", "-framerate", str(FRAME_RATE),
              "-start_number", "0", "-i", str(source_pattern)]
    commands = []
    if detect is not None:
        commands.append([*source, "-vf", detect, "-f", "null", "-"])
    commands.append([*source, "-vf", transform, *FFV1_OPTIONS, str(output)])
    return commands


def parse_filter_list(text: str) -> set[str]:
    """Filter names from `ffmpeg -filters` output (flags column, name, pads, description)."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and "->" in parts[2] and re.fullmatch(r"[.A-Z|]{2,4}", parts[0]):
            names.add(parts[1])
    return names


def ffmpeg_filters(binary: str) -> set[str]:
    done = subprocess.run([binary, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=60)
    return parse_filter_list(done.stdout)


def ray_unavailable() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "skipped: ray is not importable in this Python"
    return None


# ------------------------------------------------------------------------------------------------------------
# reading what the render says


PROGRESS_LINE = re.compile(r"^\s*(?P<phase>[^:\[\]]+?)(?::\s+| +\[[#-]*\]\s+)(?P<done>\d+)/(?P<total>\d+)\b")
RESUME_NOTE = re.compile(r"resuming: (?P<kept>\d+) of (?P<chunks>\d+) chunks kept")


def parse_progress(line: str) -> tuple[str, int, int] | None:
    """(phase, done, total) of a progress line, plain (`render: 12/48 frames, …`) or a terminal bar."""
    match = PROGRESS_LINE.match(line.rsplit("\r", 1)[-1])
    if match is None:
        return None
    return match["phase"].strip(), int(match["done"]), int(match["total"])


def is_render_phase(phase: str) -> bool:
    """Frames being made (not cut detection or a per-shot analysis)."""
    return phase != "cuts" and not phase.startswith("analyze")


def render_fraction(lines: Sequence[str]) -> float | None:
    """How far the last render-phase progress line says the render got."""
    for line in reversed(lines):
        parsed = parse_progress(line)
        if parsed and is_render_phase(parsed[0]) and parsed[2] > 0:
            return parsed[1] / parsed[2]
    return None


def parse_resume(lines: Sequence[str]) -> dict[str, int] | None:
    """`filmrestore: note: resuming: K of M chunks kept` → kept, chunks, recomputed; None when not printed."""
    for line in lines:
        match = RESUME_NOTE.search(line)
        if match:
            kept, chunks = int(match["kept"]), int(match["chunks"])
            return {"kept": kept, "chunks": chunks, "recomputed": chunks - kept}
    return None


def call_figures(counts: Mapping[str, Any], stages: Sequence[str] = CLEANING) -> dict[str, Any]:
    """Process calls per frame per stage, the frames computed more than once (chunk handles) and analyses."""
    frames = int(counts["frames"])
    process = {s: int(counts.get("process", {}).get(s, 0)) for s in stages}
    per_frame = {s: round(n / frames, 4) if frames else None for s, n in process.items()}
    extra = {s: n - frames for s, n in process.items()}
    total = frames * len(stages)
    return {"frames": frames, "process": process, "per_frame": per_frame, "extra_frames": extra,
            "handle_overhead_pct": round(100.0 * sum(extra.values()) / total, 2) if total else None,
            "analyze": {s: int(n) for s, n in counts.get("analyze", {}).items()}}


def read_call_counts(path: Path, stages: Sequence[str] = CLEANING) -> dict[str, Any] | None:
    try:
        return call_figures(json.loads(Path(path).read_text()), stages)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------------------------------------------------
# running a command


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


class TreeRss:
    """Peak resident memory of a process and all its descendants, sampled (MiB)."""

    def __init__(self, pid: int, interval: float = RSS_INTERVAL_S) -> None:
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            if self._stop.wait(self.interval):
                return

    def start(self) -> "TreeRss":
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def run_timed(command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
              kill_at: float | None = None, kill_after_s: float | None = None,
              timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """Run `command` in its own process group; wall time, peak RSS of the tree, exit code, stderr lines.

    With `kill_at`, the group gets SIGKILL once a render-phase progress line reaches that fraction (or, when no
    progress line comes, after `kill_after_s`).
    """
    lines: list[str] = []
    killed: dict[str, Any] = {}
    load_before = load_average()
    started = time.perf_counter()
    process = subprocess.Popen(list(command), cwd=cwd, env=None if env is None else dict(env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace",
                               start_new_session=True)
    rss = TreeRss(process.pid).start()

    def kill(reason: str) -> None:
        if killed:
            return
        killed.update(reason=reason, after_s=round(time.perf_counter() - started, 3),
                      fraction=render_fraction(lines))
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def read() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            for line in raw.rstrip("\n").split("\r"):
                if line.strip():
                    lines.append(line)
            if kill_at is not None and (render_fraction(lines) or 0.0) >= kill_at:
                kill("progress")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = started + timeout_s
    while process.poll() is None:
        now = time.perf_counter()
        if kill_at is not None and kill_after_s is not None and render_fraction(lines) is None \
                and now - started >= kill_after_s:
            kill("clock (no progress line)")
        if now >= deadline:
            kill("timeout")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    reader.join(timeout=5)
    peak = rss.stop()
    # what the command left behind in its own group (a worker or a Ray daemon) would load the next run
    left = group_members(process.pid)
    if left:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"wall_s": round(wall, 3), "rc": process.returncode, "peak_rss_mb": round(peak, 1),
            "load_before": load_before, "load_after": load_average(), "killed": killed or None,
            "left_behind": len(left), "pgid": process.pid,
            "stderr_tail": lines[-8:], "lines": lines}


def group_members(pgid: int) -> list[int]:
    """Live processes of the process group `pgid`."""
    import psutil

    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return members


def _status(result: Mapping[str, Any]) -> str:
    if result.get("killed") and result["killed"]["reason"] == "timeout":
        return "failed: timed out"
    if result["rc"] == 0:
        return "ok"
    tail = [line for line in result["stderr_tail"] if parse_progress(line) is None]
    return f"failed (exit {result['rc']}): {tail[-1] if tail else 'no message'}"[:300]


def count_frames(path: Path) -> int | None:
    """Frames in a written master (ffprobe's packet count; no decode)."""
    try:
        done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                               "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
                              capture_output=True, text=True, timeout=120)
        return int(done.stdout.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------------------------------------
# measuring


def _env_with_counts(path: Path) -> dict[str, str]:
    return {**os.environ, CALL_COUNTS_ENV: str(path)}


def measure_ours(run: OurRun, source: Path, work: Path, tag: str, frames: int,
                 program: Sequence[str] | None, cwd: Path) -> dict[str, Any]:
    """One full render into a fresh output name; its wall, RSS, exit, frames written and call counts."""
    output = work / f"{run.name}-{tag}.mkv"
    counts = work / f"{run.name}-{tag}.counts.json"
    result = run_timed(render_command(frame_pattern(source), output, run, program=program), cwd=cwd,
                       env=_env_with_counts(counts))
    record = {k: v for k, v in result.items() if k != "lines"} | {"status": _status(result)}
    if record["status"] == "ok":
        record["frames_out"] = count_frames(output)
    record["calls"] = read_call_counts(counts)
    _remove_output(output)
    return record


def measure_ffmpeg(binary: str, denoiser: str, source: Path, work: Path, tag: str, levels: Mapping[str, float],
                   have: set[str]) -> dict[str, Any]:
    """Both passes of the FFmpeg chain, timed together; RSS is the larger pass's."""
    folder = work / f"ffmpeg-{denoiser}-{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "out.mkv"
    commands = ffmpeg_commands(binary, frame_pattern(source), output, denoiser, levels, have)
    passes = []
    for command in commands:
        result = run_timed(command, cwd=folder)
        passes.append(result)
        if result["rc"] != 0:
            break
    failed = next((p for p in passes if p["rc"] != 0), None)
    record: dict[str, Any] = {"wall_s": round(sum(p["wall_s"] for p in passes), 3),
                              "pass_wall_s": [p["wall_s"] for p in passes],
                              "peak_rss_mb": max(p["peak_rss_mb"] for p in passes), "rc": passes[-1]["rc"],
                              "load_before": passes[0]["load_before"], "load_after": passes[-1]["load_after"],
                              "status": "ok" if failed is None else _status(failed),
                              "graphs": [c[c.index("-vf") + 1] for c in commands]}
    if failed is None:
        record["frames_out"] = count_frames(output)
    _remove_output(output)
    return record


def measure_resume(run: OurRun, source: Path, work: Path, frames: int, full_wall_s: float | None,
                   program: Sequence[str] | None, cwd: Path, fraction: float = KILL_FRACTION) -> dict[str, Any]:
    """Start the render, SIGKILL its group at `fraction` of the frames, rerun the same command; the rerun's cost."""
    output = work / f"{run.name}-resume.mkv"
    command = render_command(frame_pattern(source), output, run, program=program)
    clock = None if full_wall_s is None else 1.5 * fraction * full_wall_s + 10.0
    first = run_timed(command, cwd=cwd, env=_env_with_counts(work / "resume-first.counts.json"), kill_at=fraction,
                      kill_after_s=clock)
    work_folder = Path(str(output) + ".work")
    kept_entries = len(list(work_folder.iterdir())) if work_folder.is_dir() else None
    counts = work / "resume-rerun.counts.json"
    rerun = run_timed(command, cwd=cwd, env=_env_with_counts(counts))
    record: dict[str, Any] = {
        "command": (shown := render_command("SOURCE", "OUT.mkv", run, program=program))[shown.index("render"):],
        "kill_at": fraction,
        "first": {"wall_s": first["wall_s"], "killed": first["killed"], "rc": first["rc"],
                  "finished_before_kill": first["killed"] is None and first["rc"] == 0},
        "work_entries_after_kill": kept_entries,
        "rerun": {k: v for k, v in rerun.items() if k != "lines"} | {"status": _status(rerun)},
        "resume": parse_resume(rerun["lines"]),
        "calls": read_call_counts(counts),
        "full_wall_s": full_wall_s,
    }
    if record["rerun"]["status"] == "ok":
        record["rerun"]["frames_out"] = count_frames(output)
    record |= resume_figures(record, frames)
    _remove_output(output)
    return record


def resume_figures(record: Mapping[str, Any], frames: int) -> dict[str, Any]:
    """Rerun wall ÷ a full run's, and the frames the rerun computed (per stage, from its call counts)."""
    out: dict[str, Any] = {}
    rerun, full = record["rerun"].get("wall_s"), record.get("full_wall_s")
    if rerun is not None and full:
        out["rerun_vs_full"] = round(rerun / full, 3)
    calls = record.get("calls")
    if calls:
        computed = statistics.mean(calls["process"].values()) if calls["process"] else 0.0
        out["frames_recomputed"] = round(computed, 1)
        out["frames_recomputed_pct"] = round(100.0 * computed / frames, 1) if frames else None
    return out


def _remove_output(output: Path) -> None:
    import shutil

    for path in (output, Path(str(output) + ".work")):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    for side in output.parent.glob(output.name + ".*"):
        if side.is_file():
            side.unlink()


# ------------------------------------------------------------------------------------------------------------
# figures


def median_of(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A run's median over its repeats (only the repeats that finished)."""
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return {"status": records[-1]["status"] if records else "not run", "repeats": len(records)}
    wall = statistics.median(r["wall_s"] for r in ok)
    calls = next((r["calls"] for r in reversed(ok) if r.get("calls")), None)
    return {"status": "ok", "repeats": len(ok), "wall_s": round(wall, 3),
            "walls_s": [r["wall_s"] for r in ok], "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
            "frames_out": ok[-1].get("frames_out"), "calls": calls}


def with_fps(summary: dict[str, Any], frames: int) -> dict[str, Any]:
    if summary.get("wall_s"):
        summary["fps"] = round(frames / summary["wall_s"], 3)
    return summary


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def scaling(result: Mapping[str, Any], machines: Sequence[int] = (2, 4, 8, 16)) -> dict[str, Any]:
    """What the measured numbers say about N machines: chunks, handle overhead, serial share (Amdahl from the
    2-worker speed-up) and the speed-ups they allow."""
    ours = result.get("ours", {})
    one, two = ours.get("workers-1", {}), ours.get(ALL_CORES_RUN, {})
    speedup = ratio(one.get("wall_s"), two.get("wall_s"))
    resume = result.get("resume") or {}
    chunks = (resume.get("resume") or {}).get("chunks")
    calls = two.get("calls") or {}
    overhead = calls.get("handle_overhead_pct")
    frames = result["source"]["frames"]
    out: dict[str, Any] = {"chunks": chunks, "speedup_2": speedup, "handle_overhead_pct": overhead,
                           "extra_frames": calls.get("extra_frames"), "frames": frames}
    if chunks and chunks > 1 and calls.get("extra_frames"):
        extra = sum(calls["extra_frames"].values())
        out["extra_per_boundary"] = round(extra / (chunks - 1), 2)  # stage-frames per chunk edge, all stages
    if speedup is None:
        return out
    # Amdahl on two workers: 1/S = s + (1 − s)/2; the handle overhead is in the measured time, so s includes it
    serial = min(max(2.0 / speedup - 1.0, 0.0), 1.0)
    out["serial_share"] = round(serial, 3)
    predicted = {}
    for n in machines:
        usable = min(n, chunks) if chunks else n
        predicted[str(n)] = round(1.0 / (serial + (1.0 - serial) / usable), 2)
    out["predicted_speedup"] = predicted
    return out


# ------------------------------------------------------------------------------------------------------------
# the section


def measure(data: Path, frames: int = DEFAULT_FRAMES, repeats: int = DEFAULT_REPEATS, quick: bool = False,
            log: Log = print, program: Sequence[str] | None = None, work_dir: Path | None = None,
            runs: Sequence[OurRun] = OUR_RUNS, resume: bool = True) -> dict[str, Any]:
    """Build the source, run ours and FFmpeg's chains `repeats` times interleaved, then the resume; all figures."""
    from restoration.bench.peers import ffmpeg_binary

    cwd = Path(__file__).resolve().parents[2]
    started = time.perf_counter()
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="filmrestore-render-bench-", dir=work_dir) as tmp:
        tmp_path = Path(tmp)
        source_folder = tmp_path / "source"
        source = make_source(data, source_folder, frames, QUICK_CROP if quick else None, log)
        binary = ffmpeg_binary()
        have = ffmpeg_filters(binary) if binary else set()
        missing = [f for f in CHAIN_FILTERS if f not in have]
        levels = colour_levels(source_folder, frames)
        skipped = {r.name: ray_unavailable() for r in runs if r.ray is not None and ray_unavailable()}
        raw: dict[str, list[dict[str, Any]]] = {r.name: [] for r in runs if r.name not in skipped}
        peers: dict[str, list[dict[str, Any]]] = {d: [] for d in DENOISERS} if binary else {}
        for repeat in range(repeats):
            for run in runs:
                if run.name in skipped:
                    continue
                record = measure_ours(run, source_folder, tmp_path, str(repeat), frames, program, cwd)
                raw[run.name].append(record)
                log(f"[render] {run.name} run {repeat + 1}/{repeats}: {record['status']}, {record['wall_s']:.1f} s")
            for denoiser in peers:
                record = measure_ffmpeg(binary, denoiser, source_folder, tmp_path, str(repeat), levels, have)
                peers[denoiser].append(record)
                log(f"[render] ffmpeg {denoiser} chain run {repeat + 1}/{repeats}: {record['status']}, "
                    f"{record['wall_s']:.1f} s")
        ours = {name: with_fps(median_of(records), frames) | {"runs": records} for name, records in raw.items()}
        ours |= {name: {"status": why} for name, why in skipped.items()}
        ffmpeg = {d: with_fps(median_of(records), frames) | {"runs": records} for d, records in peers.items()}
        resumed = None
        resumed_run = next((r for r in runs if r.name == RESUMED_RUN), None)
        if resume and resumed_run is not None:
            resumed = measure_resume(resumed_run, source_folder, tmp_path, frames,
                                     ours.get(RESUMED_RUN, {}).get("wall_s"), program, cwd)
            log(f"[render] resume: rerun {resumed['rerun']['status']}, {resumed['rerun']['wall_s']:.1f} s, "
                f"{resumed['resume'] or 'no resume note'}")
    result: dict[str, Any] = {
        "source": source, "stages": list(CLEANING), "repeats": repeats, "ffmpeg_filters_missing": missing,
        "ffmpeg_levels": levels, "ours": ours, "ffmpeg": ffmpeg, "resume": resumed,
        "load_avg_start": load_start, "load_avg_end": load_average(),
        "seconds": round(time.perf_counter() - started, 2),
        "commands": {r.name: render_command("SOURCE", "OUT.mkv", r)[len(program or filmrestore_program()):]
                     for r in runs},
    }
    result["figures"] = figures(result)
    return result


def figures(result: Mapping[str, Any]) -> dict[str, Any]:
    """The ratios the targets name, from the medians."""
    ours, ffmpeg = result["ours"], result["ffmpeg"]
    one, two = ours.get("workers-1", {}), ours.get(ALL_CORES_RUN, {})
    out: dict[str, Any] = {"speedup_2_over_1": ratio(one.get("wall_s"), two.get("wall_s")),
                           "vs_ffmpeg": {}}
    for name, record in ours.items():
        out["vs_ffmpeg"][name] = {d: ratio(record.get("fps"), peer.get("fps")) for d, peer in ffmpeg.items()}
    out["scaling"] = scaling(result)
    return out


# ------------------------------------------------------------------------------------------------------------
# report


def _num(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def _met(value: float | None, ok: bool) -> str:
    return "—" if value is None else ("yes" if ok else "no")


def _load(record: Mapping[str, Any]) -> str:
    before, after = record.get("load_before"), record.get("load_after")
    if not before:
        return "—"
    return f"{before[0]:.1f} → {after[0]:.1f}" if after else f"{before[0]:.1f}"


def _calls_text(calls: Mapping[str, Any] | None) -> str:
    if not calls:
        return "— (no call counts written)"
    values = list(calls["per_frame"].values())
    if values and all(v == values[0] for v in values):
        return f"{values[0]:.2f} every stage"
    return ", ".join(f"{s} {v:.2f}" for s, v in calls["per_frame"].items() if v is not None)


def target_rows(result: Mapping[str, Any]) -> list[str]:
    """Targets: speed-up of 2 workers, process calls per frame, ours ÷ the FFmpeg nlmeans chain."""
    fig = result["figures"]
    speedup = fig.get("speedup_2_over_1")
    rows = [f"| speed-up, `--workers 2` over `--workers 1` | ≥ {SPEEDUP_TARGET:.1f}× | {_num(speedup, 2, '×')} "
            f"| {_met(speedup, speedup is not None and speedup >= SPEEDUP_TARGET)} |"]
    for name in ("workers-1", ALL_CORES_RUN):
        calls = result["ours"].get(name, {}).get("calls")
        worst = max(calls["per_frame"].values()) if calls and calls["per_frame"] else None
        rows.append(f"| process calls per frame per stage, `{name}` (worst stage) | {CALLS_TARGET:.2f} "
                    f"| {_num(worst, 2)} | {_met(worst, worst is not None and worst <= CALLS_TARGET + 1e-9)} |")
    vs = fig["vs_ffmpeg"].get(ALL_CORES_RUN, {}).get("nlmeans")
    met = "—" if vs is None else ("yes, goal met" if vs >= FFMPEG_RATIO_GOAL else
                                  "yes (goal 2× not yet)" if vs >= FFMPEG_RATIO_TARGET else "no")
    rows.append(f"| fps, ours (`{ALL_CORES_RUN}`) ÷ FFmpeg nlmeans chain | ≥ {FFMPEG_RATIO_TARGET:.1f}× "
                f"(goal {FFMPEG_RATIO_GOAL:.0f}×) | {_num(vs, 2, '×')} | {met} |")
    return rows


def run_rows(result: Mapping[str, Any]) -> list[str]:
    """One row per command: fps, median wall, peak RSS, frames written, calls per frame, ratios, load."""
    frames = result["source"]["frames"]
    ffmpeg = result["ffmpeg"]
    denoisers = list(ffmpeg)
    rows = ["| run | status | fps | wall s (median) | peak RSS MiB (tree) | frames out "
            "| process calls per frame | " + " | ".join(f"÷ ffmpeg {d}" for d in denoisers) + " | load 1-min |",
            "|---|---|---|---|---|---|---|" + "---|" * len(denoisers) + "---|"]
    for name, record in result["ours"].items():
        if record.get("status") != "ok":
            rows.append(f"| `{name}` | {record.get('status')} |" + " — |" * (5 + len(denoisers)) + " — |")
            continue
        ratios = " | ".join(_num(result["figures"]["vs_ffmpeg"][name].get(d), 2, "×") for d in denoisers)
        rows.append(f"| `{name}` | ok | {_num(record['fps'])} | {_num(record['wall_s'], 1)} "
                    f"| {record['peak_rss_mb']:.0f} | {record.get('frames_out') or '—'}/{frames} "
                    f"| {_calls_text(record.get('calls'))} | {ratios}{' | ' if ratios else ''}"
                    f"{_load(record['runs'][-1])} |")
    for name, record in ffmpeg.items():
        if record.get("status") != "ok":
            rows.append(f"| ffmpeg {name} chain | {record.get('status')} |" + " — |" * (5 + len(denoisers))
                        + " — |")
            continue
        rows.append(f"| ffmpeg {name} chain | ok | {_num(record['fps'])} | {_num(record['wall_s'], 1)} "
                    f"| {record['peak_rss_mb']:.0f} | {record.get('frames_out') or '—'}/{frames} | — | "
                    + " | ".join("—" for _ in denoisers) + f"{' | ' if denoisers else ''}"
                    f"{_load(record['runs'][-1])} |")
    return rows


def resume_text(result: Mapping[str, Any]) -> str:
    resume = result.get("resume")
    if not resume:
        return "Resume: not measured in this run."
    first, rerun = resume["first"], resume["rerun"]
    killed = first.get("killed")
    if killed:
        where = (f"at {100 * killed['fraction']:.0f} % of the frames" if killed.get("fraction") is not None
                 else "before any progress line")
        start = f"killed (SIGKILL to its process group, by {killed['reason']}) {where}, {killed['after_s']:.1f} s in"
    elif first.get("finished_before_kill"):
        start = f"finished before it could be killed ({first['wall_s']:.1f} s): the rerun resumes a finished render"
    else:
        start = f"ended by itself with exit {first['rc']} after {first['wall_s']:.1f} s"
    note = resume.get("resume")
    chunks = (f"the engine kept {note['kept']} of {note['chunks']} chunks and recomputed {note['recomputed']}"
              if note else "the engine printed no `resuming: K of M chunks kept` note")
    if rerun.get("status") != "ok":
        return (f"Resume (`{' '.join(resume['command'])}`): the first run {start}; the rerun {rerun['status']}; "
                f"{chunks}.")
    recomputed = (f"; by its call counts it computed {resume['frames_recomputed']:.0f} frames a stage "
                  f"({resume['frames_recomputed_pct']:.0f} % of the clip)" if resume.get("frames_recomputed")
                  is not None else "")
    versus = (f" = {resume['rerun_vs_full']:.2f}× a full `{RESUMED_RUN}` run ({resume['full_wall_s']:.1f} s)"
              if resume.get("rerun_vs_full") is not None else "")
    return (f"Resume (`{' '.join(resume['command'])}`): the first run {start}; the same command again took "
            f"{rerun['wall_s']:.1f} s{versus}; {chunks}{recomputed}.")


def scaling_text(result: Mapping[str, Any]) -> str:
    """The 'scaling to N machines' paragraph, every number from this run."""
    s = result["figures"]["scaling"]
    parts = []
    if s.get("chunks"):
        parts.append(f"The render split the {s['frames']} frames into {s['chunks']} chunks "
                     f"(≈ {s['frames'] / s['chunks']:.0f} frames each), so at most {s['chunks']} machines "
                     "can work on this clip at once.")
    else:
        parts.append("The chunk count is unknown (the engine printed no resume note), so the machine count a clip "
                     "can use is not bounded here.")
    if s.get("handle_overhead_pct") is not None:
        extra = s.get("extra_frames") or {}
        edge = (f" ({s['extra_per_boundary']:.1f} stage-frames per chunk edge)" if s.get("extra_per_boundary")
                is not None else "")
        parts.append(f"Handles: with `{ALL_CORES_RUN}` the stages computed {s['handle_overhead_pct']:.1f} % more "
                     "frames than the clip has (" + ", ".join(f"{k} +{v}" for k, v in extra.items()) + f"){edge}; "
                     "every extra chunk adds one more edge, so that share grows with the machine count.")
    else:
        parts.append("Handle overhead unknown (no call counts were written).")
    if s.get("speedup_2") is None:
        parts.append("No speed-up was measured, so no projection.")
        return " ".join(parts)
    predicted = ", ".join(f"{n} → {v:.1f}×" for n, v in s["predicted_speedup"].items())
    parts.append(f"Two workers ran {s['speedup_2']:.2f}× as fast as one: read with Amdahl's law that leaves "
                 f"{100 * s['serial_share']:.0f} % of the one-worker time serial (start-up, decode of the "
                 "handles, per-shot analyses, the final mux and framemd5, and whatever the two workers took from "
                 f"each other on two shared cores), which would allow {predicted} on N machines"
                 + (f" (capped at {s['chunks']} chunks)" if s.get("chunks") else "") + ". "
                 "What limits it: that serial share, the handles growing with the chunk count, per-shot analyses "
                 "every chunk of a shot must see, and copying source and chunks between machines — not measured "
                 "here, where both workers share one machine's cores, memory bandwidth and disk.")
    return " ".join(parts)


def render_section(result: Mapping[str, Any]) -> list[str]:
    """The `## render` section of REPORT.md from render.json."""
    src = result["source"]
    width, height = src["size"]
    lines = ["## render", "",
             f"Run {result['date']}, profile `{result['profile']}`, {result['seconds']:.0f} s; load average "
             f"{_load({'load_before': result.get('load_avg_start'), 'load_after': result.get('load_avg_end')})} "
             f"over the section ({result['machine']['cores']} cores).", "",
             f"How measured: one source, {src['frames']} frames {width}×{height}, 16-bit RGB PNG ({src['order']}, "
             f"{src['clean_frames']} clean frames, edges mirrored by {src.get('edge_pad', 0)} px before the weave "
             "so the frames keep their size; "
             f"damage {', '.join(src['damage'])}, seed {src['seed']}). Each "
             "command runs end to end as a subprocess — decode, "
             + " → ".join(result["stages"]) + ", FFV1 master — and is timed on the wall clock; peak RSS is the "
             f"whole process tree's, sampled every {RSS_INTERVAL_S * 1000:.0f} ms. Medians of {result['repeats']} "
             "run(s), every command interleaved with the others in each repeat, so they saw the same load. "
             f"Process calls per frame come from `{CALL_COUNTS_ENV}`.", ""]
    lines += ["**Targets** (issue 18):", "", "| figure | target | measured | met |", "|---|---|---|---|"]
    lines += target_rows(result) + [""]
    lines += run_rows(result) + [""]
    commands = "; ".join(f"`{name}`: `filmrestore {' '.join(c)}`" for name, c in result["commands"].items())
    lines += [f"Commands: {commands}.", ""]
    ffmpeg = next((r for r in result["ffmpeg"].values() if r.get("runs")), None)
    missing = result.get("ffmpeg_filters_missing") or []
    chain = ("FFmpeg chain (the `ffmpeg` binary, its default threads, the bench peers' fixed settings): pass 1 "
             "tmedian → vidstabdetect, pass 2 tmedian → vidstabtransform → deflicker → nlmeans or hqdn3d → "
             "colorlevels → FFV1 (gbrp16le, the options of our master); both passes in its time; colorlevels' auto "
             "levels are taken from the damaged frames before the timing; tmedian drops its radius at each end, so "
             "the chain writes fewer frames than it reads (fps counts the frames read).")
    if missing:
        chain += (f" **This ffmpeg build lacks {', '.join(missing)}**: the chain ran without "
                  f"{'it' if len(missing) == 1 else 'them'}, so its fps reads high.")
    lines += [chain, ""]
    if ffmpeg:
        lines += ["Graphs: " + " / ".join(f"`{g}`" for g in ffmpeg["runs"][-1].get("graphs", [])), ""]
    lines += [resume_text(result), "", "**Scaling to N machines.** " + scaling_text(result), ""]
    return lines
