"""Before/after stills for review: side by side, labelled."""

from __future__ import annotations

import cv2
import numpy as np

GUTTER_PX = 8


def side_by_side(before: np.ndarray, after: np.ndarray, labels: tuple[str, str] = ("before", "after")) -> np.ndarray:
    """One float32 RGB image: `before` left, `after` right, at the result's size (Lanczos when sizes differ)."""
    height, width = after.shape[:2]
    if before.shape[:2] != (height, width):
        before = cv2.resize(before, (width, height), interpolation=cv2.INTER_LANCZOS4)
    canvas = np.zeros((height, 2 * width + GUTTER_PX, 3), np.float32)
    canvas[:, :width] = np.clip(before, 0.0, 1.0)
    canvas[:, width + GUTTER_PX:] = np.clip(after, 0.0, 1.0)
    canvas8 = (canvas * 255.0 + 0.5).astype(np.uint8)  # OpenCV draws text on 8-bit images only
    for text, x in zip(labels, (0, width + GUTTER_PX)):
        _label(canvas8, text, x)
    return canvas8.astype(np.float32) / 255.0


def _label(canvas: np.ndarray, text: str, x: int) -> None:
    scale = max(0.5, canvas.shape[0] / 900)
    thickness = max(1, round(scale * 2))
    origin = (x + round(12 * scale), round(32 * scale))
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
