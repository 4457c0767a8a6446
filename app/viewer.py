"""The compare viewer: side-by-side or split-wipe, one shared zoom and pan, overlays, and the pixel under the cursor."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from . import theme

GUTTER_PX = 6
DIVIDER_GRAB_PX = 8
MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
OVERLAY_OPACITY = 0.6
VIEW_MODES = ("split", "side", "flip", "difference")


def image_from_rgb(array: np.ndarray) -> QImage:
    """A QImage owning a copy of an 8-bit RGB array."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def image_from_alpha(alpha: np.ndarray, colour: QColor) -> QImage:
    """A premultiplied ARGB image of `colour` with the mask as its opacity."""
    height, width = alpha.shape
    a = (alpha.astype(np.float32) * OVERLAY_OPACITY).astype(np.uint8)
    pixels = np.empty((height, width, 4), np.uint8)  # B, G, R, A in memory for ARGB32 on little-endian
    for channel, value in zip((0, 1, 2), (colour.blue(), colour.green(), colour.red())):
        pixels[..., channel] = (a.astype(np.uint16) * value // 255).astype(np.uint8)
    pixels[..., 3] = a
    return QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied).copy()


def accept_file_drag(event) -> None:
    """Accept a drag that carries files (a source or project dropped on the window)."""
    if event.mimeData().hasUrls():
        event.acceptProposedAction()


def dropped_paths(event) -> list[str]:
    """Local file paths of a drop, accepting it when there are any."""
    paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
    if paths:
        event.acceptProposedAction()
    return paths


