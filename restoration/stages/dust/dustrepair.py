"""Defect repair: fill from motion-compensated neighbours (robust median, regrained), or inpaint along a scratch.

Everything works on small crops around each defect, so clean pixels are never touched and the cost follows the
amount of damage, not the frame size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .dustmap import Neighbour, median_of, picked, pixelwise
from ...flow import LUMA_709
from .scratches import inpaint_band

GRAIN_SPLIT_SIGMA_PX = 1.2  # the median supplies what is coarser than this, one real neighbour the grain below it
MAX_SHIFT_PX = 1.5  # a refinement of the flow, never a new match
UNCOVERED_REACH_PX = 4  # the fill carried into rows no neighbour reaches from this near: farther picture bleeds in
EDGE_SCORE = 2.5  # around a defect, pixels whose spike score is above this are partly repaired (a soft matte edge)
FRAME_LINE_ROWS = 4  # rows at the frame's top and bottom that may hold the gate's frame line: fixed to the frame
FRAME_LINE_FADE = 4  # ... below (above) them the vertical motion of the fill's sources comes back over this many rows
FRAME_LINE_DROP = 30.0 / 255.0  # a frame line: the edge rows this much darker than the picture just inside them
FRAME_LINE_SPAN = 8  # ... over at least half of this many stretches of the frame's width (a line, not a dark object)


@dataclass
class Region:
    """A crop of the frame: rows and columns slices, and the defect's pixels within it."""

    rows: slice
    cols: slice
    mask: np.ndarray  # bool, crop-sized: the detected defect
    polarity: int     # +1 light, -1 dark


def crop_around(bbox: tuple[int, int, int, int], pad: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    x, y, w, h = bbox
    height, width = shape
    return slice(max(0, y - pad), min(height, y + h + pad)), slice(max(0, x - pad), min(width, x + w + pad))


class HoleFill:
    """A crop's flow with the hole's flow replaced by a smooth fill from around it (normalised convolution); what
    depends on the hole alone is worked out once, for all the neighbours' flows."""

    def __init__(self, hole: np.ndarray):
        self.hole = hole
        self.needed = bool(hole.any()) and not bool(hole.all())
        if self.needed:
            depth = float(cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3).max())
            # a speck this small cannot drag the flow: the frame-wide fill already covered it
            self.needed = depth > 4.0
        if self.needed:
            weight = (~hole).astype(np.float32)
            self.sigma = max(2.0, depth)  # reaches the middle of the hole, however thin or thick
            den = np.maximum(cv2.GaussianBlur(weight, (0, 0), self.sigma), 1e-4)
            # per flow component: numpy's broadcast over a last axis of two is slow (the same products, quotients)
            self.weight, self.den = cv2.merge((weight, weight)), cv2.merge((den, den))
            self.mask = hole.astype(np.uint8)

    def __call__(self, flow: np.ndarray) -> np.ndarray:
        if not self.needed:
            return flow
        num = cv2.GaussianBlur(cv2.multiply(flow, self.weight), (0, 0), self.sigma)
        filled = num / self.den
        # OpenCV's masked copy: numpy's boolean assignment over a last axis of two is slow (the same values)
        return cv2.copyTo(filled, self.mask, flow.copy())


def crop_grid(rows: slice, cols: slice) -> np.ndarray:
    """`np.mgrid[rows, cols]` in float32 (the crop's y and x), built from two ranges: mgrid's own cost dominates
    on a defect's crop."""
    grid = np.empty((2, rows.stop - rows.start, cols.stop - cols.start), np.float32)
    grid[0] = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
    grid[1] = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :]
    return grid


def warp_crop(image: np.ndarray, flow: np.ndarray, rows: slice, cols: slice,
              grid: np.ndarray | None = None) -> np.ndarray:
    """`image` sampled at x + flow(x) for the crop's pixels x (bicubic, keeps the neighbour's grain); `grid`, the
    crop's crop_grid, when the caller warps the same crop several times."""
    grid_y, grid_x = crop_grid(rows, cols) if grid is None else grid
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT101)


