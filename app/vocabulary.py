"""The restorer's words for what the core reports: source kinds and codecs, and every stage's side-data keys.

The core names things as a programmer would (`motion_rejected`, `weave_path`, `image_sequence`); the window says
what they mean, with units. Keys a stage adds later and this table does not know yet are still shown readably
(`frames_averaged` → "frames averaged"), never as a raw key.
"""

from __future__ import annotations

import os
from typing import Any

# side-data key path under its stage ("stage/key/sub") → (what a restorer calls it, unit shown after values)
SIDE_NAMES: dict[str, tuple[str, str]] = {
    "dust/defects": ("defect map (dust, scratches, kept)", ""),
    "dust/components": ("defects found", ""),
    "dust/motion_rejected": ("candidates left alone as movement", "regions"),
    "dust/defect_fraction": ("picture repaired", "%"),
    "stabilize/weave": ("weave of this frame", ""),
    "stabilize/weave/dx": ("horizontal weave", "px"),
    "stabilize/weave/dy": ("vertical weave", "px"),
    "stabilize/weave/rotation_deg": ("rotational weave", "°"),
    "stabilize/weave/correction": ("correction applied (x px, y px, rotation °)", ""),
    "stabilize/weave/zoom": ("crop zoom", "×"),
    "stabilize/weave_path": ("shot", ""),
    "stabilize/weave_path/dx": ("horizontal position over the shot", "px"),
    "stabilize/weave_path/dy": ("vertical position over the shot", "px"),
    "stabilize/weave_path/rotation_deg": ("rotation over the shot", "°"),
    "stabilize/weave_path/locked": ("held still", ""),
    "stabilize/weave_path/models": ("camera move found", ""),
    "stabilize/weave_path/zoom": ("crop zoom of the shot", "×"),
    "deflicker/gain": ("brightness correction", "×"),
    "deflicker/frames_averaged": ("frames in the brightness reference", "frames"),
    "deflicker/local_gain": ("brightness correction by area", "×"),
    "denoise/grain_model": ("grain measured in this shot: brightness levels, frequencies, spectrum", ""),
    "denoise/grain_model/sigma": ("grain strength by brightness (R, G, B)", "of full scale"),
    "denoise/grain_model/counts": ("pixels measured per brightness band (R, G, B)", "pixels"),
    "denoise/grain_model/channel_correlation": ("grain shared between R, G and B", ""),
    "denoise/grain_model/grain_size": ("grain size", "px"),
    "denoise/grain_model/white_fraction": ("share of fine, even grain", ""),
    "denoise/grain_model/triplets": ("frame triplets measured", ""),
    "color/fade": ("how the print faded (in → out, R, G, B)", ""),
    "color/correction": ("correction curves (in → out, R, G, B)", ""),
    "color/model": ("correction", ""),
    "color/model/scale": ("dye layer gain (R, G, B)", ""),
    "color/model/offset": ("dye layer offset (R, G, B)", "density"),
    "color/monochrome": ("black-and-white or toned", ""),
    "color/residual_chroma": ("colour left in greys", ""),
    "color/estimate": ("fade measured", ""),
    "color/estimate/fade_found": ("fade found", ""),
    "color/estimate/fade_confidence": ("confidence", ""),
    "color/estimate/white_point": ("white point (R, G, B)", "density"),
    "color/estimate/black_point": ("black point (R, G, B)", "density"),
    "color/estimate/white_cast": ("colour left in the restored whites", "density"),
    "color/drift_scale": ("fade drift along the shot (R, G, B)", ""),
    "color/transfer": ("reference match", ""),
    "color/notes": ("notes", ""),
    "sr/sr": ("super-resolution", ""),
    "sr/sr/tile": ("tile size", "px"),
}

# single words inside keys and their readable form (used when the whole key is not in SIDE_NAMES)
WORDS: dict[str, str] = {"dx": "horizontal", "dy": "vertical", "rotation": "rotation", "deg": "°", "px": "px",
                         "sr": "super-resolution", "bw": "black-and-white", "mc": "motion-compensated"}

HIDDEN = {"color/shot"}  # clip indices the timeline already shows as the source numbers them

PERCENT_KEYS = {"dust/defect_fraction"}  # fractions shown as percentages

KINDS = {"sequence": "Image sequence", "video": "Video file", "image": "Still image", "memory": "Frames in memory"}
CONTAINERS = {".mov": "QuickTime (MOV)", ".mp4": "MPEG-4 (MP4)", ".m4v": "MPEG-4 (M4V)", ".mkv": "Matroska (MKV)",
              ".avi": "AVI", ".mxf": "MXF", ".webm": "WebM", ".mpg": "MPEG program stream", ".ts": "MPEG transport stream",
              ".dv": "DV", ".mts": "AVCHD", ".3gp": "3GPP"}
