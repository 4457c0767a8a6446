"""Tone damage: dye fade (in density space) and luminance flicker."""

from __future__ import annotations

import cv2
import numpy as np

DISPLAY_GAMMA = 2.2   # code value v <-> transmittance T = v ** 2.2 (a scan of a print, display-referred)
PRINT_DMAX = 3.0      # densest black a release print holds, log10 units


def fade_path(n_frames: int, strength: float, variation: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame fade strength: a linear drift between random end values, `variation` relative around `strength`."""
    ends = rng.uniform(-1.0, 1.0, size=2)
    t = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    drift = ends[0] + (ends[1] - ends[0]) * t
    return np.clip(strength * (1.0 + variation * drift), 0.0, 1.0)


def fade_parameters(strength: float, dye_loss, fog) -> np.ndarray:
    """(6,) per-channel density scale k (R, G, B) and added fog density (R, G, B) for one frame."""
    k = 1.0 - strength * np.asarray(dye_loss, dtype=np.float64)
    d0 = strength * np.asarray(fog, dtype=np.float64)
    return np.concatenate([np.clip(k, 0.05, 1.0), d0])


def apply_fade(frame: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Fade a frame: density D = -log10(v^gamma) per dye layer becomes k*D + fog.

    Losing cyan (R) and yellow (B) dye density gives the red/magenta cast; scaling every density down lifts the
    blacks (Dmax falls) and compresses the range; the fog density dims the whites a little.
    """
    k = params[:3].astype(np.float32)
    fog = params[3:6].astype(np.float32)
    transmittance = np.power(np.clip(frame, 0.0, 1.0), DISPLAY_GAMMA, dtype=np.float32)
    density = -np.log10(np.maximum(transmittance, np.float32(10.0 ** -PRINT_DMAX)))
    faded = density * k + fog
    return np.power(np.float32(10.0) ** -faded, 1.0 / DISPLAY_GAMMA).astype(np.float32)


def flicker_path(n_frames: int, gain_sigma: float, offset_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) per-frame gain and offset, independent from frame to frame, clipped at 3 sigma."""
    draws = np.clip(rng.standard_normal((n_frames, 2)), -3.0, 3.0)
    return np.stack([1.0 + gain_sigma * draws[:, 0], offset_sigma * draws[:, 1]], axis=1)


def spatial_gain(grid: np.ndarray, size: tuple[int, int], amount: float) -> np.ndarray:
    """Smooth relative gain field (H, W): 1 + amount * (bicubic upsampling of the control grid, unit std)."""
    width, height = size
    if amount == 0.0:
        return np.ones((height, width), dtype=np.float32)
    field = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    std = float(field.std())
    field = (field - field.mean()) / (std if std > 0 else 1.0)
    return (1.0 + amount * field).astype(np.float32)


def apply_flicker(frame: np.ndarray, gain: float, offset: float, spatial: np.ndarray) -> np.ndarray:
    """v' = gain * spatial(x, y) * v + offset, clipped to [0, 1]."""
    out = frame * (np.float32(gain) * spatial)[..., None] + np.float32(offset)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
