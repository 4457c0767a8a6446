"""DustMap: motion-compensated detection of one-frame defects (dust, dirt, hair, blotches), each with a confidence.

A pixel is a defect candidate when it differs, in the same direction, from the motion-compensated frames on both
sides of it (spike detection), by more than a threshold measured in units of the local noise of those differences.
Candidates grow by hysteresis into connected defects; a defect is dropped when real motion explains it better:
its picture is found moved along one path in the neighbours (fast objects the flow missed), the other frames
disagree among themselves around it (deforming figures), or the picture around it moves against the camera and
it does not spike hard enough for that.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ...flow import LUMA_709, dense_flow

FLOW_PREFILTER_PX = 5  # a median this wide removes specks before the flow sees them, so dust cannot drag the flow
FLOW_MIN_WIDTH = 320  # flows are estimated at the largest power-of-two reduction at least this wide (720 -> 360):
#                       the flow only has to follow the picture; defects are found and repaired at full size
NOISE_BLOCK_PX = 32  # noise and brightness offset of a difference image are measured per block of this size
BLOCK_MEDIAN = 5  # a 5x5 median over the blocks' offsets: a large faint stain spans several blocks
BLOCK_SAMPLE_STRIDE = 4  # ... on every 4th pixel both ways: 64 samples a block, 16x less sorting than all of them
MISREGISTRATION_PX = 0.3  # flow error assumed everywhere: edges get a threshold raised by this times their slope
SIGMA_FLOOR = 0.6 / 255.0  # below 8-bit quantisation a difference carries no information
LOST_FLAT = 3.5 / 255.0  # a lost patch this flat in the neighbour (median slope) is hazy sky; dirt there has texture
LOST_PX = 12.0  # a flow off the frame this far from the camera's motion, which lands inside, is a wrong match
FRAME_MARGIN_PX = 2  # the scan's own frame edge weaves in and out of the outermost rows and columns
SAME_PICTURE_NOISE = 1.5  # a neighbour this close (noise units, median over a defect) shows the same picture
SINGLE_SIDE_FACTOR = 1.3  # frames at a shot's edge have neighbours on one side only: ask for stronger evidence
EDGE_MOTION_LIMIT = 0.5  # beside a shot edge, own motion above half motion_limit vetoes a defect
EDGE_SURROUND = 0.1  # ... and so does discord among the other frames around it (a foot landing, a turning head)
POOLING_PX = 3  # the spike is also scored on 3x3 averages: faint specks of a few pixels add up above the grain
POOLED_SEED = 1.15  # the pooled score seeds a defect at 1.15x the threshold: a second chance for false alarms
EXTENT_Z = 1.0  # ... but a pixel takes the averaged score only when it spikes this much itself (no halo past a speck)
THREE_FRAME_MIN_PX = 40  # from this size a defect the nearest frame on each side shares is picture, not dirt
#                          (smaller, a faint speck's median distance to a clean frame can fall under `low` by grain)


# --------------------------------------------------------------------------------------------------------------
# luma and flows, computed once per frame pair


def frame_luma(frame: np.ndarray) -> np.ndarray:
    """Rec.709 luma (float32) of a float RGB frame."""
    return np.ascontiguousarray(frame @ LUMA_709, dtype=np.float32)


def flow_scale(width: int) -> int:
    """Reduction (a power of two) at which the flow of frames this wide is estimated."""
    scale = 1
    while width // (2 * scale) >= FLOW_MIN_WIDTH:
        scale *= 2
    return scale


def flow_image(luma: np.ndarray, scale: int = 1) -> np.ndarray:
    """8-bit, speck-free luma for the flow estimator, reduced `scale` times (the picture path is never quantised)."""
    luma8 = cv2.medianBlur((np.clip(luma, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), FLOW_PREFILTER_PX)
    if scale > 1:
        luma8 = cv2.resize(luma8, (luma8.shape[1] // scale, luma8.shape[0] // scale), interpolation=cv2.INTER_AREA)
    return luma8


def sample_at(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR,
              border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """`image` sampled at x + flow(x) (OpenCV's relative map: no coordinate grids built)."""
    return cv2.remap(image, np.ascontiguousarray(flow, dtype=np.float32), None,
                     interpolation | cv2.WARP_RELATIVE_MAP, borderMode=border)


def upsample_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A flow estimated on a reduced frame, brought to `shape` (height, width) with its vectors scaled to match."""
    height, width = shape
    if flow.shape[:2] == (height, width):
        return flow
    factor = np.array([width / flow.shape[1], height / flow.shape[0]], np.float32)
    return cv2.resize(scaled_flow(flow, factor), (width, height), interpolation=cv2.INTER_LINEAR)


def scaled_flow(flow: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """`flow * factor` (float32 per component) by OpenCV: the same products, without numpy's slow broadcast over
    a last axis of two."""
    return cv2.multiply(flow, (float(factor[0]), float(factor[1]), 0.0, 0.0))


def weighted_flow(flow: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`flow * weight[..., None]` by OpenCV (the same products; numpy's broadcast over two components is slow)."""
    return cv2.multiply(flow, cv2.merge((weight, weight)))


class FullSizeOnUse:
    """A reduced flow read at full size only where it is read (upsample_flow's bilinear resize, worked out for a
    crop): the back flow is read only around defects whose picture the motion test found moved."""

    def __init__(self, flow: np.ndarray, shape: tuple[int, int]):
        self._flow, self._shape = flow, shape

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        height, width = self._shape
        rows, cols = key
        y0, y1, _ = rows.indices(height)
        x0, x1, _ = cols.indices(width)
        if self._flow.shape[:2] == (height, width):
            return self._flow[y0:y1, x0:x1]
        small_h, small_w = self._flow.shape[:2]
        sx, sy = small_w / width, small_h / height

        def taps(start: int, stop: int, scale: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            # cv2.resize's linear sampling: source = (x + 0.5) * scale - 0.5, clamped at the edges
            at = np.clip((np.arange(start, stop) + 0.5) * scale - 0.5, 0.0, size - 1)
            low = np.minimum(np.floor(at).astype(np.intp), size - 1)
            return low, np.minimum(low + 1, size - 1), (at - low).astype(np.float32)

        xl, xh, wx = taps(x0, x1, sx, small_w)
        yl, yh, wy = taps(y0, y1, sy, small_h)
        wx, wy = wx[None, :], wy[:, None]
        # only the taps' block of the reduced flow, per component: numpy's broadcast over a last axis of two is
        # slow (the same products and sums)
        top_row, left = int(yl[0]), int(xl[0])
        block = self._flow[top_row:int(yh[-1]) + 1, left:int(xh[-1]) + 1]
        yl, yh, xl, xh = yl - top_row, yh - top_row, xl - left, xh - left
        components = []
        for c, factor in ((0, 1.0 / sx), (1, 1.0 / sy)):
            f = np.ascontiguousarray(block[..., c])
            upper, lower = f.take(yl, axis=0), f.take(yh, axis=0)
            top = upper.take(xl, axis=1) * (1 - wx) + upper.take(xh, axis=1) * wx
            bottom = lower.take(xl, axis=1) * (1 - wx) + lower.take(xh, axis=1) * wx
            components.append((top * (1 - wy) + bottom * wy) * np.float32(factor))
        return np.stack(components, axis=-1)


@dataclass
class FramePrep:
    """What the detector needs of one clip frame, computed once: its luma and its flow image."""

    index: int
    frame: np.ndarray
    luma: np.ndarray
    flow_image: np.ndarray
    generation: int


class FlowBank:
    """Per-frame luma and dense flows between clip frames, each computed once and reused while frames are unchanged.

    A frame is recognised by clip index and object identity (the pipeline hands the same array for the same frame),
    and a flow by the generations of its two frames, so a changed upstream frame never meets a stale flow.
    """

    def __init__(self, preset: str = "fast", frames: int = 8, flows: int = 24):
        self.preset = preset
        self._frames: OrderedDict[int, FramePrep] = OrderedDict()
        self._flows: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._frame_capacity = frames
        self._flow_capacity = flows
        self._generation = 0
        self._lock = threading.Lock()

    def prepare(self, index: int, frame: np.ndarray) -> FramePrep:
        """Luma and flow image of clip frame `index` (cached)."""
        with self._lock:
            known = self._frames.get(index)
            if known is not None and known.frame is frame:
                self._frames.move_to_end(index)
                return known
        luma = frame_luma(frame)
        image = flow_image(luma, flow_scale(luma.shape[1]))
        with self._lock:
            self._generation += 1
            prep = FramePrep(index, frame, luma, image, self._generation)
            self._frames[index] = prep
            while len(self._frames) > self._frame_capacity:
                self._frames.popitem(last=False)
        return prep

    def flow(self, reference: FramePrep, moving: FramePrep) -> np.ndarray:
        """Flow with reference(x) ≈ moving(x + flow(x)), at the reduced size of the flow images (their px)."""
        key = (reference.generation, moving.generation)
        with self._lock:
            cached = self._flows.get(key)
            if cached is not None:
                self._flows.move_to_end(key)
                return cached
        flow = dense_flow(reference.flow_image, moving.flow_image, self.preset)
        with self._lock:
            self._flows[key] = flow
            while len(self._flows) > self._flow_capacity:
                self._flows.popitem(last=False)
        return flow


def median_of(values: np.ndarray) -> float:
    """Median of an array's values (np.median without its per-call overhead, which dominates on per-defect crops)."""
    flat = np.ravel(values)
    k = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, k)[k])
    if flat.size == 0:
        return float("nan")
    part = np.partition(flat, (k - 1, k))
    return 0.5 * (float(part[k - 1]) + float(part[k]))


