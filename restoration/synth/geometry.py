"""Frame geometry of the simulator: intended pan, gate weave and the downscale for super-resolution.

Warps use scipy's prefiltered cubic B-spline at exact sub-pixel positions: OpenCV's warpAffine/remap quantise
positions to 1/32 px, which would make the "true" weave wrong by up to 0.016 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from restoration.errors import ParamError

SPLINE_ORDER = 3
SPLINE_BORDER_PX = 3  # keep this many valid source pixels around anything sampled with the spline


@dataclass(frozen=True)
class ClipGeometry:
    """Where each output frame comes from in the source (x, y order everywhere)."""

    source_size: tuple[int, int]      # (width, height) of the source frames
    canvas_size: tuple[int, int]      # (width, height) of the film frame carrying the damage (output + weave margin)
    output_size: tuple[int, int]      # (width, height) of truth and degraded frames (before the SR downscale)
    weave_margin: int                 # px of canvas around the output on each side
    canvas_origin: tuple[float, float]  # source position of the canvas's top-left at frame 0 (pan adds to it)

    def to_dict(self) -> dict:
        return {"source_size": list(self.source_size), "canvas_size": list(self.canvas_size),
                "output_size": list(self.output_size), "weave_margin": self.weave_margin,
                "canvas_origin": list(self.canvas_origin)}


def weave_margin_px(size: tuple[int, int], translation_sigma: float, rotation_sigma_deg: float) -> int:
    """Canvas margin that holds the largest (3 sigma) weave of a frame of `size` = (width, height)."""
    half_diagonal = 0.5 * math.hypot(*size)
    reach = 3 * translation_sigma * math.sqrt(2) + math.radians(3 * rotation_sigma_deg) * half_diagonal
    return int(math.ceil(reach)) + SPLINE_BORDER_PX


def plan_geometry(source_size: tuple[int, int], n_frames: int, pan_px_per_frame: tuple[float, float],
                  weave_margin: int, multiple_of: int = 1) -> ClipGeometry:
    """Crop plan: the output is the source less the pan's travel and the weave margin, cut to even sizes."""
    width, height = source_size
    vx, vy = pan_px_per_frame
    travel = (abs(vx) * (n_frames - 1), abs(vy) * (n_frames - 1))
    cropping = weave_margin > 0 or travel != (0.0, 0.0)
    border = SPLINE_BORDER_PX if travel != (0.0, 0.0) else 0
    canvas = [width - int(math.ceil(travel[0])) - 2 * border, height - int(math.ceil(travel[1])) - 2 * border]
    out = [canvas[0] - 2 * weave_margin, canvas[1] - 2 * weave_margin]
    step = multiple_of * (2 if cropping else 1)
    out = [o - o % step for o in out]
    if min(out) < 16:
        raise ParamError("synth.pan_px_per_frame",
                         f"a pan of {vx:g},{vy:g} px/frame over {n_frames} frames with a {weave_margin} px weave "
                         f"margin leaves no picture in a {width}x{height} source")
    canvas = [o + 2 * weave_margin for o in out]
    origin = [0.0, 0.0]
    if cropping:
        for axis, v in enumerate((vx, vy)):
            slack = (width, height)[axis] - canvas[axis] - travel[axis]
            # centre the path in the slack and keep all of it inside the source
            origin[axis] = float(math.floor(slack / 2.0)) + (travel[axis] if v < 0 else 0.0)
    return ClipGeometry((width, height), (canvas[0], canvas[1]), (out[0], out[1]), weave_margin,
                        (origin[0], origin[1]))


def pan_path(n_frames: int, pan_px_per_frame: tuple[float, float]) -> np.ndarray:
    """(N, 2) camera position relative to frame 0 in px (x right, y down); picture content moves by -pan."""
    t = np.arange(n_frames, dtype=np.float64)[:, None]
    return t * np.asarray(pan_px_per_frame, dtype=np.float64)[None, :]


def crop_canvas(source: np.ndarray, origin_xy: tuple[float, float], canvas_size: tuple[int, int]) -> np.ndarray:
    """The canvas whose top-left sits at `origin_xy` in the source: a plain slice when integral, else a spline warp."""
    x0, y0 = origin_xy
    width, height = canvas_size
    if float(x0).is_integer() and float(y0).is_integer():
        x0, y0 = int(x0), int(y0)
        return np.ascontiguousarray(source[y0:y0 + height, x0:x0 + width], dtype=np.float32)
    matrix = np.eye(2)
    return _warp_channels(source, matrix, (y0, x0), (height, width))


