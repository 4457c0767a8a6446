"""Each metric on a case whose answer is known."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import psutil
import pytest
from scipy import ndimage as ndi
from skimage import color as skcolor

from restoration import metrics as M
from restoration.synth import film_sigma_curve, grain_field


def texture(h: int = 160, w: int = 200, seed: int = 0) -> np.ndarray:
    """A grey-level texture with detail at several scales, RGB float32 in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    field = sum(cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), s) * s for s in (1.0, 3.0))
    field = (field - field.min()) / (field.max() - field.min())
    return np.repeat((0.1 + 0.8 * field)[..., None], 3, axis=2).astype(np.float32)


def lab_image(lab: tuple[float, float, float], shape=(32, 32)) -> np.ndarray:
    return skcolor.lab2rgb(np.broadcast_to(np.array(lab, dtype=np.float64), (*shape, 3))).astype(np.float64)


# --- fidelity --------------------------------------------------------------------------------------------------

def test_psnr_identical_is_infinite_and_known_mse_gives_known_db():
    a = texture()
    assert M.psnr(a, a) == math.inf
    assert M.psnr(a, np.clip(a + 0.1, 0, 1)) == pytest.approx(20.0, abs=1e-4)  # mse 0.01 (no clipping here)


def test_psnr_inside_and_outside_a_mask():
    a = texture()
    mask = np.zeros(a.shape[:2], bool)
    mask[10:30, 10:30] = True
    b = a.copy()
    b[mask] += 0.01  # mse 1e-4 inside the mask only
    assert M.psnr_outside(b, a, mask) == math.inf
    assert M.psnr_inside(b, a, mask) == pytest.approx(40.0, abs=1e-3)
    assert M.psnr(b, a, mask=mask) == pytest.approx(40.0, abs=1e-3)


def test_psnr_y_border_crop_and_ycbcr_scale():
    a = texture()
    b = a.copy()
    b[:4] = 0.0  # damage only the 4-px border
    assert M.psnr_y(a, b, border=4) == math.inf
    assert math.isfinite(M.psnr_y(a, b, border=0))
    # Y in 16..235: a full-range white/black difference spans 219/255 of the range
    white, black = np.ones((8, 8, 3)), np.zeros((8, 8, 3))
    assert M.psnr_y(white, black) == pytest.approx(-20 * math.log10(219 / 255), abs=1e-6)


def test_ssim_identical_is_one_and_noise_lowers_it():
    a = texture()
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.ssim_y(a, a, border=4) == pytest.approx(1.0)
    assert M.ssim(a, noisy) < 0.9 and M.ssim_y(a, noisy) < 0.9


# --- detection -------------------------------------------------------------------------------------------------