class CompareView(QWidget):
    """Draws two pictures in `side` or `split` mode with synchronized zoom/pan; the wipe divider can be dragged."""

    hovered = Signal(int, int)  # pixel in result coordinates, (-1, -1) when off the picture
    zoom_changed = Signal(float, bool)  # scale, is-fit
    divider_moved = Signal(float)
    region_drawn = Signal(QRectF)  # Shift+drag: a rectangle in result-picture pixels
    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setAcceptDrops(True)
        self.mode = "split"
        self.divider = 0.5  # fraction of the width, split mode
        self._zoom: float | None = None  # None: fit
        self._center = QPointF(0.0, 0.0)  # result-image point at the middle of each pane
        self._left: QImage | None = None
        self._right: QImage | None = None
        self.labels = ("original", "result")
        self._difference: QImage | None = None
        self.difference_label = "difference"
        self.flip_side = "right"  # A/B mode: which picture fills the viewer ("left" is A, "right" is B)
        self.stale = ""  # a marker over the picture while it lags the playhead or the settings
        self._overlays: dict[str, tuple[QImage, str]] = {}
        self._visible: set[str] = set()
        self._drag: str | None = None
        self._last = QPointF()
        self._band: tuple[QPointF, QPointF] | None = None  # Shift+drag rectangle, widget coordinates
        self.placeholder = "Open a source to begin"
        self.banner = QLabel(self)
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()

    # --- content ------------------------------------------------------------------------------------------------
    def set_pictures(self, left: np.ndarray, right: np.ndarray, labels: tuple[str, str],
                     difference: np.ndarray | None = None, difference_label: str = "difference") -> None:
        """Show two 8-bit RGB pictures (and their difference picture, for the difference view); the first picture
        (or a new size) starts in fit mode."""
        new_size = self._right is None or (self._right.width(), self._right.height()) != (right.shape[1], right.shape[0])
        self._left, self._right = image_from_rgb(left), image_from_rgb(right)
        self._difference = image_from_rgb(difference) if difference is not None else None
        self.difference_label = difference_label
        self.labels = labels
        if new_size:
            self._zoom = None
            self._center = QPointF(right.shape[1] / 2, right.shape[0] / 2)
        self._emit_zoom()
        self.update()

    def clear(self, placeholder: str = "Open a source to begin") -> None:
        self._left = self._right = None
        self._overlays.clear()
        self.placeholder = placeholder
        self.update()

    def has_pictures(self) -> bool:
        return self._right is not None

    def picture_size(self) -> tuple[int, int]:
        return (self._right.width(), self._right.height()) if self._right is not None else (0, 0)

    def set_overlays(self, overlays: dict[str, tuple[np.ndarray, QColor, str]]) -> None:
        """Replace the available overlays: key -> (alpha mask, colour, label)."""
        self._overlays = {key: (image_from_alpha(alpha, colour), label) for key, (alpha, colour, label) in overlays.items()}
        self.update()

    def set_overlay_visible(self, key: str, visible: bool) -> None:
        (self._visible.add if visible else self._visible.discard)(key)
        self.update()

    def visible_overlays(self) -> list[str]:
        return [k for k in self._overlays if k in self._visible]

    def show_message(self, text: str, error: bool = True) -> None:
        """A line over the bottom of the picture: red for errors, neutral for notes; empty text hides it."""
        self.banner.setObjectName("banner" if error else "note")
        self.banner.setStyleSheet(self.banner.styleSheet())  # re-polish for the new object name
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        self._place_banner()

    # --- view state ---------------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """'split' wipe, 'side' by side, 'flip' (one picture, A/B toggled with flip()), 'difference'."""
        if mode not in VIEW_MODES:
            raise ValueError(f"unknown view mode {mode!r}")
        self.mode = mode
        self._emit_zoom()
        self.update()

    def flip(self) -> str:
        """A/B: show the other picture in the same place (entering the flip view shows the original first)."""
        if self.mode != "flip":
            self.mode, self.flip_side = "flip", "left"
        else:
            self.flip_side = "left" if self.flip_side == "right" else "right"
        self._emit_zoom()
        self.update()
        return self.flip_side

    def set_stale(self, text: str) -> None:
        """Mark the picture as lagging ('' when it shows the playhead's frame at the current settings)."""
        if text != self.stale:
            self.stale = text
            self.update()

    def set_divider(self, fraction: float) -> None:
        self.divider = min(1.0, max(0.0, fraction))
        self.divider_moved.emit(self.divider)
        self.update()

    def fit(self) -> None:
        self._zoom = None
        if self._right is not None:
            self._center = QPointF(self._right.width() / 2, self._right.height() / 2)
        self._emit_zoom()
        self.update()

    def set_zoom(self, scale: float) -> None:
        """1.0 is one picture pixel per screen pixel; the pan centre stays where it is."""
        self._zoom = min(MAX_ZOOM, max(MIN_ZOOM, scale))
        self._emit_zoom()
        self.update()

    def scale(self) -> float:
        if self._right is None:
            return 1.0
        if self._zoom is not None:
            return self._zoom
        pane = self._panes()[0]
        return max(MIN_ZOOM, min(pane.width() / self._right.width(), pane.height() / self._right.height()))

    def is_fit(self) -> bool:
        return self._zoom is None

    def _emit_zoom(self) -> None:
        self.zoom_changed.emit(self.scale(), self.is_fit())

    # --- geometry -----------------------------------------------------------------------------------------------
    def _panes(self) -> list[QRectF]:
        full = QRectF(self.rect())
        if self.mode != "side":
            return [full]
        half = (full.width() - GUTTER_PX) / 2
        return [QRectF(0, 0, half, full.height()), QRectF(half + GUTTER_PX, 0, half, full.height())]

    def _picture_rect(self, pane: QRectF) -> QRectF:
        s = self.scale()
        width, height = self.picture_size()
        center = QPointF(width / 2, height / 2) if self._zoom is None else self._center
        top_left = pane.center() - QPointF(center.x() * s, center.y() * s)
        return QRectF(top_left, QPointF(top_left.x() + width * s, top_left.y() + height * s))

    def picture_point(self, pos: QPointF) -> QPointF | None:
        """The result-image coordinate under widget position `pos` (None off every pane)."""
        for pane in self._panes():
            if pane.contains(pos):
                rect = self._picture_rect(pane)
                s = self.scale()
                return QPointF((pos.x() - rect.left()) / s, (pos.y() - rect.top()) / s)
        return None

    def divider_x(self) -> float:
        return self.divider * self.width()

    # --- painting -----------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(theme.VIEWER_BG))
        if self._right is None or self._left is None:
            painter.setPen(QColor(theme.TEXT_DIM))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.3)
            painter.setFont(font)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        smooth = self.scale() < 1.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        panes = self._panes()
        if self.mode in ("flip", "difference"):
            rect = self._picture_rect(panes[0])
            if self.mode == "difference":
                image = self._difference if self._difference is not None else self._right
                label = self.difference_label if self._difference is not None else "no difference picture"
            else:
                image = self._left if self.flip_side == "left" else self._right
                label = (f"A · {self.labels[0]}" if self.flip_side == "left" else f"B · {self.labels[1]}")
            painter.save()
            painter.setClipRect(panes[0])
            painter.drawImage(rect, image)
            if self.mode == "flip":
                self._paint_overlays(painter, rect)
            painter.restore()
            self._paint_label(painter, label, QPointF(10, 10), left=True, limit=self.width())
            self._paint_stale(painter)
            return
        if self.mode == "split":
            pane = panes[0]
            rect = self._picture_rect(pane)
            x = self.divider_x()
            painter.save()
            painter.setClipRect(QRectF(pane.left(), pane.top(), x - pane.left(), pane.height()))
            painter.drawImage(rect, self._left)
            painter.setClipRect(QRectF(x, pane.top(), pane.right() - x, pane.height()))
            painter.drawImage(rect, self._right)
            painter.setClipping(False)
            self._paint_overlays(painter, rect)
            painter.restore()
            self._paint_divider(painter, x)
            self._paint_band(painter)
            self._paint_label(painter, self.labels[0], QPointF(10, 10), left=True, limit=x - 10)
            self._paint_label(painter, self.labels[1], QPointF(self.width() - 10, 10), left=False, limit=x + 10)
        else:
            for pane, image, label, left in zip(panes, (self._left, self._right), self.labels, (True, False)):
                rect = self._picture_rect(pane)
                painter.save()
                painter.setClipRect(pane)
                painter.drawImage(rect, image)
                self._paint_overlays(painter, rect)
                painter.restore()
                self._paint_label(painter, label, QPointF(pane.left() + 10, 10), left=True, limit=pane.right())
            painter.fillRect(QRectF(panes[0].right(), 0, GUTTER_PX, self.height()), QColor("#0c0c0c"))
        self._paint_band(painter)
        self._paint_stale(painter)

    def _paint_stale(self, painter: QPainter) -> None:
        """An amber badge at the top centre while the picture is not the playhead's frame at these settings."""
        if not self.stale:
            return
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(self.stale) + 20
        box = QRectF((self.width() - width) / 2, 10, width, metrics.height() + 8)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(theme.ACCENT), 1.5))
        painter.setBrush(QColor(60, 40, 10, 225))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor("#ffd28a"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.stale)

    def _paint_band(self, painter: QPainter) -> None:
        if self._band is None:
            return
        painter.setPen(QPen(QColor(theme.ACCENT), 1, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(216, 155, 60, 40))
        painter.drawRect(QRectF(self._band[0], self._band[1]).normalized())

    def _paint_overlays(self, painter: QPainter, rect: QRectF) -> None:
        for key in self.visible_overlays():
            painter.drawImage(rect, self._overlays[key][0])

    def _paint_divider(self, painter: QPainter, x: float) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(0, 0, 0, 140), 3))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.setPen(QPen(QColor(theme.ACCENT), 1.5))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        middle = QPointF(x, self.height() / 2)
        painter.setBrush(QColor(theme.WINDOW))
        painter.drawEllipse(middle, 11, 11)
        path = QPainterPath()
        for direction in (-1, 1):
            path.moveTo(middle + QPointF(direction * 3, -4))
            path.lineTo(middle + QPointF(direction * 7, 0))
            path.lineTo(middle + QPointF(direction * 3, 4))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)

    def _paint_label(self, painter: QPainter, text: str, anchor: QPointF, left: bool, limit: float) -> None:
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 14
        height = metrics.height() + 6
        x = anchor.x() if left else anchor.x() - width
        if (left and x + width > limit) or (not left and x < limit):
            return  # no room beside the divider
        box = QRectF(x, anchor.y(), width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 190))
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(QColor(theme.TEXT))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._place_banner()
        if self._zoom is None:
            self._emit_zoom()
        super().resizeEvent(event)

    def _place_banner(self) -> None:
        width = min(self.width() - 40, 720)
        self.banner.setFixedWidth(max(200, width))
        self.banner.adjustSize()
        self.banner.move((self.width() - self.banner.width()) // 2, self.height() - self.banner.height() - 16)

    # --- interaction --------------------------------------------------------------------------------------------
    def _near_divider(self, pos: QPointF) -> bool:
        return self.mode == "split" and abs(pos.x() - self.divider_x()) <= DIVIDER_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() != Qt.MouseButton.LeftButton or self._right is None:
            return
        pos = event.position()
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and self.picture_point(pos) is not None:
            self._drag = "region"
            self._band = (pos, pos)
        elif self._near_divider(pos):
            self._drag = "divider"
        else:
            self._drag = "pan"
            self._start_manual_zoom()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self._last = pos

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        if self._drag == "region" and self._band is not None:
            self._band = (self._band[0], pos)
            self.update()
        elif self._drag == "divider":
            self.set_divider(pos.x() / max(1, self.width()))
        elif self._drag == "pan":
            delta = pos - self._last
            s = self.scale()
            self._center -= QPointF(delta.x() / s, delta.y() / s)
            self._last = pos
            self.update()
        else:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos) else Qt.CursorShape.CrossCursor)
        self._emit_hover(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._drag == "region" and self._band is not None:
            region = self._band_region()
            self._band = None
            self.update()
            if region is not None:
                self.region_drawn.emit(region)
        self._drag = None
        self.setCursor(Qt.CursorShape.CrossCursor)

    def _band_region(self) -> QRectF | None:
        """The Shift+drag rectangle in whole result pixels, clipped to the picture (None when empty)."""
        start, end = (self.picture_point(p) for p in self._band)
        if start is None or end is None:
            return None
        width, height = self.picture_size()
        x0, x1 = sorted((start.x(), end.x()))
        y0, y1 = sorted((start.y(), end.y()))
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(width, int(x1) + 1), min(height, int(y1) + 1)
        return QRectF(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if not self._near_divider(event.position()):
            self.fit()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.hovered.emit(-1, -1)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        if self._right is None:
            return
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        self.zoom_about(event.position(), self.scale() * (1.25 ** steps))

    def zoom_about(self, pos: QPointF, scale: float) -> None:
        """Zoom keeping the picture point under `pos` where it is."""
        before = self.picture_point(pos)
        self._start_manual_zoom()
        self._zoom = min(MAX_ZOOM, max(MIN_ZOOM, scale))
        after = self.picture_point(pos)
        if before is not None and after is not None:
            self._center += before - after
        self._emit_zoom()
        self.update()

    def _start_manual_zoom(self) -> None:
        if self._zoom is None:
            self._zoom = self.scale()
            width, height = self.picture_size()
            self._center = QPointF(width / 2, height / 2)

    def _emit_hover(self, pos: QPointF) -> None:
        point = self.picture_point(pos)
        width, height = self.picture_size()
        if point is None or not (0 <= point.x() < width and 0 <= point.y() < height):
            self.hovered.emit(-1, -1)
        else:
            self.hovered.emit(int(point.x()), int(point.y()))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        accept_file_drag(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = dropped_paths(event)
        if paths:
            self.files_dropped.emit(paths)
