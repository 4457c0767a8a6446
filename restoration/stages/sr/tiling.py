"""Tiled inference with overlap and seamless blending, and a tile size chosen from the memory budget.

Tiles are spread evenly and all have the same input size, so they can be batched. A tile's
output is weighted by a window that is zero over its context margin (except at the image border), ramps up
linearly over the overlap and is one inside; the weighted sum is normalised, so seams fade across the overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

Network = Callable[[torch.Tensor], torch.Tensor]

MIN_TILE = 32
CPU_MAX_TILE = 768  # a PAL frame in one tile for the light models; beyond, CPU tiles gain no speed
GPU_MAX_TILE = 2048


@dataclass(frozen=True)
class TilePlan:
    """Tile size and starts along each axis (LR pixels), for a context margin and a cross-fade ramp."""

    height: int
    width: int
    margin: int
    ramp: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]


def axis_plan(length: int, max_tile: int, margin: int, ramp: int) -> tuple[int, tuple[int, ...]]:
    """(tile size, starts) covering [0, length) with the fewest tiles of at most `max_tile`, spread evenly so
    neighbours share exactly 2·margin + ramp pixels (no tile is shifted in to overlap more)."""
    overlap = 2 * margin + ramp
    if max_tile >= length:
        return length, (0,)
    if max_tile <= overlap:
        raise ValueError(f"tile {max_tile} too small for margin {margin} and ramp {ramp}")
    count = -(-(length - overlap) // (max_tile - overlap))
    size = -(-(length + (count - 1) * overlap) // count)
    step = size - overlap
    return size, tuple(min(i * step, length - size) for i in range(count))


def plan_tiles(height: int, width: int, tile: int, margin: int, ramp: int) -> TilePlan:
    tile = max(tile, 2 * margin + ramp + 1)
    th, ys = axis_plan(height, tile, margin, ramp)
    tw, xs = axis_plan(width, tile, margin, ramp)
    return TilePlan(th, tw, margin, ramp, ys, xs)


def axis_window(start: int, size: int, length: int, margin: int, ramp: int, scale: int) -> np.ndarray:
    """Output-resolution blending weights of one tile along one axis."""
    n = size * scale
    pos = np.arange(n, dtype=np.float32) + 0.5
    weight = np.ones(n, np.float32)
    if start > 0:
        weight = np.minimum(weight, np.clip((pos - margin * scale) / max(ramp * scale, 1), 0.0, 1.0))
    if start + size < length:
        weight = np.minimum(weight, np.clip((n - pos - margin * scale) / max(ramp * scale, 1), 0.0, 1.0))
    return weight


def upscale_tiled(network: Network, image: torch.Tensor, scale: int, tile: int, margin: int, ramp: int = 8,
                  batch: int = 1, out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Run `network` (×`scale`) over (1, C, H, W) `image` in blended tiles; returns (1, C, H·s, W·s) float32."""
    _, channels, height, width = image.shape
    plan = plan_tiles(height, width, tile, margin, ramp)
    th, tw = plan.height, plan.width
    if len(plan.ys) == 1 and len(plan.xs) == 1:
        return network(image.contiguous(memory_format=torch.channels_last)).to(out_dtype)
    device = image.device
    out = torch.zeros((1, channels, height * scale, width * scale), dtype=out_dtype, device=device)
    norm = torch.zeros((1, 1, height * scale, width * scale), dtype=out_dtype, device=device)
    wy = {y: torch.from_numpy(axis_window(y, th, height, margin, ramp, scale)).to(device) for y in plan.ys}
    wx = {x: torch.from_numpy(axis_window(x, tw, width, margin, ramp, scale)).to(device) for x in plan.xs}
    positions = [(y, x) for y in plan.ys for x in plan.xs]
    for first in range(0, len(positions), max(1, batch)):
        chunk = positions[first:first + max(1, batch)]
        tiles = torch.cat([image[:, :, y:y + th, x:x + tw] for y, x in chunk], 0)
        tiles = tiles.contiguous(memory_format=torch.channels_last)
        result = network(tiles).to(out_dtype)
        for k, (y, x) in enumerate(chunk):
            window = (wy[y][:, None] * wx[x][None, :])[None, None]
            ys, xs = slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale)
            out[:, :, ys, xs] += result[k:k + 1] * window
            norm[:, :, ys, xs] += window
    return out / norm.clamp_min(1e-8)


def available_memory(device: torch.device) -> int:
    """Free bytes the tiler may plan with: free VRAM on CUDA, available RAM otherwise."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def auto_tile(bytes_per_pixel: float, device: torch.device, budget_bytes: int | None = None,
              fraction: float = 0.25, cpu_cap_bytes: int = 2 << 30) -> int:
    """Tile side (LR px) whose activations fit `fraction` of the free memory (capped on the CPU)."""
    budget = budget_bytes if budget_bytes is not None else int(available_memory(device) * fraction)
    if device.type != "cuda" and budget_bytes is None:
        budget = min(budget, cpu_cap_bytes)
    side = int((max(budget, 1) / max(bytes_per_pixel, 1.0)) ** 0.5)
    cap = GPU_MAX_TILE if device.type == "cuda" else CPU_MAX_TILE
    return int(np.clip(side // 16 * 16, MIN_TILE, cap))
