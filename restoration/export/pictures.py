"""Pipeline frames (float32 RGB in [0, 1]) to the integer pictures each master format stores."""

from __future__ import annotations

import hashlib

import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc, Interpolation

from restoration.io.pixels import float_to_int, format_is_rgb

# Bits per component that an RGB encoder pixel format stores.
RGB_BITS: dict[str, int] = {"bgr0": 8, "rgb24": 8, "gbrp10le": 10, "gbrp16le": 16, "rgb48le": 16, "rgb48be": 16}

# RGB -> Y'CbCr for ProRes and H.264: accurate rounding, full-resolution chroma input.
_YUV_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INP


def stored_bits(pix_fmt: str) -> int:
    """Integer depth of the RGB values a master stores (16 for Y'CbCr, which is made from 16-bit RGB)."""
    return RGB_BITS.get(pix_fmt, 16)


def check_frame(rgb: np.ndarray, width: int, height: int) -> str | None:
    """What is wrong with a frame handed to the writer, or None."""
    shape = getattr(rgb, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3:
        return f"expected an H x W x 3 RGB frame, got shape {shape}"
    if shape[0] != height or shape[1] != width:
        return f"frame is {shape[1]}x{shape[0]}, the master is {width}x{height}"
    return None


def rgb_values(rgb: np.ndarray, pix_fmt: str) -> np.ndarray:
    """Float RGB -> the integers the master stores: round(x * (2**bits - 1)), clipped."""
    return float_to_int(rgb, stored_bits(pix_fmt))


def values_digest(values: np.ndarray) -> str:
    """MD5 of integer RGB values in a byte order that does not depend on the pixel format."""
    if values.dtype != np.uint8:
        values = values.astype("<u2", copy=False)
    return hashlib.md5(np.ascontiguousarray(values).tobytes()).hexdigest()


def _bgr0_frame(values: np.ndarray) -> VideoFrame:
    height, width = values.shape[:2]
    frame = VideoFrame(width, height, "bgr0")
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    pixels = rows[:, : width * 4].reshape(height, width, 4)
    pixels[..., 0] = values[..., 2]
    pixels[..., 1] = values[..., 1]
    pixels[..., 2] = values[..., 0]
    pixels[..., 3] = 0
    return frame


def values_to_frame(values: np.ndarray, pix_fmt: str) -> VideoFrame:
    """Integer RGB (H, W, 3) -> a VideoFrame in the encoder's pixel format.

    RGB formats are filled directly (exact); Y'CbCr formats are converted by swscale with BT.709
    coefficients to limited range, and tagged so.
    """
    if pix_fmt == "bgr0":
        return _bgr0_frame(values)
    if pix_fmt in RGB_BITS:
        return VideoFrame.from_ndarray(np.ascontiguousarray(values), format=pix_fmt)
    if format_is_rgb(pix_fmt):
        raise ValueError(f"no exact conversion to {pix_fmt}")
    rgb48 = VideoFrame.from_ndarray(np.ascontiguousarray(values, dtype=np.uint16), format="rgb48le")
    frame = rgb48.reformat(
        format=pix_fmt,
        src_colorspace=Colorspace.ITU709,
        dst_colorspace=Colorspace.ITU709,
        interpolation=_YUV_FLAGS,
        src_color_range=ColorRange.JPEG,
        dst_color_range=ColorRange.MPEG,
        dst_color_trc=ColorTrc.BT709,  # some encoders (prores_ks) tag from the frame, not the context
        dst_color_primaries=ColorPrimaries.BT709,
    )
    return frame
