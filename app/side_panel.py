"""Stage data panel: the curves and values the active stages reported for the current frame."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from . import theme
from .side_data import SideData

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
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Value", ""])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.note)
        layout.addWidget(self.plots, 3)
        layout.addWidget(self.table, 1)
        self.shown: SideData = SideData()
        self.show_data(SideData())

    def show_data(self, side: SideData) -> None:
        self.shown = side
        self.plots.clear()
        for row, plot in enumerate(side.plots):
            item = self.plots.addPlot(row=row, col=0, title=plot.label)
            item.showGrid(x=True, y=True, alpha=0.15)
            item.addLegend(offset=(4, 4), labelTextSize="8pt")
            for n, (name, values) in enumerate(plot.series.items()):
                item.plot(values, pen=pg.mkPen(CURVE_COLOURS[n % len(CURVE_COLOURS)], width=2),
                          name=None if name == "value" else name)
        self.plots.setVisible(bool(side.plots))
        self.table.setRowCount(len(side.values))
        for row, (label, text) in enumerate(side.values):
            self.table.setItem(row, 0, QTableWidgetItem(label))
            self.table.setItem(row, 1, QTableWidgetItem(text))
        self.table.setVisible(bool(side.values))
        overlays = ", ".join(o.label for o in side.overlays)
        if side.plots or side.values or side.overlays:
            self.note.setText(f"Overlays available: {overlays}" if overlays else "")
            self.note.setVisible(bool(overlays))
        else:
            self.note.setText("No stage reported data for this frame. Stage data (weave, grain model, fade curves, "
                              "defect masks) appears here once an active stage provides it.")
            self.note.setVisible(True)
