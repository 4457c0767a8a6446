"""Stage `color`: automatic fade correction per shot, stable over time, steerable by a reference or a grey pick.

The analysis is split in two (issue 22): `measure` takes the shot's statistics once (per-frame black and white
points, a pooled pixel sample, the dye model's estimate, the monochrome residual, picks and reference pixels);
`fit` turns them into per-frame curves for the settings (`strength`, `temporal_smoothing`, `preserve_bw` only
refit). Two estimates are made of each shot: the dye model (fade.py: per-layer density scale and offset against
the magenta layer, from black and white points, co-fading and true-black priors and a neutral balance, with a slow
drift along the shot), and the general estimate (axis.py: each layer's neutral black, white and tone curve from
the picture, assuming no fade model). The dye model decides whether the shot is faded at all (do no harm: a grade,
a clean scan or a tint is left alone); a faded shot gets the two corrections averaged in density with `general`
the general one's share (default 0: on the bench's natural pictures the general estimate alone is worse than the
dye model on every family but per-channel levels, see bench/notes/color.md). Each frame then
gets three 1-D curves (a 16385-step table, applied by exact interpolation), so the correction is fast, 16-bit
safe and cannot breathe. `reference` matches the shot's CIELAB statistics to a still or
frame; `neutral` makes a picked patch grey; black-and-white material keeps its tone and tint (`preserve_bw`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .axis import AxisEstimate, estimate_axis
from .colormatch import LabTransfer, lab_stats, parse_pick, patch_mean
from ...errors import ParamError
from .fade import (CURVE_STEPS, GAMMA, SCALE_LIMITS, WHITE_CAST_RANGE, FadeEstimate, FadeModel, ShotSampler, apply_curves, channel_rows,
                    correction_curves, curve_values, density, downscale, estimate_fade, frame_models,
                    monochrome_residual, sampled_curves, smooth_drift)
from ...params import Param, declare
from ...stage import ClipFrames, FrameWindow, Shot, Stage, StageOutput

MONOCHROME_RESIDUAL = 1.4   # ΔE: below this spread about one tint per lightness (fade.MONOCHROME_BLUR) it is B/W
REFERENCE_PIXELS = 100_000  # a reference still is area-downscaled to about this many pixels for its statistics


@dataclass
class ColourMeasurement:
    """What `measure` takes from a shot: everything `fit` needs, and nothing that depends on fit-only settings."""

    white: np.ndarray               # (F, 3) per-frame white points (density)
    black: np.ndarray               # (F, 3) per-frame black points
    pixels: np.ndarray              # (N, 3) pooled code values of the sampled frames
    estimate: FadeEstimate          # the dye model's estimate of the shot
    residual_chroma: float          # spread about one tint per lightness (black-and-white below MONOCHROME_RESIDUAL)
    patches: np.ndarray | None      # (F, 3) picked patch means (mode neutral)
    reference: Any = None           # LabStats of the reference (mode reference)
    _axis: AxisEstimate | None = field(default=None, repr=False)

    @property
    def axis(self) -> AxisEstimate:
        """The general estimate, made on first need (only a shot corrected with `general` > 0 needs it) and kept,
        so that a refit reuses it."""
        if self._axis is None:
            self._axis = estimate_axis(self.pixels)
        return self._axis


@dataclass
class ShotColour:
    """One shot's fit: the fade, its per-frame drift, black-and-white verdict, the general curves and the steering."""

    shot: Shot
    estimate: FadeEstimate
    scales: np.ndarray              # (F, 3) per-frame relative density scales, drift included
    offsets: np.ndarray             # (F, 3) per-frame offsets
    monochrome: bool
    residual_chroma: float
    axis: AxisEstimate | None = None
    axis_weight: float = 0.0        # the general curves' share (0: the dye model alone)
    base: FadeModel | None = None   # the shot's dye model without drift (the general curves follow the drift from it)
    transfer: LabTransfer | None = None
    notes: list[str] = field(default_factory=list)
    contrast: float = 1.0           # the reference layer's own density stretch (fade.reference_contrast), weighted
    anchor: float = 0.0
    _curves: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)
    _axis_curves: np.ndarray | None = field(default=None, repr=False)
    _rows: np.ndarray | None = field(default=None, repr=False)

    def model(self, index: int) -> FadeModel:
        t = min(max(index - self.shot.start, 0), len(self.scales) - 1)
        return FadeModel(tuple(float(v) for v in self.scales[t]), tuple(float(v) for v in self.offsets[t]),
                         self.contrast, self.anchor)

    def curves(self, model: FadeModel) -> np.ndarray:
        """Correction curves for a frame whose dye model is `model`; the last table is kept (a shot without drift
        reuses one)."""
        key = (model.scale, model.offset)
        cached = self._curves.get(key)
        if cached is None:
            cached = correction_curves(model)
            if self.axis is not None and self.axis_weight > 0.0:
                if self._axis_curves is None:
                    self._axis_curves = self.axis.curves.curves(CURVE_STEPS)
                general = self._axis_curves
                if self.base is not None and self.base != model:   # the frame's drift, then the shot's curves
                    grid = np.linspace(0.0, 1.0, general.shape[1])
                    drift = drift_values(grid, model, self.base)
                    general = np.stack([np.interp(drift[c], grid, general[c]) for c in range(3)]).astype(np.float32)
                cached = blend_curves(cached, general, self.axis_weight)
            self._curves.clear()
            self._curves[key] = cached
        return cached

    def rows(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if self._rows is None or self._rows.shape != (height, width * 3):
            self._rows = channel_rows(height, width)
        return self._rows

    def side(self) -> dict[str, Any]:
        """Shot-level side data: what the estimates rest on and how the shot was steered."""
        return {"shot": [self.shot.start, self.shot.end], "monochrome": self.monochrome,
                "residual_chroma": round(self.residual_chroma, 3), "estimate": self.estimate.to_dict(),
                "layers": self.axis.to_dict() if self.axis is not None else None,
                "axis_weight": round(self.axis_weight, 3),
                "drift_scale": np.round(np.ptp(self.scales, axis=0), 4).tolist(),
                "transfer": self.transfer.to_dict() if self.transfer else None, "notes": list(self.notes)}


def drift_values(v: np.ndarray, model: FadeModel, base: FadeModel) -> np.ndarray:
    """(3, n) code values `v` of a frame whose dye fade is `model`, moved to where the shot's fade `base` would
    have put them (densities restored by `model`, faded again by `base`): a drifting fade seen as the shot's."""
    with np.errstate(divide="ignore"):
        d = -GAMMA * np.log10(np.asarray(v, dtype=np.float64))
    out = np.empty((3, len(d)))
    for c in range(3):
        restored = (d - model.offset[c]) / model.scale[c]
        out[c] = np.power(10.0, -(base.scale[c] * restored + base.offset[c]) / GAMMA)
    return np.clip(out, 0.0, 1.0)


def blend_curves(dye: np.ndarray, general: np.ndarray, weight: float) -> np.ndarray:
    """Two corrections averaged in density with `weight` on the second: a weighted geometric mean of code values
    (monotonic when both are; 0 stays 0)."""
    dye, general = dye.astype(np.float64), general.astype(np.float64)
    positive = (dye > 0.0) & (general > 0.0)
    out = np.zeros_like(dye)
    out[positive] = np.exp((1.0 - weight) * np.log(dye[positive]) + weight * np.log(general[positive]))
    return out.astype(np.float32)


def reference_frame_number(text: str) -> int | None:
    """The frame number a `reference` value names, or None when it is a path."""
    text = text.strip()
    return int(text) if text.isdigit() else None


def read_reference_still(text: str) -> np.ndarray:
    """The reference still as float32 RGB; errors name the field and the file."""
    from ...io import read_image

    path = Path(text).expanduser()
    if not path.is_file():
        raise ParamError("color.reference", f"reference still {str(path)!r} not found (give a still or a frame number)")
    frame, _ = read_image(path)
    return frame


class FadeCorrection(Stage):
    name = "color"
    title = "Colour fade"
    summary = "Per-shot dye-fade correction, stable over time."
    params = declare(
        Param("strength", "float", 1.0, "Fraction of the estimated correction applied.", minimum=0.0, maximum=1.0,
              step=0.05, fit_only=True),
        Param("mode", "choice", "auto", "auto, match a reference, or balance on a picked neutral.",
              choices=("auto", "reference", "neutral")),
        Param("reference", "str", "", "Reference still (path) or frame number of this shot for reference mode."),
        Param("neutral", "list", [], "Grey pick for neutral mode: [x, y] or [x, y, w, h] in pixels."),
        Param("preserve_bw", "bool", True, "Detect black-and-white material and correct tone only.", fit_only=True),
        Param("general", "float", 0.0, "Share of the general per-layer estimate (each layer's neutral black, white "
              "and tone curve from the picture) in a faded shot's correction; 0: the dye model alone (best on the "
              "bench's natural pictures), higher for lifted-black or squashed-range scans the dye model over-"
              "corrects.", minimum=0.0, maximum=1.0, step=0.05, fit_only=True),
        Param("temporal_smoothing", "float", 0.8, "Smoothing of the correction across the shot (1: one "
              "correction per shot; lower follows a fade that drifts along the shot).", minimum=0.0,
              maximum=1.0, step=0.05, fit_only=True),
    )

    splits_analysis = True

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return float(params["strength"]) > 0.0

    def measure(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> ColourMeasurement:
        mode = params["mode"]
        pick = _pick(params) if mode == "neutral" else None
        reference_number, reference_still = _reference(params) if mode == "reference" else (None, None)
        if reference_number is not None and reference_number not in shot:
            raise ParamError("color.reference", f"frame {reference_number} is not in shot {shot.start}-"
                             f"{shot.end - 1}; a frame number steers its own shot only (for other shots give "
                             "that frame as a still)")
        sampler = ShotSampler(len(shot))
        patches: list[np.ndarray] = []
        reference = None
        for index, frame in frames:
            sampler.add(frame)
            if pick is not None:
                patches.append(patch_mean(frame, pick, "color.neutral"))
            if index == reference_number:
                reference = lab_stats(downscale(frame, REFERENCE_PIXELS).reshape(-1, 3))
        if reference_still is not None:
            reference = lab_stats(downscale(reference_still, REFERENCE_PIXELS))
        pixels = sampler.pixels
        return ColourMeasurement(np.asarray(sampler.white), np.asarray(sampler.black), pixels,
                                 estimate_fade(density(pixels), np.mean(sampler.plateau, axis=0),
                                               np.asarray(sampler.black)),
                                 monochrome_residual(sampler.smoothed),
                                 np.asarray(patches) if patches else None, reference)

    def fit(self, measurement: ColourMeasurement, shot: Shot, params: Mapping[str, Any]) -> ShotColour:
        m = measurement
        estimate = m.estimate
        monochrome = bool(params["preserve_bw"]) and m.residual_chroma < MONOCHROME_RESIDUAL
        count = len(m.white)
        smoothing = float(params["temporal_smoothing"])
        notes = []
        axis_weight = 0.0
        if monochrome:
            # black-and-white: silver does not dye-fade, and a toned print keeps its tint
            scales, offsets = np.ones((count, 3)), np.zeros((count, 3))
            notes.append("black-and-white: colour left as it is")
        else:
            per_frame = frame_models(m.white, m.black, estimate.borrowed)
            drift = smooth_drift(per_frame, smoothing)
            scales = np.clip(estimate.model.scale_array + drift[:, 0], *SCALE_LIMITS)
            offsets = estimate.model.offset_array + drift[:, 1]
            scales[:, 1], offsets[:, 1] = 1.0, 0.0
            if m.patches is not None:
                scales, offsets = _neutral_offsets(scales, m.patches, smoothing)
                notes.append("offsets set by the grey pick")
            elif not estimate.fade_found:
                notes.append("no fade found: colour left as it is")
                if estimate.white_cast >= WHITE_CAST_RANGE[1]:
                    notes.append(f"the correction would leave the whites coloured (spread {estimate.white_cast:.2f} "
                                 "density): a scan's cast or the scene's own colour, not a fade")
            else:
                axis_weight = float(params["general"])
        weight = float(params["strength"]) * (1.0 if m.patches is not None or monochrome else estimate.confidence)
        scales = 1.0 + weight * (scales - 1.0)
        offsets = weight * offsets
        # the reference layer's own stretch only where a fade was found (not for B/W or a grey pick's balance)
        stretch = weight if estimate.fade_found and not monochrome and m.patches is None else 0.0
        contrast = 1.0 + stretch * (estimate.model.contrast - 1.0)
        if contrast > 1.0 + 1e-3:
            notes.append(f"magenta black at density {estimate.black[1]:.2f} taken as a faded Dmax: every layer's "
                         f"density stretched x{contrast:.2f}")
        elif contrast < 1.0 - 1e-3:
            notes.append(f"magenta black at density {estimate.black[1]:.2f} lies beyond a print's Dmax (a scan curve "
                         f"or a grade): every layer's density compressed x{contrast:.2f}")
        base = FadeModel(tuple(1.0 + weight * (np.clip(estimate.model.scale_array, *SCALE_LIMITS) - 1.0)),
                         tuple(weight * estimate.model.offset_array), contrast, estimate.model.anchor)
        general = axis_weight * weight
        analysis = ShotColour(shot, estimate, scales, offsets, monochrome, m.residual_chroma,
                              axis=m.axis if general > 0.0 else None, axis_weight=general, base=base, notes=notes,
                              contrast=contrast, anchor=estimate.model.anchor)
        if m.reference is not None:
            corrected = curve_values(m.pixels, analysis.curves(analysis.model(shot.start)))
            analysis.transfer = LabTransfer(lab_stats(corrected), m.reference, lightness_only=monochrome)
        return analysis

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: ShotColour | None) -> StageOutput:
        frame = window.current
        if analysis is None:   # strength 0
            return StageOutput(frame.copy(), {})
        model = analysis.model(window.index)
        curves = analysis.curves(model)
        out = apply_curves(frame, curves, analysis.rows(frame))
        if analysis.transfer is not None:
            out = analysis.transfer.apply(out, float(params["strength"]))
        side = {**sampled_curves(curves), "model": model.to_dict(), **analysis.side()}
        return StageOutput(out, side)


def _pick(params: Mapping[str, Any]) -> tuple[int, int, int, int]:
    if not params["neutral"]:
        raise ParamError("color.neutral", "mode neutral needs a grey pick: [x, y] or [x, y, w, h] in pixels")
    return parse_pick(params["neutral"], "color.neutral")


def _reference(params: Mapping[str, Any]) -> tuple[int | None, np.ndarray | None]:
    text = str(params["reference"]).strip()
    if not text:
        raise ParamError("color.reference", "mode reference needs a still (path) or a frame number")
    number = reference_frame_number(text)
    return (number, None) if number is not None else (None, read_reference_still(text))


def _neutral_offsets(scales: np.ndarray, patches: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame offsets that make the picked patch restore to grey, its reading smoothed like the drift."""
    readings = density(np.clip(patches, 0.0, 1.0).astype(np.float32)).astype(np.float64)
    readings = np.median(readings, axis=0) + smooth_drift(readings, smoothing)
    offsets = np.empty_like(scales)
    for t in range(len(scales)):
        model = FadeModel(tuple(scales[t]), (0.0, 0.0, 0.0)).with_neutral(readings[t])
        offsets[t] = model.offset_array
    return scales, offsets


__all__ = ["ColourMeasurement", "FadeCorrection", "ShotColour", "blend_curves", "drift_values"]
