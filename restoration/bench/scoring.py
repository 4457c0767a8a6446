"""Each stage's figures of merit for one method's output on one corpus clip (metrics from restoration.metrics).

`score(stage, clip, output, baseline)` returns (metrics, series): metrics are plain numbers for the tables,
series are short per-frame or per-frequency lists for the plots. `baseline` is a per-clip dict where figures of
the input and of the ground truth itself are kept once computed (e.g. the input's flicker index).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import cv2
import numpy as np

from restoration import metrics as M
from restoration.bench.corpus import Clip

CHANGE_THRESHOLD = 2.0 / 255.0
MIN_DEFECT_PX = 3
PAN_CHECK_MIN_FRAMES = 3

Metrics = dict[str, float]
Series = dict[str, Any]


# What the full run tunes each peer's setting by: (metric, higher is better, clip roles averaged over).
# Dust uses the pixel F1: the per-defect F1 counts a flagged region as right when it touches any defect, so a
# filter that changes most of the frame forms one huge "right" region and scores well.
TUNING_KEY: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "dust": ("pixel_f1", True, ("damaged",)),
    "stabilize": ("jitter_px", False, ("weave",)),
    "deflicker": ("flicker_reduction_pct", True, ("flicker",)),
    "denoise": ("psnr", True, ("grain",)),
    "color": ("de2000_mean", False, ("fade",)),
    "sr": ("psnr_y", True, ("sr-stills", "sr-video")),
    "chain": ("psnr", True, ("all",)),
}


def tile(frames: list[np.ndarray], gap: int = 0) -> np.ndarray:
    """Frames side by side, so a per-clip figure comes from one call; a `gap` px empty column between them keeps
    connected regions from joining across frames."""
    if gap == 0:
        return np.concatenate(frames, axis=1)
    pad = [(0, 0), (0, gap)] + [(0, 0)] * (frames[0].ndim - 2)
    return np.concatenate([np.pad(f, pad) for f in frames], axis=1)


def change_masks(output: list[np.ndarray], source: list[np.ndarray], threshold: float = CHANGE_THRESHOLD
                 ) -> list[np.ndarray]:
    """Per frame, the pixels a method changed by more than `threshold` in any channel: its de-facto defect map."""
    return [np.abs(o - s).max(axis=2) > threshold for o, s in zip(output, source)]


def _cached(baseline: dict[str, Any], key: str, compute: Callable[[], Any]) -> Any:
    if key not in baseline:
        baseline[key] = compute()
    return baseline[key]


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------------------------


def visible_damage(clip: Clip) -> list[np.ndarray]:
    """Per frame, the defect pixels the damage moved by more than the change threshold from the grainy truth
    (what a perfect repair returns); a defect's faint, soft edge is in its mask but not here."""
    return [(np.abs(damaged - film).max(axis=2) > CHANGE_THRESHOLD) & mask
            for damaged, film, mask in zip(clip.degraded, film_frames(clip), clip.damage_masks)]


DETECTABLE_SNR = 5.0  # matched-filter SNR an ideal detector needs to find a defect without a flood of false alarms
SNR_REACH_PX = M.MATCHED_WINDOW_PX + M.MATCHED_PAD_PX  # how far from a defect matched_filter_snr can look


def detectable_damage(clip: Clip) -> list[np.ndarray]:
    """Per frame, the defects an ideal detector could find: perfect registration onto up to four undamaged
    neighbours (±1, ±2) and the defect's exact shape known, so only the grain is left to beat (matched-filter
    SNR >= DETECTABLE_SNR over its visible pixels). The share of counted defects here bounds any method's recall."""
    visible = visible_damage(clip)
    count = len(clip.degraded)
    found = []
    for t, (damaged, truth, mask) in enumerate(zip(clip.degraded, clip.truth, clip.damage_masks)):
        grain = clip.grain[t] if clip.grain is not None else np.zeros_like(truth)
        others = [clip.grain[k] for k in (t - 2, t - 1, t + 1, t + 2)
                  if clip.grain is not None and 0 <= k < count]
        noise = grain - np.mean(others, axis=0) if others else grain
        signal = damaged - np.clip(truth + grain, 0.0, 1.0)
        n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        keep = np.zeros(n_labels, bool)
        height, width = mask.shape
        for label in range(1, n_labels):
            x, y, w, h, _ = stats[label]
            # a crop wide enough for every noise sample matched_filter_snr takes around the defect
            rows = slice(max(0, y - SNR_REACH_PX), min(height, y + h + SNR_REACH_PX))
            cols = slice(max(0, x - SNR_REACH_PX), min(width, x + w + SNR_REACH_PX))
            seen = (labels[rows, cols] == label) & visible[t][rows, cols]
            if seen.sum() < MIN_DEFECT_PX:
                continue
            keep[label] = M.matched_filter_snr(signal[rows, cols], noise[rows, cols], seen) >= DETECTABLE_SNR
        found.append(keep[labels])
    return found


