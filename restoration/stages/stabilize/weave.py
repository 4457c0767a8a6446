"""Gate weave: global frame motion from dense flow refined by direct alignment, per-shot camera paths and smoothing.

Geometry convention. A `Pose` is a 3x3 similarity matrix P with reference(x) ≈ frame(P x): it maps coordinates of
the shot's reference frame to where that content sits in the frame. Poses are parametrised about the frame centre
c as P(x) = [[1+a, -b], [b, 1+a]] (x - c) + c + t, linear in (a, b, tx, ty), so robust fits are linear.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.linalg import cho_solve_banded, cholesky_banded, solveh_banded

from ...flow import DIS_PRESETS, LUMA_709, sample_points

Pose = np.ndarray  # 3x3 float64 similarity

EDGE = 0.5  # px beyond the outermost pixel centres that still counts as inside a frame (replicated, not invented)
MIN_SIZE = 48  # px; smaller frames are passed through unmeasured
MIN_MATCH = 0.2  # share of the textured picture that must follow the global motion for a frame to count as measured
MIN_TEXTURE = 2e-3  # mean absolute luma step between pixels of the small luma below which a frame is flat
ANALYSIS_WIDTH = 400  # motion is measured on a luma about this wide; sub-pixel accuracy comes from the refinement


# --------------------------------------------------------------------------------------------------------------
# similarity poses


def pose_from_params(a: float, b: float, tx: float, ty: float, centre: tuple[float, float]) -> Pose:
    """3x3 similarity x -> [[1+a, -b], [b, 1+a]] (x - c) + c + t."""
    cx, cy = centre
    m = np.array([[1 + a, -b, 0.0], [b, 1 + a, 0.0], [0.0, 0.0, 1.0]])
    m[0, 2] = cx + tx - (1 + a) * cx + b * cy
    m[1, 2] = cy + ty - b * cx - (1 + a) * cy
    return m


def pose_params(pose: Pose, centre: tuple[float, float]) -> tuple[float, float, float, float]:
    """(a, b, tx, ty) of a similarity about `centre` (inverse of pose_from_params)."""
    cx, cy = centre
    a, b = pose[0, 0] - 1.0, pose[1, 0]
    tx = pose[0, 0] * cx + pose[0, 1] * cy + pose[0, 2] - cx
    ty = pose[1, 0] * cx + pose[1, 1] * cy + pose[1, 2] - cy
    return float(a), float(b), float(tx), float(ty)


def pose_motion(pose: Pose, centre: tuple[float, float]) -> tuple[float, float, float, float]:
    """(dx, dy, rotation in radians, log scale) of a pose: the frame centre's shift, turn and zoom."""
    a, b, tx, ty = pose_params(pose, centre)
    return tx, ty, math.atan2(b, 1 + a), math.log(math.hypot(1 + a, b))


def pose_from_motion(dx: float, dy: float, rotation: float, log_scale: float, centre: tuple[float, float]) -> Pose:
    """Inverse of pose_motion."""
    scale = math.exp(log_scale)
    return pose_from_params(scale * math.cos(rotation) - 1, scale * math.sin(rotation), dx, dy, centre)


def rescale_pose(pose: Pose, factor: float) -> Pose:
    """The same motion expressed in an image scaled by `factor` (pixel centres aligned as cv2.resize does)."""
    s = np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5], [0, 0, 1.0]])
    return s @ pose @ np.linalg.inv(s)


# --------------------------------------------------------------------------------------------------------------
# motion luma


def analysis_scale(width: int) -> float:
    """Downscale factor of the luma the flow is computed on: about ANALYSIS_WIDTH wide, by powers of two."""
    factor = 1.0
    while width * factor > 1.5 * ANALYSIS_WIDTH:
        factor *= 0.5
    return factor


@dataclass
class MotionLuma:
    """What motion is measured on: full-size float luma (not quantised) and a small 8-bit copy for DIS."""

    full: np.ndarray
    small: np.ndarray
    small8: np.ndarray
    factor: float

    @classmethod
    def of(cls, frame: np.ndarray, factor: float) -> "MotionLuma":
        luma = frame @ LUMA_709 if frame.ndim == 3 else frame.astype(np.float32)
        # a light blur tames grain and aliasing without biasing the sub-pixel fit
        full = cv2.GaussianBlur(np.ascontiguousarray(luma, dtype=np.float32), (0, 0), 0.8)
        if factor != 1.0:
            height, width = full.shape
            small = cv2.resize(cv2.GaussianBlur(full, (0, 0), 0.6 / factor), (round(width * factor),
                               round(height * factor)), interpolation=cv2.INTER_AREA)
        else:
            small = full
        return cls(full, small, _as8(small), factor)


