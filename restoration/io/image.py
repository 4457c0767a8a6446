"""Single still images (PNG, TIFF, DPX, JPEG) read and written through PyAV's image codecs.

Each image file is one codec packet, so files are decoded with a codec context and encoded
to bytes that are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import errno
import os
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange, Colorspace

from restoration.errors import MediaError
from restoration.io.pixels import frame_to_rgb_int, int_to_float, rgb_to_frame

# Image file extension -> FFmpeg decoder name.
IMAGE_CODECS: dict[str, str] = {
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".dpx": "dpx",
    ".jpg": "mjpeg",
    ".jpeg": "mjpeg",
    ".bmp": "bmp",
}
# Extension -> {bits: encoder pixel format} for write_image.
WRITE_FORMATS: dict[str, dict[int, str]] = {
    ".png": {8: "rgb24", 16: "rgb48be"},
    ".tif": {8: "rgb24", 16: "rgb48le"},
    ".tiff": {8: "rgb24", 16: "rgb48le"},
    ".dpx": {8: "rgb24", 10: "gbrp10be", 12: "gbrp12be", 16: "rgb48be"},  # big-endian "SDPX", the common layout
    ".jpg": {8: "yuvj444p"},
    ".jpeg": {8: "yuvj444p"},
}


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file's extension is one of the readable still-image formats."""
    return Path(path).suffix.lower() in IMAGE_CODECS


def decode_image_file(path: str | os.PathLike, context: av.CodecContext | None = None) -> VideoFrame:
    """Decode one image file to a VideoFrame; a reusable codec `context` saves its set-up per file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_CODECS:
        raise MediaError(path, f"unknown image format '{suffix or path.name}'")
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise MediaError(path, "is a folder, not an image file") from None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            raise MediaError(path, why_missing(path)) from None
        raise MediaError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise MediaError(path, "empty file (zero bytes)")
    ctx = context or av.CodecContext.create(IMAGE_CODECS[suffix], "r")
    try:
        frames = ctx.decode(av.Packet(data))
        if not frames:
            frames = ctx.decode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(path, f"corrupt or unreadable {suffix[1:].upper()} image ({describe_av_error(exc)})") from None
    if not frames:
        raise MediaError(path, f"no picture could be decoded from this {suffix[1:].upper()} file")
    return frames[0]


def why_missing(path: str | os.PathLike) -> str:
    """Why `path` cannot be found: a symbolic-link loop, a link to nothing, an unreachable folder, or not there."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic-link loop (its links lead back to one another, never to a file)"
        if os.path.islink(path):
            return f"is a symbolic link to {os.readlink(path)}, which does not exist"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "cannot be reached (permission denied on a folder in its path)"
        if exc.errno == errno.ENOTDIR:
            return "not found (a part of its path is a file, not a folder)"
        return "file not found"
    return "file not found"


def describe_av_error(exc: BaseException) -> str:
    """PyAV/OS error -> a short reason without errno numbers or the repeated file name."""
    text = str(getattr(exc, "strerror", None) or exc)
    text = re.sub(r"^\[Errno [-\d]+\]\s*", "", text).split(":")[0].strip()
    return text or type(exc).__name__


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an image as float32 RGB (H, W, 3) in [0, 1] and its source bit depth.

    RGB and gray images convert exactly (v / (2**bits - 1)); gray expands to RGB, alpha is dropped.
    """
    frame = decode_image_file(path)
    values, bits = frame_to_rgb_int(frame)
    return int_to_float(values, bits), bits


def _jpeg_frame(rgb: np.ndarray) -> VideoFrame:
    """Float RGB -> full-range BT.601 YUV 4:4:4, as JPEG stores it."""
    frame = rgb_to_frame(rgb, "rgb24", 8)
    return frame.reformat(
        format="yuvj444p",
        src_colorspace=Colorspace.ITU601,
        dst_colorspace=Colorspace.ITU601,
        src_color_range=ColorRange.JPEG,
        dst_color_range=ColorRange.JPEG,
    )


def encode_image(frame: np.ndarray, suffix: str, bits: int = 16, quality: int = 95) -> bytes:
    """Encode float RGB (H, W, 3) to the bytes of an image file of type `suffix` (".png", ".dpx", ...)."""
    suffix = suffix.lower()
    formats = WRITE_FORMATS.get(suffix)
    if formats is None:
        raise ValueError(f"cannot write images of type '{suffix}' (use one of {', '.join(WRITE_FORMATS)})")
    if bits not in formats:
        raise ValueError(f"{suffix} images can be written with {sorted(formats)} bits, not {bits}")
    pix_fmt = formats[bits]
    if suffix in (".jpg", ".jpeg"):
        video_frame = _jpeg_frame(frame)
    else:
        video_frame = rgb_to_frame(frame, pix_fmt, bits)
    ctx = av.CodecContext.create(IMAGE_CODECS[suffix], "w")
    ctx.width = video_frame.width
    ctx.height = video_frame.height
    ctx.pix_fmt = pix_fmt
    ctx.time_base = Fraction(1, 25)
    if suffix in (".jpg", ".jpeg"):
        # Fixed quantiser: qscale 1 (best) .. 31 (worst), mapped from a 0..100 quality.
        q = int(round(1 + (100 - max(0, min(100, quality))) * 30 / 100))
        ctx.color_range = ColorRange.JPEG
        ctx.options = {"qmin": str(q), "qmax": str(q)}
        ctx.bit_rate = 1_000_000_000
    packets = ctx.encode(video_frame) + ctx.encode(None)
    return b"".join(bytes(p) for p in packets)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write a file under a temporary name in the same folder, then rename it into place."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_image(path: str | os.PathLike, frame: np.ndarray, bits: int = 16, quality: int = 95) -> None:
    """Write float RGB (H, W, 3) as .png (8/16), .tif/.tiff (8/16), .dpx (8/10/12/16) or .jpg (8).

    Values are stored as round(x * (2**bits - 1)), clipped; the file appears only when complete.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and bits == 16:
        bits = 8
    write_bytes_atomic(path, encode_image(frame, suffix, bits, quality))
