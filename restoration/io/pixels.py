"""Exact conversion between decoded PyAV frames and the pipeline's float32 RGB arrays.

RGB and grayscale pixel formats are read in their native layout and scaled by hand
(v / (2**bits - 1)), so no swscale bit replication ever changes a value. YUV formats go
through swscale to rgb24 / rgb48le with the stream's colour matrix; that step is not lossless.
"""

from __future__ import annotations

import numpy as np
from av.video.format import VideoFormat
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange, Colorspace, Interpolation

# Packed or planar RGB(A) formats that VideoFrame.to_ndarray returns without conversion,
# with the channel positions of R, G, B in the returned array.
_RGB_ORDER: dict[str, tuple[int, int, int]] = {
    "rgb24": (0, 1, 2),
    "bgr24": (2, 1, 0),
    "rgba": (0, 1, 2),
    "bgra": (2, 1, 0),
    "argb": (1, 2, 3),
    "abgr": (3, 2, 1),
    "rgb48le": (0, 1, 2),
    "rgb48be": (0, 1, 2),
    "bgr48le": (2, 1, 0),
    "bgr48be": (2, 1, 0),
    "rgba64le": (0, 1, 2),
    "rgba64be": (0, 1, 2),
    "bgra64le": (2, 1, 0),
    "bgra64be": (2, 1, 0),
}
# 32-bit packed formats with a padding byte, read straight from the plane: name -> (R, G, B) byte positions.
_RGB_PADDED: dict[str, tuple[int, int, int]] = {
    "rgb0": (0, 1, 2),
    "bgr0": (2, 1, 0),
    "0rgb": (1, 2, 3),
    "0bgr": (3, 2, 1),
}
_GRAY = {
    "gray", "gray9le", "gray9be", "gray10le", "gray10be", "gray12le", "gray12be",
    "gray14le", "gray14be", "gray16le", "gray16be",
}
_GRAY_ALPHA = {"ya8": "u1", "ya16le": "<u2", "ya16be": ">u2"}

# Interpolation flags for YUV -> RGB: accurate rounding and full chroma interpolation.
_YUV_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def format_bit_depth(pix_fmt: str) -> int:
    """Bits per colour component of a pixel format (the deepest component)."""
    fmt = VideoFormat(pix_fmt)
    bits = [c.bits for c in fmt.components if not c.is_alpha] or [c.bits for c in fmt.components]
    if pix_fmt in ("monob", "monow"):
        return 1
    return max(bits) if bits else 8


def format_has_alpha(pix_fmt: str) -> bool:
    """True when the pixel format carries an alpha channel (palette alpha is not inspected)."""
    fmt = VideoFormat(pix_fmt)
    return any(c.is_alpha for c in fmt.components) or pix_fmt.startswith(("ya", "yuva", "gbrap"))


def format_is_grayscale(pix_fmt: str) -> bool:
    """True for single-channel luminance formats (with or without alpha)."""
    return pix_fmt in _GRAY or pix_fmt in _GRAY_ALPHA or pix_fmt in ("monob", "monow")


def format_is_rgb(pix_fmt: str) -> bool:
    """True when the format stores RGB or gray samples (no colour matrix needed)."""
    fmt = VideoFormat(pix_fmt)
    return bool(fmt.is_rgb) or format_is_grayscale(pix_fmt) or pix_fmt == "pal8"


def default_colorspace(width: int, height: int) -> Colorspace:
    """Colour matrix to assume when a YUV stream does not say: BT.709 for HD, BT.601 for SD."""
    return Colorspace.ITU709 if (width >= 1280 or height >= 720) else Colorspace.ITU601


def _plane_array(frame: VideoFrame, index: int, dtype: str, components: int) -> np.ndarray:
    """One plane as an (H, W, components) array, honouring the row padding."""
    plane = frame.planes[index]
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)
    return rows[:, : frame.width * components].reshape(plane.height, frame.width, components)


