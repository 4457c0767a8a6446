"""The open tools our stages are measured against: FFmpeg filters (PyAV filter graph, else the ffmpeg binary) and OpenCV.

Every peer takes float32 RGB frames in [0, 1] and returns the same number of frames. FFmpeg filters run through
PyAV's bundled libavfilter when it has every filter of the chain; otherwise (hqdn3d, vidstab) through Debian's
`ffmpeg` binary over lossless 16-bit raw temp files — a subprocess the benchmark may use, the product never does.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

FilterChain = list[tuple[str, str]]
PeerRun = Callable[[list[np.ndarray], Mapping[str, Any]], list[np.ndarray]]

FRAME_RATE = Fraction(25, 1)


class PeerUnavailable(Exception):
    """A peer that cannot run on this machine (e.g. the ffmpeg binary is missing); the report says why."""


@dataclass(frozen=True)
class Peer:
    """One open tool for one stage: a fixed setting (used by --quick) and the sweep the full run tunes over."""

    name: str
    stage: str
    tool: str
    run: PeerRun
    settings: dict[str, Any]
    sweep: tuple[dict[str, Any], ...] = ()
    filters: tuple[str, ...] = ()
    note: str = ""

    def candidates(self, quick: bool) -> list[dict[str, Any]]:
        """The settings to try: the fixed one in --quick, the sweep (which contains it) in the full run."""
        if quick or not self.sweep:
            return [dict(self.settings)]
        return [dict(s) for s in self.sweep]

    def unavailable(self) -> str | None:
        """Why this peer cannot run here, or None when it can."""
        if self.filters and not pyav_has(self.filters) and ffmpeg_binary() is None:
            return "unavailable: ffmpeg binary missing"
        return None

    def backend(self) -> str:
        if not self.filters:
            return "opencv"
        return "pyav" if pyav_has(self.filters) else "ffmpeg-binary"


# --------------------------------------------------------------------------------------------------------------
# FFmpeg plumbing


@lru_cache(maxsize=None)
def _pyav_filters() -> frozenset[str]:
    try:
        import av.filter
    except ImportError:  # pragma: no cover - av is a hard dependency of the product
        return frozenset()
    return frozenset(av.filter.filters_available)


def pyav_has(filters: Sequence[str]) -> bool:
    """Whether PyAV's bundled libavfilter provides every filter named."""
    available = _pyav_filters()
    return all(name in available for name in filters)


def ffmpeg_binary() -> str | None:
    """Path of the `ffmpeg` executable, or None."""
    return shutil.which("ffmpeg")


def ffmpeg_versions() -> dict[str, str]:
    """Versions of the two FFmpeg builds the peers may use."""
    versions: dict[str, str] = {}
    try:
        import av

        versions["pyav"] = av.__version__
        lavfi = av.library_versions.get("libavfilter")
        if lavfi:
            versions["pyav_libavfilter"] = ".".join(str(v) for v in lavfi)
    except ImportError:  # pragma: no cover
        pass
    binary = ffmpeg_binary()
    if binary:
        try:
            first = subprocess.run([binary, "-hide_banner", "-version"], capture_output=True, text=True,
                                   timeout=20).stdout.splitlines()
            versions["ffmpeg_binary"] = first[0].split(" Copyright")[0] if first else "unknown"
        except (OSError, subprocess.SubprocessError):
            versions["ffmpeg_binary"] = "unusable"
    else:
        versions["ffmpeg_binary"] = "missing"
    return versions


def mirror_pad(frames: Sequence[np.ndarray], pad: int) -> list[np.ndarray]:
    """Frames with `pad` mirrored frames on each side (edge not repeated), as our own pipeline pads clip edges."""
    frames = list(frames)
    if pad <= 0:
        return frames
    if len(frames) <= pad:
        raise ValueError(f"a clip of {len(frames)} frames is too short to mirror {pad} frames")
    return frames[pad:0:-1] + frames + frames[-2:-pad - 2:-1]


