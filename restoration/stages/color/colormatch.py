"""Steering a colour correction: match a reference's colour in CIELAB, and read a picked grey patch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from ...errors import ParamError

STD_RATIO_LIMITS = (0.5, 2.0)   # a transfer never more than doubles or halves a channel's contrast
SHOULDER = 0.9                  # code value above which a transfer's overshoot is rolled off instead of clipped
TOE = 0.02                      # code value below which an undershoot is rolled off
PICK_PIXEL = 5                  # side of the square read around a single picked pixel (grain averages out)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65, sRGB transfer) of float32 RGB in [0, 1], any shape (..., 3)."""
    return cv2.cvtColor(_as_image(rgb), cv2.COLOR_RGB2Lab).reshape(np.shape(rgb))


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 RGB of CIELAB values (..., 3); may leave [0, 1] for colours outside the gamut."""
    return cv2.cvtColor(_as_image(lab), cv2.COLOR_Lab2RGB).reshape(np.shape(lab))


def _as_image(values: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) view for OpenCV: frames as they are, pixel lists as one row (fast, unlike a column)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    return values if values.ndim == 3 else values.reshape(1, -1, 3)


@dataclass(frozen=True)
class LabStats:
    """Mean and standard deviation of L*, a*, b* over an image or a shot."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [round(v, 3) for v in self.mean], "std": [round(v, 3) for v in self.std]}


def lab_stats(rgb: np.ndarray) -> LabStats:
    """LabStats of pixels (..., 3)."""
    lab = to_lab(rgb).reshape(-1, 3).astype(np.float64)
    return LabStats(tuple(float(v) for v in lab.mean(axis=0)), tuple(float(v) for v in lab.std(axis=0)))


def soft_range(values: np.ndarray) -> np.ndarray:
    """Keep code values within [0, 1] by rolling off over- and undershoots smoothly (monotonic, slope 1 inside)."""
    out = np.asarray(values, dtype=np.float32).copy()
    high = out > SHOULDER
    room = 1.0 - SHOULDER
    out[high] = SHOULDER + room * np.tanh((out[high] - SHOULDER) / room)
    low = out < TOE
    out[low] = TOE * np.exp((out[low] - TOE) / TOE)
    return out


@dataclass(frozen=True)
class LabTransfer:
    """Shift and scale of L*, a*, b* taking a shot's statistics onto a reference's (Reinhard-style transfer).

    With `lightness_only` only L* moves, so a black-and-white shot gets the reference's tone but no tint.
    """

    source: LabStats
    target: LabStats
    lightness_only: bool = False

    def gains(self, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (gain, shift) with L' = gain * L + shift, at `strength` of the full transfer."""
        src_mean, tgt_mean = np.asarray(self.source.mean), np.asarray(self.target.mean)
        ratio = np.asarray(self.target.std) / np.maximum(np.asarray(self.source.std), 1e-3)
        ratio = np.clip(ratio, *STD_RATIO_LIMITS) ** float(strength)
        mean = src_mean + float(strength) * (tgt_mean - src_mean)
        if self.lightness_only:
            ratio[1:], mean[1:] = 1.0, src_mean[1:]
        return ratio, mean - ratio * src_mean

    def apply(self, frame: np.ndarray, strength: float = 1.0) -> np.ndarray:
        gain, shift = self.gains(strength)
        lab = to_lab(frame)
        lab = lab * gain.astype(np.float32) + shift.astype(np.float32)
        if self.lightness_only:
            # a grey stays exactly grey: scale RGB by the lightness change instead of round-tripping a*, b*
            return soft_range(_relight(frame, lab[..., 0]))
        return soft_range(from_lab(lab))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source.to_dict(), "target": self.target.to_dict(), "lightness_only": self.lightness_only}


def _relight(frame: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """The frame with each pixel's lightness set to `lightness`, keeping its RGB proportions."""
    old = to_lab(frame)[..., 0]
    grey_new = from_lab(np.stack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=-1))[..., 0]
    grey_old = from_lab(np.stack([old, np.zeros_like(old), np.zeros_like(old)], axis=-1))[..., 0]
    gain = grey_new / np.maximum(grey_old, 1e-6)
    return (frame * gain[..., None]).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------
# the neutral picker


def parse_pick(value: Sequence[Any], where: str = "neutral") -> tuple[int, int, int, int]:
    """[x, y] (a pixel) or [x, y, w, h] (a rectangle) -> (x, y, w, h); ParamError naming `where` otherwise."""
    items = list(value) if isinstance(value, (list, tuple)) else None
    if (items is None or len(items) not in (2, 4)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in items)):
        raise ParamError(where, f"a grey pick is [x, y] or [x, y, w, h] in pixels, got {value!r}")
    numbers = [int(round(v)) for v in items]
    if len(numbers) == 2:
        x, y = numbers
        half = PICK_PIXEL // 2
        return x - half, y - half, PICK_PIXEL, PICK_PIXEL
    x, y, w, h = numbers
    if w <= 0 or h <= 0:
        raise ParamError(where, f"the picked rectangle needs a width and height above 0, got {value!r}")
    return x, y, w, h


def patch_mean(frame: np.ndarray, pick: tuple[int, int, int, int], where: str = "neutral") -> np.ndarray:
    """Mean code values (3,) of the picked rectangle, cut to the frame; ParamError when it lies outside."""
    height, width = frame.shape[:2]
    x, y, w, h = pick
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x0 >= x1 or y0 >= y1:
        raise ParamError(where, f"the grey pick {list(pick)} lies outside the {width}x{height} frame")
    return frame[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64).mean(axis=0)
