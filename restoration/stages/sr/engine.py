"""A loaded SR network on its device and precision, run tiled over a frame, and model-pass chains to a size."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .geometry import model_passes, resize_exact
from .tiling import auto_tile, available_memory, upscale_tiled

# Peak memory is several times the largest activation (oneDNN workspaces, the tile's input/output copies).
MEMORY_OVERHEAD = 3.0
RAMP = 8  # LR px over which neighbouring tiles cross-fade


@dataclass
class Upscaler:
    """One network ready to run: on `device`, heavy layers in `dtype`, channels-last, inference only."""

    name: str
    net: nn.Module
    device: torch.device
    dtype: torch.dtype

    @property
    def scale(self) -> int:
        return int(self.net.scale)

    @property
    def context(self) -> int:
        return int(self.net.context())

    def bytes_per_pixel(self) -> float:
        element = 4 if self.dtype == torch.float32 else 2
        return float(self.net.activation_bytes_per_pixel(element)) * MEMORY_OVERHEAD

    def min_tile(self) -> int:
        """Below this the context margins and ramps would more than double the work."""
        return 3 * (2 * self.context + RAMP)

    def tile_size(self, requested: int, budget_bytes: int | None = None) -> int:
        """The requested tile, or one chosen from the free memory of the device (never below `min_tile`)."""
        if requested > 0:
            return max(requested, self.min_tile())
        return max(auto_tile(self.bytes_per_pixel(), self.device, budget_bytes), self.min_tile())

    def batch_size(self, tile: int) -> int:
        """Tiles per call: batching only pays on a GPU, and only while it fits the free memory."""
        if self.device.type != "cuda":
            return 1
        per_tile = tile * tile * self.bytes_per_pixel()
        return int(np.clip(available_memory(self.device) * 0.5 // max(per_tile, 1), 1, 8))

    def run(self, image: torch.Tensor, tile: int) -> torch.Tensor:
        """(1, 3, H, W) float32 on the device → (1, 3, H·s, W·s) float32, tiled with overlap."""
        with torch.inference_mode():
            return upscale_tiled(self.net, image, self.scale, tile, margin=self.context, ramp=RAMP,
                                 batch=self.batch_size(tile))


def prepare(name: str, net: nn.Module, device: torch.device, dtype: torch.dtype) -> Upscaler:
    """Move a network to its device and precision, channels-last, frozen for inference."""
    net = net.eval().to(device)
    if dtype != torch.float32:
        net.set_precision(dtype)
    net = net.to(memory_format=torch.channels_last)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return Upscaler(name, net, device, dtype)


def frame_to_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """H×W×3 float32 frame → (1, 3, H, W) float32 on `device` (channels-last memory, no copy on the CPU)."""
    with warnings.catch_warnings():
        # cached source frames are read-only; the tensor is only read, so sharing them is safe and needs no note
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        tensor = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).permute(2, 0, 1)[None]
    return tensor.to(device)


def tensor_to_frame(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).float().cpu().contiguous().numpy()


def upscale_to(chain: dict[int, Upscaler], image: torch.Tensor, picture: tuple[int, int], needed: float,
               tile: int) -> tuple[torch.Tensor, list[int]]:
    """Chain model passes (from the scales `chain` offers) to reach `needed`, then resize exactly to `picture`."""
    passes = model_passes(needed, tuple(chain))
    with torch.inference_mode():
        for scale in passes:
            upscaler = chain[scale]
            image = upscaler.run(image, upscaler.tile_size(tile)).clamp_(0.0, 1.0)
        return resize_exact(image, picture), passes