def _yuv_to_rgb(frame: VideoFrame, bits: int) -> tuple[np.ndarray, int]:
    """swscale YUV -> RGB with the stream's matrix and range (defaults when unspecified)."""
    colorspace = int(frame.colorspace)
    known = {int(c) for c in (Colorspace.ITU709, Colorspace.ITU601, Colorspace.SMPTE170M,
                              Colorspace.SMPTE240M, Colorspace.FCC, Colorspace.BT2020)}
    src_space = Colorspace(colorspace) if colorspace in known else default_colorspace(frame.width, frame.height)
    name = frame.format.name
    src_range = int(frame.color_range)
    if name.startswith("yuvj"):
        src_range = int(ColorRange.JPEG)
    if src_range not in (int(ColorRange.MPEG), int(ColorRange.JPEG)):
        src_range = int(ColorRange.MPEG)
    target = "rgb24" if bits <= 8 else "rgb48le"
    rgb = frame.reformat(
        format=target,
        src_colorspace=src_space,
        dst_colorspace=src_space,
        interpolation=_YUV_FLAGS,
        src_color_range=ColorRange(src_range),
        dst_color_range=ColorRange.JPEG,
    )
    return rgb.to_ndarray(), (8 if bits <= 8 else 16)


def frame_to_rgb_int(frame: VideoFrame) -> tuple[np.ndarray, int]:
    """Decoded frame -> (H, W, 3) uint8/uint16 RGB array and the bit scale of its values.

    For RGB and gray formats the values are the source's own integers (scale = source bits);
    YUV and other formats are converted by swscale to 8 or 16 bits.
    """
    name = frame.format.name
    if name in _RGB_ORDER:
        data = frame.to_ndarray()
        order = _RGB_ORDER[name]
        rgb = data[..., list(order)] if order != (0, 1, 2) else data[..., :3]
        return rgb, format_bit_depth(name)
    if name.startswith(("gbrp", "gbrap")) and not name.endswith(("f32le", "f32be", "f16le", "f16be")):
        return frame.to_ndarray()[..., :3], format_bit_depth(name)
    if name in _GRAY:
        gray = frame.to_ndarray()
        return np.repeat(gray[..., None], 3, axis=2), format_bit_depth(name)
    if name in _GRAY_ALPHA:
        gray = _plane_array(frame, 0, _GRAY_ALPHA[name], 2)[..., 0]
        return np.repeat(gray[..., None], 3, axis=2), format_bit_depth(name)
    if name in _RGB_PADDED:
        data = _plane_array(frame, 0, "u1", 4)
        return data[..., list(_RGB_PADDED[name])], 8
    if name == "pal8":
        return frame.reformat(format="rgba").to_ndarray()[..., :3], 8
    if name in ("monob", "monow"):
        gray = frame.reformat(format="gray").to_ndarray()
        return np.repeat(gray[..., None], 3, axis=2), 8
    fmt = frame.format
    if fmt.is_rgb:
        bits = format_bit_depth(name)
        target = "rgb24" if bits <= 8 else "rgb48le"
        return frame.reformat(format=target).to_ndarray(), (8 if bits <= 8 else 16)
    return _yuv_to_rgb(frame, format_bit_depth(name))


def int_to_float(values: np.ndarray, bits: int) -> np.ndarray:
    """Integer samples of a `bits`-deep source -> float32 v / (2**bits - 1), C-contiguous."""
    scale = np.float32((1 << bits) - 1)
    out = np.empty(values.shape, dtype=np.float32)
    np.divide(values, scale, out=out, dtype=np.float32, casting="unsafe")
    return out


def frame_to_rgb(frame: VideoFrame) -> np.ndarray:
    """Decoded frame -> float32 RGB (H, W, 3) in [0, 1]; exact for RGB/gray sources."""
    values, bits = frame_to_rgb_int(frame)
    return int_to_float(values, bits)


def float_to_int(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Float RGB in [0, 1] -> round(x * (2**bits - 1)) clipped, as uint8 (bits <= 8) or uint16."""
    scale = float((1 << bits) - 1)
    scaled = np.asarray(rgb, dtype=np.float32) * np.float32(scale)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0.0, scale, out=scaled)
    return scaled.astype(np.uint8 if bits <= 8 else np.uint16)


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, bits: int) -> VideoFrame:
    """Float RGB (H, W, 3) -> VideoFrame in an RGB pixel format (rgb24, rgb48le/be, gbrp10le, ...)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB frame, got shape {rgb.shape}")
    values = float_to_int(rgb, bits)
    return VideoFrame.from_ndarray(np.ascontiguousarray(values), format=pix_fmt)