def _as8(luma: np.ndarray) -> np.ndarray:
    return (np.clip(luma, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# the gate: black bars and burnt-in borders at the frame's edges are not picture

GATE_BLACK = 0.08  # a border row or column this dark on average ...
GATE_FLAT = 0.03  # ... and this uniform (std) is a black bar, not picture
GATE_MAX_SHARE = 0.15  # a bar covers at most this share of the width or height on each side
SHADE_LEVEL = 0.9  # border rows/columns darker than this share of the picture just inside are the gate's shaded edge
SHADE_MAX_SHARE = 0.04  # ... over at most this share of the width or height
SHADE_MARGIN = 3  # px added to a shaded edge
SHADE_START = 0.75  # ... whose outermost row or column is darker than this share of the picture's level


@dataclass(frozen=True)
class Gate:
    """Widths (px) of what is not picture on each side of the frame: black bars (pillar/letterbox, burnt-in
    borders) and the gate's dark, soft edge. Excluded from estimation and from border fill; the output keeps each
    frame's own border there, unmoved."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    # the gate's rounded corners (tl, tr, bl, br): per row inward from the top or bottom side, how many px beyond the
    # left or right side are still gate; empty for a square corner
    corners: tuple[tuple[int, ...], ...] = ((), (), (), ())

    def __bool__(self) -> bool:
        return bool(self.left or self.right or self.top or self.bottom or any(self.corners))

    def picture(self, width: int, height: int) -> tuple[int, int, int, int]:
        """x0, x1, y0, y1 (exclusive ends) of the picture inside the border (its rounded corners aside)."""
        return self.left, width - self.right, self.top, height - self.bottom

    def in_corner(self, xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> np.ndarray:
        """Whether points (pixel coordinates, any shape) lie in a rounded corner of the gate."""
        x0, x1, y0, y1 = self.picture(width, height)
        out = np.zeros(np.broadcast(xs, ys).shape, bool)
        for extents, (cx, sx), (cy, sy) in zip(self.corners, ((x0, 1), (x1 - 1, -1), (x0, 1), (x1 - 1, -1)),
                                                ((y0, 1), (y0, 1), (y1 - 1, -1), (y1 - 1, -1))):
            if not extents:
                continue
            u, v = (xs - cx) * sx, np.rint((ys - cy) * sy)  # inward from the corner's side and from its top/bottom
            table = np.asarray(extents + (0,), np.float64)
            row = np.clip(v, 0, len(extents)).astype(int)
            out |= (v >= 0) & (u < table[row] - 0.5)
        return out

    def mask(self, width: int, height: int) -> np.ndarray:
        """True on the border (rounded corners included)."""
        x0, x1, y0, y1 = self.picture(width, height)
        mask = np.ones((height, width), bool)
        mask[y0:y1, x0:x1] = False
        if any(self.corners):
            mask |= self.in_corner(np.arange(width)[None, :], np.arange(height)[:, None], width, height)
        return mask

    def union(self, other: "Gate") -> "Gate":
        def wider(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(max(a[k] if k < len(a) else 0, b[k] if k < len(b) else 0) for k in range(max(len(a), len(b))))

        # a corner is measured from its sides: one only found with the other's sides stays as measured
        return Gate(max(self.left, other.left), max(self.right, other.right), max(self.top, other.top),
                    max(self.bottom, other.bottom), tuple(wider(a, b) for a, b in zip(self.corners, other.corners)))

    def to_dict(self) -> dict[str, object]:
        return {"left": self.left, "right": self.right, "top": self.top, "bottom": self.bottom,
                "corners": [max(c, default=0) for c in self.corners]}


CORNER_SHARE = 0.2  # rounded gate corners are looked for within this share of the smaller side from each corner
MIN_CORNER = 4  # px; a smaller corner (beyond the sides) is not told from their own soft edge
CORNER_LEVEL = 0.5  # a corner is darker than this share of the way from the gate's black to the picture
CORNER_BRIGHT = 0.7  # share of the 3 px just inside a corner's edge that must be picture (not a dark object)


@dataclass
class GateProfiles:
    """Per-frame mean and spread of every column and row, and the mean of the four corner patches, to find the
    border from a whole shot."""

    cols: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    corner_sum: np.ndarray | None = None
    corner_count: int = 0

    def add(self, luma: np.ndarray) -> None:
        # the sides are profiled away from the corners: a rounded corner's dark would widen every side's shaded edge
        height, width = luma.shape
        middle_rows = luma[int(CORNER_SHARE * height):height - int(CORNER_SHARE * height)]
        middle_cols = luma[:, int(CORNER_SHARE * width):width - int(CORNER_SHARE * width)]
        self.cols.append(np.stack([middle_rows.mean(axis=0), middle_rows.std(axis=0)]))
        self.rows.append(np.stack([middle_cols.mean(axis=1), middle_cols.std(axis=1)]))
        patches = corner_patches(luma)
        self.corner_sum = patches.astype(np.float64) if self.corner_sum is None else self.corner_sum + patches
        self.corner_count += 1

    def gate(self) -> Gate:
        if not self.cols:
            return Gate()
        sides = gate_from_profiles(np.median(self.cols, axis=0), np.median(self.rows, axis=0))
        if self.corner_sum is None:
            return sides
        return rounded_corners(self.corner_sum / self.corner_count, sides)


def corner_patches(luma: np.ndarray) -> np.ndarray:
    """(4, R, R) corner patches tl, tr, bl, br, each flipped so that its frame corner sits at [0, 0]."""
    height, width = luma.shape
    size = max(1, int(CORNER_SHARE * min(width, height)))
    return np.stack([luma[:size, :size], luma[:size, -size:][:, ::-1], luma[-size:, :size][::-1],
                     luma[-size:, -size:][::-1, ::-1]])


def rounded_corners(patches: np.ndarray, sides: Gate) -> Gate:
    """The sides' gate with its rounded corners: beyond the sides, the area joined to each corner that is darker than
    SHADE_LEVEL of the picture near it, narrowing inward, with picture (not a dark object) just inside its edge."""
    insets = ((sides.left, sides.top), (sides.right, sides.top), (sides.left, sides.bottom),
              (sides.right, sides.bottom))
    corners = []
    for patch, (ix, iy) in zip(patches, insets):
        inner = patch[iy:, ix:]
        span = min(inner.shape)
        if span < 4 * MIN_CORNER:
            corners.append(())
            continue
        inner = inner[:span, :span]
        # half-way between the gate's black and the picture near the corner (which may itself be dark)
        black = float(patch.min())
        level = black + CORNER_LEVEL * (float(np.median(inner[span // 2:, span // 2:])) - black)
        dark = inner < level
        runs = [int(np.argmin(row)) if not row.all() else span for row in dark[:span // 2]]
        # the first rows may still be the side's soft edge, dark right across: they take the corner's width
        first = next((k for k, run in enumerate(runs) if run < span // 2), len(runs))
        if first > SHADE_MARGIN:
            corners.append(())
            continue
        runs[:first] = [runs[first]] * first if first < len(runs) else runs[:first]
        extents: list[int] = []
        for run in runs:
            run = min(run, extents[-1]) if extents else run  # a corner narrows inward
            if run == 0:
                break
            extents.append(run)
        ok = len(extents) >= MIN_CORNER and extents[0] >= MIN_CORNER and extents[0] < span // 2
        if ok:
            # shaped like a rounded corner (a quarter circle's cut-off fills 0.21 of its box; one clipped by the
            # sides' margins, in whole pixels, up to about 0.6), not a dark block (1) or a stripe along a side
            fill = sum(extents) / (extents[0] * len(extents))
            ok = 0.12 <= fill <= 0.75 and 0.4 <= len(extents) / extents[0] <= 2.5
        if ok:
            # picture just inside the edge: the 3 px beyond each row's extent are mostly not dark
            edge = np.concatenate([inner[k, e:e + 3] for k, e in enumerate(extents)])
            ok = float(np.mean(edge >= level)) >= CORNER_BRIGHT
        # the soft edge's last pixel is gate too
        corners.append(tuple(e + 1 for e in extents) + (1,) if ok else ())
    return dataclasses.replace(sides, corners=tuple(corners))


def gate_from_profiles(cols: np.ndarray, rows: np.ndarray) -> Gate:
    """The border from (2, n) column and row profiles (mean, std): black bars, then the shaded edge beyond them."""
    def band(means: np.ndarray, spread: np.ndarray) -> int:
        n = means.size
        k = 0
        while k < int(GATE_MAX_SHARE * n) and means[k] < GATE_BLACK and spread[k] < GATE_FLAT:
            k += 1
        inside = means[k + 8:k + 24]
        if inside.size:
            level = SHADE_LEVEL * float(np.median(inside))
            limit = k + max(1, int(SHADE_MAX_SHARE * n))
            shaded = k
            if means[k] < SHADE_START * level / SHADE_LEVEL:  # a shaded edge starts clearly dark
                while shaded < limit and means[shaded] < level:
                    shaded += 1
            # a shaded edge fades out beyond the level: a little more is not picture (a bar's one soft pixel is all)
            k = shaded + SHADE_MARGIN if shaded - k >= 2 else shaded
        return k

    if min(cols.shape[1], rows.shape[1]) < MIN_SIZE:
        return Gate()
    return Gate(band(cols[0], cols[1]), band(cols[0, ::-1], cols[1, ::-1]), band(rows[0], rows[1]),
                band(rows[0, ::-1], rows[1, ::-1]))


def find_gate(luma: np.ndarray) -> Gate:
    """The border of one frame (see gate_from_profiles)."""
    profiles = GateProfiles()
    profiles.add(luma)
    return profiles.gate()


# --------------------------------------------------------------------------------------------------------------
# robust similarity from a flow field


def _point_grid(shape: tuple[int, int], step: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    height, width = shape
    ys, xs = np.mgrid[margin:height - margin:step, margin:width - margin:step]
    return xs.ravel().astype(np.float64), ys.ravel().astype(np.float64)


def _solve_similarity(u: np.ndarray, v: np.ndarray, fx: np.ndarray, fy: np.ndarray,
                      w: np.ndarray) -> np.ndarray:
    """Weighted least squares (a, b, tx, ty) for displacements (fx, fy) at centred points (u, v)."""
    # rows: fx = a u - b v + tx ; fy = b u + a v + ty
    zeros, ones = np.zeros_like(u), np.ones_like(u)
    design = np.concatenate([np.stack([u, -v, ones, zeros], 1), np.stack([v, u, zeros, ones], 1)])
    target = np.concatenate([fx, fy])
    sw = np.sqrt(np.concatenate([w, w]))
    solution, *_ = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)
    return solution


RANSAC_CHUNK = 16  # hypotheses scored at once


def fit_flow_similarity(flow: np.ndarray, texture: np.ndarray, seed: int, step: int = 6,
                        inlier_px: float = 0.75, hypotheses: int = 96) -> tuple[np.ndarray, float]:
    """RANSAC then IRLS similarity (a, b, tx, ty) of a flow field; returns it and the inlier share of texture.

    `texture` weights each sample (flat areas carry no motion information); independently moving objects
    fall out as outliers of the dominant motion.
    """
    height, width = flow.shape[:2]
    centre = ((width - 1) / 2, (height - 1) / 2)
    xs, ys = _point_grid((height, width), step, margin=max(4, step))
    ix, iy = xs.astype(int), ys.astype(int)
    fx, fy = flow[iy, ix, 0].astype(np.float64), flow[iy, ix, 1].astype(np.float64)
    weight = texture[iy, ix].astype(np.float64)
    keep = weight > 0
    u, v, fx, fy, weight = xs[keep] - centre[0], ys[keep] - centre[1], fx[keep], fy[keep], weight[keep]
    if u.size < 8:
        return np.zeros(4), 0.0
    rng = np.random.default_rng(seed)
    prob = weight / weight.sum()
    first = rng.choice(u.size, hypotheses, p=prob)
    second = rng.choice(u.size, hypotheses, p=prob)
    # two correspondences fix a similarity: solve the 4x4 system for every hypothesis at once
    du, dv = u[first] - u[second], v[first] - v[second]
    dfx, dfy = fx[first] - fx[second], fy[first] - fy[second]
    norm = du * du + dv * dv
    ok = norm > (0.1 * min(width, height)) ** 2
    a = np.where(ok, (du * dfx + dv * dfy) / np.maximum(norm, 1e-9), 0.0)
    b = np.where(ok, (du * dfy - dv * dfx) / np.maximum(norm, 1e-9), 0.0)
    tx = fx[first] - a * u[first] + b * v[first]
    ty = fy[first] - b * u[first] - a * v[first]
    score = np.empty(hypotheses)
    for lo in range(0, hypotheses, RANSAC_CHUNK):
        # in place and a few hypotheses at a time (cache-sized): the same arithmetic as fx - (a u - b v + tx)
        h = slice(lo, lo + RANSAC_CHUNK)
        rx = a[h, None] * u
        rx -= b[h, None] * v
        rx += tx[h, None]
        np.subtract(fx[None, :], rx, out=rx)
        ry = b[h, None] * u
        ry += a[h, None] * v
        ry += ty[h, None]
        np.subtract(fy[None, :], ry, out=ry)
        rx *= rx
        ry *= ry
        rx += ry
        inside = rx < inlier_px ** 2
        inside &= ok[h, None]
        score[h] = inside @ weight
    best = int(np.argmax(score))
    params = np.array([a[best], b[best], tx[best], ty[best]])
    for _ in range(4):  # IRLS with a Cauchy-like weight around the RANSAC consensus
        rx = fx - (params[0] * u - params[1] * v + params[2])
        ry = fy - (params[1] * u + params[0] * v + params[3])
        r2 = rx * rx + ry * ry
        irls = weight / (1.0 + r2 / inlier_px ** 2) * (r2 < (3 * inlier_px) ** 2)
        if irls.sum() <= 0:
            break
        params = _solve_similarity(u, v, fx, fy, irls)
    rx = fx - (params[0] * u - params[1] * v + params[2])
    ry = fy - (params[1] * u + params[0] * v + params[3])
    inlier_share = float(weight[(rx * rx + ry * ry) < inlier_px ** 2].sum() / weight.sum())
    return params, inlier_share


def texture_weight(luma: np.ndarray) -> np.ndarray:
    """Local structure strength (smaller eigenvalue of the structure tensor): ~0 on flat areas and along edges."""
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    sxx = cv2.GaussianBlur(gx * gx, (0, 0), 2.0)
    syy = cv2.GaussianBlur(gy * gy, (0, 0), 2.0)
    sxy = cv2.GaussianBlur(gx * gy, (0, 0), 2.0)
    half_trace = 0.5 * (sxx + syy)
    return np.maximum(half_trace - np.sqrt(0.25 * (sxx - syy) ** 2 + sxy * sxy), 0.0)


# --------------------------------------------------------------------------------------------------------------
# direct refinement on the full-size luma


@dataclass
class AlignmentPoints:
    """The key frame's most textured pixels with their values and the constant Gauss-Newton Jacobian."""

    xs: np.ndarray
    ys: np.ndarray
    ref: np.ndarray
    design: np.ndarray
    centre: tuple[float, float]
    norm: float

    @classmethod
    def of(cls, luma: np.ndarray, max_points: int = 24000, margin: int = 12) -> "AlignmentPoints":
        height, width = luma.shape
        gx = cv2.Scharr(luma, cv2.CV_32F, 1, 0, scale=1 / 32)
        gy = cv2.Scharr(luma, cv2.CV_32F, 0, 1, scale=1 / 32)
        ys, xs = np.mgrid[margin:height - margin:2, margin:width - margin:2]
        ys, xs = ys.ravel(), xs.ravel()
        energy = gx[ys, xs] ** 2 + gy[ys, xs] ** 2
        if energy.size > max_points:
            # flat pixels carry no position information, only noise: keep the textured ones
            chosen = np.sort(np.argpartition(-energy, max_points)[:max_points])
            ys, xs = ys[chosen], xs[chosen]
        centre = ((width - 1) / 2, (height - 1) / 2)
        norm = 0.5 * max(width, height)
        ref = luma[ys, xs].astype(np.float64)
        gxp, gyp = gx[ys, xs].astype(np.float64), gy[ys, xs].astype(np.float64)
        un, vn = (xs - centre[0]) / norm, (ys - centre[1]) / norm
        design = np.stack([gxp * un + gyp * vn, -gxp * vn + gyp * un, gxp, gyp, -ref, -np.ones_like(ref)], 1)
        return cls(xs.astype(np.float64), ys.astype(np.float64), ref, design, centre, norm)


def refine_similarity(points: AlignmentPoints, moving: np.ndarray, params: np.ndarray, support: np.ndarray,
                      iterations: int = 6) -> tuple[np.ndarray, float, float]:
    """Gauss-Newton similarity + gain/offset from key points to the moving luma: params, residual RMS and gain.

    Minimises sum w (moving(A x) - g key(x) - o)^2 over the key points where `support` holds (flow inliers),
    with Huber weights against dust, grain and occlusions; flicker is absorbed by the gain/offset.
    """
    height, width = moving.shape
    keep = support
    u, v = points.xs[keep] - points.centre[0], points.ys[keep] - points.centre[1]
    ref, design = points.ref[keep], points.design[keep]
    slope_x, slope_y = np.ascontiguousarray(design[:, 2]), np.ascontiguousarray(design[:, 3])
    p = params.astype(np.float64).copy()
    gain, offset = 1.0, 0.0
    rms = float("nan")
    for _ in range(iterations):
        # in place, the same arithmetic as (1 + a) u - b v + cx + tx and b u + (1 + a) v + cy + ty: the points'
        # temporaries are most of this loop's time
        map_x = (1 + p[0]) * u
        map_x -= p[1] * v
        map_x += points.centre[0]
        map_x += p[2]
        map_y = p[1] * u
        map_y += (1 + p[0]) * v
        map_y += points.centre[1]
        map_y += p[3]
        inside = (map_x > 2) & (map_x < width - 3) & (map_y > 2) & (map_y < height - 3)
        if inside.sum() < 50:
            break
        residual = _sample_points(moving, map_x, map_y, slope_x, slope_y)
        residual -= gain * ref
        residual -= offset
        weight = np.abs(residual)
        scale = 1.4826 * np.median(weight[inside]) + 1e-6
        np.maximum(weight, 1e-12, out=weight)
        np.divide(1.5 * scale, weight, out=weight)
        np.minimum(weight, 1.0, out=weight)
        weight *= inside
        weighted = design * weight[:, None]
        try:
            delta = np.linalg.solve(weighted.T @ design + 1e-9 * np.eye(6), -weighted.T @ residual)
        except np.linalg.LinAlgError:
            break
        p += np.array([delta[0] / points.norm, delta[1] / points.norm, delta[2], delta[3]])
        gain += delta[4]
        offset += delta[5]
        squares = weight * residual
        squares *= residual
        rms = float(np.sqrt(np.sum(squares) / max(np.sum(weight), 1e-12)))
        if max(abs(delta[0]), abs(delta[1]), abs(delta[2]), abs(delta[3])) < 1e-3:
            break
    return p, rms, gain


def _sample_points(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, slope_x: np.ndarray,
                   slope_y: np.ndarray) -> np.ndarray:
    """Lanczos samples of `image` at scattered points, corrected for OpenCV's 1/32-px position rounding.

    cv2.remap samples at round(32 x) / 32, a bias of up to 0.016 px that would swamp the fit; the first-order
    correction with the local slope removes it.
    """
    sampled = sample_points(image, xs, ys, cv2.INTER_LANCZOS4, cv2.BORDER_REFLECT101).ravel().astype(np.float64)
    # the positions remap was given (float32), rounded as it rounds them
    for positions, slope in ((xs, slope_x), (ys, slope_y)):
        # in place: sampled - slope (q - x), q = round(32 x) / 32
        shift = positions.astype(np.float32).astype(np.float64)
        shift *= 32
        np.rint(shift, out=shift)
        shift /= 32
        shift -= positions
        shift *= slope
        sampled -= shift
    return sampled


# --------------------------------------------------------------------------------------------------------------
# camera path of a shot


@dataclass
class CameraPath:
    """Per-frame poses of one shot in its first frame's coordinates (full-resolution pixels)."""

    start: int
    width: int
    height: int
    poses: list[Pose] = field(default_factory=list)
    inlier_share: list[float] = field(default_factory=list)
    residual: list[float] = field(default_factory=list)
    measured: list[bool] = field(default_factory=list)  # False: no picture to measure (black, flat) or no match

    @property
    def centre(self) -> tuple[float, float]:
        return (self.width - 1) / 2, (self.height - 1) / 2

    def motion(self) -> np.ndarray:
        """(n, 4) array of dx, dy, rotation (rad), log scale per frame."""
        return np.array([pose_motion(p, self.centre) for p in self.poses]).reshape(-1, 4)


@dataclass
class KeyFrame:
    """A frame the following ones are registered to, with its pose in the shot's coordinates."""

    luma: MotionLuma
    texture: np.ndarray
    points: AlignmentPoints
    pose: Pose
    index: int

    @classmethod
    def of(cls, luma: MotionLuma, pose: Pose, index: int, gate: Gate | None = None) -> "KeyFrame":
        texture = texture_weight(luma.small)
        points = AlignmentPoints.of(luma.full)
        if gate:
            # the bars' edges are static: they would hold the estimate still, so they are not looked at
            height, width = luma.full.shape
            near = cv2.dilate(gate.mask(width, height).astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
            small_near = cv2.resize(near.astype(np.uint8), (texture.shape[1], texture.shape[0]),
                                    interpolation=cv2.INTER_NEAREST).astype(bool)
            texture = np.where(small_near, 0.0, texture).astype(texture.dtype)
            keep = ~near[points.ys.astype(int), points.xs.astype(int)]
            points = AlignmentPoints(points.xs[keep], points.ys[keep], points.ref[keep], points.design[keep],
                                     points.centre, points.norm)
        return cls(luma, texture, points, pose, index)


@dataclass
class WeaveTracker:
    """Follows one shot frame by frame: each frame is registered to a key frame, re-keyed every few frames.

    Registering to a key rather than to the previous frame keeps estimation errors from adding up as a random walk.
    """

    width: int
    height: int
    start: int
    seed: int = 0
    preset: str = "fast"
    key_every: int = 12
    min_inliers: float = 0.35
    path: CameraPath = field(init=False)

    def __post_init__(self) -> None:
        self.factor = analysis_scale(self.width)
        self.path = CameraPath(self.start, self.width, self.height)
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])
        self._key: KeyFrame | None = None
        self._previous: tuple[MotionLuma, Pose, int] | None = None
        self.gate = Gate()  # found on the shot's first frame with a picture (what estimation leaves out)
        self.profiles = GateProfiles()  # every frame's, for the shot's border

    def add(self, index: int, frame: np.ndarray) -> Pose:
        """Register frame `index` (the next of the shot) and return its pose."""
        if min(self.width, self.height) < MIN_SIZE:
            return self._record(np.eye(3), 0.0, 0.0, False)  # too small to measure: left as it is
        raw = frame @ LUMA_709 if frame.ndim == 3 else frame  # the border is found on the unblurred luma
        luma = MotionLuma.of(raw, self.factor)
        textured = _has_texture(luma)
        if textured:
            self.profiles.add(raw)
        if self._key is None:
            # the first frame with a picture to measure becomes the reference
            if textured:
                self.gate = find_gate(raw)
                self._key = KeyFrame.of(luma, np.eye(3), index, self.gate)
                self._previous = (luma, np.eye(3), index)
            return self._record(np.eye(3), 1.0, 0.0, textured)
        relative, share, rms, gain = self._register(self._key, luma, index)
        if share < self.min_inliers and self._previous is not None and self._previous[2] != self._key.index:
            # the key is too far (a big move, an occlusion): register through the previous frame instead
            prev_luma, prev_pose, prev_index = self._previous
            self._key = KeyFrame.of(prev_luma, prev_pose, prev_index, self.gate)
            relative, share, rms, gain = self._register(self._key, luma, index)
        measured = textured and share >= MIN_MATCH and 0.5 < gain < 2.0
        if not measured:
            # nothing to hold on to (a black or flat frame, a flash, a failed match): keep the last position
            return self._record(self.path.poses[-1], share, rms, False)
        pose = relative @ self._key.pose
        self._previous = (luma, pose, index)
        if index - self._key.index >= self.key_every:
            self._key = KeyFrame.of(luma, pose, index, self.gate)
        return self._record(pose, share, rms, True)

    def repeat(self) -> Pose:
        """Record the next frame as a repeat of the one before: same pose, not a measurement of its own."""
        return self._record(self.path.poses[-1], self.path.inlier_share[-1], self.path.residual[-1], False)

    def _record(self, pose: Pose, share: float, rms: float, measured: bool) -> Pose:
        self.path.poses.append(pose)
        self.path.inlier_share.append(share)
        self.path.residual.append(rms)
        self.path.measured.append(measured)
        return pose

    def _register(self, key: KeyFrame, luma: MotionLuma, index: int) -> tuple[Pose, float, float, float]:
        """Similarity taking key coordinates to this frame's (full size), flow inlier share, residual RMS, gain."""
        flow = self._dis.calc(key.luma.small8, luma.small8, None)
        coarse, share = fit_flow_similarity(flow, key.texture, seed=self.seed * 7919 + index)
        small_h, small_w = flow.shape[:2]
        coarse_pose = rescale_pose(pose_from_params(*coarse, centre=((small_w - 1) / 2, (small_h - 1) / 2)),
                                   1.0 / self.factor)
        inliers = _flow_inliers(flow, coarse, tolerance=1.0)
        points = key.points
        small_x = np.clip(np.rint((points.xs + 0.5) * self.factor - 0.5).astype(int), 0, small_w - 1)
        small_y = np.clip(np.rint((points.ys + 0.5) * self.factor - 0.5).astype(int), 0, small_h - 1)
        support = inliers[small_y, small_x]
        if support.sum() < 200:
            support = np.ones_like(support)
        start = np.array(pose_params(coarse_pose, points.centre))
        refined, rms, gain = refine_similarity(points, luma.full, start, support)
        if not np.all(np.isfinite(refined)) or np.abs(refined[2:] - start[2:]).max() > 2.0 / self.factor:
            refined = start  # the direct fit ran off (a flat or changed picture): the flow's answer stands
        return pose_from_params(*refined, centre=points.centre), share, rms, gain


def _has_texture(luma: MotionLuma) -> bool:
    """Whether a frame has enough structure to be measured (not black, not a flat fade)."""
    small = luma.small
    gx = np.diff(small, axis=1)
    gy = np.diff(small, axis=0)
    return float(np.mean(np.abs(gx)) + np.mean(np.abs(gy))) > MIN_TEXTURE


@functools.lru_cache(maxsize=4)
def _centred_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y about the centre of a height x width image, float32 (read-only, shared)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    u -= (width - 1) / 2
    v -= (height - 1) / 2
    u.flags.writeable = False
    v.flags.writeable = False
    return u, v


def _flow_inliers(flow: np.ndarray, params: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels whose flow agrees with the global similarity within `tolerance` px (not moving objects)."""
    height, width = flow.shape[:2]
    u, v = _centred_grid(height, width)
    a, b, tx, ty = (float(x) for x in params)
    ex = flow[..., 0] - (a * u - b * v + tx)
    ey = flow[..., 1] - (b * u + a * v + ty)
    agree = (ex * ex + ey * ey) < tolerance * tolerance
    return cv2.erode(agree.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


# --------------------------------------------------------------------------------------------------------------
# intended camera path: what of the measured path the camera operator meant


LOCK_RATIO = 5.0  # a smoothed path spanning less than this many weave std is not told apart from weave
STATIC_TEST_PERIOD = 32.0  # frames; pure AR(1) weave (rho 0.6) passes as static > 99 % of the time at n >= 16
MIN_PERIOD, MAX_PERIOD = 4.0, 256.0


def cutoff_period(smoothing: float) -> float:
    """Shortest camera-move period kept, in frames, for a smoothing strength 0..1 (log scale 4 to 256 frames)."""
    return MIN_PERIOD * (MAX_PERIOD / MIN_PERIOD) ** float(np.clip(smoothing, 0.0, 1.0))


def whittaker_smooth(values: np.ndarray, period: float, iterations: int = 4,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Second-difference penalised (Whittaker/Hodrick-Prescott) smoothing with Huber reweighting.

    Zero phase, no end shrinkage, keeps a constant-velocity pan exactly; half power at `period` frames. Frames of
    weight 0 (unmeasured) are bridged by the smooth curve.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    base = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n < 3 or base.sum() < 2:
        return values.copy()
    lam = (period / (2 * np.pi)) ** 4
    # D2'D as a symmetric pentadiagonal matrix in upper banded storage
    d2 = np.zeros((3, n))
    main = np.full(n, 6.0)
    main[[0, -1]] = 1.0
    main[[1, -2]] = 5.0
    if n == 3:
        main = np.array([1.0, 4.0, 1.0])
    off1 = np.full(n - 1, -4.0)
    off1[[0, -1]] = -2.0
    d2[2] = lam * main
    d2[1, 1:] = lam * off1
    d2[0, 2:] = lam * 1.0
    robust = np.ones(n)
    smooth = values.copy()
    for _ in range(iterations):
        weights = base * robust
        banded = d2.copy()
        banded[2] += weights + 1e-9
        smooth = solveh_banded(banded, weights * values)
        residual = values - smooth
        scale = 1.4826 * np.median(np.abs(residual[base > 0])) + 1e-9
        robust = np.minimum(1.0, 2.5 * scale / np.maximum(np.abs(residual), 1e-12))
    return smooth


def looks_static(values: np.ndarray, floor: float, weights: np.ndarray | None = None) -> bool:
    """Whether a path is weave alone: its slow part spans at most LOCK_RATIO times the weave's robust std.

    The test uses a fixed period, independent of the user's smoothing, so locking does not flip with it.
    """
    values = np.asarray(values, dtype=np.float64)
    use = np.ones(values.size, bool) if weights is None else np.asarray(weights) > 0
    if use.sum() < 4:
        return True
    smooth = whittaker_smooth(values, STATIC_TEST_PERIOD, weights=use.astype(np.float64))
    residual = (values - smooth)[use]
    weave_std = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), floor)
    return float(smooth[use].max() - smooth[use].min()) <= LOCK_RATIO * weave_std


def robust_mean(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Huber mean: one badly registered frame does not move where a locked shot sits."""
    values = np.asarray(values, dtype=np.float64)
    if weights is not None and np.any(np.asarray(weights) > 0):
        values = values[np.asarray(weights) > 0]
    centre = float(np.median(values))
    for _ in range(5):
        residual = values - centre
        scale = 1.4826 * np.median(np.abs(residual)) + 1e-9
        weights = np.minimum(1.0, 2.0 * scale / np.maximum(np.abs(residual), 1e-12))
        centre = float(np.sum(weights * values) / np.sum(weights))
    return centre


# Camera-move models. Gate weave is red (AR(1)-like, frame-to-frame correlation about 0.6): most of its power is
# slow, so on a short shot a slow weave drift and a camera move cannot be told apart by frequency alone. Instead each
# axis is explained by the simplest move that leaves only weave behind -- held still, one constant-speed pan, a few
# constant-speed segments joined at breakpoints (Grundmann et al. 2011's constant / constant-velocity path pieces),
# or, when none of these does, the free smooth curve -- chosen by BIC with the weave's correlation whitened out.
WEAVE_CORRELATION = 0.6  # frame-to-frame correlation of gate weave assumed by the model choice
MAX_BREAKPOINTS = 3  # most constant-speed segments joined in one shot, minus one
MIN_SEGMENT = 4  # frames; shortest constant-speed segment
BREAKPOINT_COST = 3.0  # BIC parameters charged per breakpoint (its position and the speed change, plus a margin)
STILL_BONUS = 6.0  # BIC units in favour of holding still: a locked shot must not start drifting on weave alone
MAX_SEARCH = 240  # breakpoint candidates searched per segment at most (long shots: a coarser grid)
COMPLEXITY = 1.5  # penalty per parameter, in units of log(frames): a stricter prior for simple moves than BIC's 1
ACCEL_TERM_COST = 1.5  # BIC parameters per polynomial term beyond the pan's (no weave-only axis of 160 took it)
MIN_ACCELERATING = 24  # frames; shorter shots are not offered an accelerating move (weave drift looks like one)
REVERSAL_CHECK = True  # an accelerating move that turns back within the shot is not offered (False: as before)
SMOOTH_PERIODS = (1.0, 1.5, 2.25)  # the smooth curve is also tried at the smoothing period divided by these
MIN_SMOOTH_PERIOD = 6.0  # frames; no smooth camera move faster than this is offered
SMOOTH_COST = 1.0  # BIC parameters charged per effective degree of freedom of the free smooth curve


REML_SMOOTH = True  # a smooth move is as stiff as the shot's path says (False: the `smoothing` period's, as before)
REML_ORDER = 3  # the data-chosen smooth move penalises third differences: a steady acceleration is free
REML_STIFFNESS = tuple(float(v) for v in np.logspace(-1, 5, 25))  # stiffnesses the restricted likelihood picks from


def _banded_penalty(n: int, order: int) -> np.ndarray:
    """D'D of the `order`-th differences as upper banded storage (order + 1, n)."""
    stencil = np.diff(np.eye(2 * order + 1), order, axis=0)[0]
    band = np.zeros((order + 1, n))
    rows = n - order
    for a in range(order + 1):
        for b in range(a, order + 1):
            band[order - (b - a), b:b + rows] += stencil[a] * stencil[b]
    return band


def reml_smooth(values: np.ndarray, rho: float = WEAVE_CORRELATION, order: int = REML_ORDER) -> np.ndarray:
    """The smooth camera move whose stiffness the data choose: an `order`-th difference penalty against AR(1)
    weave, the stiffness maximising the restricted likelihood (REML; Wahba's GML for smoothing splines)."""
    return reml_fit(values, rho, order)[0]


def reml_fit(values: np.ndarray, rho: float = WEAVE_CORRELATION, order: int = REML_ORDER) -> tuple[np.ndarray, float]:
    """reml_smooth's path and the stiffness it chose (inf where none was fitted)."""
    y = np.asarray(values, dtype=np.float64)
    n = y.size
    if n <= order + 2:
        return y.copy(), math.inf
    # AR(1) precision (unit variance), tridiagonal, upper banded to match the penalty's storage
    precision = np.zeros((order + 1, n))
    precision[order] = (1 + rho * rho) / (1 - rho * rho)
    precision[order, [0, -1]] = 1 / (1 - rho * rho)
    precision[order - 1, 1:] = -rho / (1 - rho * rho)
    penalty = _banded_penalty(n, order)
    ry = _banded_product(precision, y)
    yry = float(y @ ry)
    best: tuple[float, np.ndarray] | None = None
    for lam in REML_STIFFNESS:
        try:
            factor = cholesky_banded(precision + lam * penalty)
        except np.linalg.LinAlgError:
            continue
        path = cho_solve_banded((factor, False), ry)
        rest = yry - float(ry @ path)  # the profiled weave variance's numerator
        if rest <= 0:
            continue
        score = (-0.5 * (n - order) * math.log(rest) + 0.5 * (n - order) * math.log(lam)
                 - float(np.sum(np.log(factor[-1]))))
        if best is None or score > best[0]:
            best = (score, path, lam)
    return (y.copy(), math.inf) if best is None else (best[1], best[2])


def _banded_product(band: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Symmetric upper banded matrix times a vector."""
    u = band.shape[0] - 1
    out = band[u] * x
    for k in range(1, u + 1):
        diagonal = band[u - k, k:]
        out[:-k] += diagonal * x[k:]
        out[k:] += diagonal * x[:-k]
    return out


def _whiten(values: np.ndarray, rho: float = WEAVE_CORRELATION) -> np.ndarray:
    """Prais-Winsten whitening of AR(1) noise along axis 0: GLS fits become ordinary least squares."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    out[0] = math.sqrt(1.0 - rho * rho) * values[0]
    out[1:] = values[1:] - rho * values[:-1]
    return out


def segment_basis(times: np.ndarray, breakpoints: list[float], span: float) -> np.ndarray:
    """Design matrix of a continuous piecewise-linear path (constant-speed segments) with the given breakpoints."""
    span = max(span, 1.0)
    columns = [np.ones_like(times), times / span] + [np.maximum(times - b, 0.0) / span for b in breakpoints]
    return np.stack(columns, 1)


def _gls_fit(design: np.ndarray, values: np.ndarray, robust: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and whitened residual sum of squares of a linear model under AR(1) weave, rows weighted by
    `robust`."""
    scale = np.sqrt(robust)
    white_x = _whiten(design * scale[:, None])
    white_y = _whiten(values * scale)
    coef, *_ = np.linalg.lstsq(white_x, white_y, rcond=None)
    residual = white_y - white_x @ coef
    return coef, float(residual @ residual)


def _huber_weights(residual: np.ndarray) -> np.ndarray:
    scale = 1.4826 * np.median(np.abs(residual)) + 1e-12
    return np.minimum(1.0, 2.5 * scale / np.maximum(np.abs(residual), 1e-12))


def _robust_gls(design: np.ndarray, values: np.ndarray, iterations: int = 3) -> tuple[np.ndarray, float]:
    """GLS fit (coefficients, RSS) with Huber reweighting: one badly registered frame does not bend a pan."""
    robust = np.ones(values.size)
    coef, rss = _gls_fit(design, values, robust)
    for _ in range(iterations):
        robust = _huber_weights(values - design @ coef)
        coef, rss = _gls_fit(design, values, robust)
    return coef, rss


def _whittaker_dof(count: int, period: float) -> float:
    """Effective number of parameters of whittaker_smooth (eigenvalues of the second-difference penalty)."""
    lam = (period / (2 * np.pi)) ** 4
    mu = (2.0 - 2.0 * np.cos(np.pi * np.arange(count) / count)) ** 2
    return float(np.sum(1.0 / (1.0 + lam * mu)))


def _breakpoint_candidates(times: np.ndarray, chosen: list[float]) -> list[float]:
    first, last = times[0] + MIN_SEGMENT, times[-1] - MIN_SEGMENT
    inner = times[(times >= first) & (times <= last)]
    stride = max(1, inner.size // MAX_SEARCH)
    return [float(t) for t in inner[::stride] if all(abs(t - c) >= MIN_SEGMENT for c in chosen)]


def _place_breakpoint(times: np.ndarray, values: np.ndarray, span: float,
                      breakpoints: list[float]) -> list[float] | None:
    """The breakpoints plus the one new breakpoint that best explains the values (GLS), or None if none fits."""
    options = _breakpoint_candidates(times, breakpoints)
    if not options:
        return None
    # all candidates at once: the RSS drop from one more column is (r_y . r_c)^2 / |r_c|^2, with r_y, r_c the
    # whitened values and column less their projection on the current segments
    basis, _ = np.linalg.qr(_whiten(segment_basis(times, breakpoints, span)))
    white = _whiten(values)
    rest = white - basis @ (basis.T @ white)
    columns = _whiten(np.maximum(times[:, None] - np.asarray(options)[None, :], 0.0) / max(span, 1.0))
    columns -= basis @ (basis.T @ columns)
    drop = (rest @ columns) ** 2 / np.maximum(np.sum(columns * columns, axis=0), 1e-12)
    return sorted(breakpoints + [options[int(np.argmax(drop))]])


def _refine_breakpoints(times: np.ndarray, values: np.ndarray, span: float, breakpoints: list[float],
                        sweeps: int = 2) -> list[float]:
    """Move each breakpoint in turn to its best place given the others: greedy placement alone puts the first
    breakpoint of a still-pan-still move between the two real ones."""
    if len(breakpoints) < 2:
        return breakpoints
    for _ in range(sweeps):
        moved = False
        for i in range(len(breakpoints)):
            others = breakpoints[:i] + breakpoints[i + 1:]
            best = _place_breakpoint(times, values, span, others)
            if best is not None and best != sorted(breakpoints):
                breakpoints, moved = best, True
        if not moved:
            break
    return breakpoints


def _reverses(coef: np.ndarray, times: np.ndarray) -> bool:
    """Whether the polynomial move `coef` (highest power first) turns back within `times`: its speed changes
    sign."""
    speed = np.polyval(np.polyder(coef), times)
    return bool(speed.max() > 0 > speed.min())


@dataclass
class CameraMove:
    """The intended path of one axis and the model that explains it: still, pan, segments or smooth."""

    path: np.ndarray
    model: str
    breakpoints: list[float] = field(default_factory=list)


def _charged_bic(rss: float, count: int, floor: float, parameters: float) -> float:
    """BIC of a whitened RSS over `count` frames, measurement noise of `floor` (px) counted as explained, each
    parameter charged COMPLEXITY times BIC's: the charge every camera-move account is chosen by."""
    noise = count * floor * floor  # whitened RSS that measurement noise alone explains
    return count * math.log((rss + noise) / count) + COMPLEXITY * math.log(count) * parameters


def camera_move(values: np.ndarray, weights: np.ndarray, period: float, floor: float,
                allow_still: bool = True, allow_smooth: bool = True) -> CameraMove:
    """Simplest camera move (by BIC under AR(1) weave) that explains one axis of a shot's measured path.

    Candidates: still (if `allow_still`), one constant-speed pan, up to MAX_BREAKPOINTS breakpoints between
    constant-speed segments (placed greedily), and (if `allow_smooth`) the free smooth curve of `period`. `floor` is
    the measurement noise below which differences do not count.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    use = np.asarray(weights) > 0
    times = np.nonzero(use)[0].astype(np.float64)
    count = times.size
    if count < 4:  # too few frames to tell a move from weave
        if allow_still:
            return CameraMove(np.full(n, robust_mean(values, weights)), "still")
        return CameraMove(whittaker_smooth(values, period, weights=use.astype(np.float64)), "smooth")
    seen = values[use]
    all_times = np.arange(n, dtype=np.float64)
    span = float(times[-1] - times[0])

    def bic(rss: float, parameters: float) -> float:
        return _charged_bic(rss, count, floor, parameters)

    candidates: list[tuple[float, CameraMove]] = []
    if allow_still:
        level = robust_mean(values, weights)
        _, rss = _gls_fit(np.ones((count, 1)), seen - level, np.ones(count))
        candidates.append((bic(rss, 1) - STILL_BONUS, CameraMove(np.full(n, level), "still")))
    breakpoints: list[float] = []
    for extra in range(MAX_BREAKPOINTS + 1):
        if extra:
            added = _place_breakpoint(times, seen, span, breakpoints)
            if added is None:
                break
            breakpoints = _refine_breakpoints(times, seen, span, added)
        coef, rss = _robust_gls(segment_basis(times, breakpoints, span), seen)
        path = segment_basis(all_times, breakpoints, span) @ coef
        candidates.append((bic(rss, 2 + BREAKPOINT_COST * extra),
                           CameraMove(path, "pan" if not extra else "segments", list(breakpoints))))
    # a steadily accelerating (or slowing) pan, tilt or zoom: one smooth curve, no breakpoint where the speed changes.
    # A curve whose speed changes sign is a move that turns back, not a steady acceleration: the whitening hardly
    # sees a slow misfit, so a parabola through a turn passes BIC yet misses it by about 1 px (the bench's
    # city-weave dy, 34 frames: 0.96 px of residual jitter against 0.38 for the smooth curve)
    centre_t, scale_t = 0.5 * (times[0] + times[-1]), max(span / 2, 1.0)
    refused = False  # an accelerating move was refused because it turns back within the shot
    for degree in (2, 3):
        if count < MIN_ACCELERATING:
            break
        coef, rss = _robust_gls(np.vander((times - centre_t) / scale_t, degree + 1), seen)
        if REVERSAL_CHECK and _reverses(coef, (times - centre_t) / scale_t):
            refused = True
            continue
        path = np.vander((all_times - centre_t) / scale_t, degree + 1) @ coef
        # each term beyond the pan's is charged like a breakpoint: weave's slow drift must not pass for a move
        candidates.append((bic(rss, 2 + ACCEL_TERM_COST * (degree - 1)), CameraMove(path, "accelerating")))
    # the free smooth curve at the `smoothing` period and, where the data call for it (a vehicle's sway, a hand-held
    # camera), at shorter ones: each charged its effective degrees of freedom
    for shorter in SMOOTH_PERIODS if allow_smooth else ():
        cut = max(period / shorter, MIN_SMOOTH_PERIOD) if shorter > 1 else period
        if shorter > 1 and cut >= period:
            continue
        smooth = whittaker_smooth(values, cut, weights=use.astype(np.float64))
        white = _whiten(values[use] - smooth[use])
        candidates.append((bic(float(white @ white), SMOOTH_COST * _whittaker_dof(count, cut)),
                           CameraMove(smooth, "smooth")))
    chosen = min(candidates, key=lambda c: c[0])[1]
    if REML_SMOOTH and chosen.model == "smooth" and count >= MIN_ACCELERATING:
        # no simple move explains the shot: the smooth move is as stiff as the shot's own path says (restricted
        # likelihood under AR(1) weave), not as the `smoothing` period says. Not on short shots, where the weave's
        # slow drift passes for a bend (the bench's 16-frame monarch pan: 0.55 -> 0.89 px)
        path, stiffness = reml_fit(seen)
        # at its stiffest the restricted likelihood's curve is the steady acceleration itself: where that move was
        # refused as turning back, the smooth curve stays the `smoothing` period's
        if not (refused and stiffness >= REML_STIFFNESS[-1]):
            chosen = CameraMove(np.interp(all_times, times, path), "smooth")
    return chosen



JOLT_SIGMAS = 5.0  # a frame this many weave steps (robust std) off its local median (and JOLT_MIN_PX) is a jolt
JOLT_MIN_PX = 3.0
JOLT_MAX_FRAMES = 3  # a jolt or splice jump displaces at most this many frames and returns
KEEP_SIGMAS = 2.0  # a slow departure from the camera-move model this many times what weave gives is the camera's
SLOW_WEAVE = 0.91  # RMS of AR(1) weave's slow part (periods > SHAKE_PERIOD) per robust std of its frame steps
SHAKE_PERIOD = 6.0  # frames; the shake that is kept is this smooth


def weave_level(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Robust std of a path's weave from its frame-to-frame differences (AR(1): var(diff) = 2 (1 - rho) var); a
    constant speed and a few jolts do not count."""
    values = np.asarray(values, dtype=np.float64)
    if weights is not None:
        values = values[np.asarray(weights) > 0]
    if values.size < 4:
        return 0.0
    steps = np.diff(values)
    return float(1.4826 * np.median(np.abs(steps - np.median(steps))) / math.sqrt(2 * (1 - WEAVE_CORRELATION)))


def find_jolts(motion: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Frames displaced far beyond the shot's weave for at most JOLT_MAX_FRAMES frames and returning (a camera
    bump, a splice jump): they are left out of the camera model and corrected back onto it."""
    from scipy.ndimage import median_filter

    motion = np.asarray(motion, dtype=np.float64)
    n = motion.shape[0]
    use = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    jolts = np.zeros(n, bool)
    index = np.nonzero(use)[0]
    if index.size < 2 * JOLT_MAX_FRAMES + 3:
        return jolts
    for axis in (0, 1):
        values = motion[index, axis]
        local = median_filter(values, size=2 * JOLT_MAX_FRAMES + 3, mode="nearest")
        residual = values - local  # weave (and shake) faster than the median follows, and the jolts
        steps = np.diff(values)
        sigma = 1.4826 * float(np.median(np.abs(steps - np.median(steps))))  # the weave's frame-to-frame level
        off = np.abs(residual) > max(JOLT_SIGMAS * sigma, JOLT_MIN_PX)
        jolts[index[off]] = True
    return jolts


def bend_level(values: np.ndarray) -> float:
    """The weave's frame-to-frame level (robust std of its steps) from second differences, which a slow sway hardly
    reaches (AR(1) 0.6: var(diff) / var(second diff) = 2 (1 - rho) / (6 - 8 rho + 2 rho^2))."""
    bends = np.diff(values, 2)
    rho = WEAVE_CORRELATION
    return (1.4826 * float(np.median(np.abs(bends - np.median(bends))))
            * math.sqrt(2 * (1 - rho) / (6 - 8 * rho + 2 * rho * rho)))


def follow_shake(values: np.ndarray, path: np.ndarray, weights: np.ndarray, floor: float) -> np.ndarray:
    """The model path plus the part of the measured path's slow departure from it that weave cannot explain (a
    vehicle's sway, a hand-held camera, a move the model does not fit): corrections larger than the shot's weave are
    not forced.

    Weave is red, so its slow part is told from a real move by amplitude only: the departure's slow part (periods
    over SHAKE_PERIOD) is kept with the Wiener gain 1 - (KEEP_SIGMAS s_w / s)^2, where s is its RMS and s_w the RMS
    weave of the shot's measured frame-to-frame level would give it; weave alone keeps nothing.
    """
    use = np.asarray(weights) > 0
    if use.sum() < 6:
        return path
    departure = np.asarray(values, dtype=np.float64) - path
    step_sigma = max(bend_level(departure[use]), floor)
    slow = whittaker_smooth(departure, SHAKE_PERIOD, weights=use.astype(np.float64))
    rms = float(np.sqrt(np.mean(slow[use] ** 2)))
    gain = 1.0 - (KEEP_SIGMAS * SLOW_WEAVE * step_sigma / max(rms, 1e-12)) ** 2
    if gain <= 0:
        return path
    return path + gain * slow


# A slow excursion (a vehicle pitching, a tilt down and back) is a camera move when its level stands off the rest of
# the shot's by more than the weave measured there makes plausible. Without this, a still (or pan) model centred on a
# level the excursion pulls, and a shake rule that weighs its power over the whole shot, corrected it away (Market
# Street's 9.7 px dip over 25 frames, against 1.5 px of weave where the car held level, was corrected by 7.5 px).
EXCURSION_SIGMAS = 6.0  # pure AR(1) weave's strongest run stands this far off in 0.7 % of 24-frame shots, 0.05-0.2 %
# of 48-60 frame ones and none of 800 of 150-400 frames
MIN_EXCURSION = 8  # frames: shorter departures are jolts or weave (a jolt is at most JOLT_MAX_FRAMES)
MIN_HELD = 12  # frames the camera must hold (the rest of the shot) for the weave's spread to be measured there
MAX_EXCURSIONS = 3  # per axis and shot
MAX_EXCURSION = 120  # frames: longer departures are not looked for (and the search stays linear in the shot)
EXCURSION_PERIOD = 0.7  # an excursion is followed at a period of 0.7 times its run: its shape, not its weave
MAX_GAPPED_SHOT = 2000  # frames; see _strongest_excursion
MIN_EXCURSION_SHOT = 24  # frames; shorter shots are not searched (the weave's slow drift fills them)
# where the smooth curve was chosen: the held frames' least share of the shot. The search already keeps the run to
# half the shot at most; at 0.6, pitches of 25-26 of 48 frames fell back to the smooth curve, which follows the weave
# where the camera held (pitch clips: path 0.445 -> 0.402 px over 12 seeds, the vehicle's unchanged)
HELD_SHARE = 0.5
HELD_SPREAD = 1.2  # ... and their spread's most, in weave std from the frame-to-frame level (AR(1) 0.6)


def _block_variance(length: np.ndarray) -> np.ndarray:
    """Variance of the sum of `length` consecutive AR(1) weave values of unit variance."""
    rho = WEAVE_CORRELATION
    length = np.asarray(length, dtype=np.float64)
    return length * (1 + rho) / (1 - rho) - 2 * rho * (1 - rho ** length) / (1 - rho) ** 2


def _block_covariance(first: np.ndarray, second: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Covariance of the sums of two blocks of unit AR(1) weave `gap` frames apart (0: adjacent)."""
    rho = WEAVE_CORRELATION
    return rho ** (np.asarray(gap) + 1.0) * (1 - rho ** first) * (1 - rho ** second) / (1 - rho) ** 2


def _gapped_sums(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums of the unit AR(1) weave's covariance at these frame times: over blocks (n+1, n+1) and over
    columns (n+1,), for _gapped_shares."""
    n = times.size
    covariance = WEAVE_CORRELATION ** np.abs(times[:, None] - times[None, :])
    block = np.zeros((n + 1, n + 1))
    block[1:, 1:] = np.cumsum(np.cumsum(covariance, 0), 1)
    return block, np.concatenate([[0.0], np.cumsum(covariance.sum(0))])


def _gapped_shares(sums: tuple[np.ndarray, np.ndarray], length: int) -> np.ndarray:
    """Variance (unit weave) of a run's mean less the rest's, for each run of `length` values: frames left out
    (jolts, earlier excursions) are frames apart, not neighbours."""
    block, columns = sums
    n = columns.size - 1
    rest = float(n - length)
    start = np.arange(n - length + 1)
    stop = start + length
    inner = block[stop, stop] - 2 * block[start, stop] + block[start, start]  # the run with itself
    across = columns[stop] - columns[start]  # the run with every value
    run, other = 1.0 / length + 1.0 / rest, 1.0 / rest
    return other * other * block[n, n] - 2 * other * run * across + run * run * inner


def _strongest_excursion(values: np.ndarray, times: np.ndarray | None = None) -> tuple[float, int, int]:
    """The run [start, stop) whose mean stands furthest off the rest's mean, in standard errors of that difference
    under AR(1) weave with the rest's own spread: (z, start, stop); (0, 0, 0) where no run fits. `times`: the
    values' frames where some were left out."""
    n = values.size
    # where frames were left out the closed form's neighbours are frames apart: their covariance is smaller (a
    # shallow dip with a jolt at its bottom). Longer shots keep the closed form (conservative): n^2 memory
    gapped = times is not None and n <= MAX_GAPPED_SHOT and bool(np.any(np.diff(times) > 1))
    sums = _gapped_sums(np.asarray(times, np.float64)) if gapped else None
    total = np.concatenate([[0.0], np.cumsum(values)])
    squares = np.concatenate([[0.0], np.cumsum(values * values)])
    best = (0.0, 0, 0)
    # the camera holds longer than it departs, and at least MIN_HELD frames
    for length in range(MIN_EXCURSION, min(n - MIN_HELD, n // 2, MAX_EXCURSION) + 1):
        rest = float(n - length)
        before = np.arange(n - length + 1, dtype=np.float64)  # frames before the run
        after = rest - before
        run_sum = total[length:] - total[:-length]
        outside = (total[-1] - run_sum) / rest
        spread = np.maximum((squares[-1] - (squares[length:] - squares[:-length])) / rest - outside ** 2, 0.0)
        if sums is not None:
            share = _gapped_shares(sums, length)
        else:
            share = (_block_variance(length) / length ** 2
                     + (_block_variance(before) + _block_variance(after)
                        + 2 * _block_covariance(before, after, length)) / rest ** 2
                     - 2 * (_block_covariance(length, before, 0) + _block_covariance(length, after, 0))
                     / (length * rest))
        z = (run_sum / length - outside) / np.sqrt(np.maximum(share * spread * rest / (rest - 1), 1e-18))
        start = int(np.argmax(np.abs(z)))
        if abs(z[start]) > abs(best[0]):
            best = (float(z[start]), start, start + length)
    return best


def find_excursions(departure: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Frames of slow excursions from the camera model: runs of MIN_EXCURSION frames or more whose mean stands
    EXCURSION_SIGMAS standard errors off the rest of the shot, the weave's spread measured on that rest."""
    index = np.nonzero(np.asarray(weights) > 0)[0]
    found = np.zeros(departure.size, bool)
    if index.size < MIN_EXCURSION_SHOT:
        return found
    free = np.ones(index.size, bool)
    for _ in range(MAX_EXCURSIONS):
        left = np.nonzero(free)[0]
        z, start, stop = _strongest_excursion(np.asarray(departure, dtype=np.float64)[index[left]], index[left])
        if abs(z) < EXCURSION_SIGMAS:
            break
        free[left[start:stop]] = False
        found[index[left[start]]:index[left[stop - 1]] + 1] = True
    return found


# An excursion's shape: a dip eased in and out (sin^2), symmetric or not, fitted by GLS under AR(1) weave over a grid
# of begins, peaks and ends around the run, is kept where it explains the departure better (by BIC) than the smooth
# follower, which follows the weave within the excursion too. A pitch is a few parameters; the follower's period of
# 0.7 times the run passes its weave's slow part (pitch clips: jitter 0.150 -> 0.112 px over 24 seeds' paths)
DIP_PARAMETERS = 4  # BIC parameters of the symmetric dip (begin, end, depth, and the choice among the grid's
# candidates); the asymmetric one adds its peak
DIP_CHANCE = 1e-4  # candidates less likely than this share of the best one are left out of the average


def dip_shape(times: np.ndarray, begin: np.ndarray, peak: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A dip and return: sin^2 easing from 0 at `begin` to 1 at `peak` and back to 0 at `end`, 0 elsewhere;
    broadcasts (candidates, 1) against times."""
    # the way down (past 1 after the peak) or back (past 1 before it), whichever is less: negative outside the dip
    phase = (times - begin) * (np.pi / np.maximum(peak - begin, 1e-9))
    np.minimum(phase, (end - times) * (np.pi / np.maximum(end - peak, 1e-9)), out=phase)
    np.clip(phase, 0.0, np.pi, out=phase)
    np.cos(phase, out=phase)
    return np.multiply(phase, -0.5, out=phase) + 0.5  # sin^2(pi/2 phase), 0 outside [begin, end]


def _fit_dips(departure: np.ndarray, use: np.ndarray, begin: np.ndarray, peak: np.ndarray,
              end: np.ndarray) -> np.ndarray:
    """The candidate dips' depths by GLS under AR(1) weave on the frames around them, and the candidates' mean
    weighted by likelihood (a flat prior; the weave's level from the best fit): the best one alone follows the weave
    into its begin and end."""
    n = departure.size
    first, last = max(int(np.floor(begin.min())) - 3, 0), min(int(np.ceil(end.max())) + 4, n)
    frames = np.arange(first, last, dtype=np.float64)[None, :]  # no candidate reaches beyond them
    shapes = dip_shape(frames, begin[:, None], peak[:, None], end[:, None])
    seen = use[first:last]
    white = _whiten(departure[first:last][seen])
    white_shapes = _whiten(shapes[:, seen].T).T
    power = np.einsum("ij,ij->i", white_shapes, white_shapes)
    match = white_shapes @ white
    depth = match / np.maximum(power, 1e-12)
    rss = white @ white - depth * match
    best = int(np.argmin(rss))
    variance = max(float(rss[best]) / max(white.size - 3, 1), 1e-12)
    chance = np.exp(-(rss - rss[best]) / (2 * variance))
    keep = chance > DIP_CHANCE
    chance = chance[keep] / chance[keep].sum()
    path = np.zeros(n)
    path[first:last] = (chance * depth[keep]) @ shapes[keep]
    return path


def fit_dips(departure: np.ndarray, use: np.ndarray, start: int, stop: int) -> list[tuple[np.ndarray, float]]:
    """The dip around the excursion [start, stop) as (path, BIC parameters): the symmetric one and the
    asymmetric one (a quick dip and a slow return, or the reverse). Begins and ends lie within a run's length of the
    run's own (a dip may begin before the shot or end after it)."""
    run = stop - start
    step = max(0.5, run / 20.0)
    begins = np.arange(start - run, start + run / 2 + 1e-9, step)
    ends = np.arange(stop - run / 2, stop + run + 1e-9, step)
    begin, end = (grid.ravel() for grid in np.meshgrid(begins, ends, indexing="ij"))
    keep = end - begin >= MIN_EXCURSION
    fits = [(_fit_dips(departure, use, begin[keep], (begin[keep] + end[keep]) / 2, end[keep]), DIP_PARAMETERS)]
    step = max(1.0, run / 10.0)  # a coarser grid in three dimensions: the average smooths it
    begins = np.arange(start - run, start + run / 2 + 1e-9, step)
    ends = np.arange(stop - run / 2, stop + run + 1e-9, step)
    peaks = np.arange(start, stop + 1e-9, step)
    begin, peak, end = (grid.ravel() for grid in np.meshgrid(begins, peaks, ends, indexing="ij"))
    keep = (end - begin >= MIN_EXCURSION) & (peak - begin >= 2) & (end - peak >= 2)
    fits.append((_fit_dips(departure, use, begin[keep], peak[keep], end[keep]), DIP_PARAMETERS + 1))
    return fits


def _excursion_bic(departure: np.ndarray, use: np.ndarray, path: np.ndarray, parameters: float) -> float:
    count = int(np.count_nonzero(use))
    white = _whiten((departure - path)[use])
    return count * math.log(max(float(white @ white), 1e-12) / count) + parameters * math.log(count)


def follow_excursions(departure: np.ndarray, weights: np.ndarray,
                      excursions: np.ndarray) -> tuple[np.ndarray, float]:
    """The excursions as the camera made them, and the BIC parameters that costs: a lone excursion as a dip eased
    in and out (fit_dips) where that explains it better; otherwise (and several) each one's departure, widened to
    where its slow part returns to the model, smoothed at a period of EXCURSION_PERIOD times its run's length and
    held at 0 around it."""
    departure = np.asarray(departure, dtype=np.float64)
    n = departure.size
    use = (np.asarray(weights) > 0).astype(np.float64)
    slow = whittaker_smooth(departure, SHAKE_PERIOD, weights=use)
    kept = np.zeros(n)
    parameters = 0.0
    edges = np.diff(np.concatenate([[0], excursions.astype(np.int8), [0]]))
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    for start, stop in zip(starts, stops):
        period = max(EXCURSION_PERIOD * (stop - start), MIN_SMOOTH_PERIOD)
        side = np.sign(np.mean(slow[start:stop]))
        while start > 0 and slow[start - 1] * side > 0:
            start -= 1
        while stop < n and slow[stop] * side > 0:
            stop += 1
        # a Whittaker smooth (one pass, no reweighting) whose frames around the excursion are pinned to the model
        span = np.zeros(n, bool)
        span[start:stop] = True
        kept[span] = whittaker_smooth(np.where(span, departure, 0.0), period, iterations=1,
                                      weights=np.where(span, use, 1e6))[span]
        parameters += _whittaker_dof(stop - start, period)
    if starts.size == 1:
        seen = use > 0
        fits = [(kept, parameters)] + fit_dips(departure, seen, int(starts[0]), int(stops[0]))
        kept, parameters = min(fits, key=lambda fit: _excursion_bic(departure, seen, *fit))
    return kept, parameters


RETURN_FRAMES = 4  # where segments were chosen, an excursion leaves this many frames held on either side: a dip and
# return, not a pan that starts or stops within the shot


def _move_bic(values: np.ndarray, weights: np.ndarray, path: np.ndarray, parameters: float, floor: float) -> float:
    """BIC of a path as an account of one axis under AR(1) weave, as camera_move charges it."""
    use = np.asarray(weights) > 0
    white = _whiten((values - path)[use])
    return _charged_bic(float(white @ white), int(np.count_nonzero(use)), floor, parameters)


def held_move(values: np.ndarray, weights: np.ndarray, period: float, floor: float, allow_still: bool,
              chosen: CameraMove) -> tuple[CameraMove, np.ndarray] | None:
    """The camera move refitted where the camera held, and the slow excursions from it; None where there are none.

    Where the free smooth curve (or segments) was chosen, it follows the weave where the camera held too: a held
    camera with one excursion is told as held plus the excursion where the held frames are at least half the shot
    (HELD_SHARE) and spread no more than the weave's frame-to-frame level makes plausible (HELD_SPREAD; a vehicle's
    sway fails this)."""
    smooth = chosen.model in ("smooth", "segments")
    if smooth and not allow_still:
        return None
    departure = values - (np.full(values.size, robust_mean(values, weights)) if smooth else chosen.path)
    excursions = find_excursions(departure, weights)
    if not excursions.any():
        return None
    held = np.where(excursions, 0.0, weights)
    base = camera_move(values, held, period, floor, allow_still, False)
    if smooth:
        runs = np.count_nonzero(np.diff(excursions.astype(np.int8)) == 1) + int(excursions[0])
        use, kept = np.asarray(weights) > 0, held > 0
        if (runs > 1 or np.count_nonzero(kept) < HELD_SHARE * np.count_nonzero(use) or base.model != "still"
                or np.std((values - base.path)[kept]) > HELD_SPREAD * bend_level((values - base.path)[use])
                / math.sqrt(2 * (1 - WEAVE_CORRELATION))):
            return None
    return base, excursions


def intended_path(motion: np.ndarray, smoothing: float, mode: str = "smooth", reference: str = "mean",
                  lock_static: bool = True, measured: np.ndarray | None = None,
                  fit_moves: bool = True) -> tuple[np.ndarray, list[str]]:
    """Intended camera path (n, 4) from the measured one, and the model of each of dx, dy, rotation ("still" is
    locked to one position).

    `tripod` locks dx, dy and rotation to the reference position. `smooth` with `fit_moves` follows the simplest
    camera move that explains each axis (see camera_move; holding still only with `lock_static`) and, on dx and dy,
    the slow excursions from it that stand beyond the weave (find_excursions); without it, the
    axes are locked where no move stands out from the weave (`lock_static`) and otherwise smoothed with the cutoff
    period. Scale (zoom) is never corrected: gate weave does not zoom. Frames not `measured` do not count.
    """
    motion = np.asarray(motion, dtype=np.float64)
    n = motion.shape[0]
    weights = np.ones(n) if measured is None else np.asarray(measured, dtype=np.float64)
    valid = np.nonzero(weights > 0)[0]
    period = cutoff_period(smoothing)
    intended = motion.copy()
    models: list[str] = []
    floors = (0.02, 0.02, 2e-5)  # px, px, rad: below this the weave is not measurable
    for axis in range(3):
        values = motion[:, axis]
        if mode == "tripod":
            if reference == "first" and valid.size:
                level = values[valid[0]]
            elif reference == "middle" and valid.size:
                level = values[valid[np.argmin(np.abs(valid - (n - 1) / 2))]]
            else:
                level = robust_mean(values, weights)
            intended[:, axis] = level
            model = "still"
        elif fit_moves and smoothing > 0:
            move = camera_move(values, weights, period, floors[axis], allow_still=lock_static)
            intended[:, axis] = move.path
            model = move.model
            if axis < 2:
                held = held_move(values, weights, period, floors[axis], lock_static, move)
                if held is not None:
                    base, excursions = held
                    kept, parameters = follow_excursions(values - base.path, weights, excursions)
                    # constant-speed segments draw a dip as a V (5 of 16 pitches of 96 frames): held plus the dip
                    # where the dip returns within the shot and is the simpler account by camera_move's BIC; a pan
                    # that stops is no held level and a ramp
                    inside = np.nonzero(excursions)[0]
                    if move.model != "segments" or (
                            inside[0] >= RETURN_FRAMES and inside[-1] < n - RETURN_FRAMES
                            and _move_bic(values, weights, base.path + kept, 1 + parameters, floors[axis])
                            < _move_bic(values, weights, move.path, 2 + BREAKPOINT_COST * len(move.breakpoints),
                                        floors[axis])):
                        intended[:, axis] = base.path + kept
                        model = base.model + "+excursion"
        elif lock_static and looks_static(values, floors[axis], weights):
            intended[:, axis] = robust_mean(values, weights)
            model = "still"
        elif smoothing > 0:
            intended[:, axis] = whittaker_smooth(values, period, weights=weights)
            model = "smooth"
        else:
            model = "none"
        if model != "none" and mode != "tripod":
            followed = follow_shake(values, intended[:, axis], weights, floors[axis])
            if not np.array_equal(followed, intended[:, axis]):
                intended[:, axis] = followed
                model += "+shake"
        models.append(model)
    return intended, models


def clamp_correction(measured: np.ndarray, intended: np.ndarray, max_shift: float,
                     size: tuple[int, int], jolts: np.ndarray | None = None) -> np.ndarray:
    """Intended path pulled back toward the measured one where a correction would move any corner > max_shift
    (twice that for a jolt, which is displaced further than weave ever goes)."""
    width, height = size
    half_diagonal = 0.5 * math.hypot(width, height)
    correction = intended[:, :3] - measured[:, :3]
    reach = np.hypot(correction[:, 0], correction[:, 1]) + np.abs(correction[:, 2]) * half_diagonal
    limit = np.full(reach.shape, float(max_shift))
    if jolts is not None:
        limit[np.asarray(jolts, bool)] *= 2.0
    factor = np.where(reach > limit, limit / np.maximum(reach, 1e-12), 1.0)
    clamped = measured.copy()
    clamped[:, :3] = measured[:, :3] + correction * factor[:, None]
    clamped[:, 3] = measured[:, 3]
    return clamped


# --------------------------------------------------------------------------------------------------------------
# per-shot correction


@dataclass
class ShotWeave:
    """A shot's measured and intended camera paths and, per frame, the map from output to source pixels."""

    start: int
    width: int
    height: int
    measured: np.ndarray   # (n, 4) dx, dy, rotation (rad), log scale: where each frame's picture sits
    intended: np.ndarray   # (n, 4) where it should sit (smoothed / locked, clamped)
    models: list[str]      # per axis (dx, dy, rotation): still, pan, segments, accelerating, smooth or none
    zoom: float = 1.0      # the shot's single crop zoom (border=crop), else 1
    jolts: list[int] = field(default_factory=list)  # clip indices of frames corrected as jolts or splice jumps
    gate: Gate = field(default_factory=Gate)  # black bars: kept where they are, never warped or used to fill
    _record: dict[str, object] | None = field(default=None, init=False, repr=False)

    @property
    def locked(self) -> list[bool]:
        """dx, dy, rotation locked to one position over the shot."""
        return [model == "still" for model in self.models]

    @property
    def centre(self) -> tuple[float, float]:
        return (self.width - 1) / 2, (self.height - 1) / 2

    def measured_pose(self, index: int) -> Pose:
        return pose_from_motion(*self.measured[index - self.start], centre=self.centre)

    def intended_pose(self, index: int) -> Pose:
        return pose_from_motion(*self.intended[index - self.start], centre=self.centre)

    def sampling(self, index: int, source: int | None = None) -> np.ndarray:
        """2x3 map output pixel -> pixel of frame `source` (default: the frame itself) showing the same content."""
        source = index if source is None else source
        matrix = self.measured_pose(source) @ np.linalg.inv(self.intended_pose(index)) @ self.zoom_matrix()
        return matrix[:2]

    def zoom_matrix(self) -> np.ndarray:
        """Display -> pre-zoom coordinates: the crop's magnification about the frame centre."""
        cx, cy = self.centre
        s = 1.0 / self.zoom
        return np.array([[s, 0.0, cx * (1 - s)], [0.0, s, cy * (1 - s)], [0.0, 0.0, 1.0]])

    def weave(self, index: int) -> dict[str, float]:
        """The frame's estimated weave (measured minus intended position): dx, dy px, rotation degrees (CCW)."""
        d = self.measured[index - self.start] - self.intended[index - self.start]
        return {"dx": float(d[0]), "dy": float(d[1]), "rotation_deg": float(-math.degrees(d[2]))}

    def path_record_cached(self) -> dict[str, object]:
        """path_record, built once per shot and shared by every frame's side data."""
        if self._record is None:
            self._record = self.path_record()
        return self._record

    def path_record(self) -> dict[str, object]:
        """The whole shot's measured and intended paths (JSON-ready) for a plot."""
        def deg(values: np.ndarray) -> list[float]:
            return [round(-math.degrees(v), 5) for v in values]

        return {"start": self.start, "locked": {"dx": self.locked[0], "dy": self.locked[1],
                                                "rotation": self.locked[2]}, "zoom": round(self.zoom, 6),
                "models": dict(zip(("dx", "dy", "rotation"), self.models)), "jolts": list(self.jolts),
                "gate": self.gate.to_dict(),
                "measured_dx": np.round(self.measured[:, 0], 4).tolist(),
                "measured_dy": np.round(self.measured[:, 1], 4).tolist(),
                "measured_rotation_deg": deg(self.measured[:, 2]),
                "intended_dx": np.round(self.intended[:, 0], 4).tolist(),
                "intended_dy": np.round(self.intended[:, 1], 4).tolist(),
                "intended_rotation_deg": deg(self.intended[:, 2])}


def crop_zoom(shot: ShotWeave) -> float:
    """Smallest zoom about the centre that keeps every output pixel of the shot inside its source frame."""
    width, height = shot.width, shot.height
    cx, cy = shot.centre
    corners = np.array([[-cx, -cy], [cx, -cy], [-cx, cy], [cx, cy]])
    scale = 1.0
    for index in range(shot.start, shot.start + shot.measured.shape[0]):
        matrix = shot.measured_pose(index) @ np.linalg.inv(shot.intended_pose(index))
        centre = matrix[:2, :2] @ np.array([cx, cy]) + matrix[:2, 2]
        for corner in corners:
            step = matrix[:2, :2] @ corner
            inside = EDGE - 1e-3  # a hair within the tolerance, so rounding never uncovers a corner
            for axis, limit in ((0, width - 1 + inside), (1, height - 1 + inside)):
                # centre + s * step must stay within [-EDGE, limit] on this axis
                if step[axis] > 1e-12:
                    scale = min(scale, (limit - centre[axis]) / step[axis])
                elif step[axis] < -1e-12:
                    scale = min(scale, (-inside - centre[axis]) / step[axis])
    return 1.0 / max(scale, 0.05)