def soft_matte(mask: np.ndarray, score: np.ndarray, low: float) -> np.ndarray:
    """Repair opacity: 1 on the defect, ramping with the spike score in a 1 px ring (only where pixels spike)."""
    ring = (cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~mask
    ramp = np.clip((score - EDGE_SCORE) / max(low - EDGE_SCORE, 1e-3), 0.0, 1.0)
    return np.where(mask, 1.0, np.where(ring, ramp, 0.0)).astype(np.float32)


def supporting(neighbours: list[Neighbour], region: Region, low: float) -> list[Neighbour]:
    """Neighbours that do not share the defect (the current frame spikes against them there)."""
    found = []
    for n in neighbours:
        z = region.polarity * n.z[region.rows, region.cols][region.mask]
        if z.size and median_of(z) >= 0.5 * low:
            found.append(n)
    return found


def residual_shift(current: np.ndarray, warped: np.ndarray, known: np.ndarray,
                   here: np.ndarray | None = None) -> np.ndarray | None:
    """Sub-pixel shift (dx, dy) that best aligns a warped crop with the current one around the hole (one
    Lucas-Kanade step): flows estimated on reduced frames are a fraction of a pixel off on fine detail; `here`,
    the current crop's luma when the caller has it."""
    if known.sum() < 24:
        return None
    here, there = current @ LUMA_709 if here is None else here, warped @ LUMA_709
    gx = cv2.Sobel(there, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)[known]
    gy = cv2.Sobel(there, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)[known]
    error = (here - there)[known]
    # the 2x2 normal equations solved in closed form (numpy's det and solve cost more than the sums on a crop)
    xx, xy, yy = float(gx @ gx), float(gx @ gy), float(gy @ gy)
    det, trace = xx * yy - xy * xy, xx + yy
    if det <= 1e-9 * max(trace, 1e-12) ** 2 or trace < 1e-6:
        return None  # flat or one-directional picture: no shift can be measured
    ex, ey = float(gx @ error), float(gy @ error)
    dx, dy = (yy * ex - xy * ey) / det, (xx * ey - xy * ex) / det
    if not (math.isfinite(dx) and math.isfinite(dy)) or math.hypot(dx, dy) > MAX_SHIFT_PX:
        return None
    return np.array([dx, dy], np.float32)


def matched_level(current: np.ndarray, warped: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """A warped neighbour crop shifted, per channel, to the current frame's level around the hole (median over
    the ring): on flickering film a neighbour is a little brighter or darker, and its fill would show as a patch."""
    if ring.sum() < 12:
        return warped
    difference = picked(current, ring) - picked(warped, ring)  # (pixels, channels): picked once, not per channel
    offset = np.array([median_of(difference[:, c]) for c in range(current.shape[2])], np.float32)
    # OpenCV's per-channel add: numpy's broadcast over a short last axis is slow (the same float32 sums)
    return cv2.add(warped, (*(float(v) for v in offset), *(0.0,) * (4 - len(offset))))


def median_stack(images: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of up to four images (the mean of two), by min/max networks rather than a sort."""
    if len(images) <= 2:
        return images[0] if len(images) == 1 else 0.5 * (images[0] + images[1])
    if len(images) == 3:
        a, b, c = images
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    if len(images) == 4:
        low, high = pixelwise(np.minimum, images), pixelwise(np.maximum, images)
        return 0.5 * (images[0] + images[1] + images[2] + images[3] - low - high)
    return np.median(np.stack(images), axis=0)


def _highpass(image: np.ndarray) -> np.ndarray:
    return image - cv2.GaussianBlur(image, (0, 0), GRAIN_SPLIT_SIGMA_PX)


def temporal_fill(current: np.ndarray, region: Region, matte: np.ndarray,
                  sources: list[Neighbour]) -> np.ndarray:
    """Fill for a crop: per-pixel median of the warped neighbours, with one real neighbour's grain put back.

    The median is robust to another defect in one neighbour but is smoother than film; the grain comes from the
    neighbour that agrees best with it, scaled to the grain measured around the defect in the current frame.
    """
    hole = cv2.dilate((matte > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    ring = (cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~hole
    warped = []
    # the same for every source: worked out once
    grid, known, here = crop_grid(region.rows, region.cols), ~hole, current @ LUMA_709
    fill_inside = HoleFill(hole)
    held = frame_line_hold(hole, region.rows, [n.frame for n in sources]) if sources else None
    lands = []
    for n in sources:
        flow = fill_inside(n.flow[region.rows, region.cols])
        if held is not None:
            # past the frame line's width the picture's own motion wins (gate weave: rows past the edge, inpainted)
            flow = flow.copy()
            flow[..., 1] *= np.where(np.abs(flow[..., 1]) <= FRAME_LINE_ROWS, held, 1.0)
        first = warp_crop(n.frame, flow, region.rows, region.cols, grid)
        shift = residual_shift(current, first, known, here)
        if shift is not None:
            flow = cv2.add(flow, (float(shift[0]), float(shift[1]), 0.0, 0.0))  # flow + shift, by OpenCV: faster
        warped.append(matched_level(current, first if shift is None else
                                    warp_crop(n.frame, flow, region.rows, region.cols, grid), ring))
        lands.append(landing(flow, grid, n.frame.shape[:2]))
    uncovered = None
    if any(land is not None for land in lands):
        # past a neighbour's frame edge its warp is a mirror image, not picture: those pixels come from the
        # neighbours that do reach them, and where none does, from inpainting (no mirrored ghost, no seam)
        lands = [np.ones(hole.shape, bool) if land is None else land for land in lands]
        count = np.sum(lands, axis=0)
        if bool((hole & (count < len(lands))).any()):
            mean = sum(w * land[..., None] for w, land in zip(warped, lands)) / np.maximum(count, 1)[..., None]
            warped = [np.where(land[..., None], w, mean) for w, land in zip(warped, lands)]
            uncovered = hole & (count == 0)
    median = median_stack(warped)
    inside = matte > 0
    errors = [float(picked(np.abs(w - median), inside).mean()) for w in warped]
    best = warped[int(np.argmin(errors))]
    if len(warped) == 1:
        fill = best
    else:
        grain = _highpass(best)
        gain = 1.0
        if ring.sum() >= 12:
            have = float(picked(grain, ring).std())
            want = float(picked(_highpass(current), ring).std())
            gain = float(np.clip(want / max(have, 1e-6), 0.5, 2.0))
        smooth = cv2.GaussianBlur(median, (0, 0), GRAIN_SPLIT_SIGMA_PX)
        fill = smooth + gain * grain
    if uncovered is not None and uncovered.any():
        fill = fill_uncovered(fill, current, hole, uncovered, seed=region.rows.start * 7919 + region.cols.start)
    return fill


def frame_line_hold(hole: np.ndarray, rows: slice, frames: list[np.ndarray]) -> np.ndarray | None:
    """Per crop row, the share of the sources' vertical motion kept (0 in a frame line's rows at the top or
    bottom, back to 1 over FRAME_LINE_FADE rows), as a column; None when the hole keeps clear of those rows or
    the sources show no frame line there.

    The frame line is fixed to the film's frame, not to the picture: moved with the picture's vertical motion, a
    neighbour's lands a row or two off the current frame's and shows as a dark line in the fill."""
    height = frames[0].shape[0]
    y = np.arange(rows.start, rows.start + hole.shape[0])
    keep = np.ones(y.shape, np.float32)
    for edge, near in ((0, y), (height - 1, height - 1 - y)):
        ramp = np.clip((near - FRAME_LINE_ROWS + 1) / float(FRAME_LINE_FADE + 1), 0.0, 1.0).astype(np.float32)
        if bool((hole.any(axis=1) & (ramp < 1)).any()) and has_frame_line(frames, edge):
            keep = np.minimum(keep, ramp)
    return keep[:, None] if bool((keep < 1).any()) else None


def has_frame_line(frames: list[np.ndarray], edge: int) -> bool:
    """Whether most frames' two rows at `edge` (0 or the last row) are darker than the picture just inside, along
    at least half the frame's width."""
    step = 1 if edge == 0 else -1
    inside = edge + step * (FRAME_LINE_ROWS + FRAME_LINE_FADE)
    dark = 0
    for f in frames:
        line, picture = f[edge:edge + 2 * step:step] @ LUMA_709, f[inside:inside + 2 * step:step] @ LUMA_709
        stretches = np.array_split(np.arange(f.shape[1]), FRAME_LINE_SPAN)
        darker = sum(median_of(line[:, s]) < median_of(picture[:, s]) - FRAME_LINE_DROP for s in stretches)
        dark += 2 * darker >= FRAME_LINE_SPAN
    return 2 * dark >= len(frames)


def fill_uncovered(fill: np.ndarray, current: np.ndarray, hole: np.ndarray, uncovered: np.ndarray,
                   seed: int) -> np.ndarray:
    """The hole's pixels no neighbour reaches, inpainted from the rest of the fill, with the fill's grain."""
    known = hole & ~uncovered
    if known.sum() < 12:  # nothing of the fill to carry on: from the frame around the hole
        want = 1.4826 * np.median(np.abs(_highpass(current)[~hole]), axis=0) if (~hole).any() else np.zeros(3)
        return inpainted_with_grain(np.where(hole[..., None], fill, current).astype(np.float32), uncovered,
                                    want.astype(np.float32), seed)
    # carried on from the fill alone: beside the hole there may be more of the same dirt, never detected where
    # no neighbour gives evidence; the grain's spread measured robustly (the fill's picture edges are not grain)
    want = 1.4826 * np.median(np.abs(_highpass(fill)[known]), axis=0)
    return inpainted_with_grain(fill.astype(np.float32), uncovered, want.astype(np.float32), seed, around=known,
                                reach=UNCOVERED_REACH_PX)


def landing(flow: np.ndarray, grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """Where the crop's pixels, moved by `flow`, land inside a neighbour of `shape`; None when all of them do
    (told without a per-pixel test when the crop lies farther from the frame's edge than the flow reaches)."""
    grid_y, grid_x = grid
    height, width = shape
    margin = min(float(grid_y[0, 0]), float(grid_x[0, 0]), height - 1 - float(grid_y[-1, -1]),
                 width - 1 - float(grid_x[-1, -1]))
    if margin > float(np.abs(flow).max()):
        return None
    x, y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    lands = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return None if bool(lands.all()) else lands


def spatial_fill(current: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill for a crop by inpainting along the defect, with grain borrowed from just beside it (no smooth line)."""
    filled = inpaint_band(current, mask)
    width = int(mask.any(axis=0).sum()) + 2
    texture = _highpass(current)
    beside = np.roll(texture, width, axis=1)
    other = np.roll(texture, -width, axis=1)
    left_ok = ~np.roll(mask, width, axis=1)
    grain = np.where(left_ok[..., None], beside, other)
    return filled - _highpass(filled) + grain


def blend(current: np.ndarray, fill: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """current + matte * (fill - current), clipped to [0, 1]."""
    return np.clip(current + matte[..., None] * (fill - current), 0.0, 1.0).astype(np.float32)


COVER_NOISE = 3.0      # two compensated frames within this many grain units of each other show the same picture
RING_NOISE = 2.0       # a frame whose compensation misses the picture around the hole by more is not used
GRAIN_PX = 0.6         # synthetic grain for inpainted pixels: white noise blurred this much


def spatiotemporal_fill(current: np.ndarray, hole: np.ndarray, sources: list[Neighbour], rows: slice,
                        cols: slice, sigma: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """Fill for a crop over moving picture, and the share of the hole two compensated frames agree on.

    Each frame is warped with the flow from around the hole interpolated into it (the flow inside followed the
    blotch, not the picture); where two of those that register the surroundings agree, one of them is taken,
    and the rest is inpainted from the edge (cv2.inpaint), with grain like the surroundings' put back.
    """
    wide = cv2.dilate(hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    ring = (cv2.dilate(wide.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & ~wide
    here = current @ LUMA_709
    noise = np.maximum(sigma, 1.0 / 255.0)
    warped = []
    fill_inside = HoleFill(wide)
    for n in sources:
        flow = fill_inside(n.flow[rows, cols])
        w = matched_level(current, warp_crop(n.frame, flow, rows, cols), ring)
        if ring.sum() >= 12 and median_of(np.abs(w @ LUMA_709 - here)[ring] / noise[ring]) > RING_NOISE:
            continue
        warped.append(w)
    fill = current.copy()
    covered = np.zeros(hole.shape, bool)
    if len(warped) >= 2:
        lumas = [w @ LUMA_709 for w in warped]
        # where each frame agrees with another; filled from the frame that covers most first, then the next:
        # whole areas from one frame, not a per-pixel patchwork of frames (which reads as speckle)
        agrees = [hole & np.any([np.abs(lumas[i] - lumas[j]) / noise <= COVER_NOISE
                                 for j in range(len(warped)) if j != i], axis=0) for i in range(len(warped))]
        for i in sorted(range(len(warped)), key=lambda i: -int(agrees[i].sum())):
            take = agrees[i] & ~covered
            fill[take] = warped[i][take]
            covered |= take
    share = float(covered[hole].mean()) if hole.any() else 0.0
    left = hole & ~covered
    fill = np.where(hole[..., None], fill, current).astype(np.float32)
    if left.any():
        want = _highpass(current)[ring].std(axis=0) if ring.sum() >= 12 else np.zeros(3, np.float32)
        fill = inpainted_with_grain(fill, left, want, seed)
    return fill, share


def inpainted_with_grain(fill: np.ndarray, left: np.ndarray, want: np.ndarray, seed: int,
                         around: np.ndarray | None = None, reach: int = 15) -> np.ndarray:
    """`fill` with its `left` pixels inpainted (cv2.inpaint) from around them, or from the `around` pixels only,
    and grain of spread `want` per channel put on top (in place)."""
    eight = (np.clip(fill, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    masked = left if around is None else ~around
    radius = max(3, int(np.ceil(cv2.distanceTransform(left.astype(np.uint8), cv2.DIST_L2, 3).max())))
    painted = cv2.inpaint(eight, masked.astype(np.uint8), min(radius, reach), cv2.INPAINT_TELEA)
    # inpainting is smooth: grain like the surroundings' on top, so it shows no flat patch
    white = np.random.default_rng(seed).standard_normal(left.shape).astype(np.float32)
    grain = _highpass(cv2.GaussianBlur(white, (0, 0), GRAIN_PX))
    grain *= 1.0 / max(float(grain.std()), 1e-6)
    fill[left] = painted[left].astype(np.float32) / 255.0 + grain[left][:, None] * want.astype(np.float32)
    return fill
