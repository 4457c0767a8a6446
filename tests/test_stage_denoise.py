"""Stage `denoise`: removes grain without smearing motion, keeps or regrains it faithfully, deterministically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from restoration import metrics as M
from restoration.pipeline import Pipeline, ArraySource, run_stage_on_frames, settings_for
from restoration.stage import Shot
from restoration.stages import stage_class

from test_grain import SIZE, gaussian_grain, grainy_clip, scene, true_sigma

FRAMES = 7


def run(frames, **params):
    return run_stage_on_frames("denoise", frames, params, shots=[Shot(0, len(frames))])


@pytest.fixture(scope="module")
def clip():
    clean, grain, noisy = grainy_clip(frames=FRAMES, size=0.8, seed=11)
    return clean, grain, noisy


@pytest.fixture(scope="module")
def removed(clip):
    return run(clip[2], grain="remove")


def test_stage_is_implemented_with_the_issue_parameters():
    stage = stage_class("denoise")
    assert stage.implemented
    for name in ("strength", "temporal_radius", "spatial", "grain", "grain_amount", "grain_size_scale"):
        stage.params.get(name)
    assert stage.params.get("grain").choices == ("keep", "remove", "regrain")


def test_remove_lowers_the_error_against_the_clean_truth(clip, removed):
    clean, _, noisy = clip
    before = M.psnr(np.stack(noisy), np.stack(clean))
    after = M.psnr(np.stack(removed), np.stack(clean))
    assert after > before + 5.0
    assert all(frame.dtype == np.float32 and frame.shape == noisy[0].shape for frame in removed)


def test_temporal_neighbours_help_and_spatial_alone_still_cleans(clip, removed):
    clean, _, noisy = clip
    spatial_only = run(noisy, grain="remove", temporal_radius=0)
    before = M.psnr(np.stack(noisy), np.stack(clean))
    alone = M.psnr(np.stack(spatial_only), np.stack(clean))
    assert before + 2.0 < alone < M.psnr(np.stack(removed), np.stack(clean))


def test_strength_zero_leaves_the_frames_untouched(clip):
    noisy = clip[2]
    out = run(noisy, grain="remove", strength=0.0)
    assert all(np.array_equal(o, np.clip(n, 0, 1)) for o, n in zip(out, noisy))


def test_keep_blends_the_film_grain_back(clip, removed):
    clean, _, noisy = clip
    kept = run(noisy, grain="keep", keep_amount=0.5)
    middle = FRAMES // 2
    expected = np.clip(removed[middle] + 0.5 * (noisy[middle] - removed[middle]), 0, 1)
    assert np.allclose(kept[middle], expected, atol=1e-5)
    none = run(noisy, grain="keep", keep_amount=0.0)
    assert np.array_equal(none[middle], removed[middle])


def test_regrain_matches_the_source_grain_statistics(clip):
    clean, grain, noisy = clip
    out = run(noisy, grain="regrain", grain_amount=1.0)
    residual = [o - c for o, c in zip(out, clean)]
    _, true_nlf, _ = M.noise_level_function(grain, clean, bins=8, min_count=2000)
    _, new_nlf, _ = M.noise_level_function(residual, clean, bins=8, min_count=2000)
    assert M.nlf_error(new_nlf, true_nlf) < 0.12
    assert M.spectrum_correlation(residual, grain) >= 0.9
    # new grain, not the old one: it is independent of the grain that was removed
    correlation = np.corrcoef(np.stack(residual).ravel(), np.stack(grain).ravel())[0, 1]
    assert abs(correlation) < 0.25


def test_output_is_deterministic_and_seeded(clip):
    noisy = clip[2][:4]
    first = run(noisy, grain="regrain", seed=3)
    again = run(noisy, grain="regrain", seed=3)
    other = run(noisy, grain="regrain", seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])
    # each frame draws its own grain
    assert not np.allclose(first[1] - first[2], 0.0)


def test_moving_object_is_not_smeared():
    rng = np.random.default_rng(2)
    height, width = SIZE
    background = scene(SIZE, (0.0, 0.0))
    clean, noisy, squares = [], [], []
    for t in range(FRAMES):
        frame = background.copy()
        x0 = 20 + 14 * t                        # a bright patch crossing the frame at 14 px per frame
        frame[60:100, x0:x0 + 30] = (0.95, 0.9, 0.85)
        clean.append(frame)
        noisy.append(frame + gaussian_grain(SIZE, 0.8, rng) * true_sigma(frame))
        squares.append((x0, x0 + 30))
    out = run(noisy, grain="remove")
    middle = FRAMES // 2
    x0, x1 = squares[middle]
    trail = np.zeros((height, width), bool)
    for k in (middle - 2, middle - 1, middle + 1, middle + 2):
        a, b = squares[k]
        trail[60:100, a:b] = True
    trail[60:100, x0:x1] = False
    error = out[middle] - clean[middle]
    grain_level = float(np.mean(true_sigma(clean[middle])[trail]))
    # no ghost of the patch where it was or will be, and the patch itself kept its brightness
    assert abs(float(error[trail].mean())) < 0.25 * grain_level
    assert float(np.sqrt(np.mean(error[trail] ** 2))) < 0.8 * grain_level
    assert abs(float(error[60:100, x0:x1].mean())) < 0.25 * grain_level


def test_side_data_carries_the_shot_grain_model(clip):
    noisy = clip[2][:4]
    pipeline = Pipeline(ArraySource(noisy), settings_for(["denoise"], {"denoise": {"grain": "remove"}}),
                        shots=[Shot(0, 4)])
    sides = [pipeline.side_data(i)["denoise"]["grain_model"] for i in range(4)]
    assert all(side == sides[0] for side in sides)
    text = json.dumps(sides[0])
    assert len(text) < 20000
    assert {"levels", "sigma", "spectrum", "frequencies", "grain_size"} <= set(sides[0])


def test_neighbours_that_do_not_match_are_rejected():
    """Where motion compensation fails (here: no compensation at all), the patch leaves no ghost behind."""
    import cv2

    from restoration.stages.denoise.grain import measure_grain
    from restoration.stages.denoise.mcdenoise import BLOCK, STEP, denoise_frame

    rng = np.random.default_rng(4)
    background = scene(SIZE, (0.0, 0.0))
    clean, noisy = [], []
    for t in range(5):
        frame = background.copy()
        frame[60:100, 20 + 30 * t:44 + 30 * t] = (0.95, 0.9, 0.85)
        clean.append(frame)
        noisy.append(frame + gaussian_grain(SIZE, 0.8, rng) * true_sigma(frame))
    model = measure_grain(noisy, 5)
    margin = BLOCK - STEP
    unaligned = [cv2.copyMakeBorder(f, margin, margin, margin, margin, cv2.BORDER_REFLECT_101) for f in noisy]
    out, _ = denoise_frame(unaligned, 2, model.sigma_at, model.channel_correlation, model.dct_noise_variance())
    trail = np.zeros(SIZE, bool)
    for k in (0, 1, 3, 4):
        trail[60:100, 20 + 30 * k:44 + 30 * k] = True
    error = out - clean[2]
    grain_level = float(np.mean(true_sigma(clean[2])[trail]))
    assert abs(float(error[trail].mean())) < 0.1 * grain_level
    # the rejected neighbours leave the spatial pass alone there: still cleaner than the grain, no mixing
    assert float(np.sqrt(np.mean(error[trail] ** 2))) < 0.4 * grain_level


@pytest.mark.parametrize("height, width", [(9, 9), (17, 13)])
def test_tiny_frames_and_flat_frames_pass_through(height, width):
    rng = np.random.default_rng(0)
    tiny = [np.clip(0.5 + 0.02 * rng.standard_normal((height, width, 3)), 0, 1).astype(np.float32) for _ in range(4)]
    black = [np.zeros((32, 32, 3), np.float32) for _ in range(4)]
    for frames in (tiny, black):
        for mode in ("remove", "keep", "regrain"):
            out = run(frames, grain=mode)
            assert all(o.shape == frames[0].shape and np.isfinite(o).all() for o in out)
    assert np.abs(run(black, grain="remove")[1]).max() == 0.0


def test_regrain_level_takes_the_lost_picture_out_of_the_grain_figure():
    """Known answer: a 'denoiser' that blurs (losing fine picture detail) and a regrain that adds fresh grain at
    exactly the level put in (or twice it). The old figure counts the lost detail as grain; the new one does not."""
    import cv2

    from restoration.bench.corpus import Clip
    from restoration.bench.scoring import grain_level_pct, regrain_level_pct, antithetic_input

    rng = np.random.default_rng(5)
    shape = (128, 128, 3)
    texture = [cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 0.7) for _ in range(4)]
    truth = [np.float32(0.5) + np.float32(0.2) * t for t in texture]
    grain = [rng.standard_normal(shape).astype(np.float32) * np.float32(0.03) for _ in truth]
    clip = Clip("known", "denoise", "grain", "", [t + g for t, g in zip(truth, grain)], truth, grain=grain)

    def blur(frames):
        return [cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames]

    removed, antithetic = blur(clip.degraded), blur(antithetic_input(clip))
    for factor in (1.0, 2.0):
        fresh = [rng.standard_normal(shape).astype(np.float32) * np.float32(0.03 * factor) for _ in truth]
        regrained = [b + n for b, n in zip(blur(truth), fresh)]
        old = grain_level_pct([o - t for o, t in zip(regrained, truth)], clip)
        new = regrain_level_pct(clip, regrained, removed, antithetic)
        assert new == pytest.approx(100 * factor, rel=0.03)
        assert old > new + 10  # the lost detail counted as grain
