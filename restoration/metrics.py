"""Restoration quality metrics against ground truth, built on scikit-image and OpenCV where they have them.

Frames are float32 RGB HxWx3 in [0, 1]; sequences are lists (or N-first arrays) of frames.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage import color as skcolor
from skimage import metrics as skmetrics

LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)
SHIFT_SMOOTHING = 1.0  # px


# --- fidelity ------------------------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """PSNR in dB (inf for identical inputs); with `mask` (HxW bool) only the masked pixels count."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    if mask is None:
        if np.array_equal(a, b):
            return math.inf
        return float(skmetrics.peak_signal_noise_ratio(a, b, data_range=data_range))
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return math.nan
    mse = float(np.mean((a[mask] - b[mask]) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)


def psnr_inside(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR over the pixels of `mask` (e.g. the repaired defects)."""
    return psnr(a, b, np.asarray(mask, dtype=bool), data_range)


def psnr_outside(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR over the pixels outside `mask` (what a repair should not have touched)."""
    return psnr(a, b, ~np.asarray(mask, dtype=bool), data_range)


def luma_ycbcr(frame: np.ndarray) -> np.ndarray:
    """BT.601 Y scaled to [0, 1] from the studio range 16..235 /255, as MATLAB rgb2ycbcr (the SR protocol)."""
    return (skcolor.rgb2ycbcr(np.clip(frame, 0.0, 1.0))[..., 0] / 255.0).astype(np.float64)


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border > 0 else image


def psnr_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR on BT.601 Y (16..235) with `border` px cropped from every side (SR protocol: border = scale)."""
    return psnr(_crop(luma_ycbcr(a), border), _crop(luma_ycbcr(b), border), data_range=1.0)


def _ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None) -> float:
    # Wang et al.'s settings: 11x11 Gaussian window (sigma 1.5), population covariance
    return float(skmetrics.structural_similarity(a, b, data_range=1.0, channel_axis=channel_axis,
                                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM over RGB (mean of the channels)."""
    return _ssim(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), channel_axis=2)


def ssim_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """SSIM on BT.601 Y (16..235) with `border` px cropped (SR protocol)."""
    return _ssim(_crop(luma_ycbcr(a), border), _crop(luma_ycbcr(b), border), channel_axis=None)


# --- defect detection ----------------------------------------------------------------------------------------

def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def detection_scores(pred_mask: np.ndarray, true_mask: np.ndarray, min_size: int = 3) -> dict[str, float]:
    """Pixel-level and per-defect precision/recall/F1 of a defect mask against the true one.

    Per defect (8-connected regions): a true defect of >= `min_size` px is found when >= 50 % of it is flagged;
    a flagged region is correct when it touches any true defect pixel. Empty sets score 1 (nothing missed /
    no false alarm).
    """
    pred = np.asarray(pred_mask, dtype=bool)
    true = np.asarray(true_mask, dtype=bool)
    tp = int(np.count_nonzero(pred & true))
    n_pred, n_true = int(pred.sum()), int(true.sum())
    p_pix = tp / n_pred if n_pred else 1.0
    r_pix = tp / n_true if n_true else 1.0

    n_labels, labels = cv2.connectedComponents(true.astype(np.uint8), connectivity=8)
    sizes = np.bincount(labels.ravel(), minlength=n_labels)
    flagged = np.bincount(labels[pred], minlength=n_labels)
    counted = sizes[1:] >= min_size
    found = (flagged[1:] >= 0.5 * sizes[1:]) & counted
    n_counted = int(counted.sum())
    r_obj = int(found.sum()) / n_counted if n_counted else 1.0

    n_pred_labels, pred_labels = cv2.connectedComponents(pred.astype(np.uint8), connectivity=8)
    hits = np.bincount(pred_labels[true], minlength=n_pred_labels)[1:] > 0
    p_obj = float(hits.mean()) if hits.size else 1.0
    return {"pixel_precision": p_pix, "pixel_recall": r_pix, "pixel_f1": _f1(p_pix, r_pix),
            "object_precision": p_obj, "object_recall": r_obj, "object_f1": _f1(p_obj, r_obj),
            "true_defects": n_counted, "found_defects": int(found.sum()), "flagged_regions": int(hits.size)}


def visible_detection_scores(pred_mask: np.ndarray, true_mask: np.ndarray, visible: np.ndarray, min_size: int = 3,
                             share: float = 0.5, near_px: int = 1, subset: np.ndarray | None = None
                             ) -> dict[str, float]:
    """Per-defect precision/recall/F1 that a perfect repair scores 1 on and a frame-wide filter cannot game.

    A flagged region (8-connected) is a right detection when >= `share` of its pixels lie in the true mask grown by
    `near_px` (a feathered repair edge). A true defect (8-connected region of `true_mask`) counts when
    >= `min_size` of its pixels are `visible` (the damage moved them by more than the change threshold; faint soft
    edges do not) and is found when right detections cover >= `share` of those. Empty sets score 1.
    With `subset` (bool), recall also comes out over the counted defects that touch it (`subset_recall`).
    """
    pred = np.asarray(pred_mask, dtype=bool)
    true = np.asarray(true_mask, dtype=bool)
    seen = np.asarray(visible, dtype=bool) & true
    near = true if near_px <= 0 else cv2.dilate(true.astype(np.uint8), np.ones((2 * near_px + 1,) * 2, np.uint8)) > 0
    n_pred_labels, pred_labels = cv2.connectedComponents(pred.astype(np.uint8), connectivity=8)
    region_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred_labels)
    region_near = np.bincount(pred_labels[near], minlength=n_pred_labels)
    right = region_near >= share * region_sizes
    right[0] = False
    precision = float(right[1:].mean()) if n_pred_labels > 1 else 1.0

    n_labels, labels = cv2.connectedComponents(true.astype(np.uint8), connectivity=8)
    sizes = np.bincount(labels[seen], minlength=n_labels)
    covered = np.bincount(labels[seen & right[pred_labels]], minlength=n_labels)
    counted = sizes[1:] >= min_size
    found = (covered[1:] >= share * sizes[1:]) & counted
    n_counted = int(counted.sum())
    recall = int(found.sum()) / n_counted if n_counted else 1.0
    scores = {"defect_precision": precision, "defect_recall": recall, "defect_f1": _f1(precision, recall),
              "visible_defects": n_counted, "found_visible_defects": int(found.sum()),
              "flagged_regions": n_pred_labels - 1, "right_regions": int(right.sum())}
    if subset is not None:
        chosen = counted & (np.bincount(labels[np.asarray(subset, dtype=bool)], minlength=n_labels)[1:] > 0)
        scores["subset_defects"] = int(chosen.sum())
        scores["subset_recall"] = int((found & chosen).sum()) / int(chosen.sum()) if chosen.any() else 1.0
    return scores


