"""Colour panel: what the colour stage estimated for the shot, drawn so a restorer can see why it corrected.

Shows the per-layer correction curves the stage applies to the current frame (faded code value → restored), the
identity for comparison, each layer's estimated black and white point (the general estimate's when it took part,
else the dye model's), and one
line of verdict: fade found and how sure, or why the colour was left alone (no fade found, black-and-white, a grey
pick). Fed with the raw side data of the colour stage (`Pipeline.side_data(i)["color"]`); `mode=reference` and
`mode=neutral` stay the overrides, set in the stage's parameter panel.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from restoration.stages.color.fade import GAMMA

from . import theme

LAYER_COLOURS = {"R": "#e0605a", "G": "#6cc07a", "B": "#5a9ae0"}


def verdict(side: Mapping[str, Any]) -> str:
    """One line saying what the stage concluded about the shot and why."""
    estimate = side.get("estimate") or {}
    shot = side.get("shot") or [0, 0]
    where = f"shot {shot[0]}–{shot[1] - 1}"
    notes = side.get("notes") or []
    if side.get("monochrome"):
        return f"{where}: black-and-white (residual chroma {side.get('residual_chroma', 0):.2f}): colour left as it is"
    if any("grey pick" in n for n in notes):
        return f"{where}: corrected to make the picked patch grey (mode neutral)"
    if not estimate.get("fade_found", False):
        if any("whites coloured" in n for n in notes):
            return (f"{where}: no fade found — restoring would colour the whites (white spread "
                    f"{estimate.get('white_cast', 0):.2f}): a scan's cast, left as it is")
        return f"{where}: no fade found — colour left as it is (a grade, a clean scan or a tint)"
    text = (f"{where}: fade found, confidence {estimate.get('fade_confidence', 0):.2f}; dye model "
            f"scale R {estimate['scale'][0]:.2f} B {estimate['scale'][2]:.2f}")
    names = {0: "cyan (R)", 2: "yellow (B)"}
    for c, other in ((0, 2), (2, 0)):
        share = (estimate.get("borrowed_share") or [0.0, 0.0, 0.0])[c]
        if share >= 0.05:
            text += f"; {names[c]} shows no black of its own, takes {share:.0%} of {names[other]}'s fade"
    contrast = (side.get("model") or {}).get("contrast", 1.0)
    if contrast > 1.001:
        text += (f"; magenta black (density {estimate['black_point'][1]:.2f}) taken as the print's faded Dmax, "
                 f"every layer's density stretched ×{contrast:.2f}")
    elif contrast < 0.999:
        text += (f"; magenta black (density {estimate['black_point'][1]:.2f}) lies beyond a print's Dmax (a scan "
                 f"curve or a grade), every layer's density compressed ×{contrast:.2f}")
    if side.get("axis_weight"):
        text += f"; general curves' share {side['axis_weight']:.2f}"
    if side.get("transfer"):
        text += "; matched to the reference"
    return text


class ColourCurvesView(QWidget):
    """The colour stage's per-layer curves for the current frame, with its black/white points and verdict."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Colour fade: enable the colour stage to see the curves it estimates for each shot.")
        self.title.setWordWrap(True)
        self.title.setObjectName("panelSummary")
        self.plot = pg.PlotWidget(background=theme.PANEL)
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.plot.setLabel("bottom", "faded code value")
        self.plot.setLabel("left", "restored")
        self.plot.setAspectLocked(True)
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextColor=theme.TEXT_DIM)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        self.curves: dict[str, np.ndarray] = {}
        self.points: dict[str, tuple[float, float]] = {}

    def show_side(self, side: Mapping[str, Any] | None) -> None:
        """Draw the colour stage's side data for one frame (None or empty: the colour stage did not run)."""
        self.plot.clear()
        self.curves, self.points = {}, {}
        if not side or "correction" not in side:
            self.title.setText("Colour fade: the colour stage did not run on this frame (disabled, bypassed or "
                               "strength 0).")
            return
        self.title.setText(verdict(side))
        dim = pg.mkPen(theme.TEXT_DIM, width=1, style=Qt.PenStyle.DashLine)
        self.plot.plot([0.0, 1.0], [0.0, 1.0], pen=dim, name="unchanged")
        points = black_white_points(side)
        for c, (name, values) in enumerate(side["correction"].items()):
            y = np.asarray(values, dtype=np.float64)
            x = np.linspace(0.0, 1.0, len(y))
            self.curves[name] = y
            colour = LAYER_COLOURS.get(name, theme.ACCENT)
            self.plot.plot(x, y, pen=pg.mkPen(colour, width=2), name=f"{name} correction")
            if points is not None:
                black, white = float(points[0][c]), float(points[1][c])
                self.points[name] = (black, white)
                self.plot.plot([black, white], [float(np.interp(black, x, y)), float(np.interp(white, x, y))],
                               pen=None, symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=None,
                               name="black / white points" if c == 0 else None)


def black_white_points(side: Mapping[str, Any]) -> tuple[list[float], list[float]] | None:
    """Each layer's estimated black and white point as faded code values: the general estimate's neutral black and
    white when it took part, else the dye model's (its densities as code values); None when neither is there."""
    layers = side.get("layers") or {}
    if layers.get("black_code") and layers.get("white_code"):
        return list(layers["black_code"]), list(layers["white_code"])
    estimate = side.get("estimate") or {}
    if estimate.get("black_point") and estimate.get("white_point"):
        code = [[float(10.0 ** (-d / GAMMA)) for d in estimate[key]] for key in ("black_point", "white_point")]
        return code[0], code[1]
    return None


def colour_side(raw: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The colour stage's part of a frame's raw side data ({stage: {...}}), if any."""
    return (raw or {}).get("color")


__all__ = ["ColourCurvesView", "black_white_points", "colour_side", "verdict"]
