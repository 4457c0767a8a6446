"""Motion-compensated denoising: dense-flow aligned neighbours, combined per 8x8 DCT coefficient with Wiener gains.

For every overlapping 8x8 block (step 4) of the frame, the co-located blocks of the motion-compensated neighbours are
averaged with weights that fall when a neighbour's block differs from the frame's by more than the grain explains
(occlusions and failed flow drop out: no smearing). Per DCT coefficient the estimate is then
    Wiener(mean) + Wiener(frame - mean):
the first gain removes the grain the temporal average left (the spatial pass, driven by the measured grain spectrum
and level), the second keeps whatever the neighbours do not share (aliased detail, small misregistrations).
Colour is processed in an opponent space (mean, two differences) whose grain level follows from the measured one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...device import cpu_count, torch_threads
from ...flow import reduced_flow, reduced_luma
from .grain import dct_basis

BLOCK = 8               # DCT block size ...
STEP = 4                # ... and step between blocks (each pixel is covered by four blocks)
PILOT_PLANES = (0,)     # planes that get the second, pilot-guided pass: it pays off on the luma plane only
# the frame's own deviation from the temporal mean is kept only when clearly above the grain (in grain std): a
# lower bar lets through grain spikes that flicker from frame to frame
REST_THRESHOLD = 3.0
OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0.0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]], np.float64)


def aligned_neighbours(frames: Sequence[np.ndarray], center: int, scale: float = 0.5, preset: str = "medium",
                       margin: int = 0) -> list[np.ndarray]:
    """Every frame warped onto frames[center] (bicubic), on a canvas `margin` px larger on each side (mirrored)."""
    height, width = frames[center].shape[:2]
    lumas = [reduced_luma(f, scale) for f in frames]
    grid_x, grid_y = np.meshgrid(np.arange(-margin, width + margin, dtype=np.float32),
                                 np.arange(-margin, height + margin, dtype=np.float32))

    def aligned(k: int) -> np.ndarray:
        frame = frames[k]
        if k == center:
            return cv2.copyMakeBorder(frame, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
        flow = reduced_flow(frames[center], frame, scale, preset, lumas[center], lumas[k])
        if margin:
            flow = cv2.copyMakeBorder(flow, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
        return cv2.remap(frame, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT_101)

    # DIS runs on one core: two workers keep a second core busy (OpenCV releases the GIL)
    workers = min(2, cpu_count(), len(frames))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(aligned, range(len(frames))))
    return [aligned(k) for k in range(len(frames))]


def opponent_variance(variance: torch.Tensor, correlation: np.ndarray) -> torch.Tensor:
    """Grain variance (3, ...) in the opponent space from per-channel variance (3, ...) and the channel correlation."""
    std = variance.sqrt()
    out = []
    for i in range(3):
        a = OPPONENT[i]
        mix = np.outer(a, a) * correlation
        out.append(sum(float(mix[j, k]) * std[j] * std[k] for j in range(3) for k in range(3) if mix[j, k] != 0.0))
    return torch.clamp(torch.stack(out), min=0.0)


def block_mean(image: np.ndarray) -> np.ndarray:
    """Mean over every 8x8 block at step 4 of an (H, W, C) image: (h, w, C)."""
    # each block is 2x2 cells of 4x4 px, and an exact 4:1 area shrink gives the cell means
    rows, cols = image.shape[0] // STEP, image.shape[1] // STEP
    cells = cv2.resize(image[:rows * STEP, :cols * STEP], (cols, rows), interpolation=cv2.INTER_AREA)
    cells = cells.reshape(rows, cols, -1)
    pairs = cells[:-1] + cells[1:]
    return (pairs[:, :-1] + pairs[:, 1:]) * np.float32(0.25)


def match_weights(aligned: Sequence[np.ndarray], center: int, grain_var: np.ndarray, tolerance: float) -> np.ndarray:
    """(K, h, w) weight per frame and block: 1 where it matches the centre within the grain, 0 past `tolerance`.

    The test is the block mean of squared differences over twice the grain variance (1 for a perfect match).
    `aligned` holds K (H, W, 3) RGB frames, `grain_var` (h, w, 3) is the centre's grain variance per block.
    """
    inverse = np.float32(1.0 / 6.0) / np.maximum(grain_var, np.float32(1e-8))   # 1 / (2 var), averaged over 3 channels
    weights = np.ones((len(aligned),) + grain_var.shape[:2], np.float32)
    for k, frame in enumerate(aligned):
        if k != center:
            difference = frame - aligned[center]
            distance = (block_mean(np.square(difference, out=difference)) * inverse).sum(axis=2)
            weights[k] = np.clip((tolerance - distance) / np.float32(tolerance - 1.0), 0.0, 1.0)
    return weights


def dct_filters(device: torch.device) -> torch.Tensor:
    """The 64 orthonormal 8x8 DCT-II basis images as conv filters (64, 1, 8, 8)."""

    return torch.from_numpy(dct_basis(BLOCK).astype(np.float32)).reshape(BLOCK * BLOCK, 1, BLOCK, BLOCK).to(device)


def wiener_plane(padded: torch.Tensor, weights: torch.Tensor, center: int, block_var: torch.Tensor,
                 coefficient_var: torch.Tensor, threshold: float = 2.5, spatial: float = 1.0,
                 rows: int = 8, pilot: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoised centre plane (H, W) from an aligned stack padded by 4 px (K, H+8, W+8), block weights (K, h, w)
    and the centre's grain variance per block (h, w); also the grain variance per pixel each block leaves (h, w).

    `coefficient_var` (64,) is the variance of each DCT coefficient of unit grain; `threshold` the hard threshold (in
    noise std) of the pilot estimate behind the Wiener gains; `spatial` scales the spatial gain (0: temporal only).
    A `pilot` plane (padded like the stack: a first estimate of the centre) replaces the hard-threshold pilot of the
    temporal mean's gains (BM3D's second step).
    """
    count = padded.shape[0]
    height, width = padded.shape[1] - 2 * (BLOCK - STEP), padded.shape[2] - 2 * (BLOCK - STEP)
    device = padded.device
    pad = BLOCK - STEP
    # basis rows scaled by 1/std of their coefficient: every coefficient then carries the block's grain variance
    coefficient_var = torch.clamp(coefficient_var.to(device), min=1e-8)
    spread = torch.sqrt(coefficient_var)
    basis = dct_filters(device)
    analysis = basis / spread[:, None, None, None]
    synthesis = (basis * spread[:, None, None, None]).reshape(BLOCK * BLOCK, BLOCK * BLOCK).T.contiguous()
    h, w = block_var.shape
    share = weights / weights.sum(0)                                     # normalised temporal weights
    mean_var = block_var * share.square().sum(0)                         # grain variance of the weighted mean
    rest_var = block_var * torch.clamp(1.0 - 2.0 * share[center] + share.square().sum(0), min=0.0) + 1e-20
    mean_inv, rest_inv = 1.0 / mean_var, 1.0 / rest_var
    blocks = torch.empty(BLOCK * BLOCK, h, w, device=device)            # weighted pixels of every block
    block_weight = torch.empty(h, w, device=device)
    t2 = threshold * threshold
    stack = padded[:, None]
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        coef = F.conv2d(stack[:, :, r0 * STEP:(r1 - 1) * STEP + BLOCK], analysis, stride=STEP)  # K, 64, hr, w
        mean = coef[0] * share[0, r0:r1]
        for k in range(1, count):
            mean.addcmul_(coef[k], share[k, r0:r1])
        rest = coef[center] - mean
        if pilot is None:
            gain_mean = _wiener_gain(mean, mean_inv[r0:r1], t2)
        else:
            guide = F.conv2d(pilot[None, None, r0 * STEP:(r1 - 1) * STEP + BLOCK], analysis, stride=STEP)[0]
            snr = guide.square_().mul_(mean_inv[r0:r1])
            gain_mean = snr.div_(snr + 1.0)
        gain_mean[0] = 1.0  # the block's mean brightness is never shrunk
        if spatial != 1.0:
            gain_mean = 1.0 - spatial * (1.0 - gain_mean)
        gain_rest = _wiener_gain(rest, rest_inv[r0:r1], REST_THRESHOLD ** 2)
        estimate = mean.mul_(gain_mean).addcmul_(rest, gain_rest)
        # BM3D-style aggregation: blocks with less residual noise count more
        bw = 1.0 / (torch.tensordot(coefficient_var, gain_mean.square_(), 1) * mean_var[r0:r1]
                    + torch.tensordot(coefficient_var, gain_rest.square_(), 1) * rest_var[r0:r1])
        estimate.mul_(bw)
        blocks[:, r0:r1] = torch.matmul(synthesis, estimate.reshape(BLOCK * BLOCK, -1)).reshape(-1, r1 - r0, w)
        block_weight[r0:r1] = bw
    out = overlap_add(blocks, h, w) / overlap_add_weight(block_weight)
    return out[pad:pad + height, pad:pad + width], 1.0 / (BLOCK * BLOCK * block_weight)


