"""Dense optical flow and motion compensation shared by the temporal stages (OpenCV DIS + remap)."""

from __future__ import annotations

import cv2
import numpy as np

LUMA_709 = np.array([0.2126, 0.7152, 0.0722], np.float32)
DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
MIN_FLOW_SIZE = 16  # px; DIS needs frames of at least 12 px: smaller ones are compared without motion


def luma8(frame: np.ndarray) -> np.ndarray:
    """8-bit Rec.709 luma of a float RGB frame: what the flow estimator looks at."""
    luma = frame @ LUMA_709 if frame.ndim == 3 else frame
    return (np.clip(luma, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def dense_flow(reference: np.ndarray, moving: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Flow (H, W, 2) with reference(x) ≈ moving(x + flow(x)); frames are float RGB or 8-bit luma."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    ref = reference if reference.dtype == np.uint8 else luma8(reference)
    mov = moving if moving.dtype == np.uint8 else luma8(moving)
    return dis.calc(ref, mov, None)


def warp_by_flow(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_CUBIC,
                 border: int = cv2.BORDER_REFLECT101) -> np.ndarray:
    """Sample `image` at x + flow(x): brings a neighbour onto the reference frame's geometry."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=border)


def flow_inconsistency(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """|f(x) + b(x + f(x))| in px: large where a pixel is occluded or the flow is unreliable."""
    backward_at_target = warp_by_flow(backward, forward, interpolation=cv2.INTER_LINEAR)
    return np.linalg.norm(forward + backward_at_target, axis=2)


def consistent_flows(reference: np.ndarray, moving: np.ndarray, preset: str = "medium",
                     tolerance_px: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flows reference→moving and back (see dense_flow), and a bool map where the two agree within `tolerance_px`
    (elsewhere a pixel is occluded or the flow unreliable)."""
    ref8 = reference if reference.dtype == np.uint8 else luma8(reference)
    mov8 = moving if moving.dtype == np.uint8 else luma8(moving)
    forward = dense_flow(ref8, mov8, preset)
    backward = dense_flow(mov8, ref8, preset)
    return forward, backward, flow_inconsistency(forward, backward) <= tolerance_px


def compensate(reference: np.ndarray, neighbour: np.ndarray, preset: str = "medium",
               tolerance_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """`neighbour` warped onto `reference`, and a bool map of pixels where that warp is trustworthy."""
    forward, _, reliable = consistent_flows(reference, neighbour, preset, tolerance_px)
    return warp_by_flow(neighbour, forward), reliable


def sample_points(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, interpolation: int = cv2.INTER_CUBIC,
                  border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Samples (n, channels) of `image` at scattered points (x, y): cv2.remap over the points packed in rows."""
    count = xs.size
    cols = 1024
    rows = -(-count // cols)
    map_x = np.zeros(rows * cols, np.float32)
    map_y = np.zeros(rows * cols, np.float32)
    map_x[:count], map_y[:count] = xs, ys
    sampled = cv2.remap(image, map_x.reshape(rows, cols), map_y.reshape(rows, cols), interpolation,
                        borderMode=border)
    return sampled.reshape(rows * cols, -1)[:count]


def reduced_luma(frame: np.ndarray, scale: float) -> np.ndarray:
    """8-bit luma of a frame shrunk by `scale` (area average: the grain averages out, the motion stays)."""
    if scale != 1.0:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return luma8(frame)


def reduced_flow(reference: np.ndarray, moving: np.ndarray, scale: float = 0.5, preset: str = "medium",
                 reference_luma: np.ndarray | None = None, moving_luma: np.ndarray | None = None) -> np.ndarray:
    """Full-size flow (H, W, 2), reference(x) ≈ moving(x + flow(x)), estimated by DIS at `scale` of the size."""
    height, width = reference.shape[:2]
    if min(height, width) < MIN_FLOW_SIZE:
        return np.zeros((height, width, 2), np.float32)  # too small to estimate motion: assume none
    if min(height, width) * scale < MIN_FLOW_SIZE:
        scale, reference_luma, moving_luma = 1.0, None, None
    ref = reduced_luma(reference, scale) if reference_luma is None else reference_luma
    mov = reduced_luma(moving, scale) if moving_luma is None else moving_luma
    flow = dense_flow(ref, mov, preset)
    if scale != 1.0:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(1.0 / scale)
    return flow
