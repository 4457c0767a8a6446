"""Film grain: intensity-dependent, spatially correlated, per channel, new for every frame."""

from __future__ import annotations

import math
from typing import Callable, Union

import cv2
import numpy as np

SigmaCurve = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]

WHITE_GRAIN_SIZE = 0.3  # below this kernel std the grain is simply uncorrelated per pixel


def film_sigma_curve(sigma: float, channel_weights=(1.0, 0.85, 1.3), shadow_floor: float = 0.35,
                     samples: int = 33) -> np.ndarray:
    """Tabulated noise level function (samples, 3) at linspace(0, 1): peaks in midtones, `shadow_floor` at ends.

    Scanned film grain is strongest in the midtones and weaker in the deep shadows and highlights (the density
    fluctuation is compressed by the characteristic curve's toe and shoulder).
    """
    v = np.linspace(0.0, 1.0, samples)
    shape = shadow_floor + (1.0 - shadow_floor) * 4.0 * v * (1.0 - v)
    return (sigma * shape[:, None] * np.asarray(channel_weights, dtype=np.float64)[None, :]).astype(np.float64)


def sigma_at(sigma_curve: SigmaCurve, intensity: np.ndarray) -> np.ndarray:
    """Per-pixel grain std for an HxWxC intensity image from a tabulated (K, C) curve or a callable."""
    if callable(sigma_curve):
        return np.asarray(sigma_curve(intensity), dtype=np.float32)
    curve = np.asarray(sigma_curve, dtype=np.float64)
    if curve.ndim == 1:
        curve = curve[:, None]
    knots = np.linspace(0.0, 1.0, curve.shape[0])
    out = np.empty(intensity.shape, dtype=np.float32)
    for ch in range(intensity.shape[2]):
        out[..., ch] = np.interp(intensity[..., ch], knots, curve[:, min(ch, curve.shape[1] - 1)])
    return out


def correlated_noise(shape: tuple[int, int], grain_size: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance stationary Gaussian noise (H, W) correlated by a Gaussian kernel of std `grain_size` px."""
    height, width = shape
    if grain_size < WHITE_GRAIN_SIZE:
        return rng.standard_normal((height, width), dtype=np.float32)
    radius = int(math.ceil(3.5 * grain_size))
    kernel = cv2.getGaussianKernel(2 * radius + 1, grain_size, cv2.CV_64F)
    white = rng.standard_normal((height + 2 * radius, width + 2 * radius), dtype=np.float32)
    # padding by the kernel radius keeps the field stationary up to the edges; dividing by the kernel's
    # energy makes the variance exactly one
    blurred = cv2.sepFilter2D(white, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    energy = float(np.sum(kernel ** 2))  # per axis; the 2-D kernel's energy is its square
    return blurred[radius:radius + height, radius:radius + width] / np.float32(energy)


def grain_field(shape: tuple[int, ...], intensity_image: np.ndarray, sigma_curve: SigmaCurve, grain_size: float,
                rng: np.random.Generator, channel_correlation: float = 0.0) -> np.ndarray:
    """Additive grain (H, W, C) float32: correlated unit noise per channel scaled by sigma_curve(intensity).

    `sigma_curve` is a (K, C) table at linspace(0, 1) (or a callable intensity -> std); `channel_correlation`
    mixes a shared component into every channel (1.0: monochrome grain, identical in all channels).
    """
    height, width, channels = shape
    rho = float(np.clip(channel_correlation, 0.0, 1.0))
    shared = correlated_noise((height, width), grain_size, rng) if rho > 0 else None
    field = np.empty((height, width, channels), dtype=np.float32)
    for ch in range(channels):
        if rho >= 1.0:
            unit = shared
        else:
            unit = correlated_noise((height, width), grain_size, rng)
            if shared is not None:
                unit = math.sqrt(1.0 - rho) * unit + math.sqrt(rho) * shared
        field[..., ch] = unit
    field *= sigma_at(sigma_curve, intensity_image.astype(np.float32, copy=False))
    return field