def weave_matrix(dx: float, dy: float, rotation_deg: float, size: tuple[int, int]) -> np.ndarray:
    """2x3 forward map (cv2.warpAffine convention) film frame -> woven frame for a frame of size (width, height).

    Rotation is about the frame centre ((w-1)/2, (h-1)/2), positive counter-clockwise on screen as in
    cv2.getRotationMatrix2D; then the frame is shifted by (dx, dy).
    """
    width, height = size
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    theta = math.radians(rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    linear = np.array([[c, s], [-s, c]])
    shift = np.array(centre) - linear @ np.array(centre) + np.array([dx, dy])
    return np.hstack([linear, shift[:, None]])


def apply_weave(canvas: np.ndarray, weave: tuple[float, float, float], margin: int,
                output_size: tuple[int, int], order: int = SPLINE_ORDER) -> np.ndarray:
    """Woven output frame: the canvas's central `output_size` region moved by the weave (dx, dy, rot_deg)."""
    forward = weave_matrix(*weave, size=output_size)
    inverse = _invert_affine(forward)
    inverse[:, 2] += margin  # output coordinates -> canvas coordinates
    return _warp_xy(canvas, inverse, output_size, order)


def unweave(frame: np.ndarray, weave: tuple[float, float, float], order: int = SPLINE_ORDER) -> np.ndarray:
    """Undo a weave (dx, dy, rot_deg) on a woven frame: the reference for what a perfect stabilizer returns."""
    height, width = frame.shape[:2]
    forward = weave_matrix(*weave, size=(width, height))
    return _warp_xy(frame, forward, (width, height), order)


def _invert_affine(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2].copy()


def _warp_xy(image: np.ndarray, inverse_xy: np.ndarray, output_size: tuple[int, int], order: int) -> np.ndarray:
    """Sample `image` at inverse_xy @ (x, y, 1) for each output pixel (scipy wants (row, col) order)."""
    a = inverse_xy
    matrix_yx = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
    offset_yx = (a[1, 2], a[0, 2])
    width, height = output_size
    return _warp_channels(image, matrix_yx, offset_yx, (height, width), order)


def _warp_channels(image: np.ndarray, matrix_yx: np.ndarray, offset_yx, shape_hw, order: int = SPLINE_ORDER):
    """Spline warp of a HxW or HxWxC float image, channel by channel, into float32."""
    planes = image[..., None] if image.ndim == 2 else image
    out = np.empty((shape_hw[0], shape_hw[1], planes.shape[2]), dtype=np.float32)
    for ch in range(planes.shape[2]):
        out[..., ch] = ndi.affine_transform(planes[..., ch].astype(np.float64, copy=False), matrix_yx,
                                            offset=offset_yx, output_shape=shape_hw, order=order, mode="mirror")
    return out[..., 0] if image.ndim == 2 else out


def weave_path(n_frames: int, translation_sigma: float, rotation_sigma_deg: float, correlation: float,
               rng: np.random.Generator) -> np.ndarray:
    """(N, 3) gate weave dx, dy (px), rotation (deg): a stationary AR(1) process per component, clipped at 3 sigma."""
    sigmas = np.array([translation_sigma, translation_sigma, rotation_sigma_deg], dtype=np.float64)
    innovations = rng.standard_normal((n_frames, 3))
    path = np.empty((n_frames, 3))
    state = innovations[0]
    path[0] = state
    keep = math.sqrt(1.0 - correlation * correlation)
    for t in range(1, n_frames):
        state = correlation * state + keep * innovations[t]
        path[t] = state
    return np.clip(path, -3.0, 3.0) * sigmas


def downscale(frame: np.ndarray, scale: int, kernel: str, gaussian_sigma: float = 1.6) -> np.ndarray:
    """Low-resolution frame for SR: MATLAB-style antialiased bicubic (BI) or Gaussian blur + subsample (BD)."""
    height, width = frame.shape[:2]
    if height % scale or width % scale:
        raise ParamError("synth.sr_scale", f"frame {width}x{height} is not a multiple of {scale}")
    if kernel == "gaussian":
        import cv2

        ksize = max(7, 2 * int(math.ceil(3 * gaussian_sigma)) + 1) if gaussian_sigma > 1.6 else 7
        blurred = cv2.GaussianBlur(frame.astype(np.float32), (ksize, ksize), gaussian_sigma,
                                   borderType=cv2.BORDER_REPLICATE)
        start = (scale - 1) // 2  # the sample nearest each low-resolution pixel's centre
        return np.ascontiguousarray(blurred[start::scale, start::scale])
    return bicubic_downscale(frame, scale)


def bicubic_downscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB imresize(frame, 1/scale, 'bicubic') (antialiased, symmetric borders), the SR 'BI' protocol."""
    import torch
    import torch.nn.functional as F

    # torch's antialiased bicubic uses MATLAB's kernel (a = -0.5) but renormalises at the borders; padding
    # symmetrically by whole low-resolution pixels first reproduces MATLAB's border handling exactly.
    pad = 4 * scale
    padded = np.pad(frame.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    tensor = torch.from_numpy(padded).permute(2, 0, 1)[None]
    size = (padded.shape[0] // scale, padded.shape[1] // scale)
    with torch.inference_mode():
        low = F.interpolate(tensor, size=size, mode="bicubic", antialias=True, align_corners=False)
    low = low[0].permute(1, 2, 0).numpy()[pad // scale:-(pad // scale), pad // scale:-(pad // scale)]
    return np.clip(low, 0.0, 1.0).astype(np.float32)
