"""Clips for deflicker with exact truth: a textured pan, film grain on it, and per-frame light (gain, offset)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def textured_picture(seed: int, width: int, height: int) -> np.ndarray:
    """A textured RGB scene with mid tones (0.15 .. 0.75)."""
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.normal(size=(height, width)), 2.0)
    texture += 0.6 * ndimage.gaussian_filter(rng.normal(size=(height, width)), 12.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    grey = 0.15 + 0.6 * texture
    return (grey[..., None] * np.array([1.0, 0.95, 0.88])).astype(np.float32)


def panning_clip(n: int, seed: int, width: int, height: int, speed: float = 1.0) -> list[np.ndarray]:
    """Clean frames of a slow pan across `textured_picture` (whole-pixel steps, so truth is exact)."""
    scene = textured_picture(seed, width + int(np.ceil(speed * n)) + 2, height)
    return [np.ascontiguousarray(scene[:, int(round(t * speed)):int(round(t * speed)) + width]) for t in range(n)]


def with_grain(frames: list[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    """Fine grain of standard deviation `sigma`, new on every frame."""
    rng = np.random.default_rng(seed)
    out = []
    for frame in frames:
        grain = ndimage.gaussian_filter(rng.normal(size=frame.shape), (0.8, 0.8, 0))
        out.append(np.clip(frame + sigma * grain / grain.std(), 0, 1).astype(np.float32))
    return out


def flickered(frames: list[np.ndarray], gains: np.ndarray, offsets: np.ndarray | None = None) -> list[np.ndarray]:
    """Each frame times its gain plus its offset."""
    offsets = np.zeros(len(frames)) if offsets is None else offsets
    return [np.clip(f * g + o, 0, 1).astype(np.float32) for f, g, o in zip(frames, gains, offsets)]
