"""GrainModel: measurement on a known synthetic grain field, JSON round trip, and faithful synthesis."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from restoration import metrics as M
from restoration.stages.denoise.grain import GrainModel, measure_grain

SIZE = (160, 192)                      # height, width
CHANNEL_WEIGHTS = np.array([1.0, 0.8, 1.25], np.float32)


def true_sigma(intensity: np.ndarray) -> np.ndarray:
    """The test's noise level function: rising with brightness, different per channel."""
    return (0.012 + 0.03 * intensity) * CHANNEL_WEIGHTS


def scene(shape: tuple[int, int], shift: tuple[float, float]) -> np.ndarray:
    """A smooth colour scene with a few edges, moved by `shift` px (content moves +x, +y)."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x = x - shift[0]
    y = y - shift[1]
    base = 0.15 + 0.7 * (x / width) * 0.8 + 0.1 * np.sin(y / 23.0)
    frame = np.stack([base, 0.9 * base + 0.05 * np.cos(x / 31.0), 0.6 * base + 0.2], axis=2)
    frame[(np.abs(x - 0.5 * width) < 12) & (np.abs(y - 0.5 * height) < 20)] *= 0.6
    return np.clip(frame, 0.0, 1.0).astype(np.float32)


def gaussian_grain(shape: tuple[int, int], size: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance grain (H, W, 3): white noise blurred by a Gaussian of std `size` px, independent channels."""
    white = rng.standard_normal(shape + (3,)).astype(np.float32)
    blurred = cv2.GaussianBlur(white, (0, 0), size, borderType=cv2.BORDER_REFLECT)
    radius = int(math.ceil(4 * size))
    kernel = cv2.getGaussianKernel(2 * radius + 1, size)
    return blurred / np.float32(np.sum(kernel ** 2))


def grainy_clip(frames: int = 7, size: float = 1.0, seed: int = 3, motion=(0.6, 0.35)):
    rng = np.random.default_rng(seed)
    clean, grain = [], []
    for t in range(frames):
        frame = scene(SIZE, (motion[0] * t, motion[1] * t))
        clean.append(frame)
        grain.append(gaussian_grain(SIZE, size, rng) * true_sigma(frame))
    noisy = [c + g for c, g in zip(clean, grain)]
    return clean, grain, noisy


@pytest.fixture(scope="module")
def measured():
    clean, grain, noisy = grainy_clip()
    return clean, grain, noisy, measure_grain(noisy, len(noisy))


def test_measured_grain_level_matches_the_known_field(measured):
    clean, grain, noisy, model = measured
    levels, truth, _ = M.noise_level_function(grain, clean, bins=len(model.levels), min_count=2000)
    usable = np.isfinite(truth) & (model.counts > 0)
    assert usable.sum() >= 6
    error = np.abs(model.sigma[usable] - truth[usable]) / truth[usable]
    assert float(np.mean(error)) < 0.10
    assert float(np.max(error)) < 0.2


def test_measured_grain_size_and_channels(measured):
    _, _, _, model = measured
    assert 0.75 <= model.grain_size <= 1.3
    assert model.white_fraction < 0.15
    off_diagonal = model.channel_correlation[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off_diagonal) < 0.2)


def test_coarser_grain_is_measured_coarser():
    clean, grain, noisy = grainy_clip(size=2.0, seed=5)
    coarse = measure_grain(noisy, len(noisy))
    assert 1.6 <= coarse.grain_size <= 2.6


def test_model_survives_json(measured):
    model = measured[3]
    again = GrainModel.from_dict(json.loads(json.dumps(model.to_dict())))
    values = np.linspace(0, 1, 11)[:, None, None].repeat(3, axis=2).astype(np.float32)
    assert np.allclose(again.sigma_at(values), model.sigma_at(values), atol=1e-6)
    assert np.allclose(again.dct_noise_variance(), model.dct_noise_variance(), atol=1e-4)
    assert again.grain_size == pytest.approx(model.grain_size, abs=1e-4)


def test_synthesized_grain_matches_the_measured_statistics(measured):
    clean, grain, _, model = measured
    synthetic = [model.synthesize(frame, seed=t) for t, frame in enumerate(clean)]
    _, true_nlf, _ = M.noise_level_function(grain, clean, bins=8, min_count=2000)
    _, new_nlf, _ = M.noise_level_function(synthetic, clean, bins=8, min_count=2000)
    assert M.nlf_error(new_nlf, true_nlf) < 0.10
    assert M.spectrum_correlation(synthetic, grain) >= 0.9


def test_grain_size_scale_changes_the_spectrum(measured):
    clean, grain, _, model = measured
    coarse = [model.synthesize(frame, seed=t, size_scale=2.0) for t, frame in enumerate(clean)]
    fine = [model.synthesize(frame, seed=t) for t, frame in enumerate(clean)]
    _, coarse_power = M.radial_power_spectrum(coarse)
    _, fine_power = M.radial_power_spectrum(fine)
    # coarser grain: its power sits at lower frequencies
    high = slice(len(fine_power) // 4, None)
    assert coarse_power[high].sum() / coarse_power.sum() < 0.7 * fine_power[high].sum() / fine_power.sum()


def test_synthesis_is_seeded(measured):
    frame = measured[0][0]
    model = measured[3]
    assert np.array_equal(model.synthesize(frame, seed=7), model.synthesize(frame, seed=7))
    assert not np.array_equal(model.synthesize(frame, seed=7), model.synthesize(frame, seed=8))


def test_short_shot_falls_back_to_a_single_frame_estimate():
    clean, grain, noisy = grainy_clip(frames=2, size=0.3)
    model = measure_grain(noisy, 2)
    assert model.triplets == 0
    mid = model.sigma_at(np.full((1, 1, 3), 0.5, np.float32))[0, 0]
    assert np.all(mid > 0.5 * true_sigma(np.float32(0.5))) and np.all(mid < 2.0 * true_sigma(np.float32(0.5)))


def test_repeated_frames_do_not_hide_the_grain():
    """A pull-down repeats frames: a repeat carries the same grain and must not count as a neighbour."""
    clean, grain, noisy = grainy_clip(frames=8, seed=9)
    repeated = [noisy[i // 2 * 2] if i % 4 == 1 else noisy[i] for i in range(8)]  # frames 1 and 5 repeat 0 and 4
    model = measure_grain(repeated, len(repeated))
    levels, truth, _ = M.noise_level_function(grain, clean, bins=len(model.levels), min_count=2000)
    usable = np.isfinite(truth) & (model.counts > 0)
    assert float(np.mean(np.abs(model.sigma[usable] - truth[usable]) / truth[usable])) < 0.12


def test_only_the_first_frames_of_a_long_shot_are_read():
    clean, grain, noisy = grainy_clip(frames=7)
    read: list[int] = []

    def frames():
        for i in range(1000):
            read.append(i)
            yield noisy[i % len(noisy)]

    measure_grain(frames(), 1000, max_samples=3, span=12)
    assert len(read) <= 12
