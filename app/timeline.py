"""Timeline: scrubber with shot markers and in/out range, frame number and timecode, J/K/L shuttle."""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

from PySide6.QtCore import QPointF, QRectF, QTimer, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QStyle, QToolButton, QVBoxLayout, QWidget

from restoration.stage import Shot

from . import theme
from .timecode import timecode_at

MAX_SHUTTLE = 8


class Scrubber(QWidget):
    """The clip as a strip: shots marked, in/out shaded, the playhead; click or drag to seek."""

    seek = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(42)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.count = 0
        self.index = 0
        self.cuts: list[int] = []
        self.in_out: tuple[int, int] | None = None
        self.label_for: Callable[[int], str] = str
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def _track(self) -> QRectF:
        return QRectF(8, 16, max(1, self.width() - 16), self.height() - 22)

    def x_of(self, index: int) -> float:
        track = self._track()
        return track.left() + (index + 0.5) * track.width() / max(1, self.count)

    def index_at(self, x: float) -> int:
        track = self._track()
        position = int((x - track.left()) / track.width() * self.count)
        return max(0, min(self.count - 1, position))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(theme.PANEL))
        track = self._track()
        painter.fillRect(track, QColor("#1a1a1a"))
        if self.count <= 0:
            return
        per_frame = track.width() / self.count
        if self.in_out is not None:
            start, stop = self.in_out
            shade = QRectF(track.left() + start * per_frame, track.top(), (stop - start) * per_frame, track.height())
            painter.fillRect(shade, QColor(theme.IN_OUT))
            painter.setPen(QPen(QColor("#7fc08a"), 2))
            painter.drawLine(shade.topLeft(), shade.bottomLeft())
            painter.drawLine(shade.topRight(), shade.bottomRight())
        self._paint_ticks(painter, track, per_frame)
        painter.setPen(QPen(QColor(theme.SHOT_MARK), 2))
        for cut in self.cuts:
            x = track.left() + cut * per_frame
            painter.drawLine(QPointF(x, track.top()), QPointF(x, track.bottom()))
            painter.setBrush(QColor(theme.SHOT_MARK))
            painter.drawPolygon([QPointF(x - 4, track.top()), QPointF(x + 4, track.top()), QPointF(x, track.top() + 5)])
        x = self.x_of(self.index)
        painter.setPen(QPen(QColor(theme.ACCENT), 2))
        painter.drawLine(QPointF(x, 2), QPointF(x, self.height() - 2))
        painter.setBrush(QColor(theme.ACCENT))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.drawPolygon([QPointF(x - 5, 2), QPointF(x + 5, 2), QPointF(x, 9)])

    def _paint_ticks(self, painter: QPainter, track: QRectF, per_frame: float) -> None:
        metrics = painter.fontMetrics()
        spacing = metrics.horizontalAdvance(self.label_for(max(0, self.count - 1))) + 24
        step = 1
        for candidate in (1, 2, 5, 10, 12, 24, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000):
            step = candidate
            if candidate * per_frame >= spacing:
                break
        painter.setPen(QColor(theme.TEXT_DIM))
        for index in range(0, self.count, step):
            x = track.left() + index * per_frame
            painter.drawLine(QPointF(x, track.bottom() - 5), QPointF(x, track.bottom()))
            painter.drawText(QPointF(x + 3, 12), self.label_for(index))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.count > 0 and event.button() == Qt.MouseButton.LeftButton:
            self.seek.emit(self.index_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.count > 0 and event.buttons() & Qt.MouseButton.LeftButton:
            self.seek.emit(self.index_at(event.position().x()))


class TimelinePanel(QWidget):
    """Scrubber, transport buttons, timecode and frame number; owns the current frame and the shuttle speed."""

    index_changed = Signal(int)
    in_out_changed = Signal(object)  # (in, out) with out exclusive, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.count = 0
        self.index = 0
        self.frame_rate = Fraction(24)
        self.start_timecode: str | None = None
        self.first_number = 0
        self.shots: list[Shot] = []
        self.in_point: int | None = None
        self.out_point: int | None = None  # inclusive while editing; exposed exclusive
        self.speed = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

        self.scrubber = Scrubber()
        self.scrubber.label_for = lambda i: str(self.first_number + i)
        self.scrubber.seek.connect(self.set_index)
        self.timecode = QLabel("--:--:--:--")
        self.timecode.setObjectName("timecode")
        self.frame_info = QLabel("no source")
        self.frame_info.setObjectName("frameInfo")
        self.shot_info = QLabel("")
        self.shot_info.setObjectName("frameInfo")
        self.range_info = QLabel("")
        self.range_info.setObjectName("frameInfo")
        self.speed_info = QLabel("")
        self.speed_info.setObjectName("frameInfo")

        style = self.style()
        icons = {"home": QStyle.StandardPixmap.SP_MediaSkipBackward, "j": QStyle.StandardPixmap.SP_MediaSeekBackward,
                 "k": QStyle.StandardPixmap.SP_MediaStop, "l": QStyle.StandardPixmap.SP_MediaPlay,
                 "end": QStyle.StandardPixmap.SP_MediaSkipForward}
        header = QHBoxLayout()
        header.setSpacing(2)
        self.buttons: dict[str, QToolButton] = {}
        for name, text, tip, slot in (
            ("home", "", "First frame (Home)", self.go_first),
            ("back", "‹", "Previous frame (Left)", lambda: self.step(-1)),
            ("j", "", "Play backwards, faster each press (J)", lambda: self.shuttle("j")),
            ("k", "", "Stop (K)", lambda: self.shuttle("k")),
            ("l", "", "Play, faster each press (L)", lambda: self.shuttle("l")),
            ("next", "›", "Next frame (Right)", lambda: self.step(1)),
            ("end", "", "Last frame (End)", self.go_last),
        ):
            self._add_button(header, name, text, tip, slot, style.standardIcon(icons[name]) if name in icons else None)
        header.addSpacing(4)
        header.addWidget(self.speed_info)
        header.addSpacing(10)
        header.addWidget(self.timecode)
        header.addSpacing(12)
        header.addWidget(self.frame_info)
        header.addStretch(1)
        for name, text, tip, slot in (("in", "In", "Set the in point here (I)", self.mark_in),
                                      ("out", "Out", "Set the out point here (O)", self.mark_out),
                                      ("clear", "Clear", "Clear in and out points", self.clear_in_out)):
            self._add_button(header, name, text, tip, slot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.scrubber)
        footer = QHBoxLayout()
        footer.addWidget(self.shot_info)
        footer.addStretch(1)
        footer.addWidget(self.range_info)
        layout.addLayout(footer)
        self.setEnabled(False)

    # --- clip -----------------------------------------------------------------------------------------------------
    def _add_button(self, header: QHBoxLayout, name: str, text: str, tip: str, slot: Callable[[], None],
                    icon: QIcon | None = None) -> None:
        button = QToolButton()
        if icon is not None:
            button.setIcon(icon)
        else:
            button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        header.addWidget(button)
        self.buttons[name] = button

    def set_clip(self, count: int, frame_rate: Fraction, first_number: int = 0, start_timecode: str | None = None) -> None:
        self.shuttle("k")
        self.count, self.frame_rate, self.first_number = count, Fraction(frame_rate), first_number
        self.start_timecode = start_timecode
        self.shots = []
        self.in_point = self.out_point = None
        self.scrubber.count = count
        self.scrubber.cuts = []
        self.scrubber.in_out = None
        self.setEnabled(count > 0)
        self.index = -1
        self.set_index(0)
        self._show_range()

    def set_shots(self, shots: list[Shot]) -> None:
        self.shots = list(shots)
        self.scrubber.cuts = [s.start for s in shots[1:]]
        self._show_position()
        self.scrubber.update()

    def set_in_out(self, frame_range: tuple[int, int] | None) -> None:
        """Set from a project (out exclusive) without re-emitting."""
        if frame_range is None:
            self.in_point = self.out_point = None
        else:
            self.in_point, self.out_point = frame_range[0], frame_range[1] - 1
        self._show_range()

    def in_out(self) -> tuple[int, int] | None:
        if self.in_point is None and self.out_point is None:
            return None
        start = self.in_point if self.in_point is not None else 0
        stop = (self.out_point if self.out_point is not None else self.count - 1) + 1
        return (start, stop) if stop > start else None

    # --- navigation -----------------------------------------------------------------------------------------------
    def set_index(self, index: int) -> None:
        if self.count <= 0:
            return
        index = max(0, min(self.count - 1, int(index)))
        if index == self.index:
            return
        self.index = index
        self.scrubber.index = index
        self.scrubber.update()
        self._show_position()
        self.index_changed.emit(index)

    def step(self, frames: int) -> None:
        self.shuttle("k")
        self.set_index(self.index + frames)

    def go_first(self) -> None:
        self.shuttle("k")
        self.set_index(0)

    def go_last(self) -> None:
        self.shuttle("k")
        self.set_index(self.count - 1)

    def shuttle(self, key: str) -> None:
        """J/K/L: J and L play backwards/forwards, doubling speed on each press up to 8x; K stops."""
        if key == "k":
            self.speed = 0
        elif key == "l":
            self.speed = 1 if self.speed <= 0 else min(self.speed * 2, MAX_SHUTTLE)
        elif key == "j":
            self.speed = -1 if self.speed >= 0 else max(self.speed * 2, -MAX_SHUTTLE)
        if self.speed == 0 or self.count <= 0:
            self._timer.stop()
            self.speed_info.setText("")
            return
        interval = 1000.0 / (float(self.frame_rate) * abs(self.speed))
        self._timer.start(max(5, int(interval)))
        self.speed_info.setText(f"{'◀' if self.speed < 0 else '▶'} {abs(self.speed)}×")

    def _tick(self) -> None:
        target = self.index + (1 if self.speed > 0 else -1)
        if not 0 <= target < self.count:
            self.shuttle("k")
            return
        self.set_index(target)

    # --- in / out -------------------------------------------------------------------------------------------------
    def mark_in(self) -> None:
        self.in_point = self.index
        if self.out_point is not None and self.out_point < self.index:
            self.out_point = None
        self._range_edited()

    def mark_out(self) -> None:
        self.out_point = self.index
        if self.in_point is not None and self.in_point > self.index:
            self.in_point = None
        self._range_edited()

    def clear_in_out(self) -> None:
        self.in_point = self.out_point = None
        self._range_edited()

    def _range_edited(self) -> None:
        self._show_range()
        self.in_out_changed.emit(self.in_out())

    # --- labels ---------------------------------------------------------------------------------------------------
    def _show_position(self) -> None:
        if self.count <= 0:
            return
        # without a source timecode, count from the source's own frame numbers, as the scan's names do
        position = self.index if self.start_timecode else self.first_number + self.index
        self.timecode.setText(timecode_at(position, self.frame_rate, self.start_timecode))
        self.frame_info.setText(f"frame {self.first_number + self.index}   ·   {self.index + 1} / {self.count}")
        if self.shots:
            position = next((n for n, s in enumerate(self.shots) if self.index in s), 0)
            shot = self.shots[position]
            self.shot_info.setText(f"shot {position + 1}/{len(self.shots)}  "
                                   f"({self.first_number + shot.start}–{self.first_number + shot.end - 1})")
        else:
            self.shot_info.setText("")

    def _show_range(self) -> None:
        frame_range = self.in_out()
        self.scrubber.in_out = frame_range
        self.scrubber.update()
        if frame_range is None:
            self.range_info.setText("whole clip")
        else:
            start, stop = frame_range
            self.range_info.setText(f"in {self.first_number + start} · out {self.first_number + stop - 1}"
                                    f"  ({stop - start} frames)")
