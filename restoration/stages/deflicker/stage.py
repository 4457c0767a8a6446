"""Stage `deflicker`: global and local brightness flicker removal that follows genuine light changes.

Per shot (`measure`, read once and cached), every picture's brightness relative to each of the `window` pictures
before it is measured on the content both show: chained dense flow on small lumas, one ratio for the frame and,
when `local`, one per block. `fit` (cheap: a `strength` change refits without measuring) solves those ratios for
the shot's brightness track and splits it into smooth light (a fade is followed), changes of light (steps of 8 %
and more, followed), exposure steps (smaller lasting steps, removed), dips and flashes of up to 5 frames (removed)
and flicker; each frame is taken to the smooth light, and the block field to the robust level of its ±window
pictures lit alike. No cut is ever crossed; repeated frames share their original's correction.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np

from .flicker import CELL, ToneThumb, block_grid, smooth_field
from .track import ShotBrightness, ShotCorrection, correction_side, fit_shot, measure_shot
from ...params import Param, declare
from ...stage import ClipFrames, FrameWindow, Shot, Stage, StageOutput


class Deflicker(Stage):
    name = "deflicker"
    title = "Deflicker"
    min_size = CELL
    min_size_reason = f"it compares brightness over {CELL}x{CELL}-px cells"
    summary = "Match each frame's tone to the shot's smooth light (flicker, dips and small exposure steps removed)."
    params = declare(
        Param("window", "int", 9, "Pictures on each side each frame's brightness is compared with; the smooth light "
              "bends no faster than a mean over this window would (a change of light is followed whatever the "
              "window).", minimum=1, maximum=50, unit="frames"),
        Param("strength", "float", 1.0, "Fraction of the measured flicker removed.", minimum=0.0, maximum=1.0,
              step=0.05, fit_only=True),
        Param("local", "bool", True, "Also correct block-wise (uneven) flicker."),
        Param("block_size", "int", 64, "Block size of the local correction.", minimum=16, maximum=512, unit="px"),
    )
    # `measure` is the flow and the ratios (window, local, block_size); `fit` the track's model and the strength
    splits_analysis: ClassVar[bool] = True

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return 0  # the shot's measurement holds every comparison a frame needs

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return True

    def measure(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> ShotBrightness:
        grid: tuple[int, int] | None = None

        def sized(items):
            nonlocal grid
            for index, frame in items:
                if grid is None:
                    height, width = frame.shape[:2]
                    grid = block_grid(width, height, params["block_size"]) if params["local"] else (1, 1)
                yield index, frame

        items = iter(sized(frames))
        first = next(items)
        assert grid is not None

        def chained():
            yield first
            yield from items

        return measure_shot(chained(), shot.start, int(params["window"]), grid)

    def fit(self, measurement: ShotBrightness, shot: Shot, params: Mapping[str, Any]) -> ShotCorrection:
        return fit_shot(measurement, float(params["strength"]), measurement.ratios.shape[1])

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: ShotCorrection) -> StageOutput:
        frame = window.current
        row = analysis.row(window.index - analysis.start)
        gain = float(analysis.gain[row])
        field = analysis.field[row]
        side = correction_side(analysis, row)
        if field.size == 1 or params["strength"] == 0:
            out = frame * np.float32(gain) if gain != 1.0 else frame.copy()
        else:
            # the field only redistributes: the frame's mean brightness is set by the global gain
            luma = ToneThumb.of(frame).luma
            height, width = luma.shape
            field = field * float(luma.mean() / max(float((smooth_field(field, width, height) * luma).mean()), 1e-9))
            side["local_gain"] = np.round(field, 5).astype(np.float32)
            full_height, full_width = frame.shape[:2]
            scale = smooth_field(field, full_width, full_height) * np.float32(gain)
            out = frame * (scale[..., None] if frame.ndim == 3 else scale)
        return StageOutput(np.clip(out, 0.0, 1.0, out=out), side)