def overlap_add(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sum 8x8 blocks (64, h, w) laid at step 4 into a ((h+1)*4, (w+1)*4) canvas."""
    quarter = BLOCK // 2
    parts = blocks.reshape(2, quarter, 2, quarter, h, w).permute(0, 2, 4, 1, 5, 3)  # a, b, i, y, j, x
    canvas = torch.zeros(h + 1, quarter, w + 1, quarter, device=blocks.device)
    for a in (0, 1):
        for b in (0, 1):
            canvas[a:a + h, :, b:b + w, :] += parts[a, b]
    return canvas.reshape((h + 1) * quarter, (w + 1) * quarter)


def overlap_add_weight(block_weight: torch.Tensor) -> torch.Tensor:
    """Per-pixel sum of the weights of the blocks covering it (same canvas as overlap_add)."""
    h, w = block_weight.shape
    cells = torch.zeros(h + 1, w + 1, device=block_weight.device)
    for a in (0, 1):
        for b in (0, 1):
            cells[a:a + h, b:b + w] += block_weight
    quarter = BLOCK // 2
    return cells.repeat_interleave(quarter, 0).repeat_interleave(quarter, 1)


def _wiener_gain(coef: torch.Tensor, inverse_var: torch.Tensor, t2: float) -> torch.Tensor:
    """snr/(snr+1) where snr = coef²/var exceeds t2 (the hard-threshold pilot), else 0."""
    snr = coef.square().mul_(inverse_var)
    keep = snr > t2
    return snr.div_(snr + 1.0).mul_(keep)


def denoise_frame(aligned: Sequence[np.ndarray], center: int, sigma_of: Callable[[np.ndarray], np.ndarray],
                  correlation: np.ndarray, coefficient_var: np.ndarray, strength: float = 1.0, spatial: float = 1.0,
                  tolerance: float = 4.0, threshold: float = 2.5,
                  device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Denoised centre frame from frames aligned onto it with a 4 px margin (see aligned_neighbours), and the grain
    variance per pixel and channel it still holds, as the Wiener gains predict it, per block (h, w, 3; see
    block_to_pixels).

    `sigma_of` maps RGB intensities (..., 3) to the grain std per channel (the measured grain model).
    On the CPU the three colour planes are filtered by a small pool of threads, each running torch single-threaded:
    OpenMP's fine-grained parallel loops collapse when the cores are shared with other busy processes.
    """
    device = device or torch.device("cpu")
    on_cpu = device.type == "cpu"
    with torch.inference_mode(), _exact_float32(device), torch_threads(1 if on_cpu else None):
        level = block_mean(np.ascontiguousarray(aligned[center], np.float32))               # h, w, 3
        grain_var = np.square(sigma_of(level) * np.float32(strength)).astype(np.float32)
        weights = torch.from_numpy(match_weights(aligned, center, grain_var, tolerance)).to(device)
        rgb_var = torch.from_numpy(grain_var).to(device).permute(2, 0, 1)
        block_var = opponent_variance(rgb_var, correlation)
        cvar = torch.from_numpy(coefficient_var.astype(np.float32))

        planes = opponent_planes(aligned).to(device)                                        # 3, K, H+8, W+8

        def plane(o: int) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.inference_mode(), torch_threads(1 if on_cpu else None):
                values = planes[o]
                # first pass: hard-threshold pilot; second: Wiener gains of the temporal mean from the first result
                result = wiener_plane(values, weights, center, block_var[o], cvar, threshold, spatial)
                if o in PILOT_PLANES:
                    pad = BLOCK - STEP
                    pilot = F.pad(result[0][None, None], (pad, pad, pad, pad), mode="reflect")[0, 0]
                    result = wiener_plane(values, weights, center, block_var[o], cvar, threshold, spatial, pilot=pilot)
                return result

        workers = min(3, cpu_count()) if on_cpu else 1
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(plane, range(3)))     # luma first: it has two passes
        else:
            results = [plane(o) for o in range(3)]
        from_opp = torch.from_numpy(np.linalg.inv(OPPONENT).astype(np.float32)).to(device)
        picture = torch.stack([r[0] for r in results], dim=-1) @ from_opp.T
        left = torch.stack([r[1] for r in results], dim=-1) @ from_opp.square().T         # h, w, 3 (RGB)
        return picture.cpu().numpy(), left.cpu().numpy()