def pixelwise(ufunc: np.ufunc, arrays: list[np.ndarray]) -> np.ndarray:
    """`ufunc.reduce(arrays)` (np.maximum, np.minimum) as a new array, taken pairwise: the same values without
    stacking the arrays first (reducing across a stack of whole frames is many times slower)."""
    if len(arrays) == 1:
        return np.array(arrays[0])
    out = ufunc(arrays[0], arrays[1])
    for a in arrays[2:]:
        ufunc(out, a, out=out)
    return out


def median_xy(samples: np.ndarray) -> np.ndarray:
    """Per-column median of (N, 2) flow samples."""
    return np.array([median_of(samples[:, 0]), median_of(samples[:, 1])])


def picked(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`image[mask]` for an (h, w, channels) image and an (h, w) mask: the same rows in the same order, several
    times faster than numpy's boolean index over a short last axis."""
    return np.ascontiguousarray(image).reshape(-1, image.shape[-1]).take(np.flatnonzero(mask), axis=0)


# --------------------------------------------------------------------------------------------------------------
# evidence from one motion-compensated neighbour


@dataclass
class Neighbour:
    """One neighbouring frame brought onto the current one, with its normalised difference to it."""

    index: int
    offset: int               # pictures after (+) or before (-) the current one (its clip index offset but for repeats)
    frame: np.ndarray         # RGB as it came (not warped)
    luma: np.ndarray          # luma as it came
    flow: np.ndarray          # current -> neighbour: current(x) ≈ neighbour(x + flow(x))
    back_flow: "FullSizeOnUse | np.ndarray"  # neighbour -> current
    warped: np.ndarray        # luma warped onto the current frame
    reliable: np.ndarray      # bool: forward/backward flow agree here, at the flow estimate's size
    residual: np.ndarray      # current - warped - local offset (luma units)
    edges: np.ndarray = field(default=None, repr=False)        # slope of the warped luma
    block_noise: np.ndarray = field(default=None, repr=False)  # the residual's spread per block
    grain: np.ndarray = field(default=None, repr=False)  # noise of a frame difference from grain alone, per pixel
    sigma: np.ndarray = field(default=None, repr=False)  # local noise of the residual: grain, misregistration, block
    z: np.ndarray = field(default=None, repr=False)  # residual in noise units, set by normalise()
    inside: np.ndarray = field(default=None, repr=False)  # bool: its flow lands inside the frame (inside_frame)


def _upsample_grid(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _median_last_axis(values: np.ndarray) -> np.ndarray:
    # a full sort of many short rows is several times faster than np.partition along the axis (the same values)
    k = values.shape[-1] // 2
    ordered = np.sort(values, axis=-1)
    if values.shape[-1] % 2:
        return ordered[..., k]
    return 0.5 * (ordered[..., k - 1] + ordered[..., k])


def block_offset_and_noise(difference: np.ndarray, block: int = NOISE_BLOCK_PX, offsets: bool = True
                           ) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-pixel robust offset (median) and noise (1.4826·MAD) of a difference image, from blocks smoothed 3x3;
    without `offsets`, the noise alone (the offset map is None)."""
    height, width = difference.shape
    stride = BLOCK_SAMPLE_STRIDE
    sample = difference[stride // 2::stride, stride // 2::stride]
    b = max(2, block // stride)
    rows, cols = max(1, sample.shape[0] // b), max(1, sample.shape[1] // b)
    sample = cv2.resize(sample, (cols * b, rows * b), interpolation=cv2.INTER_NEAREST) \
        if sample.shape[0] < b or sample.shape[1] < b else sample[:rows * b, :cols * b]
    blocks = sample.reshape(rows, b, cols, b).transpose(0, 2, 1, 3).reshape(rows, cols, b * b)
    median = _median_last_axis(blocks)
    mad = _median_last_axis(np.abs(blocks - median[..., None])) * np.float32(1.4826)
    k = BLOCK_MEDIAN if rows >= BLOCK_MEDIAN and cols >= BLOCK_MEDIAN else 3
    if rows >= k and cols >= k:  # a blotch filling a few blocks must not set those blocks' statistics
        median = cv2.medianBlur(median.astype(np.float32), k) if offsets else None
        mad = cv2.medianBlur(mad.astype(np.float32), 3)  # the spread stays local: texture raises it where it is
    spread = _upsample_grid(mad, (height, width))
    return (_upsample_grid(median, (height, width)) if offsets else None), np.maximum(spread, SIGMA_FLOOR, out=spread)


NLF_BINS = 12  # luma bins of the noise level function
NLF_SAMPLES = 25000  # pixels it is measured on


def noise_level_function(luma: np.ndarray, residual: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-pixel noise of a difference image from its brightness: film grain depends on density, not on place."""
    return grain_from_table(noise_level_table(luma, residual, edges), luma)


def noise_level_table(luma: np.ndarray, residual: np.ndarray, edges: np.ndarray) -> np.ndarray | None:
    """The noise of a difference image per brightness (1024 steps of luma; None where nothing was measured).

    Measured (1.4826·MAD per luma bin) on the flattest half of the frame, where misregistration cannot pose as
    grain; dust is too sparse to move a median.
    """
    step = max(2, int(np.sqrt(luma.size / NLF_SAMPLES)))  # a fixed sample size: the curve needs no more
    sample = (slice(None, None, step), slice(None, None, step))
    y, r, e = luma[sample].ravel(), residual[sample].ravel(), edges[sample].ravel()
    flat = e <= median_of(e)
    y, r = y[flat], r[flat]
    edges_bins = np.linspace(0.0, 1.0, NLF_BINS + 1)
    which = np.clip(np.digitize(y, edges_bins) - 1, 0, NLF_BINS - 1)
    # the samples grouped by bin once, each bin's in their order (its mean sums them in that order)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(NLF_BINS + 1))
    y, r = y[order], r[order]
    centres, levels = [], []
    for b in range(NLF_BINS):
        values = r[bounds[b]:bounds[b + 1]]
        if values.size >= 64:
            centres.append(float(y[bounds[b]:bounds[b + 1]].mean()))
            levels.append(1.4826 * median_of(np.abs(values - median_of(values))))
    if not levels:
        return None
    curve = np.maximum(np.asarray(levels), SIGMA_FLOOR)
    return np.interp(np.linspace(0.0, 1.0, 1024), centres, curve).astype(np.float32)


def grain_from_table(table: np.ndarray | None, luma: np.ndarray) -> np.ndarray:
    """A noise level table read at each pixel's brightness."""
    if table is None:
        return np.full(luma.shape, SIGMA_FLOOR, np.float32)
    step = np.clip(luma, 0.0, 1.0)
    step *= 1023.0
    step += 0.5
    return table.take(step.astype(np.int32))


def magnitude(x: np.ndarray, y: np.ndarray | np.float32) -> np.ndarray:
    """sqrt(x² + y²) per pixel, the same bits wherever the arrays lie in memory.

    cv2.magnitude's result depends on its inputs' alignment, so two renders of a frame differed in the last bit and
    a decision downstream could flip.
    """
    out = np.square(x, dtype=np.float32)
    out += np.square(y, dtype=np.float32)
    return np.sqrt(out, out=out)


def magnitude_of_own(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """magnitude(x, y) worked out in x's memory (x and y are the caller's own float32 temporaries, both
    overwritten): the same bits without two more frame-sized arrays."""
    np.square(x, out=x)
    x += np.square(y, out=y)
    return np.sqrt(x, out=x)


def slope(luma: np.ndarray) -> np.ndarray:
    """Gradient magnitude per pixel (luma units per px)."""
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return magnitude_of_own(gx, gy)


def consistency_error(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """|f(x) + b(x + f(x))| in px: large where the pixel is occluded in the neighbour or the flow is wrong."""
    back_at_target = sample_at(backward, forward)
    # summed and split by OpenCV: numpy reads a component of an (h, w, 2) array slowly (the same sums)
    return magnitude_of_own(*cv2.split(cv2.add(forward, back_at_target)))


def fill_unreliable_flow(flow: np.ndarray, reliable: np.ndarray, reach_px: float = 12.0, step: int = 4) -> np.ndarray:
    """Flow with its unreliable pixels replaced by the reliable flow around them (normalised convolution).

    A defect drags the flow inside it; the picture under it moves like its surroundings.
    """
    height, width = reliable.shape
    small = (max(1, width // step), max(1, height // step))
    weight = reliable.astype(np.float32)
    num = cv2.resize(weighted_flow(flow, weight), small, interpolation=cv2.INTER_AREA)
    den = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    sigma = reach_px / step
    num = cv2.GaussianBlur(num, (0, 0), sigma)
    den = cv2.GaussianBlur(den, (0, 0), sigma)
    floor = np.maximum(den, 1e-3)
    filled = num / cv2.merge((floor, floor))  # the same quotients as a broadcast over the two components, faster
    filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    known = cv2.resize(den, (width, height), interpolation=cv2.INTER_LINEAR) > 1e-3
    use = ~reliable & known
    # OpenCV's masked copy: numpy's boolean assignment over a last axis of two costs 20x more (the same values)
    return cv2.copyTo(filled, use.view(np.uint8), flow.copy())


def trusted_flow(flow: np.ndarray, back_flow: np.ndarray, tolerance_px: float, scale: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Forward/backward check of a (possibly reduced) flow pair and the flow with its untrusted parts filled from
    around them; the tolerance is in full-size px, `scale` full-size px per flow px."""
    error = consistency_error(flow, back_flow)
    error *= scale
    speed = magnitude_of_own(*cv2.split(flow))
    speed *= 0.1 * scale
    speed += tolerance_px
    reliable = error <= speed
    return fill_unreliable_flow(flow, reliable, 12.0 / scale, max(1, int(4 // scale))), reliable


def compensate_neighbour(current: np.ndarray, index: int, offset: int, frame: np.ndarray, luma: np.ndarray,
                         flow: np.ndarray, back_flow: np.ndarray, tolerance_px: float) -> Neighbour:
    """Warp a neighbour onto `current` (luma) and measure how, and how reliably, the current frame differs;
    its noise is set by with_grain (from noise_level_function, once per current frame).

    The flows may be estimated on reduced frames (they are checked and filled there, then brought to full size).
    """
    height, width = current.shape
    scale = width / flow.shape[1]
    flow, reliable = trusted_flow(flow, back_flow, tolerance_px, scale)
    flow = upsample_flow(flow, (height, width))
    back_flow = FullSizeOnUse(back_flow, (height, width))
    inside = inside_frame(flow)
    warped = sample_at(luma, flow, cv2.INTER_CUBIC)  # bilinear at half-pixel offsets softens fine stripes
    difference = current - warped
    offset_map, block_noise = block_offset_and_noise(difference)
    difference -= offset_map
    residual = difference  # in its own array: off the frame, 0
    np.copyto(residual, np.float32(0.0), where=np.logical_not(inside))
    edges = slope(warped)  # the neighbour's, not the current frame's: a defect's own edges must not raise it
    return Neighbour(index, offset, frame, luma, flow, back_flow, warped, reliable, residual,
                     edges=edges, block_noise=block_noise, inside=inside)


def with_grain(neighbour: Neighbour, grain: np.ndarray, grain_squared: np.ndarray | None = None) -> Neighbour:
    """Set a neighbour's grain noise and, from it, the local noise of its residual; `grain_squared`, grain², when
    the caller sets the same grain on several neighbours."""
    neighbour.grain = grain
    # magnitude(grain, misregistration) in the misregistration's own array (a sum of two squares either way round)
    sigma = np.multiply(neighbour.edges, np.float32(MISREGISTRATION_PX))
    np.square(sigma, out=sigma)
    sigma += np.square(grain, dtype=np.float32) if grain_squared is None else grain_squared
    np.sqrt(sigma, out=sigma)
    # the block's own spread is a floor: where the warp leaves texture behind, the threshold rises with it
    neighbour.sigma = np.maximum(sigma, neighbour.block_noise, out=sigma)
    return neighbour


def camera_where_lost_neighbour(neighbour: Neighbour) -> Neighbour:
    """The neighbour for the blotch detector and its fill: where its flow is a wrong match off the frame in flat
    picture (camera_where_lost), warped by the camera's motion instead; the neighbour itself where there is none.
    The spike detector keeps the flow as found: its block offsets would carry the change past the patch."""
    flow = camera_where_lost(neighbour.flow, neighbour.luma)
    if flow is neighbour.flow:
        return neighbour
    warped = sample_at(neighbour.luma, flow, cv2.INTER_CUBIC)
    return replace(neighbour, flow=flow, warped=warped, edges=slope(warped), inside=inside_frame(flow))


def camera_where_lost(flow: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """The flow, with the camera's motion where it lands off the frame though the camera's lands inside, more than
    LOST_PX away: a wrong match in flat picture (hazy sky), which would leave the pixel without evidence."""
    height, width = flow.shape[:2]
    low, high, _, _ = cv2.minMaxLoc(flow.reshape(-1))
    reach = min(int(np.ceil(max(-low, high))) + 1, height // 2, width // 2)  # only this near an edge can land off it
    found = []
    for rows, cols in edge_bands(height, width, reach):
        ys, xs = np.nonzero(~_lands_inside(flow, rows, cols))
        found.append((ys + rows.start, xs + cols.start))
    rows, cols = (np.concatenate(v) for v in zip(*found))
    if rows.size == 0:
        return flow
    lands = flow[rows, cols]
    # a pan or the gate's weave carries the edge off with the rest of the frame: nothing lost, no camera fit
    if np.abs(lands - typical_motion(flow)).max() <= 0.5 * LOST_PX:
        return flow
    camera = (camera_motion(flow) @ np.stack([cols, rows, np.ones(len(rows))])).astype(np.float32)  # (2, n)
    tx, ty = cols + camera[0], rows + camera[1]
    lost = ((tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
            & (np.hypot(camera[0] - lands[:, 0], camera[1] - lands[:, 1]) > LOST_PX))
    if not lost.any():
        return flow
    lost[lost] = flat_where_lost(rows, cols, lost, luma)
    if not lost.any():
        return flow
    flow = flow.copy()
    flow[rows[lost], cols[lost]] = camera[:, lost].T
    return flow


def flat_where_lost(rows: np.ndarray, cols: np.ndarray, lost: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Which lost pixels lie in a patch of flat picture in the neighbour (median slope, lightly smoothed, at most
    LOST_FLAT): a wrong match in flat sky, not dirt near the edge dragging the flow, where the picture has texture."""
    height, width = luma.shape
    patch = np.zeros((height, width), np.uint8)
    patch[rows[lost], cols[lost]] = 1
    count, labels, stats, _ = cv2.connectedComponentsWithStats(patch, connectivity=8)
    flat = np.zeros(count, bool)
    for k in range(1, count):
        x, y, w, h = stats[k, :4]
        there = cv2.GaussianBlur(luma[y:y + h, x:x + w], (0, 0), 1.5)  # grain's own slope is not texture
        flat[k] = float(np.median(slope(there)[labels[y:y + h, x:x + w] == k])) <= LOST_FLAT
    return flat[labels[rows[lost], cols[lost]]]


def inside_frame(flow: np.ndarray) -> np.ndarray:
    """Pixels whose flow lands inside the neighbour, clear of the scan's frame edge."""
    height, width = flow.shape[:2]
    # only pixels nearer the frame's edge than the flow's longest vector can land outside: test those bands alone
    longest = max(float(flow.max()), -float(flow.min()), 0.0) if flow.size else 0.0
    reach = int(np.ceil(longest)) + FRAME_MARGIN_PX + 1 if np.isfinite(longest) else max(height, width)
    if 2 * reach < min(height, width):
        inside = np.ones((height, width), bool)
        for rows, cols in edge_bands(height, width, reach):
            inside[rows, cols] = _lands_inside(flow, rows, cols)
    else:
        inside = _lands_inside(flow, slice(None), slice(None))
    inside[:FRAME_MARGIN_PX] = inside[-FRAME_MARGIN_PX:] = False
    inside[:, :FRAME_MARGIN_PX] = inside[:, -FRAME_MARGIN_PX:] = False
    return inside


def edge_bands(height: int, width: int, reach: int) -> tuple[tuple[slice, slice], ...]:
    """The frame's pixels within `reach` of its edge as four boxes (rows, cols): top, bottom, left, right."""
    return ((slice(0, reach), slice(0, width)), (slice(height - reach, height), slice(0, width)),
            (slice(reach, height - reach), slice(0, reach)), (slice(reach, height - reach), slice(width - reach, width)))


def typical_motion(flow: np.ndarray) -> np.ndarray:
    """The frame's typical motion (x, y): the median of a sparse grid of the flow, no camera fit."""
    return np.median(flow[::16, ::16].reshape(-1, 2), axis=0)


def _lands_inside(flow: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """inside_frame's test for the pixels of one box of the frame."""
    height, width = flow.shape[:2]
    y0, y1, _ = rows.indices(height)
    x0, x1, _ = cols.indices(width)
    box = flow[rows, cols]
    grid = np.add(np.arange(x0, x1, dtype=np.float32)[None, :], box[..., 0])
    inside = grid >= 0
    inside &= grid <= width - 1
    np.add(np.arange(y0, y1, dtype=np.float32)[:, None], box[..., 1], out=grid)
    inside &= grid >= 0
    inside &= grid <= height - 1
    return inside


def neighbour_disagreement(neighbours: list[Neighbour], window_px: int = 5) -> np.ndarray | None:
    """Local RMS/√2 of the smallest difference between two compensated neighbours: the noise a pixel's spike must
    beat where the neighbours cannot even agree among themselves (aliased fine detail, complex motion).

    Pairs on one side agree under dirt that stays two frames; pairs across the frame agree under one-frame dirt.
    """
    if len(neighbours) < 2:
        return None
    by_offset = {n.offset: n.warped for n in neighbours}
    pairs = [(-1, -2), (1, 2), (-1, 1), (-2, 2), (-1, 2), (-2, 1)]
    chosen = [(a, b) for a, b in pairs if a in by_offset and b in by_offset][:3]
    if not chosen:
        chosen = [tuple(sorted(by_offset)[:2])]
    squares = [np.subtract(by_offset[a], by_offset[b]) for a, b in chosen]
    least = pixelwise(np.minimum, [np.square(d, out=d) for d in squares])
    local = cv2.blur(least, (window_px, window_px))
    local *= 0.5
    return np.sqrt(np.maximum(local, 0.0, out=local), out=local)  # box sums may dip below 0


def normalise(neighbours: list[Neighbour]) -> "DiscordOnUse | None":
    """Set each neighbour's z: its residual over the local noise, raised where the neighbours disagree.

    Returns how far the neighbours disagree among themselves, in units of that noise (None with one neighbour).
    """
    extra = neighbour_disagreement(neighbours)
    for n in neighbours:
        if extra is None:
            n.z = n.residual / n.sigma
        else:
            sigma = np.maximum(n.sigma, extra)
            n.z = np.divide(n.residual, sigma, out=sigma)
    if extra is None:
        return None
    return DiscordOnUse(extra, [n.sigma for n in neighbours])


class DiscordOnUse:
    """normalise's discord, worked out for a crop when read: only the rings around defects are ever read."""

    def __init__(self, extra: np.ndarray, sigmas: list[np.ndarray]):
        self._extra, self._sigmas = extra, sigmas

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        least = pixelwise(np.minimum, [s[key] for s in self._sigmas])
        return np.divide(self._extra[key], least, out=least)


# --------------------------------------------------------------------------------------------------------------
# spike scores, defects and the motion veto


@dataclass(frozen=True)
class DetectionSettings:
    """Thresholds in units of local noise, sizes in px, and how hard motion vetoes a detection (0..1)."""

    high: float = 5.0
    low: float = 2.75
    min_area: int = 2
    max_area: int = 20000
    motion_protect: float = 0.7

    @classmethod
    def from_sensitivity(cls, sensitivity: float, min_area: int, max_area: int,
                         motion_protect: float) -> "DetectionSettings":
        """Sensitivity 0..1 maps to a seed threshold of 8..2.5 noise units (5.25 at 0.5)."""
        high = 8.0 - 5.5 * float(sensitivity)
        return cls(high, 0.55 * high, int(min_area), int(max_area), float(motion_protect))


@dataclass
class Defect:
    """One connected defect: bounding box (x, y, w, h), area in px, polarity, confidence 0..1 and kind."""

    label: int
    bbox: tuple[int, int, int, int]
    area: int
    polarity: str
    confidence: float
    kind: str = "dust"
    peak: float = 0.0
    surround: float = 0.0  # share of the picture around the defect where the other frames disagree
    moving: float = 0.0  # px per frame the picture around the defect moves against the whole frame

    def to_side(self) -> dict:
        return {"bbox": list(self.bbox), "area": int(self.area), "polarity": self.polarity,
                "confidence": round(float(self.confidence), 3), "kind": self.kind}


@dataclass
class DustMap:
    """Per-frame defect map: `labels` (int32, 0 clean, i for defects[i-1]), the per-pixel score, and the defects."""

    labels: np.ndarray
    score: np.ndarray
    defects: list[Defect] = field(default_factory=list)
    rejected: int = 0

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0

    def without(self, dropped: set[int]) -> "DustMap":
        """The map with the defects of these labels removed (counted as rejected), the rest renumbered."""
        if not dropped:
            return self
        keep: list[Defect] = []
        relabel = np.zeros(len(self.defects) + 1, np.int32)
        for defect in self.defects:
            if defect.label in dropped:
                continue
            relabel[defect.label] = len(keep) + 1
            keep.append(replace(defect, label=len(keep) + 1))
        return DustMap(relabel[self.labels], self.score, keep, self.rejected + len(dropped))


def pooled(neighbours: list[Neighbour], box_px: int = 3) -> list[Neighbour]:
    """Copies of the neighbours whose z is averaged over `box_px`² and rescaled to unit noise, measured per block:
    a faint speck of several pixels adds up where the noise is grain (fine, it partly averages out), but not
    where the residual is coarse (misregistered texture, a soft compressed scan), which averaging keeps."""
    out = []
    for n in neighbours:
        z = cv2.blur(n.z, (box_px, box_px))
        _, spread = block_offset_and_noise(z, offsets=False)
        copy = Neighbour(n.index, n.offset, n.frame, n.luma, n.flow, n.back_flow, n.warped, n.reliable, n.residual)
        # iid noise averages down to 1/box_px at best
        copy.z = np.divide(z, np.maximum(spread, np.float32(1.0 / box_px), out=spread), out=z)
        out.append(copy)
    return out


def by_side(neighbours: list[Neighbour]) -> dict[int, list[Neighbour]]:
    """The neighbours before (-1) and after (1) the current frame."""
    return {-1: [n for n in neighbours if n.offset < 0], 1: [n for n in neighbours if n.offset > 0]}


def shot_edge_sides(sides: dict[int, list[Neighbour]]) -> list[tuple[list[Neighbour], list[Neighbour]]]:
    """(short, long) pairs beside a shot edge: one side holds a single frame, the other at least two."""
    return [(short, long) for short, long in ((sides[-1], sides[1]), (sides[1], sides[-1]))
            if len(short) == 1 and len(long) >= 2]


def spike_scores(neighbours: list[Neighbour], shot_edge_rule: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """Dark and bright spike scores (noise units) and whether both temporal sides were available.

    On each side the most supportive reliable neighbour counts (a defect lasting two frames still spikes against
    the other frame on that side); the weaker side decides. With one side only, every neighbour must agree.
    Next to a shot edge, where one side holds a single frame (which two-frame dirt may share), the frames of the
    other side all agreeing also count, at SINGLE_SIDE_FACTOR times the threshold.
    """
    sides = by_side(neighbours)

    def combine(sign: float) -> np.ndarray:
        # the dark evidence is -z, and the largest of -z is minus the smallest of z: z is negated once, at the end,
        # not each neighbour's (the same values)
        most, least = (np.maximum, np.minimum) if sign > 0 else (np.minimum, np.maximum)
        if sides[-1] and sides[1]:
            per_side = [pixelwise(most, [n.z for n in side]) for side in sides.values()]
            score = least(per_side[0], per_side[1], out=per_side[0])
            for _, long in shot_edge_sides(sides) if shot_edge_rule else []:
                one_sided = pixelwise(least, [n.z for n in long])
                one_sided *= np.float32(1.0 / SINGLE_SIDE_FACTOR)
                score = most(score, one_sided, out=score)
        else:
            score = pixelwise(least, [n.z for n in neighbours])
        return score if sign > 0 else np.negative(score, out=score)

    return combine(-1.0), combine(1.0), bool(sides[-1] and sides[1])


def components(binary: np.ndarray, join_px: int = 0) -> tuple[int, np.ndarray, np.ndarray]:
    """cv2.connectedComponentsWithStats (8-connected; stats x, y, w, h, area) of a sparse binary image: OpenCV's
    stats pass costs several times its labelling, and the few labelled pixels give them directly. With `join_px`,
    pieces less than that apart are one component (labels and stats still count only the image's own pixels)."""
    binary = binary.astype(np.uint8, copy=False)
    if join_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (join_px | 1, join_px | 1))
        count, labels = cv2.connectedComponents(cv2.dilate(binary, kernel), connectivity=8)
        labels[binary == 0] = 0
    else:
        count, labels = cv2.connectedComponents(binary, connectivity=8)
    return count, labels, stats_of(labels, count)


def stats_of(labels: np.ndarray, count: int) -> np.ndarray:
    """Per label (0 the background): x, y, w, h of its pixels' bounding box and their number."""
    stats = np.zeros((count, 5), np.int32)
    height, width = labels.shape
    stats[0] = (0, 0, width, height, 0)
    flat = labels.ravel()
    where = np.flatnonzero(flat)
    if where.size:
        which = flat[where]
        order = np.argsort(which, kind="stable")
        which = which[order]
        ys, xs = np.divmod(where[order], width)
        starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
        x0, y0 = np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts)
        x1, y1 = np.maximum.reduceat(xs, starts), np.maximum.reduceat(ys, starts)
        area = np.diff(np.r_[starts, which.size])
        stats[which[starts]] = np.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1, area], axis=1)
    stats[0, 4] = labels.size - where.size
    return stats


def hysteresis(score: np.ndarray, high: float, low: float, seeds: np.ndarray | None = None
               ) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected regions of score >= low that reach `high` (or hold one of `seeds`) somewhere: (count+1, labels,
    stats)."""
    weak = (score >= low).astype(np.uint8)
    count, labels, stats = components(weak)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[score >= high] if seeds is None else labels[seeds])] = True
    keep[0] = False
    relabel = np.zeros(count, np.int32)
    relabel[keep] = np.arange(1, int(keep.sum()) + 1)
    return int(keep.sum()) + 1, relabel[labels], stats[keep]


def _padded_box(bbox: tuple[int, int, int, int], pad: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    x, y, w, h = bbox
    height, width = shape
    return slice(max(0, y - pad), min(height, y + h + pad)), slice(max(0, x - pad), min(width, x + w + pad))


NOWHERE = np.zeros(2)  # displacement reported when motion explains nothing


def motion_explains(current: np.ndarray, neighbour: Neighbour, box: tuple[slice, slice], shape: np.ndarray,
                    ring_flow: np.ndarray, noise: float, search_px: int) -> tuple[float, np.ndarray]:
    """How well real motion explains a defect, 0..1, and where it would have moved to (dx, dy px).

    The defect's pixels (`shape`, a mask over the crop `box`) are looked for near where the flow put them in the
    neighbour. Motion explains them when they are found elsewhere, as well as noise allows, and what the neighbour
    shows there is not simply picture that also stays put in the current frame (a real spot next to the dirt).
    """
    height, width = current.shape
    rows, cols = box
    template = np.ascontiguousarray(current[rows, cols])
    weight = shape.astype(np.float32)
    th, tw = template.shape
    count = float(weight.sum())
    if count < 3 or th * tw > 40000:
        return 0.0, NOWHERE
    dx, dy = float(ring_flow[0]), float(ring_flow[1])
    px, py = int(round(cols.start + dx)), int(round(rows.start + dy))
    x0, y0 = max(0, px - search_px), max(0, py - search_px)
    x1, y1 = min(width, px + tw + search_px), min(height, py + th + search_px)
    if x1 - x0 < tw or y1 - y0 < th:
        return 0.0, NOWHERE
    ssd = cv2.matchTemplate(np.ascontiguousarray(neighbour.luma[y0:y1, x0:x1]), template, cv2.TM_SQDIFF,
                            mask=weight)
    ssd = np.where(np.isfinite(ssd), ssd, np.inf)
    by, bx = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
    qx, qy = x0 + int(bx), y0 + int(by)
    if abs(qx - (cols.start + dx)) <= 1.5 and abs(qy - (rows.start + dy)) <= 1.5:
        return 0.0, NOWHERE  # the best place is where the flow already looked: nothing moved there
    # medians, not sums: the defect's outline may hold a little background that moved differently
    at_flow = median_of((template - neighbour.warped[rows, cols])[shape] ** 2)
    found = neighbour.luma[qy:qy + th, qx:qx + tw]
    best = median_of((template - found)[shape] ** 2)
    floor = (2.0 * noise) ** 2
    if best > floor or best > 0.2 * at_flow:
        return 0.0, NOWHERE
    # Is what the neighbour shows at q also in the current frame where the flow carries q (static picture)?
    back = picked(neighbour.back_flow[qy:qy + th, qx:qx + tw], shape)
    bdx, bdy = median_xy(back)
    cx, cy = int(round(qx + bdx)), int(round(qy + bdy))
    if cx < 0 or cy < 0 or cx + tw > width or cy + th > height:
        return 0.0, NOWHERE
    static = median_of((found - current[cy:cy + th, cx:cx + tw])[shape] ** 2)
    if static < max(4.0 * best, floor):
        return 0.0, NOWHERE
    moved = np.array([qx - cols.start, qy - rows.start], np.float64)
    return float(np.clip(1.0 - best / floor, 0.0, 1.0) * 0.5 + 0.5), moved


def ring_median_flow(flow: np.ndarray, labels_crop: np.ndarray, label: int, rows: slice, cols: slice) -> np.ndarray:
    """Median flow of the pixels around a defect (the defect's own flow is not trusted)."""
    inside = (labels_crop == label).astype(np.uint8)
    ring = cv2.dilate(inside, np.ones((5, 5), np.uint8)) > inside
    crop = flow[rows, cols]
    samples = picked(crop, ring) if ring.any() else crop.reshape(-1, 2)
    return median_xy(samples.reshape(-1, 2))


def surround_discord(discord: "DiscordOnUse | np.ndarray | None", labels: np.ndarray, label: int,
                     bbox: tuple[int, int, int, int]) -> float:
    """Share of a ring 3-8 px around a defect where the neighbours disagree among themselves (beyond 1.5 noise).

    Dirt sits on picture that the other frames all show alike; the pieces of a deforming figure (legs, cloth)
    sit where even the other frames do not agree with one another.
    """
    if discord is None:
        return 0.0
    height, width = labels.shape
    rows, cols = _padded_box(bbox, 8, (height, width))
    crop = labels[rows, cols]
    inside = (crop == label).astype(np.uint8)
    ring = (cv2.dilate(inside, np.ones((17, 17), np.uint8)) > 0) & ~(cv2.dilate(inside, np.ones((7, 7), np.uint8)) > 0)
    ring &= crop == 0
    if ring.sum() < 8:
        return 0.0
    return float((discord[rows, cols][ring] > 1.5).mean())


@functools.lru_cache(maxsize=8)
def _sample_grid(height: int, width: int, step: int) -> np.ndarray:
    """Rows [x, y, 1] of the pixels camera_motion samples (every `step`-th both ways), read-only."""
    ys, xs = np.mgrid[step // 2:height:step, step // 2:width:step]
    a = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=1).astype(np.float64)
    a.flags.writeable = False
    return a


def camera_motion(flow: np.ndarray, step: int = 8) -> np.ndarray:
    """Affine fit (2x3) of a flow field: the camera's and the gate's motion, robust to moving objects (2 passes)."""
    height, width = flow.shape[:2]
    f = flow[step // 2::step, step // 2::step].reshape(-1, 2).astype(np.float64)
    a = _sample_grid(height, width, step)
    keep = np.ones(len(f), bool)
    model = np.zeros((3, 2))
    for _ in range(2):
        if keep.sum() < 6:
            break
        model, *_ = np.linalg.lstsq(a[keep], f[keep], rcond=None)
        error = np.hypot(*(a @ model - f).T)
        keep = error <= max(1.0, 2.5 * float(np.median(error)))
    return model.T  # rows: dx, dy = [ax, ay, b] . [x, y, 1]


class CameraMotions(dict):
    """camera_motion of each neighbour's flow, by offset, fitted when first asked for: own_motion reads only the
    nearest frame on each side, and each fit is two least-squares solves over the whole frame."""

    def __init__(self, neighbours: list[Neighbour]):
        super().__init__()
        self._flows = {n.offset: n.flow for n in neighbours}

    def __missing__(self, offset: int) -> np.ndarray:
        self[offset] = camera = camera_motion(self._flows[offset])
        return camera


def own_motion(neighbours: list[Neighbour], labels: np.ndarray, label: int, bbox: tuple[int, int, int, int],
               cameras: dict[int, np.ndarray]) -> float:
    """How far (px per frame) the picture around a defect moves against the camera, on its nearest frames' worse
    side."""
    height, width = labels.shape
    rows, cols = _padded_box(bbox, 14, (height, width))
    inside = (labels[rows, cols] == label).astype(np.uint8)
    # far enough out (6-14 px) that the defect itself cannot have dragged the flow there
    near = cv2.dilate(inside, np.ones((13, 13), np.uint8))
    far = cv2.dilate(near, np.ones((17, 17), np.uint8))  # 13 then 17 px wide is 29 px wide, on half the pixels
    ring = far > near  # both 0 or 1, and far covers near
    if not ring.any():
        return 0.0
    worst = 0.0
    ys, xs = np.nonzero(ring)
    centre = np.array([cols.start + xs.mean(), rows.start + ys.mean(), 1.0])
    for nearest in by_side(neighbours).values():
        if nearest:
            n = min(nearest, key=lambda n: abs(n.offset))
            local = median_xy(picked(n.flow[rows, cols], ring)) - cameras[n.offset] @ centre
            worst = max(worst, float(np.hypot(*local)) / abs(n.offset))
    return worst


def motion_likelihood(current: np.ndarray, neighbours: list[Neighbour], distance: dict[int, float],
                      labels: np.ndarray, label: int, bbox: tuple[int, int, int, int], polarity: str, low: float,
                      two_sided: bool) -> float:
    """How likely real motion made this defect, 0..1: it must be found moved in the nearest frame on each side
    that does not share it (a moving object exists in both; dirt matching something by chance rarely does)."""
    x, y, w, h = bbox
    height, width = current.shape
    rows, cols = slice(y, y + h), slice(x, x + w)
    inside = labels[rows, cols] == label
    prows, pcols = _padded_box(bbox, 3, (height, width))
    shape = labels[prows, pcols] == label
    found: list[tuple[int, float, np.ndarray]] = []  # (offset, score, displacement)
    sides_done: set[int] = set()
    for n in sorted(neighbours, key=lambda n: abs(n.offset)):
        side = 1 if n.offset > 0 else -1
        if side in sides_done and two_sided:
            continue
        if distance[n.offset] < low:
            continue  # this neighbour shares the defect (two-frame dirt): it cannot explain it away
        ring = ring_median_flow(n.flow, labels[prows, pcols], label, prows, pcols)
        noise = median_of(n.sigma[rows, cols][inside])
        score, moved = motion_explains(current, n, (prows, pcols), shape, ring, noise,
                                       search_px=int(32 * abs(n.offset)))
        found.append((n.offset, score, moved))
        sides_done.add(side)
        if len(found) == 2 or score == 0.0:
            break  # one frame where motion explains nothing makes the likelihood 0 (the least of the two below)
    if not found:
        return 0.0
    if len(found) == 1:
        return found[0][1] if not two_sided else 0.0
    (o1, s1, d1), (o2, s2, d2) = found
    # Dirt can match other dirt in one neighbour by chance; a real object follows one path through both.
    predicted = d1 * (o2 / o1)
    tolerance = 4.0 + 0.5 * max(float(np.hypot(*d1)), float(np.hypot(*d2)))
    if float(np.hypot(*(d2 - predicted))) > tolerance:
        return 0.0
    return min(s1, s2)


def distances(frames: list[Neighbour], labels: np.ndarray, label: int, bbox: tuple[int, int, int, int]
              ) -> dict[int, float]:
    """Per frame (by offset), the median |z| over a defect's pixels: how far that frame is from showing them as
    they are (below SAME_PICTURE_NOISE it shows the same picture; below the low threshold it shares the defect)."""
    x, y, w, h = bbox
    rows, cols = slice(y, y + h), slice(x, x + w)
    inside = labels[rows, cols] == label
    return {n.offset: median_of(np.abs(n.z[rows, cols][inside])) for n in frames}


def seen_on_both_sides(distance: dict[int, float]) -> bool:
    """Whether some frame on each side shows the defect's pixels as they are (within 1.5 noise, median over it):
    then it is picture that the other frames failed to render (half-pixel warps soften fine stripes), not dirt,
    which a frame on each side lacks. Dirt that stays two frames is shared on one side only."""
    return {1 if k > 0 else -1 for k, d in distance.items() if d < SAME_PICTURE_NOISE} == {-1, 1}


def on_three_frames(neighbours: list[Neighbour], distance: dict[int, float], low: float) -> bool:
    """Whether the nearest frame on each side shares the defect: it is on three frames, which dirt never is
    (two-frame dirt is shared on one side). A limb at the turn of its swing spikes only against the frames two
    away."""
    sides = by_side(neighbours)
    if not (sides[-1] and sides[1]):
        return False
    return all(distance[min(side, key=lambda n: abs(n.offset)).offset] < low for side in sides.values())


def dirt_of_the_others(distance: dict[int, float]) -> bool:
    """Whether this frame, over a defect, agrees with at least as many of the other frames as it differs from:
    then the dirt is more likely theirs (say, dirt on the frame before and the same dirt, by chance, on the frame
    after) and repairing this frame would copy it in. Dirt on this frame is missing from all the others but the
    one it may share; frames within 1.5 noise units agree, the rest differ."""
    agree = sum(d < SAME_PICTURE_NOISE for d in distance.values())
    return agree + 1 >= len(distance) - agree


def found_beside_shot_edge(neighbours: list[Neighbour], distance: dict[int, float], low: float) -> list[Neighbour]:
    """The frames of the long side when, beside a shot edge, the single frame on the short side shows the defect
    too (two-frame dirt, or picture that moved and that the long side's flows failed to follow); else []."""
    for short, long in shot_edge_sides(by_side(neighbours)):
        if distance[short[0].offset] < low:
            return long
    return []


REGISTER_SEARCH_PX = 2  # a flow estimated at half size can be this far off on fine periodic texture
REGISTER_NOISE = 1.5  # a shifted neighbour within this many noise units of the defect's pixels explains them


def misregistered(current: np.ndarray, neighbours: list[Neighbour], distance: dict[int, float],
                  labels: np.ndarray, label: int, bbox: tuple[int, int, int, int], low: float) -> bool:
    """Whether a defect is picture the flow failed to register (fine stripes, aliasing): on each side, the nearest
    neighbour it spikes against, shifted by at most REGISTER_SEARCH_PX (half-pixel steps), shows the same pixels."""
    height, width = current.shape
    pad = REGISTER_SEARCH_PX
    x, y, w, h = bbox
    if x < pad or y < pad or x + w + pad > width or y + h + pad > height or w * h > 4096:
        return False
    rows, cols = slice(y, y + h), slice(x, x + w)
    shape = labels[rows, cols] == label
    if shape.sum() < 3:
        return False
    template = cv2.resize(np.ascontiguousarray(current[rows, cols]), (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(shape.astype(np.uint8), (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    count = float(weight.sum())
    sides_seen: set[int] = set()
    for n in sorted(neighbours, key=lambda n: abs(n.offset)):
        side = 1 if n.offset > 0 else -1
        if side in sides_seen:
            continue
        if distance[n.offset] < low:
            continue  # this neighbour shares the defect: it says nothing about registration
        sides_seen.add(side)
        area = np.ascontiguousarray(n.warped[y - pad:y + h + pad, x - pad:x + w + pad])
        area = cv2.resize(area, (2 * (w + 2 * pad), 2 * (h + 2 * pad)), interpolation=cv2.INTER_LINEAR)
        ssd = cv2.matchTemplate(area, template, cv2.TM_SQDIFF, mask=weight)
        best = float(np.nanmin(ssd)) / count
        noise = median_of(n.sigma[rows, cols][shape])
        if not best <= (REGISTER_NOISE * noise) ** 2:
            return False
    return bool(sides_seen)


COUNTERPART_REACH = 2.0  # what a moving hand or foot left is within this many times its size (√area) of it,
COUNTERPART_REACH_PX = (8, 32)  # ... px per frame apart, within these bounds: a small speck keeps a small zone,
#                                 where another frame's own dirt rarely falls by chance
COUNTERPART_GAP_PX = 1.5  # ... outside the ring touching the defect, where its own edge may overshoot
COUNTERPART_SHARE = 0.2  # what the object left weighs at least this share of the defect itself
BODY_REACH_PX = 6.0  # the rest of a moving limb continues right beside the part found as a defect ...
BODY_WEIGHT = 0.5  # ... and counts at half weight: another frame's dirt of the other colour there looks the same


def left_behind(neighbour: Neighbour, distance_px: np.ndarray, reach: int, rows: slice, cols: slice,
                inside: np.ndarray, score: np.ndarray, polarity: str, high: float, low: float,
                on_scratch: np.ndarray | None) -> bool:
    """Whether the neighbour shows, beside the defect (`inside`, with its distance map, over the crop rows, cols),
    where a moving object was or went, where the current frame has no candidate of its own.

    Where a swinging hand was in that frame, it differs from this one the other way round (the wall behind a dark
    hand is lighter), up to `reach` px away. Right beside the defect it differs the same way where the rest of the
    limb moved, which other frames also cover, so it is no candidate. Dirt comes from nowhere; beside it a
    neighbour differs only by chance.
    """
    elsewhere = (distance_px > COUNTERPART_GAP_PX) & (distance_px <= reach) & (score[rows, cols] < low)
    if on_scratch is not None:  # a scratch drifts a little from frame to frame: that is not an object moving
        elsewhere &= ~on_scratch[rows, cols]
    z = np.float32(1.0 if polarity == "bright" else -1.0) * neighbour.z[rows, cols]
    residual = np.abs(neighbour.residual[rows, cols])
    was_there = float(residual[elsewhere & (z <= -high)].sum())
    body = float(residual[elsewhere & (z >= high) & (distance_px <= BODY_REACH_PX)].sum())
    trace = was_there + BODY_WEIGHT * body
    return trace > 0.0 and trace >= COUNTERPART_SHARE * float(residual[inside].sum())


def moved_object(neighbours: list[Neighbour], distance: dict[int, float], score: np.ndarray, labels: np.ndarray,
                 label: int, bbox: tuple[int, int, int, int], area: int, polarity: str, high: float, low: float,
                 on_scratch: np.ndarray | None = None) -> bool:
    """Whether every frame that does not share the defect shows, beside it, where an object was (left_behind):
    a moving figure is in all of them, another frame's own dirt in one."""
    clean = [n for n in neighbours if distance[n.offset] >= low]
    if not clean:
        return False
    reach = int(np.clip(COUNTERPART_REACH * np.sqrt(area), *COUNTERPART_REACH_PX))
    rows, cols = _padded_box(bbox, reach * max(abs(n.offset) for n in clean), labels.shape)
    inside = labels[rows, cols] == label
    distance_px = cv2.distanceTransform((~inside).view(np.uint8), cv2.DIST_L2, 3)
    return all(left_behind(n, distance_px, reach * abs(n.offset), rows, cols, inside, score, polarity, high, low,
                           on_scratch) for n in clean)


def motion_limit(settings: DetectionSettings) -> float:
    """Own motion (px per frame against the camera) above which the picture around a defect counts as moving."""
    return 3.0 - 2.0 * settings.motion_protect


def in_real_motion(peak: float, high: float, surround: float, moving: float, settings: DetectionSettings) -> bool:
    """Whether a defect lies in picture that moves on its own or deforms, and is not strong enough to be dirt there.

    Where the other frames disagree among themselves around it, it is left alone; where the picture around it
    moves against the camera, it must spike far harder than the threshold (a fast leg or cloth edge spikes too).
    """
    protect = settings.motion_protect
    if surround > 0.55 - 0.4 * protect:
        return True
    limit = motion_limit(settings)
    return moving > limit and peak < (1.0 + 1.5 * protect * moving / limit) * high


def detect_dust(current: np.ndarray, neighbours: list[Neighbour], settings: DetectionSettings,
                beyond: Neighbour | None = None, on_scratch: np.ndarray | None = None) -> DustMap:
    """The defect map of the current frame's luma from its motion-compensated neighbours; `beyond`, beside a shot
    edge, is the next frame past the side with two or more (without it, that side's agreement finds nothing)."""
    height, width = current.shape
    if not neighbours:
        return DustMap(np.zeros((height, width), np.int32), np.zeros((height, width), np.float32))
    discord = normalise(neighbours)
    if beyond is not None:
        beyond.z = beyond.residual / beyond.sigma
    cameras = CameraMotions(neighbours)
    protect = settings.motion_protect > 0.0
    dark, bright, two_sided = spike_scores(neighbours)
    # beside a shot edge only: one frame on one side, two or more on the other (not one a side, at radius 1)
    edge_rule = two_sided and bool(shot_edge_sides(by_side(neighbours)))
    standard = np.maximum(*spike_scores(neighbours, shot_edge_rule=False)[:2]) if edge_rule else None
    factor = 1.0 if two_sided else SINGLE_SIDE_FACTOR
    high, low = settings.high * factor, settings.low * factor
    seeds = None
    if POOLING_PX > 1:
        pooled_dark, pooled_bright, _ = spike_scores(pooled(neighbours, POOLING_PX))
        # the pooled score reaches a pixel past the defect's edge: only pixels that spike a little themselves take it
        for own, pooled_score in ((dark, pooled_dark), (bright, pooled_bright)):
            np.copyto(pooled_score, np.float32(0.0), where=np.logical_not(own >= EXTENT_Z))
        # two chances to seed a false alarm instead of one: the pooled seed asks for a little more
        plain, pooled_most = np.maximum(dark, bright), np.maximum(pooled_dark, pooled_bright)
        seeds = plain >= high
        seeds |= pooled_most >= POOLED_SEED * high
        # the arrays are this function's own: each maximum in place (the score is the largest of all four)
        np.maximum(dark, pooled_dark, out=dark)
        np.maximum(bright, pooled_bright, out=bright)
        score = np.maximum(plain, pooled_most, out=plain)
    else:
        score = np.maximum(dark, bright)
    count, labels, stats = hysteresis(score, high, low, seeds)
    keep_labels = np.zeros(count, np.int32)
    defects: list[Defect] = []
    rejected = 0
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label - 1])
        if area < settings.min_area or area > settings.max_area:
            continue
        rows, cols = slice(y, y + h), slice(x, x + w)
        inside = labels[rows, cols] == label
        peak = float(score[rows, cols][inside].max())
        polarity = "dark" if float(dark[rows, cols][inside].sum()) >= float(bright[rows, cols][inside].sum()) \
            else "bright"
        motion = 0.0
        everyone = distances(neighbours if beyond is None else [*neighbours, beyond], labels, label, (x, y, w, h))
        distance = {n.offset: everyone[n.offset] for n in neighbours}
        long = found_beside_shot_edge(neighbours, distance, low) if edge_rule else []
        # beside a shot edge the long side's two frames may share dirt of their own, and this frame be clean: the
        # frame past them must differ too
        if long and not (beyond is not None and everyone[beyond.offset] >= low):
            rejected += 1
            continue
        if area >= THREE_FRAME_MIN_PX and on_three_frames(neighbours, distance, low):
            rejected += 1
            continue
        # dirt on the other frames, not on this one: repairing would copy it in
        if dirt_of_the_others(everyone):
            rejected += 1
            continue
        # the costlier measures only for what the tests above left
        surround = surround_discord(discord, labels, label, (x, y, w, h))
        moving = own_motion(neighbours, labels, label, (x, y, w, h), cameras)
        if protect:
            # dirt shared with the frame beside a shot edge sits on picture that moves with the camera; a moving
            # figure there is the same pattern, and it spikes hard: motion alone vetoes it, however strong (seen
            # from the side without the defect: where the frame shares it, the flow follows the dirt)
            # the defect's peak without the shot-edge rule, whose evidence is one side's
            plain = peak if standard is None else float(standard[rows, cols][inside].max())
            if standard is not None and not long and plain < high:
                rejected += 1  # beside a shot edge, a defect below the two-sided per-pixel threshold needs the
                continue  # short side's frame to share it (two-frame dirt); else it is left alone
            if long and (surround > EDGE_SURROUND or own_motion(long, labels, label, (x, y, w, h), cameras)
                         > EDGE_MOTION_LIMIT * motion_limit(settings)):
                rejected += 1
                continue
            # on a shot's first or last frame nothing on the other side confirms it: a figure moving there spikes
            # as hard as dirt (a bright hand over a dark coat), so motion alone vetoes it, as beside a shot edge
            if not two_sided and area >= THREE_FRAME_MIN_PX and moving > motion_limit(settings):
                rejected += 1
                continue
            # the shot-edge rule's evidence does not buy a defect out of the motion veto
            if in_real_motion(plain, high, surround, moving, settings) or seen_on_both_sides(distance) or \
                    misregistered(current, neighbours, distance, labels, label, (x, y, w, h), low):
                rejected += 1
                continue
            if moved_object(neighbours, distance, score, labels, label, (x, y, w, h), area, polarity, high, low,
                            on_scratch):
                rejected += 1
                continue
            # beside a shot edge only the long side can explain it: an object found moved there is an object
            motion = motion_likelihood(current, long or neighbours, distance, labels, label, (x, y, w, h), polarity,
                                       low, two_sided and not long)
            if motion > 1.0 - settings.motion_protect:
                rejected += 1
                continue
        contrast = 1.0 - float(np.exp(-max(peak - low, 0.0) / high))
        confidence = float(np.clip(contrast * (1.0 - motion), 0.0, 1.0))
        keep_labels[label] = len(defects) + 1
        defects.append(Defect(len(defects) + 1, (x, y, w, h), area, polarity, confidence, "dust", peak, surround,
                              moving))
    return DustMap(keep_labels[labels], score, defects, rejected)