def _to_uint16(frame: np.ndarray) -> np.ndarray:
    return (np.clip(frame, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def filter_frames_pyav(frames: Sequence[np.ndarray], chain: FilterChain) -> list[np.ndarray]:
    """Push frames through buffer → chain → format=gbrpf32le → buffersink in PyAV's filter graph."""
    import av
    import av.filter

    height, width = frames[0].shape[:2]
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(width=width, height=height, format="gbrpf32le", time_base=1 / FRAME_RATE)]
    nodes += [graph.add(name, args) for name, args in chain]
    nodes += [graph.add("format", "gbrpf32le"), graph.add("buffersink")]
    graph.link_nodes(*nodes).configure()

    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.vpull()
            except (BlockingIOError, EOFError, av.error.EOFError):
                return
            out.append(frame.to_ndarray().astype(np.float32, copy=False))

    for index, frame in enumerate(frames):
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.float32), format="gbrpf32le")
        video.pts = index
        video.time_base = 1 / FRAME_RATE
        graph.vpush(video)
        drain()
    graph.vpush(None)
    drain()
    return out


def _chain_text(chain: FilterChain) -> str:
    return ",".join(f"{name}={args}" if args else name for name, args in chain)


def _run_binary(args: list[str]) -> None:
    binary = ffmpeg_binary()
    if binary is None:
        raise PeerUnavailable("unavailable: ffmpeg binary missing")
    done = subprocess.run([binary, "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {done.stderr.strip()[-400:]}")


def filter_frames_binary(frames: Sequence[np.ndarray], chain: FilterChain,
                         workdir: Path | None = None) -> list[np.ndarray]:
    """Run the chain in the `ffmpeg` binary over a lossless rgb48le raw temp file (benchmark only)."""
    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory(prefix="filmrestore-peer-", dir=workdir) as tmp:
        source, result = Path(tmp) / "in.rgb48", Path(tmp) / "out.rgb48"
        with open(source, "wb") as handle:
            for frame in frames:
                handle.write(_to_uint16(frame).tobytes())
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{width}x{height}", "-r", str(FRAME_RATE)]
        _run_binary([*raw, "-i", str(source), "-vf", _chain_text(chain),
                     "-f", "rawvideo", "-pix_fmt", "rgb48le", str(result)])
        data = np.fromfile(result, dtype="<u2")
    count = data.size // (height * width * 3)
    data = data[: count * height * width * 3].reshape(count, height, width, 3)
    return [(plane.astype(np.float32) / 65535.0) for plane in data]


def filter_frames(frames: Sequence[np.ndarray], chain: FilterChain, pad: int = 0, drop: int = 0) -> list[np.ndarray]:
    """Run an FFmpeg filter chain, PyAV first, else the binary; return exactly len(frames) frames.

    `pad` mirrored frames are added on each side first; `drop` is how many frames the filter itself swallows at
    each end (tmedian swallows its radius), so the output is trimmed back to the input's frames.
    """
    names = [name for name, _ in chain]
    padded = mirror_pad(frames, pad)
    if pyav_has(names):
        out = filter_frames_pyav(padded, chain)
    elif ffmpeg_binary() is not None:
        out = filter_frames_binary(padded, chain)
    else:
        raise PeerUnavailable("unavailable: ffmpeg binary missing")
    expected = len(padded) - 2 * drop
    if len(out) != expected:
        raise RuntimeError(f"filter chain {_chain_text(chain)!r} returned {len(out)} frames, expected {expected}")
    start = pad - drop
    return out[start:start + len(frames)]


# --------------------------------------------------------------------------------------------------------------
# dust


def run_tmedian(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    radius = int(s["radius"])
    return filter_frames(frames, [("tmedian", f"radius={radius}")], pad=radius, drop=radius)


def run_removegrain(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    mode = int(s["mode"])
    return filter_frames(frames, [("format", "gbrp16le"), ("removegrain", f"m0={mode}:m1={mode}:m2={mode}")])


# --------------------------------------------------------------------------------------------------------------
# stabilize


def run_vidstab(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    """Two-pass vid.stab in the binary: vidstabdetect writes the transforms, vidstabtransform applies them (yuv)."""
    if ffmpeg_binary() is None:
        raise PeerUnavailable("unavailable: ffmpeg binary missing")
    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory(prefix="filmrestore-vidstab-") as tmp:
        source, result, trf = Path(tmp) / "in.rgb48", Path(tmp) / "out.rgb48", Path(tmp) / "transforms.trf"
        with open(source, "wb") as handle:
            for frame in frames:
                handle.write(_to_uint16(frame).tobytes())
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{width}x{height}", "-r", str(FRAME_RATE)]
        detect = (f"format=yuv444p,vidstabdetect=result={trf}:shakiness={int(s['shakiness'])}"
                  f":accuracy={int(s['accuracy'])}")
        _run_binary([*raw, "-i", str(source), "-vf", detect, "-f", "null", "-"])
        transform = (f"format=yuv444p,vidstabtransform=input={trf}:smoothing={int(s['smoothing'])}"
                     f":optzoom={int(s['optzoom'])}:crop={s['crop']}:interpol={s['interpol']},format=rgb48le")
        _run_binary([*raw, "-i", str(source), "-vf", transform, "-f", "rawvideo", "-pix_fmt", "rgb48le",
                     str(result)])
        data = np.fromfile(result, dtype="<u2")
    count = data.size // (height * width * 3)
    if count != len(frames):
        raise RuntimeError(f"vidstab returned {count} frames, expected {len(frames)}")
    data = data.reshape(count, height, width, 3)
    return [plane.astype(np.float32) / 65535.0 for plane in data]


def run_deshake(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    args = f"rx={int(s['rx'])}:ry={int(s['ry'])}:edge={s['edge']}:contrast={int(s['contrast'])}"
    return filter_frames(frames, [("format", "yuv444p"), ("deshake", args)])


# --------------------------------------------------------------------------------------------------------------
# deflicker


def run_deflicker(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    return filter_frames(frames, [("format", "yuv444p16le"), ("deflicker", f"size={int(s['size'])}:mode={s['mode']}")])


# --------------------------------------------------------------------------------------------------------------
# denoise (all in yuv444p16le: the filters are built for luma/chroma planes, and 16 bits lose nothing we measure)


def run_hqdn3d(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    luma = float(s["luma_spatial"])
    # FFmpeg's own derivation of the other three strengths from luma_spatial
    args = f"luma_spatial={luma}:chroma_spatial={0.75 * luma}:luma_tmp={1.5 * luma}:chroma_tmp={1.125 * luma}"
    return filter_frames(frames, [("format", "yuv444p16le"), ("hqdn3d", args)])


def run_nlmeans(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    return filter_frames(frames, [("format", "yuv444p16le"), ("nlmeans", f"s={float(s['s'])}")])


def run_atadenoise(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    a, b = float(s["a"]), float(s["b"])
    args = f"0a={a}:1a={a}:2a={a}:0b={b}:1b={b}:2b={b}:s={int(s['s'])}"
    return filter_frames(frames, [("format", "yuv444p16le"), ("atadenoise", args)])


def run_bm3d(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    return filter_frames(frames, [("format", "yuv444p16le"), ("bm3d", f"sigma={float(s['sigma'])}")])


def run_cv2_nlmeans(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    """OpenCV fastNlMeansDenoisingColored (8-bit only, so frames are quantized to 8 bits around it)."""
    import cv2

    h = float(s["h"])
    out = []
    for frame in frames:
        rgb8 = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        clean = cv2.fastNlMeansDenoisingColored(rgb8, None, h, h, int(s["template"]), int(s["search"]))
        out.append(clean.astype(np.float32) / 255.0)
    return out


# --------------------------------------------------------------------------------------------------------------
# colour


def run_grayworld(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    return filter_frames(frames, [("grayworld", "")])


def auto_levels(frames: Sequence[np.ndarray], clip_percent: float) -> dict[str, float]:
    """Per-channel black/white points over the whole clip: the `clip_percent` low and high percentiles."""
    stack = np.stack([f[::2, ::2] for f in frames]).reshape(-1, 3)
    low = np.percentile(stack, clip_percent, axis=0)
    high = np.percentile(stack, 100.0 - clip_percent, axis=0)
    high = np.maximum(high, low + 1e-3)
    return {f"{c}imin": float(lo) for c, lo in zip("rgb", low)} | {f"{c}imax": float(hi) for c, hi in zip("rgb", high)}


def run_colorlevels(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    """FFmpeg colorlevels fed with auto levels: per-channel clip percentiles mapped to 0 and 1."""
    levels = auto_levels(frames, float(s["clip_percent"]))
    args = ":".join(f"{k}={v:.6f}" for k, v in levels.items())
    # 16-bit, not float planes: FFmpeg's colorlevels scrambles gbrpf32le frames whose width is not aligned
    return filter_frames(frames, [("format", "gbrp16le"), ("colorlevels", args)])


def run_stretch(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    """Automatic per-channel percentile stretch over the clip (numpy): what a quick 'auto levels' does."""
    levels = auto_levels(frames, float(s["clip_percent"]))
    low = np.float32([levels[f"{c}imin"] for c in "rgb"])
    high = np.float32([levels[f"{c}imax"] for c in "rgb"])
    return [np.clip((f - low) / (high - low), 0.0, 1.0).astype(np.float32) for f in frames]


# --------------------------------------------------------------------------------------------------------------
# super-resolution


def _resize(frames: list[np.ndarray], scale: int, interpolation: int) -> list[np.ndarray]:
    import cv2

    out = []
    for frame in frames:
        h, w = frame.shape[:2]
        up = cv2.resize(frame, (w * scale, h * scale), interpolation=interpolation)
        out.append(np.clip(up, 0.0, 1.0).astype(np.float32, copy=False))
    return out


def run_bicubic(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    import cv2

    return _resize(frames, int(s["scale"]), cv2.INTER_CUBIC)


def run_lanczos(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    import cv2

    return _resize(frames, int(s["scale"]), cv2.INTER_LANCZOS4)


# --------------------------------------------------------------------------------------------------------------
# the whole chain

CHAIN_PEERS = ("tmedian", "vidstab", "deflicker", "nlmeans", "colorlevels")


def run_chain(frames: list[np.ndarray], s: Mapping[str, Any]) -> list[np.ndarray]:
    """The open tools in our stage order, each at its fixed (quick) setting."""
    for name in CHAIN_PEERS:
        step = peer(name)
        frames = step.run(frames, step.settings)
    return frames


# --------------------------------------------------------------------------------------------------------------
# the registry

def _grid(**axes: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    combos: list[dict[str, Any]] = [{}]
    for key, values in axes.items():
        combos = [c | {key: v} for c in combos for v in values]
    return tuple(combos)


_VIDSTAB = {"shakiness": 5, "accuracy": 15, "smoothing": 5, "optzoom": 0, "crop": "black", "interpol": "bicubic"}
_ATA = {"a": 0.05, "b": 0.25, "s": 9}
_DESHAKE = {"rx": 16, "ry": 16, "edge": "mirror", "contrast": 125}

# The fixed settings are the best of each sweep in the full run of 2026-11-21 (bench/REPORT.md); --quick uses them.
PEERS: tuple[Peer, ...] = (
    Peer("tmedian", "dust", "FFmpeg tmedian", run_tmedian, {"radius": 1}, _grid(radius=[1, 2]),
         filters=("tmedian",), note="temporal median of 2·radius+1 frames; clip edges mirrored"),
    Peer("removegrain", "dust", "FFmpeg removegrain", run_removegrain, {"mode": 4}, _grid(mode=[1, 2, 4, 17]),
         filters=("removegrain",), note="3×3 spatial despeckle; same mode on all planes (gbrp16le)"),
    Peer("vidstab", "stabilize", "FFmpeg vidstabdetect + vidstabtransform (two-pass)", run_vidstab, dict(_VIDSTAB),
         tuple(_VIDSTAB | {"smoothing": v} for v in (5, 10, 20, 30)), filters=("vidstabdetect", "vidstabtransform"),
         note="yuv444p; optzoom=0 (no zoom, black borders) so geometry stays comparable"),
    Peer("deshake", "stabilize", "FFmpeg deshake", run_deshake, dict(_DESHAKE),
         tuple(_DESHAKE | {"contrast": c} for c in (125, 60, 20)), filters=("deshake",),
         note="yuv444p; contrast = FFmpeg's minimum block contrast (default 125 finds few blocks on film)"),
    Peer("deflicker", "deflicker", "FFmpeg deflicker", run_deflicker, {"size": 15, "mode": "am"},
         _grid(size=[3, 5, 9, 15], mode=["am", "median"]), filters=("deflicker",), note="yuv444p16le"),
    Peer("hqdn3d", "denoise", "FFmpeg hqdn3d", run_hqdn3d, {"luma_spatial": 8.0},
         _grid(luma_spatial=[3.0, 5.0, 8.0, 12.0, 18.0]), filters=("hqdn3d",),
         note="yuv444p16le; chroma/temporal strengths derived from luma_spatial as FFmpeg does"),
    Peer("nlmeans", "denoise", "FFmpeg nlmeans", run_nlmeans, {"s": 5.0}, _grid(s=[2.0, 3.0, 4.0, 5.0, 7.0]),
         filters=("nlmeans",), note="yuv444p16le; p=7, r=15"),
    Peer("atadenoise", "denoise", "FFmpeg atadenoise", run_atadenoise, dict(_ATA),
         tuple(_ATA | {"a": a, "b": 5 * a} for a in (0.02, 0.05, 0.1, 0.15, 0.2)), filters=("atadenoise",),
         note="yuv444p16le; 9-frame window, threshold b = 5·a"),
    Peer("bm3d", "denoise", "FFmpeg bm3d", run_bm3d, {"sigma": 30.0}, _grid(sigma=[5.0, 10.0, 20.0, 30.0, 45.0]),
         filters=("bm3d",), note="yuv444p16le; basic estimate, block 16, step 4"),
    Peer("cv2_nlmeans", "denoise", "OpenCV fastNlMeansDenoisingColored", run_cv2_nlmeans,
         {"h": 5.0, "template": 7, "search": 21}, tuple({"h": h, "template": 7, "search": 21}
                                                      for h in (3.0, 5.0, 7.0, 10.0, 14.0)),
         note="8-bit; hColor = h"),
    Peer("grayworld", "color", "FFmpeg grayworld", run_grayworld, {}, filters=("grayworld",)),
    Peer("colorlevels", "color", "FFmpeg colorlevels, auto levels", run_colorlevels, {"clip_percent": 0.5},
         _grid(clip_percent=[0.1, 0.5, 1.0]), filters=("colorlevels",),
         note="auto = per-channel black/white points at the clip_percent low/high percentiles over the whole clip"),
    Peer("stretch", "color", "per-channel percentile stretch (numpy)", run_stretch, {"clip_percent": 1.0},
         _grid(clip_percent=[0.1, 0.5, 1.0, 2.0])),
    Peer("ffmpeg-chain", "chain", "FFmpeg tmedian → vidstab → deflicker → nlmeans → auto colorlevels", run_chain, {},
         filters=("tmedian", "vidstabdetect", "vidstabtransform", "deflicker", "nlmeans", "colorlevels"),
         note="each filter at its fixed setting, in our stage order"),
    Peer("bicubic", "sr", "OpenCV resize INTER_CUBIC", run_bicubic, {}, note="a = −0.75"),
    Peer("lanczos", "sr", "OpenCV resize INTER_LANCZOS4", run_lanczos, {}, note="8×8 Lanczos"),
)


def peers_for(stage: str) -> list[Peer]:
    """The peers for one stage, in report order."""
    return [p for p in PEERS if p.stage == stage]


def peer(name: str) -> Peer:
    for p in PEERS:
        if p.name == name:
            return p
    raise KeyError(f"unknown peer {name!r}")
