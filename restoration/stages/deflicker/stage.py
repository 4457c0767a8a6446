"""Stage `deflicker`: global and local brightness flicker removal that follows genuine light changes.

Every frame of the ±window is brought onto the current one by chained dense flow on small lumas, and its brightness
relative to the current frame is measured on the content both show: one gain for the frame and, when `local`, one
per block. The frame gets the mean brightness of the window's frames lit like it (a fade is fitted as a line, a
sustained change of light splits the window), so flicker averages out and real light changes are followed. Windows
are mirrored at shot edges, so no cut is ever crossed.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .flicker import CELL, FlowChain, block_grid, target_correction
from ...params import Param, declare
from ...stage import FrameWindow, Stage, StageOutput


class Deflicker(Stage):
    name = "deflicker"
    title = "Deflicker"
    min_size = CELL
    min_size_reason = f"it compares brightness over {CELL}x{CELL}-px cells"
    summary = "Match each frame's tone to a temporally smoothed target."
    params = declare(
        Param("window", "int", 9, "Frames on each side used for the smoothed target (more averages flicker out "
              "better; a change of light is followed whatever the window).", minimum=1, maximum=50, unit="frames"),
        Param("strength", "float", 1.0, "Fraction of the measured flicker removed.", minimum=0.0, maximum=1.0,
              step=0.05),
        Param("local", "bool", True, "Also correct block-wise (uneven) flicker."),
        Param("block_size", "int", 64, "Block size of the local correction.", minimum=16, maximum=512, unit="px"),
    )

    def __init__(self) -> None:
        self._chain = FlowChain()

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return int(params["window"])

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        frame = window.current
        height, width = frame.shape[:2]
        grid = block_grid(width, height, params["block_size"]) if params["local"] else (1, 1)
        measures, thumb = self._chain.window_brightness(window.indices, window.frames, window.index, grid)
        correction, lit_alike = target_correction(measures, window.indices, window.center, thumb,
                                                  params["strength"], params["local"])
        out = correction.apply(frame)
        side: dict[str, Any] = {"gain": round(correction.gain, 6), "frames_averaged": int(lit_alike.sum())}
        if params["local"]:
            side["local_gain"] = np.round(correction.field, 5).astype(np.float32)
        return StageOutput(out, side)
