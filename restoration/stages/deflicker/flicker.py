"""Flicker: how bright a frame is compared with its neighbours on the same picture content.

Frames are compared on small lumas (flicker is smooth in space, so little resolution is needed). A neighbour is
brought onto the current frame by chaining the dense flows of consecutive frames (computed once per pair and
cached), and the brightness ratio is measured directly on the content both frames show, for the whole frame and per
block. `track.py` turns a shot's ratios into its brightness track and the correction; the robust window level
(`window_level`) and the dip finder here are what it uses per frame and per block.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...flow import LUMA_709, MIN_FLOW_SIZE

THUMB_WIDTH = 192  # px; flicker is measured on lumas about this wide
CELL = 4  # thumbnail px per side of the cells whose means are compared
CLIP_LOW, CLIP_HIGH = 0.02, 0.98  # clipped tones say nothing about brightness changes
STEP_F = 30.0  # F statistic of a jump above which it is a change of light (p ~ 1e-4 per place it could be)
STEP_FLOOR = 0.08  # ... and it must jump at least this much (log brightness, about 8 %): smaller steps are flicker
MIN_RUN = 6  # frames a change of light must last on its current side to count as one (dips of 1-5 frames are flicker)
FLICKER_FLOOR = 0.002  # frame-to-frame brightness noise assumed at least (log units)
MIN_SHARED = 0.05  # a neighbour sharing less of the picture than this says nothing
ROBUST_ITERATIONS = 4  # fits of the window's level (the first from the median, then Huber reweighted)
ROBUST_FLOOR = 0.004  # log brightness spread assumed at least when reweighting (flicker-free windows)
MAX_DIP = 5  # frames: a darker (or brighter) run this short and back is flicker, removed
DIP_FLOOR = 0.02  # log brightness: smaller departures are left to the window's averaging
DIP_SIGMAS = 6.0  # ... and so are departures within this many spreads of the running median (only clear dips)
ROBUST_CUTOFF = 4.0  # frames further than this many spreads from the window's level do not count (biweight)


@dataclass
class ToneThumb:
    """A frame's small float luma and its 8-bit copy for DIS."""

    luma: np.ndarray
    luma8: np.ndarray

    @classmethod
    def of(cls, frame: np.ndarray, width: int = THUMB_WIDTH) -> "ToneThumb":
        height_full, width_full = frame.shape[:2]
        scale = min(1.0, width / width_full)
        size = (max(CELL, round(width_full * scale)), max(CELL, round(height_full * scale)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else frame
        luma = np.ascontiguousarray(small @ LUMA_709 if small.ndim == 3 else small, dtype=np.float32)
        return cls(luma, (np.clip(luma, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


@dataclass
class Brightness:
    """Log brightness ratio of a neighbour to the current frame: whole frame and per block, with block support."""

    ratio: float
    blocks: np.ndarray
    support: np.ndarray
    shared: float


def same_brightness(grid: tuple[int, int]) -> Brightness:
    return Brightness(0.0, np.zeros(grid), np.ones(grid), 1.0)


def block_grid(width: int, height: int, block_size: int) -> tuple[int, int]:
    """Rows and columns of the local-correction grid for a frame."""
    return max(1, round(height / block_size)), max(1, round(width / block_size))


def compare(current: ToneThumb, warped: np.ndarray, inside: np.ndarray, grid: tuple[int, int]) -> Brightness:
    """Brightness of a neighbour already brought onto the current frame, relative to it, on shared cells."""
    cur = current.luma
    usable = inside & (cur > CLIP_LOW) & (cur < CLIP_HIGH) & (warped > CLIP_LOW) & (warped < CLIP_HIGH)
    # cell means, not pixels: a mean does not care that the warped neighbour is a little softer
    area = _cell_mean(usable.astype(np.float32))
    full = area > 0.75
    if full.mean() < MIN_SHARED:
        return Brightness(0.0, np.zeros(grid), np.zeros(grid), 0.0)
    sum_cur = _cell_mean(cur * usable)
    sum_nb = _cell_mean(warped * usable)
    log_ratio = np.log(np.maximum(sum_nb, 1e-6) / np.maximum(sum_cur, 1e-6))
    # cells that disagree with the rest (a moving object, an occlusion, a flow failure) are left out
    centre = float(np.median(log_ratio[full]))
    spread = max(1.4826 * float(np.median(np.abs(log_ratio[full] - centre))), 0.005)
    good = (full & (np.abs(log_ratio - centre) < 3.0 * spread)).astype(np.float32)
    ratio = float(np.log(np.sum(good * sum_nb) / max(float(np.sum(good * sum_cur)), 1e-9)))
    rows, cols = grid
    block_nb = _block_sums(good * sum_nb, rows, cols)
    block_cur = _block_sums(good * sum_cur, rows, cols)
    cells = _block_sums(good, rows, cols)
    per_block = _block_sums(np.ones_like(good), rows, cols)
    blocks = np.log(np.maximum(block_nb, 1e-9) / np.maximum(block_cur, 1e-9))
    support = cells / np.maximum(per_block, 1.0)
    blocks = np.where(support > 0.1, blocks, ratio)
    return Brightness(ratio, blocks, support, float(good.mean()))


def _cell_mean(image: np.ndarray) -> np.ndarray:
    """Means over CELL x CELL px cells (the last partial row and column dropped)."""
    height, width = image.shape
    rows, cols = height // CELL, width // CELL
    return cv2.resize(np.ascontiguousarray(image[:rows * CELL, :cols * CELL], dtype=np.float32), (cols, rows),
                      interpolation=cv2.INTER_AREA)


def _block_sums(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    ys, xs = _block_starts(values.shape, rows, cols)
    return np.add.reduceat(np.add.reduceat(values.astype(np.float64), ys, axis=0), xs, axis=1)


@lru_cache(maxsize=16)
def _block_starts(shape: tuple[int, int], rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    height, width = shape
    return (np.linspace(0, height, rows + 1).round().astype(int)[:-1],
            np.linspace(0, width, cols + 1).round().astype(int)[:-1])


@lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid_x.flags.writeable = False
    grid_y.flags.writeable = False
    return grid_x, grid_y


def find_dips(levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Which of a window's distinct frames (in time order) sit in a dip or a flash: a run of at most MAX_DIP frames
    off the running median (which a run that short does not move) by more than ROBUST_CUTOFF spreads and DIP_FLOOR."""
    from scipy.ndimage import median_filter

    levels = np.asarray(levels, dtype=np.float64)
    use = np.asarray(weights) > 0
    dips = np.zeros(levels.size, bool)
    if use.sum() < 2 * MAX_DIP + 1:
        return dips
    seen = levels[use]
    baseline = median_filter(seen, size=2 * MAX_DIP + 1, mode="nearest")
    off = np.abs(seen - baseline)
    cutoff = max(DIP_SIGMAS * 1.4826 * float(np.median(off)), DIP_FLOOR)
    dips[np.nonzero(use)[0][off > cutoff]] = True
    return dips


def window_level(times: np.ndarray, levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted straight-line fit over time along axis 0, evaluated at time 0 (the current frame).

    On a full, symmetric window this is the plain mean, the most flicker averaged; where a change of light cuts
    the window short, the line keeps a fade from being pulled toward the far side.
    """
    levels = np.asarray(levels, dtype=np.float64)
    shape = (-1,) + (1,) * (levels.ndim - 1)
    base = np.asarray(weights, dtype=np.float64)
    base = np.broadcast_to(base.reshape(shape) if base.ndim == 1 else base, levels.shape)
    t = np.broadcast_to(np.asarray(times, dtype=np.float64).reshape(shape), levels.shape)
    w = base
    # Tukey-biweight reweighting, started from the median with the scale the median gives: a dip of a few frames
    # (or a flash) inside the window is left out rather than pulling the others' level toward it
    used = base > 0
    start = np.nan_to_num(_nanmedian0(np.where(used, levels, np.nan)))
    spread = np.nan_to_num(_nanmedian0(np.where(used, np.abs(levels - start), np.nan)))
    cutoff = ROBUST_CUTOFF * np.maximum(1.4826 * spread, ROBUST_FLOOR)
    fit = start
    for iteration in range(ROBUST_ITERATIONS + 1):
        if iteration:
            total = np.maximum(w.sum(axis=0), 1e-12)
            mt = np.sum(w * t, axis=0) / total
            mv = np.sum(w * levels, axis=0) / total
            vt = np.sum(w * (t - mt) ** 2, axis=0)
            slope = np.where(vt > 1e-9, np.sum(w * (t - mt) * (levels - mv), axis=0) / np.maximum(vt, 1e-12), 0.0)
            if iteration == ROBUST_ITERATIONS:
                break
            fit = mv + slope * (t - mt)
        w = base * np.clip(1.0 - ((levels - fit) / cutoff) ** 2, 0.0, 1.0) ** 2
        w = np.where(np.sum(w, axis=0) > 1e-9, w, base)  # nothing left (a window of outliers): plain mean
    return mv - slope * mt


def _nanmedian0(values: np.ndarray) -> np.ndarray:
    """np.nanmedian along axis 0 (the same numbers; numpy's goes through masked arrays, 10x slower on small
    windows): NaN where a column has no value."""
    ordered = np.sort(values, axis=0)  # NaNs last
    count = np.sum(~np.isnan(values), axis=0)
    low = np.maximum((count - 1) // 2, 0)[None]
    high = np.maximum(count // 2, 0)[None]
    with np.errstate(invalid="ignore"):
        middle = 0.5 * (np.take_along_axis(ordered, low, 0)[0] + np.take_along_axis(ordered, high, 0)[0])
    return np.where(count > 0, middle, np.nan)


def smooth_field(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear interpolation of a block grid (values at block centres) to a full-size field, held at the edges."""
    rows, cols = grid.shape
    if rows == 1 and cols == 1:
        return np.full((height, width), grid[0, 0], np.float32)
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


class FlowChain:
    """Dense flows between consecutive frames (both ways, computed once, cached) chained to bring any frame of a
    window onto the current one; brightness is then compared directly, frame against frame."""

    def __init__(self, capacity: int = 24):
        self.capacity = capacity  # thumbnails kept; grows to hold a window and a half
        self._thumbs: dict[int, tuple[weakref.ref, ToneThumb]] = {}
        self._flows: dict[tuple[int, int], tuple[weakref.ref, weakref.ref, np.ndarray]] = {}
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def thumb(self, index: int, frame: np.ndarray) -> ToneThumb:
        held = self._thumbs.get(index)
        if held is not None and held[0]() is frame:
            return held[1]
        thumb = ToneThumb.of(frame)
        self._thumbs[index] = (weakref.ref(frame), thumb)
        _trim(self._thumbs, index, self.capacity)
        return thumb

    def flow(self, source: int, target: int, frames: dict[int, np.ndarray]) -> np.ndarray:
        """Flow with thumb(source)(x) ≈ thumb(target)(x + flow(x)), for neighbouring frame indices."""
        key = (source, target)
        held = self._flows.get(key)
        if held is not None and held[0]() is frames[source] and held[1]() is frames[target]:
            return held[2]
        first, second = self.thumb(source, frames[source]).luma8, self.thumb(target, frames[target]).luma8
        if min(first.shape) < MIN_FLOW_SIZE:
            flow = np.zeros(first.shape + (2,), np.float32)  # too small for DIS: compared where they stand
        else:
            flow = self._dis.calc(first, second, None)
        self._flows[key] = (weakref.ref(frames[source]), weakref.ref(frames[target]), flow)
        _trim(self._flows, key, 2 * self.capacity)
        return flow

    def window_brightness(self, indices: list[int], frames: list[np.ndarray], current: int,
                          grid: tuple[int, int]) -> tuple[list[Brightness], ToneThumb]:
        """Brightness of each entry of the window (mirrored repeats included) relative to the current frame, and
        the current frame's thumbnail."""
        by_index = {index: frame for index, frame in zip(indices, frames)}
        unique = sorted(by_index)
        self.capacity = max(self.capacity, len(unique) + len(unique) // 2 + 2)
        here = self.thumb(current, by_index[current])
        height, width = here.luma.shape
        grid_x, grid_y = _pixel_grid(height, width)
        measures = {current: same_brightness(grid)}
        # each side chained frame by frame over the window's pictures (consecutive indices, or the unique
        # pictures of a step-printed shot, whose repeats the window leaves out)
        for side in ([i for i in unique if i > current], [i for i in reversed(unique) if i < current]):
            chained = np.zeros((height, width, 2), np.float32)
            inside = np.ones((height, width), bool)
            previous = current
            for index in side:
                step = self.flow(previous, index, by_index)
                previous = index
                map_x, map_y = grid_x + chained[..., 0], grid_y + chained[..., 1]
                chained = chained + cv2.remap(step, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                inside &= (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
                map_x, map_y = grid_x + chained[..., 0], grid_y + chained[..., 1]
                reach = inside & (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
                warped = cv2.remap(self.thumb(index, by_index[index]).luma, map_x, map_y, cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
                measures[index] = compare(here, warped, reach, grid)
        return [measures[index] for index in indices], here


def _trim(items: dict, around, capacity: int) -> None:
    if len(items) <= capacity:
        return
    centre = around[0] if isinstance(around, tuple) else around

    def distance(key) -> int:
        return abs((key[0] if isinstance(key, tuple) else key) - centre)

    for key in sorted(items, key=distance, reverse=True)[:len(items) - capacity]:
        del items[key]
