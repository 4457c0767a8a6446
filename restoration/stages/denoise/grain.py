"""GrainModel: film grain measured from the footage (noise level function + spatial spectrum) and re-synthesized.

The grain of frame t is measured against both its neighbours, motion-compensated onto it by dense flow: with
d1 = f(t) - f(t-1) and d2 = f(t) - f(t+1), the mean of d1·d2 is the grain variance of frame t and their
cross-spectrum its power spectrum, because grain is new in every frame (the neighbours' grain, however the warp
resampled it, averages out). Only flat, well-matched blocks count; textured or badly matched ones are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from ...flow import LUMA_709, reduced_flow, reduced_luma, warp_by_flow

LEVEL_BINS = 16
SPECTRUM_BINS = 24          # radial bins of width 1/32 cycle/px: 0 .. 0.75 (the corners of the 2-D spectrum)
SPECTRUM_STEP = 1.0 / 32.0
BLOCK = 16                  # block size of the flatness test
TILE = 32                   # tile size of the spectrum measurement
MIN_BIN_PIXELS = 400
SIGMA_FLOOR = 1e-4


@dataclass
class GrainModel:
    """Per-shot grain: std per channel vs intensity, radial power spectrum of unit grain, channel correlation."""

    levels: np.ndarray               # (B,) intensity bin centres in [0, 1]
    sigma: np.ndarray                # (B, 3) grain std per channel at each level (bins without data filled in)
    counts: np.ndarray               # (B, 3) pixels measured per bin (0 where the value is filled in)
    spectrum: np.ndarray             # (F,) radial power of unit-variance grain at SPECTRUM_STEP * (i + 0.5)
    channel_correlation: np.ndarray  # (3, 3)
    grain_size: float                # std (px) of the Gaussian clump that best explains the spectrum
    white_fraction: float            # share of the variance that is white (uncorrelated pixel noise)
    triplets: int = 0                # frame triplets measured (0: single-frame fallback)

    # ---- evaluation -----------------------------------------------------------------------------------------

    @property
    def frequencies(self) -> np.ndarray:
        return SPECTRUM_STEP * (np.arange(len(self.spectrum)) + 0.5)

    def sigma_lut(self, size: int = 1024) -> np.ndarray:
        """(size, 3) grain std at linspace(0, 1, size): a lookup table for per-pixel evaluation."""
        x = np.linspace(0.0, 1.0, size)
        return np.stack([np.interp(x, self.levels, self.sigma[:, c]) for c in range(3)], axis=1).astype(np.float32)

    def sigma_at(self, image: np.ndarray) -> np.ndarray:
        """Per-pixel grain std (H, W, 3) for an RGB intensity image."""
        lut = self.sigma_lut()
        index = np.clip(image * (len(lut) - 1) + 0.5, 0, len(lut) - 1).astype(np.int32)
        return np.stack([lut[index[..., c], c] for c in range(3)], axis=2)

    def power_spectrum_2d(self, size: int, size_scale: float = 1.0) -> np.ndarray:
        """Unit-variance 2-D power spectrum on a size x size FFT grid; `size_scale` > 1 makes the grain coarser."""
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.fftfreq(size)[None, :]
        radius = np.sqrt(fx * fx + fy * fy) * size_scale
        power = np.interp(radius, self.frequencies, np.maximum(self.spectrum, 0.0), right=0.0)
        power[0, 0] = 0.0
        if not np.isfinite(power).all() or power.mean() <= 1e-12:
            power = np.ones_like(power)  # no usable spectrum: white grain
            power[0, 0] = 0.0
        return power / power.mean()

    def autocorrelation(self, radius: int) -> np.ndarray:
        """Normalised autocorrelation (2r+1, 2r+1) of the grain, centre = 1."""
        size = max(64, 4 * radius)
        acf = np.real(np.fft.ifft2(self.power_spectrum_2d(size)))
        acf = np.fft.fftshift(acf)
        c = size // 2
        return acf[c - radius:c + radius + 1, c - radius:c + radius + 1] / acf[c, c]

    def dct_noise_variance(self, block: int = 8) -> np.ndarray:
        """Variance of each orthonormal block x block DCT coefficient of unit grain (block*block,)."""
        acf = self.autocorrelation(block - 1)
        basis = dct_basis(block).reshape(block * block, block * block)
        ys, xs = np.mgrid[0:block, 0:block]
        dy = ys.ravel()[:, None] - ys.ravel()[None, :]
        dx = xs.ravel()[:, None] - xs.ravel()[None, :]
        cov = acf[dy + block - 1, dx + block - 1]
        return np.einsum("ki,ij,kj->k", basis, cov, basis)

    def synthesis_kernel(self, size_scale: float = 1.0, max_radius: int = 24) -> np.ndarray:
        """Zero-phase kernel whose filtered unit white noise has this grain's spectrum (unit variance)."""
        size = 128
        amplitude = np.sqrt(self.power_spectrum_2d(size, size_scale))
        kernel = np.fft.fftshift(np.real(np.fft.ifft2(amplitude)))
        c = size // 2
        energy = kernel ** 2
        total = energy.sum()
        radius = 1
        while radius < max_radius and energy[c - radius:c + radius + 1, c - radius:c + radius + 1].sum() < 0.999 * total:
            radius += 1
        kernel = kernel[c - radius:c + radius + 1, c - radius:c + radius + 1]
        return (kernel / math.sqrt((kernel ** 2).sum())).astype(np.float32)

    def unit_grain(self, shape: tuple[int, int], seed: int, size_scale: float = 1.0) -> np.ndarray:
        """Unit-variance grain (H, W, 3) with this model's spectrum and channel correlation, seeded."""
        height, width = shape
        kernel = self.synthesis_kernel(size_scale)
        pad = kernel.shape[0] // 2
        rng = np.random.Generator(np.random.PCG64(seed))
        if self.monochrome:
            white = rng.standard_normal((height + 2 * pad, width + 2 * pad), dtype=np.float32)
        else:
            white = rng.standard_normal((height + 2 * pad, width + 2 * pad, 3), dtype=np.float32)
            mix = np.linalg.cholesky(_positive_definite(self.channel_correlation)).astype(np.float32)
            white = (white.reshape(-1, 3) @ mix.T).reshape(white.shape)
        shaped = cv2.filter2D(white, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
        shaped = shaped[pad:pad + height, pad:pad + width]
        return np.repeat(shaped[..., None], 3, axis=2) if self.monochrome else shaped

    @property
    def monochrome(self) -> bool:
        """Grain identical in the three channels (black-and-white film): synthesized as one field."""
        return bool(np.all(self.channel_correlation > 0.98))

    def synthesize(self, intensity: np.ndarray, seed: int, amount: float = 1.0, size_scale: float = 1.0) -> np.ndarray:
        """New grain (H, W, 3) for an RGB image: this model's level per intensity, spectrum and channel mix."""
        return self.unit_grain(intensity.shape[:2], seed, size_scale) * self.sigma_at(intensity) * np.float32(amount)

    # ---- JSON ------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, also the GUI's plot data."""
        return {"levels": _round(self.levels), "sigma": _round(self.sigma), "counts": self.counts.astype(int).tolist(),
                "frequencies": _round(self.frequencies), "spectrum": _round(self.spectrum),
                "channel_correlation": _round(self.channel_correlation), "grain_size": round(float(self.grain_size), 4),
                "white_fraction": round(float(self.white_fraction), 4), "triplets": int(self.triplets)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GrainModel":
        return cls(levels=np.asarray(data["levels"], np.float64), sigma=np.asarray(data["sigma"], np.float64),
                   counts=np.asarray(data["counts"], np.int64), spectrum=np.asarray(data["spectrum"], np.float64),
                   channel_correlation=np.asarray(data["channel_correlation"], np.float64),
                   grain_size=float(data["grain_size"]), white_fraction=float(data["white_fraction"]),
                   triplets=int(data.get("triplets", 0)))


def _round(values: np.ndarray) -> list:
    return np.round(np.asarray(values, np.float64), 6).tolist()


def _positive_definite(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    fixed = vectors @ np.diag(np.maximum(values, 1e-3)) @ vectors.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


def dct_basis(block: int = 8) -> np.ndarray:
    """Orthonormal 2-D DCT-II basis (block*block, block, block)."""
    k = np.arange(block)[:, None]
    x = np.arange(block)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * block)) * math.sqrt(2.0 / block)
    m[0] /= math.sqrt(2.0)
    return np.einsum("ux,vy->uvxy", m, m).reshape(block * block, block, block)


# ---- measurement ----------------------------------------------------------------------------------------------


@dataclass
class GrainSamples:
    """What one frame triplet contributes: grain products of good pixels with their intensity, spectrum tiles.

    With d1 = f(t) - f(t-1) and d2 = f(t) - f(t+1), both neighbours motion-compensated onto frame t, the mean of
    d1·d2 is the grain variance of frame t alone: the neighbours' grain is independent of it and of each other, so
    neither their grain nor the way warping resamples it enters (the same holds for the cross-spectrum).
    """

    intensity: np.ndarray                      # (n, 3) local intensity
    product: np.ndarray                        # (n, 3) d1·d2 per channel
    cross: np.ndarray                          # (3, 3) sum of d1_i·d2_j over the good pixels
    tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (d1, d2, intensity) TILE x TILE x 3, flat regions


def triplet_samples(before: np.ndarray, frame: np.ndarray, after: np.ndarray, flow_scale: float = 0.5,
                    preset: str = "medium") -> GrainSamples | None:
    """Grain samples of `frame` from it and its two neighbours in the shot (None when a neighbour repeats it)."""
    lumas = [reduced_luma(f, flow_scale) for f in (before, frame, after)]
    warped = [warp_by_flow(f, reduced_flow(frame, f, flow_scale, preset, lumas[1], lumas[k]), cv2.INTER_CUBIC,
                           cv2.BORDER_REFLECT101) for k, f in ((0, before), (2, after))]
    d1 = frame - warped[0]
    d2 = frame - warped[1]
    mean = (frame + warped[0] + warped[1]) * np.float32(1.0 / 3.0)
    power1, power2 = (d1 * d1).sum(axis=2), (d2 * d2).sum(axis=2)
    if min(np.median(power1), np.median(power2)) < 0.25 * max(np.median(power1), np.median(power2)):
        return None  # one neighbour repeats the frame (telecine pull-down, step printing): it shares the grain
    flat = flat_blocks(mean, 0.5 * (power1 + power2))
    keep = _block_mask(flat, frame.shape[:2])
    level = cv2.GaussianBlur(mean, (0, 0), 2.0)
    a, b = d1[keep], d2[keep]
    tiles = [(d1[y:y + TILE, x:x + TILE], d2[y:y + TILE, x:x + TILE], level[y:y + TILE, x:x + TILE])
             for y, x in _flat_tiles(flat)]
    return GrainSamples(level[keep], a * b, a.T @ b, tiles)


def _block_mask(flat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = flat.shape
    keep = np.zeros(shape, bool)
    keep[:rows * BLOCK, :cols * BLOCK] = np.repeat(np.repeat(flat, BLOCK, 0), BLOCK, 1)
    return keep


def _flat_tiles(flat: np.ndarray) -> list[tuple[int, int]]:
    step = TILE // BLOCK
    rows, cols = flat.shape
    return [(r * BLOCK, c * BLOCK) for r in range(0, rows - step + 1, step) for c in range(0, cols - step + 1, step)
            if flat[r:r + step, c:c + step].all()]


def flat_blocks(mean: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Bool (rows, cols) of BLOCK-sized blocks that are flat and well matched: low picture detail, plain grain.

    Picture detail is the block's gradient energy after a blur that removes most grain; a block is kept when it is
    among the flattest of its brightness, and its difference power is not an outlier (a bad match or a defect).
    """
    height, width = mean.shape[:2]
    rows, cols = height // BLOCK, width // BLOCK
    luma = cv2.GaussianBlur(mean @ LUMA_709, (0, 0), 1.5)
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    detail = _block_mean(gx * gx + gy * gy, rows, cols)
    block_power = _block_mean(power, rows, cols)
    level = _block_mean(luma, rows, cols)
    keep = np.zeros((rows, cols), bool)
    bins = np.clip((level * 8).astype(int), 0, 7)
    for b in range(8):
        inside = bins == b
        if inside.sum() < 4:
            continue
        d = detail[inside]
        p = block_power[inside]
        # a loose bound over the calmest blocks: in flat areas the detail is the grain's own, and cutting into its
        # spread would favour blocks whose grain happens to lack low frequencies (a finer-looking grain)
        calm = d <= 2.0 * np.percentile(d, 20)
        typical = np.median(p[calm])
        keep[inside] = calm & (p <= 2.0 * typical) & (p >= 0.25 * typical)
    return keep


def _block_mean(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    cut = image[:rows * BLOCK, :cols * BLOCK]
    return cut.reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))


def model_from_samples(samples: Sequence[GrainSamples]) -> GrainModel:
    """Fit a GrainModel to the samples of one shot's frame triplets."""
    intensity = np.concatenate([s.intensity for s in samples])
    product = np.concatenate([s.product for s in samples])
    levels, sigma, counts = nlf_from_products(intensity, product)
    model = GrainModel(levels, sigma, counts, _flat_spectrum(), np.eye(3), 0.0, 1.0, len(samples))
    cross = sum(s.cross for s in samples)
    d = np.sqrt(np.maximum(np.diag(cross), 1e-20))
    model.channel_correlation = _positive_definite(np.clip(0.5 * (cross + cross.T) / np.outer(d, d), -1.0, 1.0))
    spectrum = cross_spectrum([t for s in samples for t in s.tiles], model)
    if spectrum is not None:
        model.grain_size, model.white_fraction = fit_grain_size(spectrum)
        model.spectrum = unwindowed(spectrum, model.grain_size, model.white_fraction)
    return model


def nlf_from_products(intensity: np.ndarray, product: np.ndarray, bins: int = LEVEL_BINS
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grain std per channel per intensity bin: sqrt of the mean product d1·d2 (see GrainSamples)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    sigma = np.full((bins, 3), np.nan)
    counts = np.zeros((bins, 3), np.int64)
    for c in range(3):
        index = np.clip((intensity[:, c] * bins).astype(int), 0, bins - 1)
        sums = np.bincount(index, product[:, c], bins)
        n = np.bincount(index, minlength=bins)
        good = n >= MIN_BIN_PIXELS
        counts[good, c] = n[good]
        sigma[good, c] = np.sqrt(np.maximum(sums[good] / n[good], 0.0))
    return centres, fill_bins(centres, sigma, counts), counts


def fill_bins(levels: np.ndarray, sigma: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Bins without data from a count-weighted quadratic fit over the measured ones (flat when too few)."""
    out = sigma.copy()
    for c in range(sigma.shape[1]):
        valid = np.isfinite(sigma[:, c])
        if not valid.any():
            others = sigma[np.isfinite(sigma)]
            out[:, c] = np.median(others) if others.size else SIGMA_FLOOR
            continue
        x, y = levels[valid], sigma[valid, c]
        if valid.sum() >= 4:
            fit = np.polyval(np.polyfit(x, y, 2, w=np.sqrt(counts[valid, c])), levels)
            low, high = 0.5 * y.min(), 1.5 * y.max()
            out[~valid, c] = np.clip(fit[~valid], low, high)
        else:
            out[~valid, c] = np.interp(levels[~valid], x, y)
    return np.maximum(out, SIGMA_FLOOR)


def cross_spectrum(tiles: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], model: GrainModel
                   ) -> np.ndarray | None:
    """Radial power spectrum of unit grain from the d1, d2 cross-spectrum of flat tiles (None when too few)."""
    if len(tiles) < 2:
        return None
    window = np.outer(np.hanning(TILE), np.hanning(TILE)).astype(np.float32)
    window /= math.sqrt((window ** 2).mean())
    power = np.zeros((TILE, TILE))
    for d1, d2, level in tiles:
        scale = 1.0 / np.maximum(model.sigma_at(level), SIGMA_FLOOR)
        for c in range(3):
            a = d1[..., c] * scale[..., c]
            b = d2[..., c] * scale[..., c]
            fa = np.fft.fft2((a - a.mean()) * window)
            fb = np.fft.fft2((b - b.mean()) * window)
            power += np.real(fa * np.conj(fb))
    power /= len(tiles) * 3 * TILE * TILE
    profile = np.maximum(radial_profile(power), 0.0)
    if not np.isfinite(profile).all() or profile.sum() <= 1e-9:
        return None
    profile[0] = profile[1]  # the DC bin of mean-removed tiles holds nothing; grain is flat at the lowest frequencies
    return profile


def radial_profile(power: np.ndarray) -> np.ndarray:
    """Mean of a 2-D FFT power grid in radial bins of SPECTRUM_STEP (bins without samples interpolated)."""
    size = power.shape[0]
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    index = (radius / SPECTRUM_STEP).astype(int).ravel()
    inside = index < SPECTRUM_BINS
    sums = np.bincount(index[inside], power.ravel()[inside], SPECTRUM_BINS)
    counts = np.bincount(index[inside], minlength=SPECTRUM_BINS)
    profile = np.full(SPECTRUM_BINS, np.nan)
    profile[counts > 0] = sums[counts > 0] / counts[counts > 0]
    x = np.arange(SPECTRUM_BINS)
    valid = np.isfinite(profile)
    return np.interp(x, x[valid], profile[valid])


def _flat_spectrum() -> np.ndarray:
    return np.ones(SPECTRUM_BINS)


def fit_grain_size(spectrum: np.ndarray) -> tuple[float, float]:
    """(grain size px, white fraction) of the Gaussian-clump + white-noise mix that best explains a spectrum
    measured on Hann-windowed tiles (the window's smoothing is part of the fitted model)."""
    usable = slice(1, int(0.5 / SPECTRUM_STEP))
    target = spectrum[usable]
    best = (float("inf"), 1.0, 1.0)
    for size in np.arange(0.3, 4.01, 0.05):
        shape = tile_reference(float(size), True)[usable]
        # least squares for target ≈ a·shape + b with a, b ≥ 0 (both parts have unit variance)
        design = np.stack([shape, np.ones_like(shape)], axis=1)
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        a, b = max(coef[0], 0.0), max(coef[1], 0.0)
        if a == 0.0 or b == 0.0:
            a = max(float(shape @ target / (shape @ shape)), 0.0) if b == 0.0 else 0.0
            b = 0.0 if a > 0.0 else max(float(target.mean()), 0.0)
        err = float(np.sum((design @ np.array([a, b]) - target) ** 2))
        if err < best[0]:
            best = (err, float(size), b / (a + b) if a + b > 0 else 1.0)
    return round(best[1], 2), float(np.clip(best[2], 0.0, 1.0))


def unwindowed(spectrum: np.ndarray, grain_size: float, white_fraction: float) -> np.ndarray:
    """Undo the tile window's smoothing of a measured spectrum, as it acts on the fitted grain mix."""
    mix_true = (1.0 - white_fraction) * tile_reference(grain_size, False) + white_fraction
    mix_seen = (1.0 - white_fraction) * tile_reference(grain_size, True) + white_fraction
    return spectrum * mix_true / np.maximum(mix_seen, 1e-6)


@lru_cache(maxsize=256)
def tile_reference(grain_size: float, windowed: bool) -> np.ndarray:
    """Radial spectrum of unit Gaussian-clump grain on a TILE grid: as measured through the Hann window, or true.

    The windowed periodogram is the Fourier transform of the grain's autocorrelation times the window's.
    """
    lags = np.arange(-TILE + 1, TILE)
    dy, dx = np.meshgrid(lags, lags, indexing="ij")
    acf = np.exp(-(dx * dx + dy * dy) / (4.0 * grain_size * grain_size)) if grain_size > 0 else (dx == 0) & (dy == 0)
    if windowed:
        window = np.outer(np.hanning(TILE), np.hanning(TILE))
        acf = acf * _autocorrelate(window) / np.sum(window ** 2)
    folded = np.zeros((TILE, TILE))
    np.add.at(folded, (dy % TILE, dx % TILE), acf)
    profile = radial_profile(np.real(np.fft.fft2(folded)))
    profile[0] = profile[1]
    return profile


def _autocorrelate(window: np.ndarray) -> np.ndarray:
    """Full 2-D autocorrelation (2n-1, 2n-1) of a window."""
    n = window.shape[0]
    spectrum = np.fft.fft2(window, (2 * n, 2 * n))
    acf = np.fft.fftshift(np.real(np.fft.ifft2(np.abs(spectrum) ** 2)))
    return acf[1:2 * n, 1:2 * n]


def measure_grain(frames: Iterable[np.ndarray], shot_length: int | None = None, max_samples: int = 8,
                  flow_scale: float = 0.5, span: int | None = None) -> GrainModel:
    """GrainModel of one shot from its frames in order: up to `max_samples` triplets spread over the first `span`
    frames (all when None); the frames after that are not read."""
    length = shot_length if span is None or shot_length is None else min(shot_length, span)
    targets = [1] * max_samples
    if length is not None and length >= 3:
        targets = np.linspace(1, length - 2, min(max_samples, length - 2)).round().astype(int).tolist()
    samples: list[GrainSamples] = []
    recent: list[np.ndarray] = []
    for position, frame in enumerate(frames):
        recent = (recent + [frame])[-3:]
        if len(recent) == 3 and targets and position - 1 >= targets[0]:
            sample = triplet_samples(recent[0], recent[1], recent[2], flow_scale)
            if sample is not None:  # else a repeated frame: try the next one
                samples.append(sample)
                targets.pop(0)
        if not targets or (length is not None and position + 1 >= length):
            break
    if samples:
        return model_from_samples(samples)
    if not recent:
        raise ValueError("no frames to measure grain on")
    return single_frame_model(recent[-1])


def single_frame_model(frame: np.ndarray) -> GrainModel:
    """Fallback for shots under three frames: white noise at the level of the finest wavelet band (Donoho's MAD)."""
    diagonal = (frame[0:-1:2, 0:-1:2] - frame[1::2, 0:-1:2] - frame[0:-1:2, 1::2] + frame[1::2, 1::2]) * 0.5
    level = cv2.resize(frame, (diagonal.shape[1], diagonal.shape[0]), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    diagonal = diagonal.reshape(-1, 3)
    edges = np.linspace(0.0, 1.0, LEVEL_BINS + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    sigma = np.full((LEVEL_BINS, 3), np.nan)
    counts = np.zeros((LEVEL_BINS, 3), np.int64)
    for c in range(3):
        index = np.clip((level[:, c] * LEVEL_BINS).astype(int), 0, LEVEL_BINS - 1)
        for b in range(LEVEL_BINS):
            sample = diagonal[index == b, c]
            if sample.size >= MIN_BIN_PIXELS:
                counts[b, c] = sample.size
                sigma[b, c] = 1.4826 * np.median(np.abs(sample))
    return GrainModel(centres, fill_bins(centres, sigma, counts), counts, _flat_spectrum(), np.eye(3), 0.0, 1.0, 0)