CODECS = {"h264": "H.264", "hevc": "H.265 (HEVC)", "prores": "Apple ProRes", "ffv1": "FFV1 (lossless)",
          "dnxhd": "Avid DNxHD/HR", "mjpeg": "Motion JPEG", "mpeg2video": "MPEG-2", "mpeg4": "MPEG-4 Part 2",
          "dvvideo": "DV", "rawvideo": "uncompressed", "png": "PNG", "tiff": "TIFF", "dpx": "DPX", "jpeg": "JPEG",
          "jpg": "JPEG", "vp9": "VP9", "av1": "AV1", "v210": "uncompressed 10-bit (v210)", "qtrle": "QuickTime RLE",
          "cfhd": "CineForm", "exr": "OpenEXR"}


def words(name: str) -> str:
    """`frames_averaged` → 'frames averaged'; `rotation_deg` → 'rotation °'."""
    return " ".join(WORDS.get(part, part) for part in str(name).split("_") if part)


def side_name(path: str) -> tuple[str, str]:
    """(name, unit) of a side-data key path 'stage/key/…' below its stage's title."""
    if path in SIDE_NAMES:
        return SIDE_NAMES[path]
    stage, _, rest = path.partition("/")
    parts = rest.split("/") if rest else []
    # the longest known parent names the start; the rest is spelled out
    for cut in range(len(parts) - 1, 0, -1):
        parent = "/".join([stage, *parts[:cut]])
        if parent in SIDE_NAMES:
            head = SIDE_NAMES[parent][0]
            tail = " › ".join(words(p) for p in parts[cut:])
            return (f"{head} › {tail}" if head else tail), ""
    return " › ".join(words(p) for p in parts) or stage, ""


def with_unit(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def value_text(path: str, value: Any, unit: str) -> str:
    """A value as the window shows it: numbers with their unit, yes/no, lists of notes joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if path in PERCENT_KEYS and isinstance(value, (int, float)):
        return f"{100.0 * value:.3g} %"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if isinstance(value, (list, tuple)) and not value:
        return "none"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = words(value) if isinstance(value, str) and "_" in value else str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} {unit}" if unit and unit not in ("", "%") else text


def records_text(records: list[dict[str, Any]]) -> str:
    """'5 (3 dust, 2 scratch)' for a list of records with a kind; else how many."""
    kinds: dict[str, int] = {}
    for record in records:
        kind = record.get("kind")
        if isinstance(kind, str):
            kinds[kind] = kinds.get(kind, 0) + 1
    detail = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return f"{len(records)} ({detail})" if detail else str(len(records))


def source_kind(info) -> str:
    """'Image sequence · PNG frames', 'Video file · QuickTime (MOV) · H.264'."""
    kind = KINDS.get(info.kind, words(info.kind).capitalize())
    codec = CODECS.get(str(info.codec).lower(), str(info.codec).upper() if info.codec else "")
    if info.kind == "sequence":
        return f"{kind} · {codec} frames" if codec else kind
    if info.kind == "image":
        return f"{kind} · {codec}" if codec else kind
    extension = os.path.splitext(str(info.path))[1].lower()
    container = CONTAINERS.get(extension)
    if container is None and info.container:
        container = str(info.container).split(",")[0].upper()
    return " · ".join(part for part in (kind, container, codec) if part)


def picture_depth(info) -> str:
    """'16-bit RGB', '10-bit Y′CbCr 4:2:2' — the pixel format's family, not its FFmpeg name."""
    fmt = str(info.pixel_format or "").lower()
    if info.is_grayscale or fmt.startswith("gray"):
        family = "greyscale"
    elif fmt.startswith(("yuv", "yuvj", "nv", "p01", "y210", "v210", "uyvy", "yuyv")):
        sampling = "4:2:0" if "420" in fmt or fmt.startswith(("nv", "p01")) else "4:2:2" if "422" in fmt or \
            fmt.startswith(("y210", "v210", "uyvy", "yuyv")) else "4:4:4" if "444" in fmt else ""
        family = f"Y′CbCr {sampling}".strip()
    elif fmt.startswith(("rgbf", "gbrpf")):
        family = "RGB floating point"
    else:
        family = "RGB"
    alpha = " with alpha (dropped)" if info.has_alpha else ""
    return f"{info.bit_depth}-bit {family}{alpha}"