MATCHED_WINDOW_PX = 48  # matched_filter_snr: a larger template is cut to this window around its peak
MATCHED_PAD_PX = 24  # ... and the noise is sampled this far, plus the template's size, around it


def matched_filter_snr(signal: np.ndarray, noise: np.ndarray, mask: np.ndarray,
                       window_px: int = MATCHED_WINDOW_PX, pad_px: int = MATCHED_PAD_PX) -> float:
    """How well an ideal detector that knows a defect's exact shape could tell it from noise: the defect's energy
    over the spread of the same template's response to the noise around it (correlated noise included).

    `signal` is the defect's own contribution (damaged minus undamaged), `noise` what a detector sees without it
    (e.g. one frame's grain minus its neighbours' mean), both HxW or HxWxC; `mask` the defect's pixels. A template
    larger than `window_px` is cut to the window around its peak (that part alone gives a lower bound).
    """
    signal, noise = np.asarray(signal, np.float32), np.asarray(noise, np.float32)
    if signal.ndim == 2:
        signal, noise = signal[..., None], noise[..., None]
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return 0.0
    strength = np.abs(signal[ys, xs]).sum(axis=1)
    cy, cx = int(ys[np.argmax(strength)]), int(xs[np.argmax(strength)])
    half = window_px // 2
    y0, y1 = max(ys.min(), cy - half), min(ys.max() + 1, cy + half)
    x0, x1 = max(xs.min(), cx - half), min(xs.max() + 1, cx + half)
    template = np.where(np.asarray(mask, bool)[y0:y1, x0:x1, None], signal[y0:y1, x0:x1], 0.0).astype(np.float32)
    energy = float((template ** 2).sum())
    height, width = noise.shape[:2]
    h, w = y1 - y0, x1 - x0
    ny0, ny1 = max(0, y0 - pad_px - h), min(height, y1 + pad_px + h)
    nx0, nx1 = max(0, x0 - pad_px - w), min(width, x1 + pad_px + w)
    area = noise[ny0:ny1, nx0:nx1]
    response = sum(cv2.matchTemplate(np.ascontiguousarray(area[..., c]), np.ascontiguousarray(template[..., c]),
                                     cv2.TM_CCORR) for c in range(noise.shape[2]))
    spread = float(np.std(response))
    return energy / spread if spread > 0 else float("inf")