LARGE_DEFECT_PX = 2000  # a blotch "over 2 000 px²" (issue 19), on a 576-line frame; follows the frame area


def large_defects(clip: Clip) -> list[np.ndarray]:
    """Per frame, the dust/dirt/blotch defects (not line scratches) of at least LARGE_DEFECT_PX (frame-scaled)."""
    height = clip.degraded[0].shape[0]
    least = LARGE_DEFECT_PX * (height / 576.0) ** 2
    found = []
    for mask in clip.defect_masks or [np.zeros(f.shape[:2], bool) for f in clip.degraded]:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        keep = np.zeros(count, bool)
        keep[1:] = stats[1:, 4] >= least
        found.append(keep[labels])
    return found


def film_frames(clip: Clip) -> list[np.ndarray]:
    """The grainy film under the damage: what a perfect dust repair returns."""
    if clip.grain is None:
        return clip.truth
    return [np.clip(t + g, 0.0, 1.0) for t, g in zip(clip.truth, clip.grain)]


def score_dust(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    source = clip.degraded
    if clip.role == "film":
        return {"changed_pct": 100 * M.changed_fraction(tile(out), tile(source))}, {}
    changed = change_masks(out, source)
    pred = tile(changed)
    if clip.role in ("clean", "moving"):
        empty = np.zeros_like(pred)
        metrics = {"fp_area_pct": 100 * M.false_positive_area(pred, empty),
                   "psnr": M.psnr(tile(out), tile(clip.truth))}
        if clip.figure_masks is not None:
            metrics["figure_changed_pct"] = 100 * float(pred[tile(clip.figure_masks)].mean())
        return metrics, {}
    masks = clip.damage_masks
    true = tile(masks)
    scores = M.detection_scores(tile(changed, gap=1), tile(masks, gap=1), min_size=MIN_DEFECT_PX)
    truth, damaged, repaired = tile(clip.truth), tile(source), tile(out)
    metrics = {k: float(scores[k]) for k in ("object_f1", "object_precision", "object_recall", "pixel_f1",
                                              "pixel_precision", "pixel_recall")}
    visible = _cached(baseline, "visible", lambda: tile(visible_damage(clip), gap=1))
    detectable = None if clip.grain is None else _cached(baseline, "detectable",
                                                         lambda: tile(detectable_damage(clip), gap=1))
    defects = M.visible_detection_scores(tile(changed, gap=1), tile(masks, gap=1), visible, min_size=MIN_DEFECT_PX,
                                         subset=detectable)
    metrics |= {k: float(defects[k]) for k in ("defect_f1", "defect_precision", "defect_recall", "visible_defects")}
    if detectable is not None:
        share = defects["subset_defects"] / max(defects["visible_defects"], 1)
        metrics |= {"detectable_share": share, "defect_f1_bound": 2 * share / (1 + share),
                    "defect_recall_detectable": float(defects["subset_recall"])}
        metrics["defect_f1_of_bound"] = metrics["defect_f1"] / max(metrics["defect_f1_bound"], 1e-9)
    large = _cached(baseline, "large", lambda: tile(large_defects(clip), gap=1))
    if large.any():
        big = M.visible_detection_scores(tile(changed, gap=1), tile(masks, gap=1), visible, min_size=MIN_DEFECT_PX,
                                         subset=large)
        metrics |= {"large_recall": float(big["subset_recall"]), "large_defects": float(big["subset_defects"])}
    film = _cached(baseline, "film", lambda: tile(film_frames(clip)))
    metrics["psnr_film"] = M.psnr(repaired, film)
    metrics["psnr_film_gain_db"] = metrics["psnr_film"] - _cached(baseline, "psnr_film_in",
                                                                  lambda: M.psnr(damaged, film))
    metrics |= {"fp_area_pct": 100 * M.false_positive_area(pred, true),
                "changed_outside_pct": 100 * M.changed_fraction(repaired, damaged, mask_exclude=true,
                                                                threshold=CHANGE_THRESHOLD),
                "true_defects": float(scores["true_defects"])}
    for label, part in (("", masks), ("_dust", clip.defect_masks), ("_scratch", clip.scratch_masks)):
        if part is None:
            continue
        region = tile(part)
        before = _cached(baseline, f"psnr_in{label}", lambda: M.psnr_inside(damaged, truth, region))
        after = M.psnr_inside(repaired, truth, region)
        metrics[f"psnr_in{label}_mask"] = after
        metrics[f"psnr_in{label}_mask_gain_db"] = after - before
    return metrics, {}


def _shifts(out: list[np.ndarray], truth: list[np.ndarray]) -> np.ndarray:
    return np.array([M.frame_shift(o, t) for o, t in zip(out, truth)])


def _jitters(shifts: np.ndarray) -> Metrics:
    """Residual jitter: what is left once the clip's mean AND linear drift are taken out (the drift is the pan
    error; on a short clip a weave's slow drift cannot be told from the intended pan); and the old mean-only one."""
    zero = np.zeros_like(shifts)
    return {"jitter_px": M.jitter_from_transforms(shifts, zero, remove_trend=True),
            "jitter_mean_only_px": M.jitter_from_transforms(shifts, zero)}


def score_stabilize(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    if clip.role == "film":
        steps = np.array([M.frame_shift(out[t + 1], out[t]) for t in range(len(out) - 1)])
        return {"interframe_shift_px": float(np.sqrt(np.mean(np.sum(steps ** 2, axis=1))))}, {}
    shifts = _shifts(out, clip.truth)
    metrics: Metrics = _jitters(shifts)
    n = len(out)
    if n >= PAN_CHECK_MIN_FRAMES:
        # pan kept: the linear drift of the picture against the truth over the clip (px gained or lost)
        t = np.arange(n, dtype=np.float64)
        slopes = [np.polyfit(t, shifts[:, axis], 1)[0] for axis in (0, 1)]
        metrics["pan_error_px"] = float(math.hypot(*slopes) * (n - 1))
    truth = np.stack(clip.truth)
    blank = (np.stack(out).max(axis=3) < 1.0 / 255.0) & (truth.max(axis=3) > 4.0 / 255.0)
    metrics["black_border_pct"] = 100 * float(blank.mean())
    return metrics, {"shift_x": shifts[:, 0].round(4).tolist(), "shift_y": shifts[:, 1].round(4).tolist()}


def _mean_luma(frames: list[np.ndarray]) -> list[float]:
    return [round(float(M.luma(f).mean()), 5) for f in frames]


def score_deflicker(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    if clip.role == "film":
        before = _cached(baseline, "flicker_in", lambda: M.flicker_index(clip.degraded))
        after = M.flicker_index(out)
        return {"flicker_index": after, "flicker_reduction_pct": 100 * (1 - after / before) if before else 0.0}, {
            "mean_luma": _mean_luma(out)}
    if clip.role == "flicker-free":
        psnr_in = _cached(baseline, "psnr_in", lambda: M.psnr(tile(clip.degraded), tile(clip.truth)))
        psnr_out = M.psnr(tile(out), tile(clip.truth))
        return {"psnr": psnr_out, "psnr_loss_db": psnr_in - psnr_out}, {}
    before = _cached(baseline, "flicker_in", lambda: M.flicker_index(clip.degraded, clip.truth))
    before_local = _cached(baseline, "flicker_local_in", lambda: M.flicker_index_local(clip.degraded, clip.truth))
    after = M.flicker_index(out, clip.truth)
    after_local = M.flicker_index_local(out, clip.truth)
    return {"flicker_index": after, "flicker_reduction_pct": 100 * (1 - after / before) if before else 0.0,
            "flicker_local": after_local,
            "flicker_local_reduction_pct": 100 * (1 - after_local / before_local) if before_local else 0.0,
            "psnr": M.psnr(tile(out), tile(clip.truth))}, {"mean_luma": _mean_luma(out),
                                                           "truth_mean_luma": _mean_luma(clip.truth)}


IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _noise_sigma(frames: list[np.ndarray]) -> float:
    """Blind noise std of the luma (Immerkær 1996: mean |Laplacian difference| · sqrt(π/2) / 6), mean over frames."""
    sigmas = []
    for frame in frames:
        response = cv2.filter2D(M.luma(frame), cv2.CV_32F, IMMERKAER)[1:-1, 1:-1]
        sigmas.append(float(np.abs(response).mean()) * math.sqrt(math.pi / 2) / 6.0)
    return float(np.mean(sigmas))


def score_denoise(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    if clip.role == "film":
        before = _cached(baseline, "sigma_in", lambda: _noise_sigma(clip.degraded))
        after = _noise_sigma(out)
        return {"noise_sigma": after, "noise_reduction_pct": 100 * (1 - after / before) if before else 0.0,
                "changed_pct": 100 * M.changed_fraction(tile(out), tile(clip.degraded))}, {}
    truth = clip.truth
    warp_truth = _cached(baseline, "warp_truth", lambda: M.warping_error(truth, truth))
    warp = M.warping_error(out, truth)
    residual = [o - t for o, t in zip(out, truth)]
    metrics: Metrics = {"psnr": M.psnr(tile(out), tile(truth)),
                        "ssim": float(np.mean([M.ssim(o, t) for o, t in zip(out, truth)])),
                        "warping_error": warp, "warping_excess_pct": 100 * (warp / warp_truth - 1)
                        if warp_truth else 0.0}
    series: Series = {}
    if clip.grain is not None:
        _, true_nlf, _ = _cached(baseline, "true_nlf", lambda: M.noise_level_function(clip.grain, truth))
        _, kept_nlf, _ = M.noise_level_function(residual, truth)
        # grain left in the output relative to the grain put in (0 % for a perfect 'remove', ~100 % for 'keep')
        kept = _level_pct(kept_nlf, true_nlf)
        metrics["grain_kept_pct"] = 0.0 if kept is None else kept
        metrics["grain_nlf_error"] = M.nlf_error(kept_nlf, true_nlf)
        metrics["grain_spectrum_corr"] = M.spectrum_correlation(residual, clip.grain)
        freq, power = M.radial_power_spectrum(residual)
        series = {"residual_spectrum_freq": freq.round(4).tolist(), "residual_spectrum": power.tolist()}
        if "grain_spectrum" not in baseline:
            baseline["grain_spectrum"] = M.radial_power_spectrum(clip.grain)[1].tolist()
    return metrics, series


def _level_pct(nlf: np.ndarray, true_nlf: np.ndarray) -> float | None:
    """Noise level over the grain put in: mean over the NLF bins both measured, %; None when no bin is."""
    valid = np.isfinite(nlf) & np.isfinite(true_nlf) & (true_nlf > 0)
    return 100 * float(np.mean(nlf[valid] / true_nlf[valid])) if valid.any() else None


def grain_level_pct(noise: list[np.ndarray], clip: Clip) -> float:
    """Level of a noise field over the grain put in, as for grain_kept_pct."""
    _, true_nlf, _ = M.noise_level_function(clip.grain, clip.truth)
    _, nlf, _ = M.noise_level_function(noise, clip.truth)
    level = _level_pct(nlf, true_nlf)
    return math.nan if level is None else level


def antithetic_input(clip: Clip) -> list[np.ndarray]:
    """The clip with its grain negated (truth − grain): what the grain-free output loses is even in the grain."""
    return [np.clip(2 * t - d, 0.0, 1.0).astype(np.float32) for t, d in zip(clip.truth, clip.degraded)]


def lost_picture(clip: Clip, removed: list[np.ndarray], removed_antithetic: list[np.ndarray]) -> list[np.ndarray]:
    """Picture detail a grain-removing method loses: the part of its error that does not flip with the grain,
    half the sum of its errors on truth + grain and on truth − grain (the grain it leaves flips and cancels)."""
    return [0.5 * (a + b) - t for a, b, t in zip(removed, removed_antithetic, clip.truth)]


def regrain_level_pct(clip: Clip, regrained: list[np.ndarray], removed: list[np.ndarray],
                      removed_antithetic: list[np.ndarray]) -> float:
    """Grain in a regrained output (synthesized + left by the denoiser) over the grain put in, %, with the picture
    detail lost by the denoiser taken out of out − truth: grain_kept_pct counts that loss as grain."""
    lost = lost_picture(clip, removed, removed_antithetic)
    return grain_level_pct([o - t - p for o, t, p in zip(regrained, clip.truth, lost)], clip)


def score_color(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    chroma_in = _cached(baseline, "chroma_in", lambda: M.chroma_mean(clip.degraded))
    chroma_out = M.chroma_mean(out)
    stability = M.colour_stability(out)
    if clip.role in ("film", "bw"):
        return {"chroma_mean": chroma_out, "chroma_change": chroma_out - chroma_in,
                "colour_stability": stability}, {}
    mean, p95 = M.delta_e2000(tile(out), tile(clip.truth))
    truth_stability = _cached(baseline, "stability_truth", lambda: M.colour_stability(clip.truth))
    return {"de2000_mean": mean, "de2000_p95": p95, "colour_stability": stability,
            "stability_excess": stability - truth_stability}, {}


def score_sr(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    psnrs = [M.psnr_y(o, t, border=clip.scale) for o, t in zip(out, clip.truth)]
    ssims = [M.ssim_y(o, t, border=clip.scale) for o, t in zip(out, clip.truth)]
    metrics: Metrics = {"psnr_y": float(np.mean(psnrs)), "ssim_y": float(np.mean(ssims))}
    if clip.role == "sr-video" and len(out) > 1:
        warp_truth = _cached(baseline, "warp_truth", lambda: M.warping_error(clip.truth, clip.truth))
        metrics["warping_error"] = M.warping_error(out, clip.truth)
        metrics["warping_error_truth"] = warp_truth
    series = {"per_image_psnr_y": dict(zip(clip.labels, [round(p, 3) for p in psnrs]))} if clip.labels else {}
    return metrics, series


def score_chain(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    if clip.role == "film":
        steps = np.array([M.frame_shift(out[t + 1], out[t]) for t in range(len(out) - 1)])
        return {"flicker_index": M.flicker_index(out),
                "interframe_shift_px": float(np.sqrt(np.mean(np.sum(steps ** 2, axis=1))))}, {}
    shifts = _shifts(out, clip.truth)
    before = _cached(baseline, "flicker_in", lambda: M.flicker_index(clip.degraded, clip.truth))
    after = M.flicker_index(out, clip.truth)
    return {"psnr": M.psnr(tile(out), tile(clip.truth)),
            "ssim": float(np.mean([M.ssim(o, t) for o, t in zip(out, clip.truth)])),
            "de2000_mean": M.delta_e2000(tile(out), tile(clip.truth))[0],
            **_jitters(shifts),
            "flicker_reduction_pct": 100 * (1 - after / before) if before else 0.0}, {}


SCORERS: dict[str, Callable[[Clip, list[np.ndarray], dict[str, Any]], tuple[Metrics, Series]]] = {
    "dust": score_dust, "stabilize": score_stabilize, "deflicker": score_deflicker, "denoise": score_denoise,
    "color": score_color, "sr": score_sr, "chain": score_chain,
}


def _tuning_denoise(clip: Clip, out: list[np.ndarray], baseline: dict[str, Any]) -> tuple[Metrics, Series]:
    return {"psnr": M.psnr(tile(out), tile(clip.truth))}, {}


# Scorers that compute only the tuning metric, where the full set is slow (flow, spectra, SSIM on every frame):
# a sweep scores its candidates with these and only the selected setting in full.
TUNING_SCORERS: dict[str, Callable[[Clip, list[np.ndarray], dict[str, Any]], tuple[Metrics, Series]]] = {
    "denoise": _tuning_denoise,
}


def score(stage: str, clip: Clip, output: list[np.ndarray], baseline: dict[str, Any],
          tuning_only: bool = False) -> tuple[Metrics, Series]:
    """The stage's metrics for one output (non-finite values become None, i.e. JSON null); with `tuning_only`,
    at least the tuning metric, cheaply where a tuning scorer exists."""
    if len(output) != len(clip.degraded):
        raise ValueError(f"{clip.name}: method returned {len(output)} frames for {len(clip.degraded)}")
    for o, t in zip(output, clip.truth or clip.degraded):
        if o.shape != t.shape:
            raise ValueError(f"{clip.name}: output frame {o.shape} does not match the reference {t.shape}")
    scorer = TUNING_SCORERS.get(stage, SCORERS[stage]) if tuning_only else SCORERS[stage]
    metrics, series = scorer(clip, output, baseline)
    return {k: _finite(v) for k, v in metrics.items()}, series
