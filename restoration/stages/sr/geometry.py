"""Output geometry for super-resolution: a scale factor or a target frame size (named or WxH), fitted or filled
with the source's sample aspect ratio respected, the model passes that reach it and the exact final resize.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ParamError

NAMED_TARGETS: dict[str, tuple[int, int]] = {
    "hd": (1920, 1080),
    "1080p": (1920, 1080),
    "2k": (2048, 1080),
    "uhd": (3840, 2160),
    "4k-uhd": (3840, 2160),
    "4k-dci": (4096, 2160),
}


@dataclass(frozen=True)
class Geometry:
    """Where the upscaled picture goes: `picture` size, placed at `offset` on a `canvas` (fit pads, fill crops)."""

    canvas: tuple[int, int]  # (width, height) of the output frame
    picture: tuple[int, int]  # (width, height) the source picture is resized to
    offset: tuple[int, int]  # top-left of the picture on the canvas (negative: cropped)
    needed_scale: float  # the largest per-axis enlargement the models must reach

    @property
    def exact_multiple(self) -> bool:
        return self.canvas == self.picture and self.offset == (0, 0)


def parse_target(text: str) -> tuple[int, int] | None:
    """(width, height) of a target like `1920x1080`, `2k`, `uhd`, `4k-dci`; None for an empty target."""
    text = text.strip().lower()
    if not text:
        return None
    if text in NAMED_TARGETS:
        return NAMED_TARGETS[text]
    match = re.fullmatch(r"(\d{2,5})\s*[x×:]\s*(\d{2,5})", text)
    if not match:
        names = ", ".join(NAMED_TARGETS)
        raise ParamError("sr.target", f"{text!r} is not WIDTHxHEIGHT or one of {names}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 16384 and 16 <= height <= 16384):
        raise ParamError("sr.target", f"{width}x{height} is outside 16..16384 px")
    return width, height


def parse_aspect(text: str) -> Fraction:
    """Sample (pixel) aspect ratio from `1:1`, `16:15`, `64:45` or a decimal."""
    text = text.strip() or "1:1"
    try:
        value = Fraction(*(int(v) for v in text.split(":"))) if ":" in text else Fraction(text)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ParamError("sr.pixel_aspect", f"{text!r} is not a ratio like 1:1 or 64:45") from None
    if not Fraction(1, 4) <= value <= 4:
        raise ParamError("sr.pixel_aspect", f"{text} is outside 1:4..4:1")
    return value


def plan_geometry(width: int, height: int, scale: int, target: str, fit: str, pixel_aspect: str) -> Geometry:
    """Output frame for a width×height source: ×scale (pixels kept as they are), or the target frame with square
    pixels, the picture fitted inside it (padded) or filling it (cropped)."""
    size = parse_target(target)
    if size is None:
        out = (width * scale, height * scale)
        return Geometry(out, out, (0, 0), float(scale))
    display_width = width * float(parse_aspect(pixel_aspect))
    tw, th = size
    fits = (tw / display_width, th / height)
    factor = min(fits) if fit == "fit" else max(fits)
    picture = (max(1, round(display_width * factor)), max(1, round(height * factor)))
    if fit == "fit":  # the picture touches the canvas on one axis: snap that axis to it exactly
        picture = (tw if fits[0] <= fits[1] else picture[0], th if fits[1] <= fits[0] else picture[1])
    else:
        picture = (max(tw, picture[0]), max(th, picture[1]))
    offset = ((tw - picture[0]) // 2, (th - picture[1]) // 2)
    needed = max(picture[0] / width, picture[1] / height)
    return Geometry((tw, th), picture, offset, needed)


def model_passes(needed_scale: float, native_scales: tuple[int, ...]) -> list[int]:
    """Model scales to chain so their product reaches `needed_scale` with the least overshoot."""
    if needed_scale <= 1.0 + 1e-9:
        return []
    natives = sorted(set(native_scales))
    for s in natives:
        if s >= needed_scale - 1e-9:
            return [s]
    biggest = natives[-1]
    return [biggest] + model_passes(needed_scale / biggest, native_scales)


def resize_exact(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) float to (width, height) = `size`: antialiased bicubic when shrinking, bicubic when enlarging."""
    height, width = image.shape[-2:]
    if (width, height) == size:
        return image
    shrinking = size[0] < width or size[1] < height
    if shrinking and image.device.type == "mps":  # antialiased resampling is not available on every MPS build
        return resize_exact(image.cpu(), size).to(image.device)
    return F.interpolate(image, size=(size[1], size[0]), mode="bicubic", align_corners=False, antialias=shrinking)


def place_on_canvas(picture: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Put the resized picture on the output canvas: black bars for fit, centre crop for fill."""
    if geometry.exact_multiple:
        return picture
    tw, th = geometry.canvas
    ox, oy = geometry.offset
    canvas = np.zeros((th, tw, picture.shape[2]), dtype=picture.dtype)
    sx, sy = max(0, -ox), max(0, -oy)
    dx, dy = max(0, ox), max(0, oy)
    w = min(picture.shape[1] - sx, tw - dx)
    h = min(picture.shape[0] - sy, th - dy)
    canvas[dy:dy + h, dx:dx + w] = picture[sy:sy + h, sx:sx + w]
    return canvas


def lanczos_upscale(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Lanczos-4 resize of an H×W×3 float frame to (width, height) = `size` (the non-AI reference)."""
    import cv2

    return cv2.resize(frame, size, interpolation=cv2.INTER_LANCZOS4)