def test_detection_scores_on_hand_made_masks():
    true = np.zeros((40, 40), bool)
    true[5:15, 5:15] = True      # defect A, 100 px
    true[20:22, 30:32] = True    # defect B, 4 px
    true[35, 35] = True          # defect C, 1 px: below min_size, not counted
    pred = np.zeros_like(true)
    pred[5:11, 5:15] = True      # 60 % of A -> found
    pred[20, 30] = True          # 25 % of B -> missed
    pred[30:33, 5:8] = True      # false alarm, 9 px
    s = M.detection_scores(pred, true, min_size=3)
    assert s["pixel_precision"] == pytest.approx(61 / 70)
    assert s["pixel_recall"] == pytest.approx(61 / 105)
    assert s["object_recall"] == pytest.approx(1 / 2)       # A found, B missed, C not counted
    assert s["object_precision"] == pytest.approx(2 / 3)    # two of three flagged regions touch a defect
    assert s["object_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert s["true_defects"] == 2 and s["found_defects"] == 1
    assert M.false_positive_area(pred, true) == pytest.approx(9 / 1600)
    empty = M.detection_scores(np.zeros_like(true), np.zeros_like(true))
    assert empty["pixel_f1"] == 1.0 and empty["object_f1"] == 1.0


def test_visible_detection_scores_count_visible_damage_and_need_detections_mostly_on_defects():
    true = np.zeros((40, 40), bool)
    true[5:15, 5:15] = True      # defect A, 100 px, its visible core 6x6 = 36 px (soft edge below threshold)
    true[20:22, 30:32] = True    # defect B, 4 px, only 2 px visible: not counted
    true[30:33, 30:33] = True    # defect C, 9 px, all visible
    visible = np.zeros_like(true)
    visible[7:13, 7:13] = True
    visible[20, 30:32] = True
    visible[30:33, 30:33] = True
    perfect = visible.copy()     # a perfect repair changes exactly the visible damage
    s = M.visible_detection_scores(perfect, true, visible, min_size=3)
    assert s["visible_defects"] == 2
    assert s["defect_recall"] == 1.0 and s["defect_precision"] == 1.0 and s["defect_f1"] == 1.0
    old = M.detection_scores(perfect, true, min_size=3)
    assert old["object_recall"] == pytest.approx(2 / 3)  # the old rule misses A (36 % of it changed)
    # a repair one pixel wider than the defect is still right; a region mostly off the defects is not
    grown = perfect.copy()
    grown[29:34, 29:34] = True   # 25 px around C, 9 + 16 in the 1 px ring
    grown[0:3, 20:26] = True     # 18 px false alarm
    s = M.visible_detection_scores(grown, true, visible, min_size=3)
    assert s["flagged_regions"] == 4 and s["right_regions"] == 3  # A, B (uncounted but on a defect), C
    assert s["defect_precision"] == pytest.approx(3 / 4) and s["defect_recall"] == 1.0
    # a filter that changes the whole frame forms one region mostly off the defects: it finds nothing
    everything = M.visible_detection_scores(np.ones_like(true), true, visible, min_size=3)
    assert everything["defect_precision"] == 0.0 and everything["defect_recall"] == 0.0
    assert M.detection_scores(np.ones_like(true), true, min_size=3)["object_f1"] == 1.0  # what the old rule gave
    half = perfect.copy()
    half[7:10, 7:13] = False     # 18 of A's 36 visible px left: still found (>= 50 %)
    half[30:33, 31:33] = False   # 3 of C's 9: missed
    s = M.visible_detection_scores(half, true, visible, min_size=3)
    assert s["defect_recall"] == 0.5 and s["found_visible_defects"] == 1
    only_c = np.zeros_like(true)
    only_c[31, 31] = True        # recall over the defects that touch a subset: C alone, which `half` misses
    s = M.visible_detection_scores(half, true, visible, min_size=3, subset=only_c)
    assert s["subset_defects"] == 1 and s["subset_recall"] == 0.0 and s["defect_recall"] == 0.5
    empty = M.visible_detection_scores(np.zeros_like(true), np.zeros_like(true), np.zeros_like(true))
    assert empty["defect_f1"] == 1.0


def test_changed_fraction_counts_only_changes_above_threshold_outside_exclusion():
    a = texture()
    b = a.copy()
    b[:16, :, 1] += 3 / 255      # changed: 16 of 160 rows
    b[16:32] += 1 / 255          # below the 2/255 threshold
    assert M.changed_fraction(b, a) == pytest.approx(16 / 160)
    exclude = np.zeros(a.shape[:2], bool)
    exclude[:8] = True
    assert M.changed_fraction(b, a, exclude) == pytest.approx(8 / 152)


# --- jitter ----------------------------------------------------------------------------------------------------

def test_known_subpixel_shift_made_with_opencv_is_measured_within_002px():
    a = texture(240, 280)
    shifted = cv2.warpAffine(a, np.float32([[1, 0, 0.37], [0, 1, 0]]), (280, 240), flags=cv2.INTER_LANCZOS4,
                             borderMode=cv2.BORDER_REFLECT)
    dx, dy = M.frame_shift(shifted, a)
    assert dx == pytest.approx(0.37, abs=0.02) and dy == pytest.approx(0.0, abs=0.02)
    # jitter of a clip whose frames alternate +-0.37 px around the truth
    back = cv2.warpAffine(a, np.float32([[1, 0, -0.37], [0, 1, 0]]), (280, 240), flags=cv2.INTER_LANCZOS4,
                          borderMode=cv2.BORDER_REFLECT)
    jitter = M.residual_jitter_from_frames([shifted, back, shifted, back], [a] * 4)
    assert jitter == pytest.approx(0.37, abs=0.02)


def test_exact_spline_shifts_are_measured_within_001px_and_a_constant_offset_is_not_jitter():
    a = texture(240, 280)
    shifts = [(0.8, -1.3), (-2.25, 0.4), (0.1, 0.05)]
    frames = [np.stack([ndi.shift(a[..., c], (dy, dx), order=5, mode="mirror") for c in range(3)], axis=2)
              for dx, dy in shifts]
    for frame, (dx, dy) in zip(frames, shifts):
        assert M.frame_shift(frame, a) == pytest.approx([dx, dy], abs=0.01)
    expected = np.array(shifts)
    rms_raw = math.sqrt(np.mean(np.sum(expected ** 2, axis=1)))
    rms_centred = math.sqrt(np.mean(np.sum((expected - expected.mean(0)) ** 2, axis=1)))
    assert M.residual_jitter_from_frames(frames, [a] * 3, remove_mean=False) == pytest.approx(rms_raw, abs=0.01)
    assert M.residual_jitter_from_frames(frames, [a] * 3) == pytest.approx(rms_centred, abs=0.01)
    same = [np.stack([ndi.shift(a[..., c], (0.5, 0.5), order=5, mode="mirror") for c in range(3)], axis=2)] * 3
    assert M.residual_jitter_from_frames(same, [a] * 3) < 0.005


def test_jitter_from_transforms_matches_brute_force_displacements():
    rng = np.random.default_rng(3)
    true = rng.normal(0, [1.5, 1.5, 0.15], (12, 3))
    est = true + rng.normal(0, [0.1, 0.1, 0.02], (12, 3))
    size = (720, 576)
    central = 0.6
    # brute force: displacement difference of every pixel of the central box, rotation about the centre
    w, h = size[0] * central, size[1] * central
    xs, ys = np.meshgrid(np.linspace(-w / 2, w / 2, 201), np.linspace(-h / 2, h / 2, 161))
    residual = est - true
    residual -= residual.mean(0)
    sq = []
    for dx, dy, rot in residual:
        th = math.radians(rot)
        ux = dx + (math.cos(th) - 1) * xs + math.sin(th) * ys
        uy = dy - math.sin(th) * xs + (math.cos(th) - 1) * ys
        sq.append(np.mean(ux ** 2 + uy ** 2))
    assert M.jitter_from_transforms(est, true, size, central) == pytest.approx(math.sqrt(np.mean(sq)), rel=0.01)
    offset = true + [1.0, 0.0, 0.0]
    assert M.jitter_from_transforms(offset, true) == pytest.approx(0.0, abs=1e-12)
    assert M.jitter_from_transforms(offset, true, remove_mean=False) == pytest.approx(1.0)


def test_jitter_without_trend_counts_only_what_a_line_does_not_explain():
    # shifts = offset + drift * t + a known wobble orthogonal to any line: the trend-free jitter is the wobble's RMS
    n = 16
    t = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(8)
    wobble = rng.normal(size=(n, 2))
    design = np.stack([np.ones(n), t], 1)
    wobble -= design @ np.linalg.lstsq(design, wobble, rcond=None)[0]
    wobble *= 0.1 / math.sqrt(np.mean(np.sum(wobble ** 2, axis=1)))
    drift = np.array([0.3, -0.2])
    shifts = np.array([2.0, 1.0]) + t[:, None] * drift + wobble
    zeros = np.zeros_like(shifts)
    assert M.jitter_from_transforms(shifts, zeros, remove_trend=True) == pytest.approx(0.1, rel=1e-9)
    # the mean-only (old) figure also counts the drift: RMS of drift * (t - mean t), plus the wobble
    ramp = (t - t.mean())[:, None] * drift
    expected = math.sqrt(np.mean(np.sum((ramp + wobble) ** 2, axis=1)))
    assert M.jitter_from_transforms(shifts, zeros) == pytest.approx(expected, rel=1e-9)
    assert expected > 1.0


# --- flicker ---------------------------------------------------------------------------------------------------

def test_flicker_index_zero_for_identical_frames_and_known_for_a_gain_pattern():
    a = texture()
    assert M.flicker_index([a] * 5) == 0.0
    gains = [1.0, 1.1, 1.0, 1.1, 0.95]
    frames = [a * g for g in gains]
    means = np.array([M.luma(f).mean() for f in frames], dtype=np.float64)
    expected = np.diff(means).std()
    assert M.flicker_index(frames) == pytest.approx(expected, rel=1e-4)
    assert M.flicker_index(frames, [a] * 5) == pytest.approx(expected, rel=1e-4)
    assert M.flicker_index(frames, frames) == 0.0
    # a genuine brightness ramp in the truth is not flicker when the output follows it
    ramp = [a * (1 + 0.05 * i) for i in range(5)]
    assert M.flicker_index(ramp, ramp) == 0.0 and M.flicker_index(ramp) == pytest.approx(0.0, abs=1e-6)


def test_local_flicker_sees_flicker_in_half_the_frame():
    a = texture(128, 128)
    frames = []
    for i in range(6):
        f = a.copy()
        f[:, :64] *= 1.2 if i % 2 else 1.0
        frames.append(f)
    assert M.flicker_index_local(frames, [a] * 6, block=64) > 1.3 * M.flicker_index(frames, [a] * 6)
    assert M.flicker_index_local([a] * 6, [a] * 6, block=32) == 0.0


# --- temporal consistency --------------------------------------------------------------------------------------

def test_warping_error_is_small_on_truth_and_grows_by_the_added_flicker():
    base = texture(200, 240)
    truth = [np.stack([ndi.shift(base[..., c], (0.0, 1.5 * t), order=3, mode="mirror") for c in range(3)], axis=2)
             for t in range(4)]
    floor = M.warping_error(truth, truth)
    assert floor < 0.01
    bumped = [f + (0.05 if t % 2 else 0.0) for t, f in enumerate(truth)]
    assert M.warping_error(bumped, truth) == pytest.approx(0.05, abs=floor + 0.005)


# --- colour ----------------------------------------------------------------------------------------------------

def test_delta_e2000_zero_for_identical_and_known_for_a_lightness_offset():
    a = lab_image((50.0, 0.0, 0.0))
    b = lab_image((52.0, 0.0, 0.0))
    assert M.delta_e2000(a, a) == (0.0, 0.0)
    # CIEDE2000 for dL = 2 around L = 51, no chroma: 2 / S_L, S_L = 1 + 0.015 * 1 / sqrt(20 + 1)
    expected = 2.0 / (1 + 0.015 / math.sqrt(21))
    mean, p95 = M.delta_e2000(a, b)
    assert mean == pytest.approx(expected, abs=1e-3) and p95 == pytest.approx(expected, abs=1e-3)


def test_colour_stability_and_chroma():
    grey, tinted = lab_image((50, 0, 0)), lab_image((50, 20, 0))
    assert M.colour_stability([grey] * 4) == pytest.approx(0.0, abs=1e-9)
    step = float(skcolor.deltaE_ciede2000(np.array([50.0, 0, 0]), np.array([50.0, 20, 0])))
    assert M.colour_stability([grey, tinted, grey]) == pytest.approx(step, abs=1e-3)
    assert M.chroma_mean([grey]) < 1e-3
    assert M.chroma_mean(tinted) == pytest.approx(20.0, abs=1e-2)


# --- grain -----------------------------------------------------------------------------------------------------

def test_noise_level_function_recovers_a_known_sigma_curve():
    rng = np.random.default_rng(5)
    intensity = np.tile(np.linspace(0, 1, 400, dtype=np.float32)[None, :, None], (300, 1, 3))
    sigma = 0.01 + 0.03 * intensity
    noise = rng.standard_normal(intensity.shape).astype(np.float32) * sigma
    centres, est, counts = M.noise_level_function(noise, intensity, bins=10)
    true = np.repeat((0.01 + 0.03 * centres)[:, None], 3, axis=1)
    assert M.nlf_error(est, true) < 0.03
    assert counts.sum() == noise.size
    assert M.nlf_error(true * 1.1, true) == pytest.approx(0.1)
    robust = M.noise_level_function(noise, intensity, bins=10, robust=True)[1]
    assert M.nlf_error(robust, true) < 0.05


def test_spectrum_correlation_is_one_with_itself_and_below_09_for_double_grain_size():
    rng = np.random.default_rng(2)
    flat = np.full((256, 256, 3), 0.5, np.float32)
    curve = film_sigma_curve(0.02)
    fine = grain_field(flat.shape, flat, curve, 0.8, rng)
    fine2 = grain_field(flat.shape, flat, curve, 0.8, rng)
    coarse = grain_field(flat.shape, flat, curve, 1.6, rng)
    assert M.spectrum_correlation(fine, fine) == pytest.approx(1.0)
    assert M.spectrum_correlation(fine, fine2) > 0.95
    assert M.spectrum_correlation(fine, coarse) < 0.9
    freqs, power = M.radial_power_spectrum(fine)
    assert freqs.shape == power.shape and power[2] > power[-1]  # correlated grain: power falls with frequency


# --- throughput ------------------------------------------------------------------------------------------------

def test_time_median_skips_warmup_and_takes_the_median():
    durations = iter([0.2, 0.01, 0.05, 0.02])

    def work():
        time.sleep(next(durations))

    assert M.time_median(work, runs=3, warmup=1) == pytest.approx(0.02, abs=0.008)


def test_peak_rss_is_at_least_the_current_rss():
    current = psutil.Process().memory_info().rss / 2 ** 20
    assert M.peak_rss_mb() >= current * 0.99


def test_matched_filter_snr_is_contrast_times_root_area_over_sigma_in_white_noise():
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 0.02, (200, 200)).astype(np.float32)
    signal = np.zeros_like(noise)
    mask = np.zeros(noise.shape, bool)
    mask[100:105, 100:105] = True
    signal[mask] = 0.1
    assert M.matched_filter_snr(signal, noise, mask) == pytest.approx(0.1 * 5 / 0.02, rel=0.15)
    faint = np.where(mask, np.float32(0.01), np.float32(0.0))
    assert M.matched_filter_snr(faint, noise, mask) == pytest.approx(2.5, rel=0.15)
    # correlated noise (grain clumps) hides a blob better than white noise of the same per-pixel spread
    clumped = cv2.GaussianBlur(noise, (0, 0), 1.5)
    clumped *= 0.02 / clumped.std()
    assert M.matched_filter_snr(signal, clumped, mask) < 0.5 * M.matched_filter_snr(signal, noise, mask)
