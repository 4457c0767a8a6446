"""Stage data panel: the curves and values the active stages reported for the current frame."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .side_data import SideData

PLOT_HEIGHT_PX = 150
CURVE_COLOURS = (theme.ACCENT, theme.SHOT_MARK, "#7fc08a", "#e06c5a", "#bf5af2", "#d6d6d6", "#ffd60a", "#64d2ff")


class SideDataPanel(QWidget):
    """Plots for series (weave, grain level, fade curves), a table for single values; empty states say why."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel("Stage data appears here when an active stage reports some (weave, grain model, fade "
                           "curves, masks). Masks are drawn over the picture: see View ▸ Overlays.")
        self.note.setWordWrap(True)
        self.note.setObjectName("panelSummary")
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(theme.PANEL)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Stage", "Name", "Value"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.note)
        # Each plot gets a readable height and the list scrolls: a squeezed column of nine plots was unreadable, and
        # the view paints only the plots in sight (pyqtgraph's paint of all of them took up to 86 ms).
        self.plot_scroll = QScrollArea()
        self.plot_scroll.setWidgetResizable(True)
        self.plot_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.plot_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.plot_scroll.setWidget(self.plots)
        layout.addWidget(self.plot_scroll, 3)
        layout.addWidget(self.table, 1)
        self.shown: SideData = SideData()
        self.show_data(SideData())

    def show_data(self, side: SideData, frame: int | None = None, first_number: int = 0) -> None:
        """Show one frame's side data; plots over clip frames are drawn against frame numbers with `frame` marked.

        When the next frame reports the same plots (the usual case while playing or scrubbing in a shot), only
        their data, the frame marker and the table's values change: rebuilding the plots takes ~10× longer."""
        self.shown = side
        layout = self._layout_of(side)
        if layout == getattr(self, "_layout", None):
            self._update_in_place(side, frame, first_number)
            self._fill_table(side)
            return
        self._layout = layout
        self._curves: list[list[pg.PlotDataItem]] = []
        self._markers: list[pg.InfiniteLine | None] = []
        self._images: list[pg.ImageItem] = []
        self._map_items: list[pg.PlotItem] = []
        self.plots.clear()
        for row, plot in enumerate(side.plots):
            names = [name for name in plot.series if name != "value"]
            key = " · ".join(f"<span style='color:{CURVE_COLOURS[n % len(CURVE_COLOURS)]}'>{name}</span>"
                             for n, name in enumerate(names))
            title = (f"<span style='font-size:8pt; color:{theme.TEXT_DIM}'>{plot.label}"
                     f"{'<br>' + key if key else ''}</span>")
            item = self.plots.addPlot(row=row, col=0, title=title)
            item.showGrid(x=True, y=True, alpha=0.15)
            item.setMenuEnabled(False)
            offset = (plot.first_frame + first_number) if plot.first_frame is not None else 0
            curves = []
            for n, values in enumerate(plot.series.values()):
                x = np.arange(len(values)) + offset
                curves.append(item.plot(x, values, pen=pg.mkPen(CURVE_COLOURS[n % len(CURVE_COLOURS)], width=1.5)))
            self._curves.append(curves)
            marker = None
            if plot.first_frame is not None and frame is not None:
                marker = pg.InfiniteLine(frame + first_number, angle=90,
                                         pen=pg.mkPen(theme.ACCENT, width=1, style=Qt.PenStyle.DashLine))
                item.addItem(marker)
            self._markers.append(marker)
        for row, grid in enumerate(side.maps, start=len(side.plots)):
            low, high = float(grid.values.min()), float(grid.values.max())
            title = self._map_title(grid, low, high)
            item = self.plots.addPlot(row=row, col=0, title=title)
            self._map_items.append(item)
            item.setMenuEnabled(False)
            item.setAspectLocked(True)
            item.invertY(True)
            item.hideAxis("left")
            item.hideAxis("bottom")
            image = pg.ImageItem(grid.values.T, levels=(low, high if high > low else low + 1e-9))
            image.setColorMap(pg.colormap.get("inferno"))
            item.addItem(image)
            self._images.append(image)
        self.plots.setMinimumHeight(PLOT_HEIGHT_PX * (len(side.plots) + len(side.maps)))
        self.plot_scroll.setVisible(bool(side.plots or side.maps))
        self._fill_table(side)

    def _fill_table(self, side: SideData) -> None:
        if [label for label, _ in side.values] == getattr(self, "_rows", None):
            for row, (label, text) in enumerate(side.values):
                item = self.table.item(row, 2)
                if item is not None and item.text() != text:
                    item.setText(text)
                    item.setToolTip(f"{label} = {text}")
            return
        self._rows = [label for label, _ in side.values]
        self.table.setRowCount(len(side.values))
        for row, (label, text) in enumerate(side.values):
            stage, _, name = label.partition(": ")
            for column, cell in enumerate((stage, name or stage, text)):
                item = QTableWidgetItem(cell)
                item.setToolTip(f"{label} = {text}")
                self.table.setItem(row, column, item)
        self.table.resizeRowsToContents()
        self.table.setVisible(bool(side.values))
        overlays = ", ".join(o.label for o in side.overlays)
        if side.plots or side.maps or side.values or side.overlays:
            self.note.setText(f"Overlays available: {overlays}" if overlays else "")
            self.note.setVisible(bool(overlays))
        else:
            self.note.setText("No stage reported data for this frame. Stage data (weave, grain model, fade curves, "
                              "defect masks) appears here once an active stage provides it.")
            self.note.setVisible(True)

    @staticmethod
    def _layout_of(side: SideData) -> tuple:
        """What decides the plots' build: which plots and maps, their curves and lengths, and the table's rows."""
        return (tuple((p.key, p.label, tuple(p.series), p.first_frame is None) for p in side.plots),
                tuple((m.key, m.label) for m in side.maps), tuple(o.label for o in side.overlays))

    def _update_in_place(self, side: SideData, frame: int | None, first_number: int) -> None:
        for plot, curves, marker in zip(side.plots, self._curves, self._markers):
            offset = (plot.first_frame + first_number) if plot.first_frame is not None else 0
            for curve, values in zip(curves, plot.series.values()):
                curve.setData(np.arange(len(values)) + offset, values)
            if marker is not None and frame is not None:
                marker.setValue(frame + first_number)
        for grid, image, item in zip(side.maps, self._images, self._map_items):
            low, high = float(grid.values.min()), float(grid.values.max())
            image.setImage(grid.values.T, levels=(low, high if high > low else low + 1e-9))
            item.setTitle(self._map_title(grid, low, high))

    @staticmethod
    def _map_title(grid, low: float, high: float) -> str:
        return (f"<span style='font-size:8pt; color:{theme.TEXT_DIM}'>{grid.label}<br>"
                f"{'×'.join(map(str, grid.values.shape))} blocks · {low:.4g} … {high:.4g}</span>")