def false_positive_area(pred: np.ndarray, true: np.ndarray) -> float:
    """Fraction of all pixels flagged although they are not defects."""
    pred = np.asarray(pred, dtype=bool)
    return float(np.count_nonzero(pred & ~np.asarray(true, dtype=bool))) / pred.size


def changed_fraction(output: np.ndarray, input: np.ndarray, mask_exclude: np.ndarray | None = None,
                     threshold: float = 2.0 / 255.0) -> float:
    """Fraction of pixels (outside `mask_exclude`) where any channel moved by more than `threshold`."""
    diff = np.abs(np.asarray(output, dtype=np.float32) - np.asarray(input, dtype=np.float32))
    changed = diff.max(axis=2) > threshold if diff.ndim == 3 else diff > threshold
    keep = np.ones(changed.shape, dtype=bool) if mask_exclude is None else ~np.asarray(mask_exclude, dtype=bool)
    return float(np.count_nonzero(changed & keep)) / max(int(keep.sum()), 1)


# --- geometry: residual jitter ---------------------------------------------------------------------------------

def luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma (full range) of an RGB frame; a 2-D frame is returned as is."""
    frame = np.asarray(frame, dtype=np.float32)
    return frame if frame.ndim == 2 else frame @ LUMA_601


def _central_box(shape: tuple[int, int], central: float) -> tuple[slice, slice]:
    h, w = shape
    y0 = int(round(h * (1 - central) / 2))
    x0 = int(round(w * (1 - central) / 2))
    return slice(y0, h - y0), slice(x0, w - x0)


def frame_shift(output: np.ndarray, truth: np.ndarray, central: float = 0.6, iterations: int = 30) -> np.ndarray:
    """Sub-pixel (dx, dy) by which `output`'s picture sits displaced from `truth`'s, on the central region.

    cv2.phaseCorrelate gives the start; it is biased towards whole pixels (0.14 for a 0.37 px shift), so the
    estimate is refined by inverse-compositional Lucas-Kanade on a cubic-spline warp at exact positions
    (OpenCV's warps quantise positions to 1/32 px). Both frames are smoothed a little (sigma 1 px), which
    keeps the linearisation valid on sharp, aliased detail.
    """
    a = ndi.gaussian_filter(luma(truth).astype(np.float64), SHIFT_SMOOTHING)
    b = ndi.gaussian_filter(luma(output).astype(np.float64), SHIFT_SMOOTHING)
    rows, cols = _central_box(a.shape, central)
    ac, bc = a[rows, cols], b[rows, cols]
    window = cv2.createHanningWindow((ac.shape[1], ac.shape[0]), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(ac - ac.mean(), bc - bc.mean(), window)
    shift = np.array([dx, dy], dtype=np.float64)
    # spline coefficients of the output around the central box only (the shift stays within `pad`)
    pad = int(math.ceil(np.abs(shift).max())) + 8
    y0, x0 = max(rows.start - pad, 0), max(cols.start - pad, 0)
    coefficients = ndi.spline_filter(b[y0:rows.stop + pad, x0:cols.stop + pad], order=3, mode="mirror")
    yy, xx = np.mgrid[rows, cols].astype(np.float64)
    yy -= y0
    xx -= x0
    gy, gx = np.gradient(ac)
    jacobian = np.stack([gx.ravel(), gy.ravel()], axis=1)
    hessian_inv = np.linalg.inv(jacobian.T @ jacobian)
    for _ in range(iterations):
        moved = ndi.map_coordinates(coefficients, [yy + shift[1], xx + shift[0]], order=3, mode="mirror",
                                    prefilter=False)
        # moved(x) ~ truth(x + step) means the estimate overshoots by `step`
        step = hessian_inv @ (jacobian.T @ (moved - ac).ravel())
        shift -= step
        if np.abs(step).max() < 1e-3:
            break
    return shift


def _rms_about(values: np.ndarray, remove_mean: bool, remove_trend: bool = False) -> np.ndarray:
    """Per-frame values less their clip mean, or less their least-squares line over the frame index."""
    values = np.asarray(values, dtype=np.float64)
    if remove_trend and values.shape[0] >= 3:
        t = np.arange(values.shape[0], dtype=np.float64)
        design = np.stack([np.ones_like(t), t - t.mean()], axis=1)
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        return values - design @ coef
    return values - values.mean(axis=0, keepdims=True) if remove_mean else values


def residual_jitter_from_frames(output_frames: Sequence[np.ndarray], truth_frames: Sequence[np.ndarray],
                                central: float = 0.6, remove_mean: bool = True, remove_trend: bool = False) -> float:
    """RMS (px) of the per-frame shift between output and truth on the central region.

    With `remove_mean` a constant offset over the clip (e.g. a stabilizer locked to a frame that was itself
    off) is not counted as jitter; with `remove_trend` neither is a constant drift (a pan kept a little too fast
    or slow, which the pan error reports).
    """
    shifts = np.array([frame_shift(o, t, central) for o, t in zip(output_frames, truth_frames)])
    shifts = _rms_about(shifts, remove_mean, remove_trend)
    return float(np.sqrt(np.mean(np.sum(shifts ** 2, axis=1))))


def jitter_from_transforms(est: np.ndarray, true: np.ndarray, size: tuple[int, int] | None = None,
                           central: float = 0.6, remove_mean: bool = True, remove_trend: bool = False) -> float:
    """RMS (px) over frames and over the central region of the displacement between two (N, 3) weave tracks.

    Rows are dx, dy (px), rotation (deg) about the frame centre; `size` = (width, height) turns the rotation
    error into px (mean squared radius of the central box is (w^2 + h^2) / 12); without it rotation is ignored.
    `remove_trend` takes out each component's least-squares line over the frames instead of only its mean.
    """
    est = np.asarray(est, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    residual = _rms_about(est[:, :3] - true[:, :3] if est.shape[1] >= 3 else est[:, :2] - true[:, :2],
                          remove_mean, remove_trend)
    squared = residual[:, 0] ** 2 + residual[:, 1] ** 2
    if size is not None and residual.shape[1] >= 3:
        w, h = size[0] * central, size[1] * central
        squared = squared + np.radians(residual[:, 2]) ** 2 * (w * w + h * h) / 12.0
    return float(np.sqrt(np.mean(squared)))


# --- flicker ---------------------------------------------------------------------------------------------------

def _mean_luma_series(frames: Sequence[np.ndarray], block: int | None = None) -> np.ndarray:
    series = []
    for frame in frames:
        y = luma(frame)
        if block is None:
            series.append([float(y.mean())])
        else:
            h, w = (y.shape[0] // block) * block, (y.shape[1] // block) * block
            series.append(y[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3)).ravel())
    return np.asarray(series, dtype=np.float64)


def _flicker(series: np.ndarray, truth_series: np.ndarray | None) -> float:
    steps = np.diff(series, axis=0)
    if truth_series is not None:
        steps = steps - np.diff(truth_series, axis=0)
    if steps.shape[0] == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.var(steps, axis=0))))


def flicker_index(frames: Sequence[np.ndarray], truth_frames: Sequence[np.ndarray] | None = None) -> float:
    """Std over time of the frame-to-frame change of mean luma, less the truth's own change (luma units 0..1)."""
    truth = None if truth_frames is None else _mean_luma_series(truth_frames)
    return _flicker(_mean_luma_series(frames), truth)


def flicker_index_local(frames: Sequence[np.ndarray], truth_frames: Sequence[np.ndarray] | None = None,
                        block: int = 64) -> float:
    """Flicker index per `block` x `block` tile (RMS over tiles): catches local, uneven flicker."""
    truth = None if truth_frames is None else _mean_luma_series(truth_frames, block)
    return _flicker(_mean_luma_series(frames, block), truth)


# --- temporal consistency --------------------------------------------------------------------------------------

def _to_u8(frame: np.ndarray) -> np.ndarray:
    return np.clip(luma(frame) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def warping_error(output_frames: Sequence[np.ndarray], truth_frames: Sequence[np.ndarray]) -> float:
    """Mean |out_t - warp(out_t+1)| over non-occluded pixels, with DIS flow computed on the truth frames.

    Occlusions: forward-backward check |f + b(x + f)|^2 < 0.01 (|f|^2 + |b(x + f)|^2) + 0.5 (Sundaram et al.).
    Compare with warping_error(truth, truth): flow and resampling leave a small floor even for perfect output.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    errors = []
    for t in range(len(truth_frames) - 1):
        g0, g1 = _to_u8(truth_frames[t]), _to_u8(truth_frames[t + 1])
        forward = dis.calc(g0, g1, None)
        backward = dis.calc(g1, g0, None)
        back_at = _warp_by_flow(backward, forward)
        loop = np.sum((forward + back_at) ** 2, axis=2)
        valid = loop < 0.01 * (np.sum(forward ** 2, axis=2) + np.sum(back_at ** 2, axis=2)) + 0.5
        warped = _warp_by_flow(np.asarray(output_frames[t + 1], dtype=np.float32), forward)
        diff = np.abs(np.asarray(output_frames[t], dtype=np.float32) - warped)
        if valid.any():
            errors.append(float(diff[valid].mean()))
    return float(np.mean(errors)) if errors else 0.0


# --- colour ----------------------------------------------------------------------------------------------------

def _lab(frame: np.ndarray) -> np.ndarray:
    return skcolor.rgb2lab(np.clip(np.asarray(frame, dtype=np.float64), 0.0, 1.0))


def delta_e2000(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """CIEDE2000 between two sRGB frames (or stacks): (mean, 95th percentile)."""
    d = skcolor.deltaE_ciede2000(_lab(a), _lab(b))
    return float(d.mean()), float(np.percentile(d, 95))


def mean_lab(frame: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour of a frame."""
    return _lab(frame).reshape(-1, 3).mean(axis=0)


def colour_stability(frames: Sequence[np.ndarray]) -> float:
    """Mean CIEDE2000 between consecutive frames' mean colours (compare with the truth's figure)."""
    means = np.array([mean_lab(f) for f in frames])
    if len(means) < 2:
        return 0.0
    return float(skcolor.deltaE_ciede2000(means[:-1], means[1:]).mean())


def chroma_mean(frames: Sequence[np.ndarray] | np.ndarray) -> float:
    """Mean CIELAB chroma sqrt(a^2 + b^2) over all pixels (0 for neutral greys)."""
    frames = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 3 else frames
    values = [np.hypot(lab[..., 1], lab[..., 2]).mean() for lab in map(_lab, frames)]
    return float(np.mean(values))


# --- grain -----------------------------------------------------------------------------------------------------

def _stack(frames) -> np.ndarray:
    array = np.asarray(frames, dtype=np.float32) if not isinstance(frames, np.ndarray) else frames
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 3:
        array = array[None]
    return array


def noise_level_function(noise, intensity, bins: int = 16, min_count: int = 500,
                         robust: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise std per channel as a function of intensity: (bin centres (B,), sigma (B, C), counts (B, C)).

    `noise` is the grain/noise field (or output - truth), `intensity` the image it rides on (e.g. the clean
    frame), frames or lists of frames; bins split [0, 1] evenly; bins with fewer than `min_count` pixels are nan.
    `robust` uses 1.4826 * MAD instead of the std (outliers such as dust do not count).
    """
    noise = _stack(noise)
    intensity = _stack(intensity)
    channels = noise.shape[-1]
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    sigma = np.full((bins, channels), np.nan)
    counts = np.zeros((bins, channels), dtype=np.int64)
    for ch in range(channels):
        values = noise[..., ch].ravel()
        level = intensity[..., min(ch, intensity.shape[-1] - 1)].ravel()
        index = np.clip(np.digitize(level, edges) - 1, 0, bins - 1)
        for b in range(bins):
            sample = values[index == b]
            counts[b, ch] = sample.size
            if sample.size >= min_count:
                if robust:
                    sigma[b, ch] = 1.4826 * np.median(np.abs(sample - np.median(sample)))
                else:
                    sigma[b, ch] = sample.std()
    return centres, sigma, counts


def nlf_error(est: np.ndarray, true: np.ndarray) -> float:
    """Mean relative error |est - true| / true over the bins and channels both define."""
    est = np.asarray(est, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    valid = np.isfinite(est) & np.isfinite(true) & (true > 0)
    if not valid.any():
        return math.nan
    return float(np.mean(np.abs(est[valid] - true[valid]) / true[valid]))


def radial_power_spectrum(field, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a (Hann-windowed, zero-mean) field: (freq in cycles/px, power).

    Frames and channels are averaged; the bins split 0..0.5 cycles/px evenly.
    """
    stack = _stack(field)
    h, w = stack.shape[1:3]
    window = np.outer(np.hanning(h), np.hanning(w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fx ** 2 + fy ** 2)
    edges = np.linspace(0.0, 0.5, bins + 1)
    index = np.digitize(radius.ravel(), edges) - 1
    inside = (index >= 0) & (index < bins)
    power = np.zeros((h, w))
    for frame in stack:
        for ch in range(frame.shape[-1]):
            plane = frame[..., ch].astype(np.float64)
            spectrum = np.fft.fft2((plane - plane.mean()) * window)
            power += np.abs(spectrum) ** 2
    power /= stack.shape[0] * stack.shape[-1] * np.sum(window ** 2)
    sums = np.bincount(index[inside], weights=power.ravel()[inside], minlength=bins)
    counts = np.bincount(index[inside], minlength=bins)
    return 0.5 * (edges[:-1] + edges[1:]), sums / np.maximum(counts, 1)


def spectrum_correlation(a, b, bins: int = 32) -> float:
    """Pearson correlation of the radial power spectra of two fields (1 = same grain structure).

    Linear, not log, power: Gaussian-correlated grain has a parabolic log spectrum whatever its size, so log
    spectra of different grain sizes would still correlate perfectly. The lowest bin (window leakage of the
    mean) is left out. Doubling the grain size gives about 0.87.
    """
    _, pa = radial_power_spectrum(a, bins)
    _, pb = radial_power_spectrum(b, bins)
    return float(np.corrcoef(pa[1:], pb[1:])[0, 1])


# --- throughput ------------------------------------------------------------------------------------------------

def time_median(fn: Callable[[], object], runs: int = 3, warmup: int = 1) -> float:
    """Median wall time (s) of `fn()` over `runs` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def fps(fn: Callable[[], object], frames: int, runs: int = 3, warmup: int = 1) -> float:
    """Frames per second of `fn()`, which processes `frames` frames (median of `runs` after a warm-up)."""
    return frames / time_median(fn, runs, warmup)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB."""
    if sys.platform == "win32":
        import psutil

        return psutil.Process().memory_info().peak_wset / 2 ** 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024.0