def opponent_planes(aligned: Sequence[np.ndarray]) -> torch.Tensor:
    """Frames (H, W, 3) mixed into the opponent space, as contiguous planes (3, K, H, W).

    OpenCV mixes the interleaved channels in one pass; the same sums over strided torch views cost several times more.
    """
    matrix = OPPONENT.astype(np.float32)
    mixed = np.empty((3, len(aligned)) + aligned[0].shape[:2], np.float32)
    for k, frame in enumerate(aligned):
        opponent = cv2.transform(np.ascontiguousarray(frame, np.float32), matrix)
        for o in range(3):
            mixed[o, k] = opponent[..., o]
    return torch.from_numpy(mixed)


def block_to_pixels(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A per-block map (h, w, C) of the step-4 block grid spread back over the frame's pixels (H, W, C)."""
    h, w = values.shape[:2]
    # block (i, j) covers canvas pixels 4i .. 4i+7, i.e. frame pixels 4i-4 .. 4i+3: its centre is at 4i - 0.5
    grid_x = (np.arange(width, dtype=np.float32) + 0.5) / STEP
    grid_y = (np.arange(height, dtype=np.float32) + 0.5) / STEP
    map_x, map_y = np.meshgrid(np.clip(grid_x, 0, w - 1), np.clip(grid_y, 0, h - 1))
    return cv2.remap(np.ascontiguousarray(values, np.float32), map_x, map_y, cv2.INTER_LINEAR)


class _exact_float32:
    """Keep CUDA convolutions and matmuls in true fp32 (TF32 would cost the 16-bit path its precision)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            self.saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved
        return False
