"""Stage `color`: automatic dye-fade correction per shot, stable over time, steerable by a reference or a grey pick.

The analysis pass estimates the shot's fade (fade.py): per-layer density scale and offset against the
magenta layer, from the shot's black and white points, a co-fading prior and a neutral balance, plus a slow drift
along the shot. Each frame then gets three 1-D curves (a 16385-step table, applied by exact interpolation), so the
correction is fast, 16-bit safe and cannot breathe. `reference` matches the shot's CIELAB statistics to a still or
frame; `neutral` makes a picked patch grey; black-and-white material keeps its tone and tint (`preserve_bw`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .colormatch import LabTransfer, lab_stats, parse_pick, patch_mean
from ...errors import ParamError
from .fade import (SCALE_LIMITS, FadeEstimate, FadeModel, ShotSampler, apply_curves, channel_rows,
                    correction_curves, curve_values, density, downscale, estimate_fade, frame_models,
                    monochrome_residual, plot_curves, smooth_drift)
from ...params import Param, declare
from ...stage import ClipFrames, FrameWindow, Shot, Stage, StageOutput

MONOCHROME_RESIDUAL = 1.0   # ΔE: below this spread about one tint per lightness the shot is black-and-white
REFERENCE_PIXELS = 100_000  # a reference still is area-downscaled to about this many pixels for its statistics


@dataclass
class ShotColour:
    """One shot's analysis: the fade, its per-frame drift, black-and-white verdict and the steering."""

    shot: Shot
    estimate: FadeEstimate
    scales: np.ndarray              # (F, 3) per-frame relative density scales, drift included
    offsets: np.ndarray             # (F, 3) per-frame offsets
    monochrome: bool
    residual_chroma: float
    transfer: LabTransfer | None = None
    notes: list[str] = field(default_factory=list)
    _curves: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)
    _rows: np.ndarray | None = field(default=None, repr=False)

    def model(self, index: int) -> FadeModel:
        t = min(max(index - self.shot.start, 0), len(self.scales) - 1)
        return FadeModel(tuple(float(v) for v in self.scales[t]), tuple(float(v) for v in self.offsets[t]))

    def curves(self, model: FadeModel) -> np.ndarray:
        """Correction curves of `model`; the last one is kept (a shot without drift reuses one table)."""
        key = (model.scale, model.offset)
        cached = self._curves.get(key)
        if cached is None:
            cached = correction_curves(model)
            self._curves.clear()
            self._curves[key] = cached
        return cached

    def rows(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if self._rows is None or self._rows.shape != (height, width * 3):
            self._rows = channel_rows(height, width)
        return self._rows

    def side(self) -> dict[str, Any]:
        """Shot-level side data: what the estimate rests on and how the shot was steered."""
        return {"shot": [self.shot.start, self.shot.end], "monochrome": self.monochrome,
                "residual_chroma": round(self.residual_chroma, 3), "estimate": self.estimate.to_dict(),
                "drift_scale": np.round(np.ptp(self.scales, axis=0), 4).tolist(),
                "transfer": self.transfer.to_dict() if self.transfer else None, "notes": list(self.notes)}


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
              step=0.05),
        Param("mode", "choice", "auto", "auto, match a reference, or balance on a picked neutral.",
              choices=("auto", "reference", "neutral")),
        Param("reference", "str", "", "Reference still (path) or frame number of this shot for reference mode."),
        Param("neutral", "list", [], "Grey pick for neutral mode: [x, y] or [x, y, w, h] in pixels."),
        Param("preserve_bw", "bool", True, "Detect black-and-white material and correct tone only."),
        Param("temporal_smoothing", "float", 0.8, "Smoothing of the correction across the shot (1: one "
              "correction per shot; lower follows a fade that drifts along the shot).", minimum=0.0,
              maximum=1.0, step=0.05),
    )

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return float(params["strength"]) > 0.0

    def analyze(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> ShotColour:
        mode = params["mode"]
        pick = _pick(params) if mode == "neutral" else None
        reference_number, reference_still = _reference(params) if mode == "reference" else (None, None)
        if reference_number is not None and reference_number not in shot:
            raise ParamError("color.reference", f"frame {reference_number} is not in shot {shot.start}-"
                             f"{shot.end - 1}; a frame number steers its own shot only (for other shots give "
                             "that frame as a still)")
        sampler = ShotSampler(len(shot))
        patches: list[np.ndarray] = []
        reference_pixels = None
        for index, frame in frames:
            sampler.add(frame)
            if pick is not None:
                patches.append(patch_mean(frame, pick, "color.neutral"))
            if index == reference_number:
                reference_pixels = downscale(frame, REFERENCE_PIXELS).reshape(-1, 3)
        return self._conclude(sampler, patches, reference_still, reference_pixels, shot, params)

    def _conclude(self, sampler: ShotSampler, patches: list[np.ndarray], reference_still: np.ndarray | None,
                  reference_pixels: np.ndarray | None, shot: Shot, params: Mapping[str, Any]) -> ShotColour:
        pixels = sampler.pixels
        residual = monochrome_residual(pixels)
        monochrome = bool(params["preserve_bw"]) and residual < MONOCHROME_RESIDUAL
        estimate = estimate_fade(density(pixels), np.mean(sampler.plateau, axis=0))
        count = len(sampler.white)
        notes = []
        if monochrome:
            # black-and-white: silver does not dye-fade, and a toned print keeps its tint
            scales, offsets = np.ones((count, 3)), np.zeros((count, 3))
            notes.append("black-and-white: colour left as it is")
        else:
            per_frame = frame_models(np.asarray(sampler.white), np.asarray(sampler.black), estimate.borrowed)
            drift = smooth_drift(per_frame, float(params["temporal_smoothing"]))
            scales = np.clip(estimate.model.scale_array + drift[:, 0], *SCALE_LIMITS)
            offsets = estimate.model.offset_array + drift[:, 1]
            scales[:, 1], offsets[:, 1] = 1.0, 0.0
            if patches:
                scales, offsets = _neutral_offsets(scales, np.asarray(patches), float(params["temporal_smoothing"]))
                notes.append("offsets set by the grey pick")
            elif not estimate.fade_found:
                notes.append("no fade found: colour left as it is")
        strength = float(params["strength"]) * (1.0 if patches or monochrome else estimate.confidence)
        scales = 1.0 + strength * (scales - 1.0)
        offsets = strength * offsets
        analysis = ShotColour(shot, estimate, scales, offsets, monochrome, residual, notes=notes)
        target = None
        if reference_still is not None:
            target = lab_stats(downscale(reference_still, REFERENCE_PIXELS))
        elif reference_pixels is not None:
            target = lab_stats(reference_pixels)
        if target is not None:
            corrected = curve_values(pixels, analysis.curves(analysis.model(shot.start)))
            analysis.transfer = LabTransfer(lab_stats(corrected), target, lightness_only=monochrome)
        return analysis

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: ShotColour | None) -> StageOutput:
        frame = window.current
        if analysis is None:   # strength 0
            return StageOutput(frame.copy(), {})
        model = analysis.model(window.index)
        out = apply_curves(frame, analysis.curves(model), analysis.rows(frame))
        if analysis.transfer is not None:
            out = analysis.transfer.apply(out, float(params["strength"]))
        side = {**plot_curves(model), "model": model.to_dict(), **analysis.side()}
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


__all__ = ["FadeCorrection", "ShotColour"]
