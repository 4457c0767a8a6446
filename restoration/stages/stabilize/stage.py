"""Stage `stabilize`: gate-weave removal that keeps camera moves.

Per shot, every frame's global motion (similarity) is measured against a key frame: DIS flow fitted robustly
(RANSAC + IRLS, texture-weighted) gives the start, a direct Gauss-Newton fit on the full-size luma gives the
sub-pixel answer. The measured path is split into intended camera motion and weave: per axis, the simplest
camera move that leaves only weave behind (held still, a constant-speed pan, a few constant-speed segments, or a
smooth curve; chosen by BIC under red AR(1) weave); each frame is warped to its intended position. Exposed
borders are cropped (one zoom per shot), filled from motion-compensated neighbouring frames (then inpainted),
mirrored or left black.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

import cv2
import numpy as np

from ...flow import sample_points
from ...params import Param, declare
from ...stage import ClipFrames, FrameWindow, Shot, Stage, StageOutput
from .weave import EDGE, Gate, ShotWeave, WeaveTracker, clamp_correction, crop_zoom, find_jolts, intended_path


@dataclass
class WeaveMeasurement:
    """What `measure` found in a shot: each frame's motion (dx, dy, rotation, log scale), which frames were
    measured, the repeats (position -> its original's) and the border."""

    start: int
    width: int
    height: int
    motion: np.ndarray
    valid: np.ndarray
    repeats: dict[int, int]
    gate: Gate


class GateWeave(Stage):
    name = "stabilize"
    title = "Gate weave"
    summary = "Dense-flow gate-weave removal that keeps intended pans and tilts."
    params = declare(
        Param("smoothing", "float", 0.35, "Strength of trajectory smoothing (higher keeps less weave): camera "
              "moves faster than 4 frames (0) to 256 frames (1) per cycle are treated as weave.",
              minimum=0.0, maximum=1.0, step=0.05, fit_only=True),
        Param("mode", "choice", "smooth", "smooth: keep camera moves; tripod: lock to a reference frame.",
              choices=("smooth", "tripod"), fit_only=True),
        Param("border", "choice", "fill", "How exposed borders are handled: crop (one zoom per shot), fill (from "
              "neighbouring frames, then inpainting), mirror or black.", choices=("crop", "fill", "mirror", "black"), fit_only=True),
        Param("max_correction", "float", 20.0, "Largest shift corrected (at the frame corners).", minimum=0.0,
              maximum=200.0, unit="px", fit_only=True),
        Param("lock_static", "bool", True, "In smooth mode, lock a shot (per axis) whose camera does not move "
              "beyond the weave, as a tripod would, instead of smoothing.", fit_only=True),
        Param("fit_moves", "bool", True, "In smooth mode, follow a constant-speed pan (or a few constant-speed "
              "segments) exactly where that and weave explain the shot, instead of smoothing; a free smooth curve "
              "is used otherwise, as stiff as the shot's own path says.", fit_only=True),
        Param("reference", "choice", "mean", "Tripod mode: lock to the shot's mean position (the weave averages "
              "out), its first frame or its middle frame.", choices=("mean", "first", "middle"), fit_only=True),
        Param("interpolation", "choice", "cubic", "Resampling kernel of the correction: cubic (fast) or lanczos "
              "(sharper, about 5x slower warp).", choices=("cubic", "lanczos")),
        Param("fill_frames", "int", 3, "Neighbouring frames on each side that exposed borders are filled from "
              "(border=fill).", minimum=1, maximum=8, unit="frames"),
    )

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return int(params["fill_frames"]) if params["border"] == "fill" else 0

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return True

    # `measure` reads no parameter (cached once per shot); `fit` is the camera model, jolts, clamp and crop zoom,
    # so every parameter of those is fit_only: a tweak re-fits from the cached measurement
    splits_analysis: ClassVar[bool] = True

    def measure(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> WeaveMeasurement:
        """The expensive part of the analysis: every frame's weave measured, the repeats and the border found. It
        depends on no parameter, so a change of smoothing, mode, fit_moves, max_correction or border refits it."""
        tracker: WeaveTracker | None = None
        previous: np.ndarray | None = None
        repeats: dict[int, int] = {}  # position in the shot -> position of its original
        for index, frame in frames:
            if tracker is None:
                height, width = frame.shape[:2]
                tracker = WeaveTracker(width, height, shot.start)
            elif previous is not None and (frame is previous or np.array_equal(frame[0], previous[0])
                                           and np.array_equal(frame, previous)):
                # a repeated picture (the pipeline hands repeats over as exact copies): one picture, one position;
                # left out of the camera model, whose time axis stays the clip's
                position = index - shot.start
                repeats[position] = repeats.get(position - 1, position - 1)
                tracker.repeat()
                continue
            tracker.add(index, frame)
            previous = frame
        assert tracker is not None, "a shot has at least one frame"
        return WeaveMeasurement(shot.start, tracker.width, tracker.height, tracker.path.motion(),
                                np.array(tracker.path.measured, bool), repeats,
                                tracker.gate.union(tracker.profiles.gate()))

    def fit(self, measurement: WeaveMeasurement, shot: Shot, params: Mapping[str, Any]) -> ShotWeave:
        """The cheap part: the camera-path model (smoothing, mode, fit_moves, lock_static, reference), the jolts,
        the clamp (max_correction) and the crop zoom (border) from the measured weave."""
        measured = measurement.motion.copy()
        valid = measurement.valid
        size = (measurement.width, measurement.height)
        # camera bumps and splice jumps (a few frames far off and back) do not bend the camera model: corrected
        jolts = find_jolts(measured, valid)
        intended, models = intended_path(measured, params["smoothing"], params["mode"], params["reference"],
                                         params["lock_static"], valid & ~jolts, params["fit_moves"])
        # a frame with nothing to measure (black, flat) is left where the intended path puts it: no correction
        measured[~valid, :3] = intended[~valid, :3]
        for position, original in measurement.repeats.items():
            measured[position], intended[position] = measured[original], intended[original]
        intended = clamp_correction(measured, intended, params["max_correction"], size, jolts)
        weave = ShotWeave(measurement.start, *size, measured, intended, models,
                          jolts=[measurement.start + int(i) for i in np.nonzero(jolts)[0]], gate=measurement.gate)
        if params["border"] == "crop":
            weave.zoom = crop_zoom(weave)
        return weave

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: ShotWeave) -> StageOutput:
        index = window.index
        frame = window.current
        sampling = analysis.sampling(index)
        border = params["border"]
        kernel = cv2.INTER_LANCZOS4 if params["interpolation"] == "lanczos" else cv2.INTER_CUBIC
        gate = analysis.gate
        height, width = frame.shape[:2]
        source = frame
        if gate:
            # the bars are not picture: the picture is warped on its own (its edge replicated, not the bar's) and the
            # bars are put back where they are, unmoved
            x0, x1, y0, y1 = gate.picture(width, height)
            source = frame.copy()
            source[:, :x0] = source[:, x0:x0 + 1]
            source[:, x1:] = source[:, x1 - 1:x1]
            source[:y0] = source[y0:y0 + 1]
            source[y1:] = source[y1 - 1:y1]
        out = warp_frame(source, sampling, cv2.BORDER_REFLECT101 if border == "mirror" else cv2.BORDER_REPLICATE,
                         kernel)
        fill: dict[str, int] = {}
        if border in ("black", "fill"):
            exposed = exposed_pixels(sampling, width, height, gate)
            if exposed.any():
                if border == "black":
                    out[exposed] = 0.0
                    fill = {"black": int(exposed.sum())}
                else:
                    out, fill = fill_border(out, exposed, window, analysis)
        if gate:
            out = keep_border(out, frame, gate)
        np.clip(out, 0.0, 1.0, out=out)
        correction = analysis.intended[index - analysis.start] - analysis.measured[index - analysis.start]
        side = {"weave": {**analysis.weave(index),
                          "correction": [round(float(correction[0]), 4), round(float(correction[1]), 4),
                                         round(float(-np.degrees(correction[2])), 5)],
                          "zoom": analysis.zoom, "jolt": index in analysis.jolts,
                          "gate": analysis.gate.to_dict(), "border_fill": fill},
                "weave_path": analysis.path_record_cached()}
        return StageOutput(out, side)


BORDER_FEATHER = 3  # px inside the picture over which the frame's own border fades into the corrected picture


def keep_border(out: np.ndarray, frame: np.ndarray, gate: Gate) -> np.ndarray:
    """The frame's own border (bars, shaded gate edge) put back unmoved, faded into the corrected picture over
    BORDER_FEATHER px so that their meeting is no line."""
    height, width = frame.shape[:2]
    alpha, bars = _border_alpha(gate, width, height)
    # the blend is worked out in the strips along the sides (bars, feather and rounded corners): inside them the
    # frame's own border has no weight and `out` stays as it is
    depth = BORDER_FEATHER + 1 + max((max(c) for c in gate.corners if c), default=0)
    for rows, cols in side_strips(gate.picture(width, height), depth, width, height):
        a, o, f = alpha[rows, cols], out[rows, cols], frame[rows, cols]
        blended = o + a[..., None] * (f - o) if frame.ndim == 3 else o + a * (f - o)
        where = bars[rows, cols]
        blended[where] = f[where]  # exactly the frame's own border
        out[rows, cols] = blended
    return out


@functools.lru_cache(maxsize=8)
def side_strips(picture: tuple[int, int, int, int], depth: int, width: int,
                height: int) -> list[tuple[slice, slice]]:
    """The four strips `depth` px deep inside the picture's sides (x0, x1, y0, y1) and everything outside them;
    the whole frame when the strips would meet."""
    x0, x1, y0, y1 = picture
    top, bottom = min(y0 + depth, height), max(y1 - depth, 0)
    left, right = min(x0 + depth, width), max(x1 - depth, 0)
    if bottom <= top or right <= left:
        return [(slice(0, height), slice(0, width))]
    return [(slice(0, top), slice(0, width)), (slice(bottom, height), slice(0, width)),
            (slice(top, bottom), slice(0, left)), (slice(top, bottom), slice(right, width))]


def _border_alpha(gate: Gate, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight of the frame's own border (1 on it, fading over BORDER_FEATHER px into the picture, rounded corners
    included; sides without a border do not fade) and the border mask, once per shot's gate and frame size."""
    bars = gate.mask(width, height)
    inside = cv2.distanceTransform((~bars).astype(np.uint8), cv2.DIST_L2, 5)  # distance to the nearest border pixel
    alpha = np.clip(1.0 - inside / (BORDER_FEATHER + 1), 0.0, 1.0).astype(np.float32)
    alpha.flags.writeable = False
    bars.flags.writeable = False
    return alpha, bars


def warp_frame(frame: np.ndarray, sampling: np.ndarray, border: int, kernel: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Float warp output(x) = frame(sampling @ x): float32 throughout, so 16-bit detail survives."""
    height, width = frame.shape[:2]
    return cv2.warpAffine(frame, sampling.astype(np.float64), (width, height), flags=kernel | cv2.WARP_INVERSE_MAP,
                          borderMode=border)


def source_coordinates(sampling: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Where every output pixel samples its source frame."""
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    m = sampling.astype(np.float32)
    return m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]


GATE_TAIL = 3  # px of picture next to a gate side that its shading may still darken (the gate is a shot's median)


def carried_tail(sx: np.ndarray, sy: np.ndarray, xs: np.ndarray, ys: np.ndarray, gate: Gate, width: int,
                 height: int) -> np.ndarray:
    """Where a source pixel within GATE_TAIL of a gate side would be moved more than GATE_TAIL px away from that
    side: the gate's soft edge would be drawn as a dark line across the picture (a 17 px splice correction did)."""
    x0, x1, y0, y1 = gate.picture(width, height)
    tail = np.zeros(np.broadcast(sx, xs, sy, ys).shape, bool)
    if tail.size and float(np.max(np.abs(sx - xs))) <= GATE_TAIL and float(np.max(np.abs(sy - ys))) <= GATE_TAIL:
        return tail  # a weave-sized correction leaves every pixel next to the gate where it belongs
    if gate.left:
        tail |= (sx < x0 + GATE_TAIL) & (xs - sx > GATE_TAIL)
    if gate.right:
        tail |= (sx > x1 - 1 - GATE_TAIL) & (sx - xs > GATE_TAIL)
    if gate.top:
        tail |= (sy < y0 + GATE_TAIL) & (ys - sy > GATE_TAIL)
    if gate.bottom:
        tail |= (sy > y1 - 1 - GATE_TAIL) & (sy - ys > GATE_TAIL)
    return tail


def exposed_pixels(sampling: np.ndarray, width: int, height: int, gate: Gate | None = None) -> np.ndarray:
    """Output picture pixels whose source lies outside the source frame's picture (the border the correction
    uncovers; with black bars, the picture inside them), or in a gate's soft edge moved into the picture."""
    gate = gate or Gate()
    exposed = np.zeros((height, width), bool)
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    # the correction moves pixels by an affine amount, largest at the frame's corners: only strips that deep (and
    # the gate's tail and corners) along the picture's sides can be uncovered, so only they are worked out
    cx, cy = _apply(sampling, np.array([0.0, width - 1, 0.0, width - 1]), np.array([0.0, 0.0, height - 1, height - 1]))
    moved = max(float(np.abs(cx - [0, width - 1, 0, width - 1]).max()),
                float(np.abs(cy - [0, 0, height - 1, height - 1]).max()))
    reach = int(np.ceil(moved)) + GATE_TAIL + max((max(c) for c in gate.corners if c), default=0) + 2
    for rows, cols in side_strips(gate.picture(width, height), reach, width, height):
        exposed[rows, cols] = _exposed(sampling, xs[:, cols], ys[rows], gate, width, height)
    if gate:
        exposed &= ~_border_alpha(gate, width, height)[1]
    return exposed


def _exposed(sampling: np.ndarray, xs: np.ndarray, ys: np.ndarray, gate: Gate, width: int,
             height: int) -> np.ndarray:
    """exposed_pixels (the gate's own pixels aside) over the grid of output columns `xs` and rows `ys`."""
    m = sampling.astype(np.float32)
    sx, sy = m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    x0, x1, y0, y1 = gate.picture(width, height)
    exposed = (sx < x0 - EDGE) | (sx > x1 - 1 + EDGE) | (sy < y0 - EDGE) | (sy > y1 - 1 + EDGE)
    if gate:
        exposed |= carried_tail(sx, sy, xs, ys, gate, width, height) | gate.in_corner(sx, sy, width, height)
    return exposed


def fill_border(out: np.ndarray, exposed: np.ndarray, window: FrameWindow,
                analysis: ShotWeave) -> tuple[np.ndarray, dict[str, int]]:
    """Fill exposed pixels from neighbouring frames brought to this frame's position, nearest first; inpaint the rest.

    Only a neighbour's picture is used (never its bars), so no edge is pasted in twice; each neighbour's values are
    matched in brightness to this frame around the holes, and the nearest neighbour's picture fades into this
    frame's over FILL_FEATHER px. Returns the frame and how many pixels each means filled.
    """
    height, width = out.shape[:2]
    gate = analysis.gate
    x0, x1, y0, y1 = gate.picture(width, height)
    counts = {"neighbours": 0, "inpainted": 0}
    hole_y, hole_x = pixels_of(exposed)
    border = _border_alpha(gate, width, height)[1] if gate else None
    ring = cv2.dilate(exposed.view(np.uint8), np.ones((9, 9), np.uint8)).view(bool) & ~exposed
    if border is not None:
        ring &= ~border
    ring_y, ring_x = pixels_of(ring)
    band_y, band_x, band_d = _feather_band(exposed, hole_y, hole_x, border)
    tried: set[int] = {window.index}
    order = sorted(range(len(window.frames)), key=lambda i: (abs(i - window.center), i))
    for position in order:
        source = window.indices[position]
        if source in tried:
            continue  # mirrored repeats bring nothing new
        tried.add(source)
        if hole_y.size == 0:
            break
        sampling = analysis.sampling(window.index, source)
        neighbour = window.frames[position]
        usable = _usable(sampling, hole_x, hole_y, gate, width, height)
        if not usable.any():
            continue
        xs, ys = hole_x[usable], hole_y[usable]
        feather = np.zeros(0, bool)
        if band_y.size:
            # the first neighbour that fills also fades into this frame's picture around the holes
            feather = _usable(sampling, band_x, band_y, gate, width, height)
            xs, ys = np.concatenate([xs, band_x[feather]]), np.concatenate([ys, band_y[feather]])
        sx, sy = _apply(sampling, xs, ys)
        seam = _seam(out, neighbour, sampling, ring_x, ring_y, (x0, x1, y0, y1))
        gain = _gain(out, seam)
        values = sample_points(neighbour, sx, sy) * gain
        values += _seam_offset(out, seam, gain, xs, ys)
        filled = int(usable.sum())
        out[ys[:filled], xs[:filled]] = values[:filled]
        if feather.any():
            alpha = (1.0 - band_d[feather] / (FILL_FEATHER + 1))[:, None].astype(np.float32)
            fy, fx = ys[filled:], xs[filled:]
            out[fy, fx] = alpha * values[filled:] + (1.0 - alpha) * out[fy, fx]
        band_y = band_y[:0]
        counts["neighbours"] += filled
        hole_y, hole_x = hole_y[~usable], hole_x[~usable]
    if hole_y.size:
        holes = np.zeros((height, width), bool)
        holes[hole_y, hole_x] = True
        out = inpaint(out, holes)
        counts["inpainted"] = int(hole_y.size)
    return out, counts


def _usable(sampling: np.ndarray, xs: np.ndarray, ys: np.ndarray, gate: Gate, width: int,
            height: int) -> np.ndarray:
    """Which output pixels a neighbour (`sampling` into it) shows picture at: inside its picture, not in a rounded
    corner, and not its gate shading carried far."""
    sx, sy = _apply(sampling, xs, ys)
    x0, x1, y0, y1 = gate.picture(width, height)
    usable = (sx >= x0 - EDGE) & (sx <= x1 - 1 + EDGE) & (sy >= y0 - EDGE) & (sy <= y1 - 1 + EDGE)
    if gate:
        usable &= ~carried_tail(sx, sy, xs, ys, gate, width, height) & ~gate.in_corner(sx, sy, width, height)
    return usable


FILL_FEATHER = 6  # px of this frame's picture over which a neighbour's fill fades out: no straight seam


def _feather_band(exposed: np.ndarray, hole_y: np.ndarray, hole_x: np.ndarray,
                  border: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This frame's picture pixels within FILL_FEATHER px of the exposed ones, and their distance: where a fill
    fades in, so grain, dust and small differences of light or position change gradually, not along a line."""
    height, width = exposed.shape
    empty = np.zeros(0, int)
    if hole_y.size == 0:
        return empty, empty, np.zeros(0, np.float32)
    # the holes lie along the frame's edges: worked out in four strips deep enough to hold them and the band (not
    # over the whole frame); the side strips keep the rows the top and bottom ones do not
    reach = np.minimum(np.minimum(hole_x, width - 1 - hole_x), np.minimum(hole_y, height - 1 - hole_y))
    depth = min(int(reach.max()) + 2 * FILL_FEATHER + 3, height // 2, width // 2)
    strips = ((slice(0, depth), slice(0, width), 0, height),
              (slice(height - depth, height), slice(0, width), 0, height),
              (slice(0, height), slice(0, depth), depth, height - depth),
              (slice(0, height), slice(width - depth, width), depth, height - depth))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for rows, cols, keep_from, keep_to in strips:
        # city-block distance: across a straight border strip it is the true distance, and 4x cheaper than Euclid's
        distance = cv2.distanceTransform((~exposed[rows, cols]).astype(np.uint8), cv2.DIST_L1, 3)
        band = (distance <= FILL_FEATHER) & ~exposed[rows, cols]
        if border is not None:
            band &= ~border[rows, cols]
        ys, xs = pixels_of(band)
        d = distance[ys, xs]
        ys, xs = ys + rows.start, xs + cols.start
        keep = (ys >= keep_from) & (ys < keep_to)
        found.append((ys[keep], xs[keep], d[keep]))
    return (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]),
            np.concatenate([f[2] for f in found]))


def _apply(sampling: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = sampling[0, 0] * xs + sampling[0, 1] * ys + sampling[0, 2]
    y = sampling[1, 0] * xs + sampling[1, 1] * ys + sampling[1, 2]
    return x.astype(np.float32), y.astype(np.float32)


class _Seam(NamedTuple):
    """The ring around the holes where a neighbour shows picture: its pixels, this frame's values and the
    neighbour's there (sampled once, for the gain and the seam offset both)."""

    xs: np.ndarray
    ys: np.ndarray
    ours: np.ndarray
    theirs: np.ndarray


def _seam(out: np.ndarray, neighbour: np.ndarray, sampling: np.ndarray, ring_x: np.ndarray, ring_y: np.ndarray,
          picture: tuple[int, int, int, int]) -> _Seam | None:
    """The ring pixels the neighbour shows picture at, with both frames' values; None under 16 of them."""
    if ring_x.size < 16:
        return None
    sx, sy = _apply(sampling, ring_x, ring_y)
    x0, x1, y0, y1 = picture
    inside = (sx >= x0) & (sx <= x1 - 1) & (sy >= y0) & (sy <= y1 - 1)
    if inside.sum() < 16:
        return None
    rx, ry = ring_x[inside], ring_y[inside]
    return _Seam(rx, ry, out[ry, rx], sample_points(neighbour, sx[inside], sy[inside]))


def _gain(out: np.ndarray, seam: _Seam | None) -> np.ndarray:
    """Per-channel gain matching the neighbour's brightness to this frame's around the holes (flicker differs)."""
    if seam is None:
        return np.ones(out.shape[2], np.float32)
    theirs, ours = seam.theirs.mean(axis=0), seam.ours.mean(axis=0)
    return np.clip(ours / np.maximum(theirs, 1e-4), 0.8, 1.25).astype(np.float32)


SEAM_SIGMA = 12.0  # px; how far along the border a brightness difference at the seam is taken as one


def _seam_offset(out: np.ndarray, seam: _Seam | None, gain: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Per-pixel offset taking the (gain-matched) neighbour's patch onto this frame along the seam: the difference on
    the ring around the holes, spread by normalised convolution, so shading that varies along the border (a
    vignette, uneven flicker) leaves no straight seam."""
    if seam is None:
        return np.zeros((xs.size, out.shape[2]), np.float32)
    # worked out on a quarter-size grid over the box holding the ring and the holes: the offset is smooth
    rx, ry = seam.xs, seam.ys
    left, top = int(min(rx.min(), xs.min())), int(min(ry.min(), ys.min()))
    box_w = int(max(rx.max(), xs.max())) - left + 1
    box_h = int(max(ry.max(), ys.max())) - top + 1
    step = 4
    grid_w, grid_h = box_w // step + 1, box_h // step + 1
    difference = np.zeros((grid_h, grid_w, out.shape[2]), np.float32)
    weight = np.zeros((grid_h, grid_w), np.float32)
    theirs = seam.theirs * gain
    gx, gy = (rx - left) // step, (ry - top) // step
    cell = gy * grid_w + gx  # bincount, not np.add.at: the same sums, many times faster
    change = seam.ours - theirs
    for channel in range(difference.shape[2]):
        difference[..., channel] = np.bincount(cell, change[:, channel], grid_h * grid_w).reshape(grid_h, grid_w)
    weight[:] = np.bincount(cell, None, grid_h * grid_w).reshape(grid_h, grid_w)
    sigma = SEAM_SIGMA / step
    spread = cv2.GaussianBlur(difference, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    norm = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    if spread.ndim == 2:
        spread = spread[..., None]
    hx, hy = (xs - left) // step, (ys - top) // step
    held = norm[hy, hx]
    offset = spread[hy, hx] / np.maximum(held, 1e-3)[:, None]
    return np.where(held[:, None] > 1e-3, offset, 0.0).astype(np.float32)


def pixels_of(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of a 2-D mask's set pixels in row-major order, as np.nonzero gives them, about 10x faster."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def inpaint(image: np.ndarray, holes: np.ndarray, radius: int = 4) -> np.ndarray:
    """Edge-aware (Navier-Stokes) inpainting of the holes in place, per channel in float, inside their bounding box.

    Not Telea: OpenCV's float Telea leaves zeros along the image edge, exactly where weave borders are.
    """
    ys, xs = pixels_of(holes)
    pad = 2 * radius + 2
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, image.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, image.shape[1])
    mask = holes[y0:y1, x0:x1].astype(np.uint8)
    for channel in range(image.shape[2]):
        plane = np.ascontiguousarray(image[y0:y1, x0:x1, channel])
        image[y0:y1, x0:x1, channel] = cv2.inpaint(plane, mask, radius, cv2.INPAINT_NS)
    return image
