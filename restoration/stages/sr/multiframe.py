"""Multi-frame back-projection: refine an upscaled frame so that, warped onto each neighbour and shrunk by the
known degradation (antialiased bicubic), it reproduces every low-res frame actually observed.

Neighbouring frames sample the scene at other sub-pixel phases, so they carry real detail a single frame lacks;
nothing is invented, the estimate only moves towards agreement with the recorded frames (Irani & Peleg's
iterative back-projection, with dense flow between the upscaled frames and occlusion masking).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...flow import consistent_flows, warp_by_flow

FLOW_TOLERANCE_PX = 3.0  # looser than for blending: back-projection averages many residuals, a tight mask starves it


@dataclass(frozen=True)
class Alignment:
    """How a neighbour lines up with the current frame, at output resolution."""

    to_neighbour: np.ndarray | None  # flow bringing current-frame geometry onto the neighbour (None: itself)
    to_current: np.ndarray | None  # flow bringing neighbour geometry back onto the current frame
    reliable: np.ndarray  # float mask in current-frame geometry


def shrink(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The degradation model: antialiased bicubic (Keys a=-0.5, as MATLAB imresize) to (width, height)."""
    tensor = torch.from_numpy(np.ascontiguousarray(picture.transpose(2, 0, 1)))[None]
    small = F.interpolate(tensor, size=(size[1], size[0]), mode="bicubic", antialias=True, align_corners=False)
    return small[0].numpy().transpose(1, 2, 0)


def align(current: np.ndarray, neighbour: np.ndarray) -> Alignment:
    """Dense flow both ways between two upscaled pictures and the mask where they agree."""
    to_current, to_neighbour, reliable = consistent_flows(current, neighbour, "medium", FLOW_TOLERANCE_PX)
    return Alignment(to_neighbour, to_current, reliable.astype(np.float32))


def back_project(picture: np.ndarray, observations: list[tuple[np.ndarray, Alignment]],
                 iterations: int, step: float = 1.0) -> np.ndarray:
    """Refine `picture` against low-res `observations` (LR frame, its alignment) by iterative back-projection."""
    estimate = picture.astype(np.float32).copy()
    height, width = estimate.shape[:2]
    for _ in range(iterations):
        correction = np.zeros_like(estimate)
        weight = np.zeros((height, width), np.float32)
        for low, alignment in observations:
            seen = estimate if alignment.to_neighbour is None else warp_by_flow(
                estimate, alignment.to_neighbour, interpolation=cv2.INTER_LINEAR)
            residual = low - shrink(seen, (low.shape[1], low.shape[0]))
            residual = cv2.resize(residual, (width, height), interpolation=cv2.INTER_CUBIC)
            if alignment.to_current is not None:
                residual = warp_by_flow(residual, alignment.to_current, interpolation=cv2.INTER_LINEAR)
            correction += residual * alignment.reliable[..., None]
            weight += alignment.reliable
        estimate += step * correction / np.maximum(weight, 1e-3)[..., None]
    return estimate


def self_alignment(shape: tuple[int, int]) -> Alignment:
    return Alignment(None, None, np.ones(shape, np.float32))
