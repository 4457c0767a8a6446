"""Video scopes and the difference picture, as plain arrays (the GUI draws them; no Qt here).

A luma waveform and an RGB parade are 2-D histograms: for each column band of the picture, how many pixels sit at
each level (level 0 at the bottom row when drawn, so row `levels - 1` is black). The RGB histogram counts each
channel's levels. The difference picture shows only what a stage changed, |after − before| per channel, amplified
by a gain the caller shows beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LUMA_709 = np.array([0.2126, 0.7152, 0.0722], np.float32)
MAX_SCOPE_ROWS = 270  # rows looked at: a scope of a 4K frame reads every 8th row (a scope, not a measurement)
MAX_DIFF_GAIN = 64.0


@dataclass
class Scopes:
    """One picture's scopes: `waveform` (levels × columns), `parade` (3 × levels × columns), `histogram` (3 × bins);
    all counts normalised so the busiest cell of each is 1.0 (drawing needs no further scaling)."""

    waveform: np.ndarray
    parade: np.ndarray
    histogram: np.ndarray
    clipped_low: float  # fraction of luma values at or below 0 (crushed blacks)
    clipped_high: float  # fraction at or above 1 (clipped whites)


def luma(frame: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of a float RGB frame in [0, 1] (on the frame's own, non-linear, values)."""
    return frame[..., :3].astype(np.float32, copy=False) @ LUMA_709


def _rows(frame: np.ndarray) -> np.ndarray:
    step = max(1, -(-frame.shape[0] // MAX_SCOPE_ROWS))
    return frame[::step]


def waveform(values: np.ndarray, columns: int = 256, levels: int = 256) -> np.ndarray:
    """Counts of `values` (H×W, in [0, 1]) per (level, column band); row 0 is level 1.0 (white at the top)."""
    height, width = values.shape
    columns = max(1, min(columns, width))
    band = (np.arange(width) * columns // width).astype(np.int64)
    level = np.clip(np.rint(values * (levels - 1)), 0, levels - 1).astype(np.int64)
    cells = (levels - 1 - level) * columns + band[None, :]
    counts = np.bincount(cells.ravel(), minlength=levels * columns).reshape(levels, columns)
    return counts.astype(np.float32)


def histogram(frame: np.ndarray, bins: int = 256) -> np.ndarray:
    """3 × bins counts of the R, G and B levels."""
    out = np.empty((3, bins), np.float32)
    for channel in range(3):
        level = np.clip(np.rint(frame[..., channel] * (bins - 1)), 0, bins - 1).astype(np.int64)
        out[channel] = np.bincount(level.ravel(), minlength=bins)
    return out


def _normalised(counts: np.ndarray) -> np.ndarray:
    peak = float(counts.max(initial=0.0))
    return counts / peak if peak > 0 else counts


def scopes(frame: np.ndarray, columns: int = 256, levels: int = 256) -> Scopes:
    """Waveform, parade and histogram of a float RGB frame (rows subsampled to at most MAX_SCOPE_ROWS)."""
    rows = _rows(frame)
    y = luma(rows)
    parade = np.stack([waveform(rows[..., c], columns, levels) for c in range(3)])
    return Scopes(waveform=_normalised(waveform(y, columns, levels)), parade=_normalised(parade),
                  histogram=_normalised(histogram(rows, levels)),
                  clipped_low=float(np.mean(y <= 0.0)), clipped_high=float(np.mean(y >= 1.0)))


def match_size(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """`frame` resized to height × width (nearest neighbour: super-resolution's input against its output)."""
    if frame.shape[:2] == (height, width):
        return frame
    rows = (np.arange(height) * frame.shape[0] // height)
    cols = (np.arange(width) * frame.shape[1] // width)
    return frame[rows][:, cols]


def difference(before: np.ndarray, after: np.ndarray, gain: float | None = None) -> tuple[np.ndarray, float, float]:
    """(|after − before| × gain clipped to [0, 1], the gain, the largest change in 8-bit codes).

    Without a `gain`, the power of two (1 … 64) that brings the 99.5th percentile of the changed values to about
    half scale: small repairs show, and a picture nothing changed stays black (gain 1). `before` is resized to
    `after`'s size when they differ.
    """
    before = match_size(before, *after.shape[:2])
    change = np.abs(after[..., :3].astype(np.float32) - before[..., :3].astype(np.float32))
    largest = float(change.max(initial=0.0))
    if gain is None:
        changed = change[change > 0.5 / 255.0]
        if changed.size == 0:
            gain = 1.0
        else:
            sample = changed[:: max(1, changed.size // 200_000)]
            level = float(np.percentile(sample, 99.5))
            gain = float(2 ** np.floor(np.log2(max(1.0, min(MAX_DIFF_GAIN, 0.5 / max(level, 1e-6))))))
    return np.clip(change * np.float32(gain), 0.0, 1.0), float(gain), largest * 255.0
