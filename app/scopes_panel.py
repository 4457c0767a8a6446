"""Scope dock: luma waveform, RGB parade and RGB histogram of the original and the result, side by side.

The numbers come from `restoration.scopes`, computed on the preview worker with each picture; this only draws them
(a 256×256 image per scope, a few milliseconds), and only while the dock is visible.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QRadioButton, QSizePolicy, QVBoxLayout, QWidget

from restoration.scopes import Scopes

from . import theme

KINDS = (("waveform", "Luma waveform"), ("parade", "RGB parade"), ("histogram", "RGB histogram"))
CHANNEL_RGB = ((255, 90, 80), (90, 220, 110), (90, 140, 255))
GRATICULE = (0.0, 0.25, 0.5, 0.75, 1.0)


def _trace(counts: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Counts (normalised to 1 at the busiest cell) → an RGB trace, brightened so single pixels still show."""
    level = np.sqrt(np.clip(counts, 0.0, 1.0)) * (counts > 0)
    level = np.where(counts > 0, 0.3 + 0.7 * level, 0.0).astype(np.float32)
    return (level[..., None] * np.asarray(colour, np.float32)).astype(np.uint8)


def scope_image(scopes: Scopes, kind: str) -> np.ndarray | None:
    """The RGB picture of one scope (levels × columns); None for the histogram, which is drawn as curves."""
    if kind == "waveform":
        return _trace(scopes.waveform, (220, 220, 200))
    if kind == "parade":
        return np.concatenate([_trace(scopes.parade[c], CHANNEL_RGB[c]) for c in range(3)], axis=1)
    return None


class ScopeView(QWidget):
    """One picture's scope with a graticule at 0, 25, 50, 75 and 100 %."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.kind = "waveform"
        self.scopes: Scopes | None = None
        self._image: QImage | None = None
        self.setMinimumSize(180, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_scopes(self, scopes: Scopes | None, kind: str) -> None:
        self.scopes, self.kind = scopes, kind
        image = scope_image(scopes, kind) if scopes is not None else None
        if image is not None:
            image = np.ascontiguousarray(image)
            h, w = image.shape[:2]
            self._image = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        else:
            self._image = None
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#0b0b0b"))
        area = QRectF(self.rect()).adjusted(30, 18, -6, -6)
        painter.setPen(QColor(theme.TEXT_DIM))
        clipped = ""
        if self.scopes is not None and self.kind != "histogram":
            clipped = f"   crushed {self.scopes.clipped_low:.1%} · clipped {self.scopes.clipped_high:.1%}"
        painter.drawText(QRectF(4, 0, self.width() - 8, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         f"{self.title}{clipped}")
        if self.scopes is None:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "no picture yet")
            return
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(area, self._image)
        else:
            self._paint_histogram(painter, area)
        pen = QPen(QColor(255, 255, 255, 45), 1, Qt.PenStyle.DashLine)
        for level in GRATICULE:
            if self.kind == "histogram":
                x = area.left() + level * area.width()
                painter.setPen(pen)
                painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
                continue
            y = area.bottom() - level * area.height()
            painter.setPen(pen)
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            painter.setPen(QColor(theme.TEXT_DIM))
            painter.drawText(QRectF(0, y - 7, 27, 14), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{level * 100:.0f}")

    def _paint_histogram(self, painter: QPainter, area: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        bins = self.scopes.histogram.shape[1]
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Plus)
        for channel in range(3):
            counts = np.sqrt(self.scopes.histogram[channel])  # square-root scale: shadows and highlights show
            path = QPainterPath(QPointF(area.left(), area.bottom()))
            for i in range(0, bins, 2):
                path.lineTo(area.left() + i / (bins - 1) * area.width(), area.bottom() - counts[i] * area.height())
            path.lineTo(area.right(), area.bottom())
            path.closeSubpath()
            r, g, b = CHANNEL_RGB[channel]
            painter.setPen(QPen(QColor(r, g, b, 220), 1))
            painter.setBrush(QColor(r, g, b, 70))
            painter.drawPath(path)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)


class ScopePanel(QWidget):
    """Scope kind chooser and the two pictures' scopes (left: original or 'before'; right: result or 'after')."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = "waveform"
        self.left = ScopeView("original")
        self.right = ScopeView("result")
        self._pending: tuple[Scopes, Scopes, tuple[str, str]] | None = None
        chooser = QHBoxLayout()
        self.buttons = QButtonGroup(self)
        self.kind_buttons: dict[str, QRadioButton] = {}
        for kind, text in KINDS:
            button = QRadioButton(text)
            self.kind_buttons[kind] = button
            button.setChecked(kind == self.kind)
            button.toggled.connect(lambda on, k=kind: on and self.set_kind(k))
            self.buttons.addButton(button)
            chooser.addWidget(button)
        chooser.addStretch(1)
        self.note = QLabel("Levels of the picture on screen: 0 is black, 100 white (full code range).")
        self.note.setObjectName("frameInfo")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(chooser)
        layout.addWidget(self.left, 1)
        layout.addWidget(self.right, 1)
        layout.addWidget(self.note)

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        button = self.kind_buttons[kind]
        if not button.isChecked():
            button.setChecked(True)  # its toggled signal comes back here with the same kind: nothing more to do
        for view in (self.left, self.right):
            view.show_scopes(view.scopes, kind)

    def show_scopes(self, scopes: tuple[Scopes, Scopes] | None, labels: tuple[str, str]) -> None:
        """Keep the newest; draw it only while the dock is on screen (hidden scopes cost nothing)."""
        self._pending = (scopes, labels) if scopes is not None else None
        if self.isVisible():
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        (left, right), labels = self._pending
        self._pending = None
        self.left.title, self.right.title = labels
        self.left.show_scopes(left, self.kind)
        self.right.show_scopes(right, self.kind)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.flush()
