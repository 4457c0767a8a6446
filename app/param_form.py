"""Parameter panels generated from a stage's (or the export's) declaration: one row per Param, nothing hand-made."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QWidget,
)

from restoration.errors import ParamError
from restoration.params import Param, ParamSet

LOG_SLIDER_RATIO = 1000  # ranges spanning this many times their minimum get a logarithmic slider
MAX_TICKS = 10000
class NudgeSlider(QSlider):
    """A slider that keeps its keys while it has the focus: the window's Left/Right/Home/End (frame steps) and
    Page Up/Down shortcuts would otherwise take them before the slider sees them."""

    KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp,
            Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End)

    def event(self, event) -> bool:  # noqa: D401 - Qt API
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in self.KEYS \
                and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            event.accept()  # deliver it as a key press to this slider
            return True
        return super().event(event)


SLIDER_MIN_WIDTH = 160  # at 70 px a click on a 0–1 slider jumped 0.5 → 0.95


# The restorer's words for parameters whose names are an engineer's (labels only: names stay as declared).
LABELS = {
    "crf": "Quality (CRF, lower is better)",
    "preset": "Encoder speed",
    "threads": "Encoder threads",
    "framemd5_file": "Write a framemd5 file",
    "allow_depth_loss": "Allow a lower bit depth",
    "audio": "Carry the sound",
    "keep_original": "Leave as scanned",
}


def label_for(param: Param) -> str:
    return LABELS.get(param.name) or param.name.replace("_", " ").capitalize()


def describe(param: Param) -> str:
    """Tooltip: the declared help, then range, unit and default."""
    lines = [param.help]
    if param.kind in ("float", "int") and (param.minimum is not None or param.maximum is not None):
        low = "−∞" if param.minimum is None else f"{param.minimum:g}"
        high = "∞" if param.maximum is None else f"{param.maximum:g}"
        lines.append(f"Range {low} … {high}{param.unit_suffix}")
    elif param.kind == "choice":
        lines.append(f"One of: {', '.join(param.choices)}")
    elif param.kind == "list":
        lines.append("A JSON list, e.g. [[12, 100, 80, 20, 20]]")
    lines.append(f"Default: {format_value(param, param.default)}")
    if param.fit_only:
        lines.append("Changing it re-fits from the shot's kept measurement: the preview follows at once.")
    return "\n".join(lines)


def format_value(param: Param, value: Any) -> str:
    if param.kind == "list":
        return json.dumps(value)
    if param.kind == "bool":
        return "on" if value else "off"
    if param.kind == "float":
        return f"{value:g}{param.unit_suffix}"
    if param.kind == "int":
        return f"{value}{param.unit_suffix}"
    return repr(value) if value == "" else str(value)


def float_decimals(param: Param) -> int:
    if param.step:
        return max(0, min(6, -math.floor(math.log10(param.step) + 1e-9)))
    span = (param.maximum or 0) - (param.minimum or 0)
    return 1 if span >= 100 else 2 if span >= 10 else 3


class SliderScale:
    """Maps a bounded number onto slider ticks: linear, or logarithmic for ranges over three decades."""

    def __init__(self, param: Param) -> None:
        self.param = param
        low, high = float(param.minimum), float(param.maximum)
        self.low, self.high = low, high
        self.log = low > 0 and high / low >= LOG_SLIDER_RATIO
        if self.log:
            self.ticks = 1000
        elif param.kind == "int" and high - low <= MAX_TICKS:
            self.ticks = int(high - low)
        elif param.step:
            self.ticks = int(min(MAX_TICKS, round((high - low) / param.step)))
        else:
            self.ticks = 1000
        self.ticks = max(1, self.ticks)

    def to_ticks(self, value: float) -> int:
        value = min(self.high, max(self.low, float(value)))
        if self.log:
            fraction = math.log(value / self.low) / math.log(self.high / self.low)
        else:
            fraction = (value - self.low) / (self.high - self.low) if self.high > self.low else 0.0
        return round(fraction * self.ticks)

    def from_ticks(self, ticks: int) -> float | int:
        fraction = ticks / self.ticks
        if self.log:
            value = self.low * (self.high / self.low) ** fraction
        else:
            value = self.low + fraction * (self.high - self.low)
        if self.param.kind == "int":
            return int(round(value))
        if self.param.step:
            value = self.low + round((value - self.low) / self.param.step) * self.param.step
        return float(round(min(self.high, max(self.low, value)), 6))


class ParamRow:
    """The editor widgets for one parameter, and how to read and set them."""

    def __init__(self, form: "ParamForm", param: Param) -> None:
        self.form, self.param = form, param
        self.slider: QSlider | None = None
        self.scale: SliderScale | None = None
        self.editor = self._build()
        self.reset = QToolButton()
        self.reset.setIcon(form.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        self.reset.setAutoRaise(True)
        self.reset.setToolTip(f"Reset to the default ({format_value(param, param.default)})")
        self.reset.clicked.connect(lambda: form.set_param(param.name, param.default, user=True))

    def _build(self) -> QWidget:
        p = self.param
        tip = describe(p)
        if p.kind in ("float", "int"):
            spin = QDoubleSpinBox() if p.kind == "float" else QSpinBox()
            spin.setKeyboardTracking(False)
            spin.setToolTip(tip)
            spin.setSuffix(p.unit_suffix)
            spin.setAlignment(Qt.AlignmentFlag.AlignRight)
            spin.setMinimumWidth(96)
            if p.kind == "float":
                spin.setDecimals(float_decimals(p))
                span = (1e9 if p.maximum is None else p.maximum) - (-1e9 if p.minimum is None else p.minimum)
                spin.setSingleStep(p.step or max(10 ** -spin.decimals(), span / 100))
                spin.setRange(-1e12 if p.minimum is None else p.minimum, 1e12 if p.maximum is None else p.maximum)
            else:
                spin.setRange(-2**31 if p.minimum is None else int(p.minimum), 2**31 - 1 if p.maximum is None else int(p.maximum))
                spin.setSingleStep(int(p.step or 1))
            spin.valueChanged.connect(lambda v: self.form.set_param(p.name, v, user=True))
            self.spin = spin
            if p.minimum is None or p.maximum is None:
                return spin
            self.scale = SliderScale(p)
            slider = NudgeSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, self.scale.ticks)
            slider.setToolTip(tip)
            slider.setMinimumWidth(SLIDER_MIN_WIDTH)
            # arrow keys move one fine step, the spin box's; Page Up/Down ten
            span = self.scale.high - self.scale.low
            fine = (round(spin.singleStep() / span * self.scale.ticks) if not self.scale.log and span > 0
                    else self.scale.ticks // 100)
            fine = min(max(1, fine), self.scale.ticks)
            slider.setSingleStep(fine)
            slider.setPageStep(10 * fine)
            slider.valueChanged.connect(lambda t: self.form.set_param(p.name, self.scale.from_ticks(t), user=True))
            self.slider = slider
            box = QWidget()
            layout = QHBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(slider, 1)
            layout.addWidget(spin)
            return box
        if p.kind == "bool":
            check = QCheckBox()
            check.setToolTip(tip)
            check.toggled.connect(lambda v: self.form.set_param(p.name, bool(v), user=True))
            self.check = check
            return check
        if p.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(p.choices))
            combo.setToolTip(tip)
            combo.currentTextChanged.connect(lambda v: self.form.set_param(p.name, v, user=True))
            self.combo = combo
            return combo
        line = QLineEdit()
        line.setToolTip(tip)
        line.setPlaceholderText("[]" if p.kind == "list" else "(empty)")
        line.editingFinished.connect(self._commit_text)
        self.line = line
        return line

    def _commit_text(self) -> None:
        text = self.line.text()
        try:
            value = self.param.parse(text or ("[]" if self.param.kind == "list" else ""), self.param.name)
        except ParamError as exc:
            self.line.setStyleSheet("border: 1px solid #e06c5a;")
            self.line.setToolTip(f"{exc}\n\n{describe(self.param)}")
            self.form.refused.emit(str(exc))
            return
        self.line.setStyleSheet("")
        self.line.setToolTip(describe(self.param))
        self.form.set_param(self.param.name, value, user=True)

    def show(self, value: Any) -> None:
        """Put `value` into the widgets without emitting edits."""
        p = self.param
        widgets = [w for w in (getattr(self, n, None) for n in ("spin", "slider", "check", "combo", "line")) if w]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            if p.kind in ("float", "int"):
                self.spin.setValue(value)
                if self.slider is not None:
                    self.slider.setValue(self.scale.to_ticks(value))
            elif p.kind == "bool":
                self.check.setChecked(bool(value))
            elif p.kind == "choice":
                self.combo.setCurrentText(str(value))
            elif p.kind == "list":
                self.line.setText(json.dumps(value))
                self.line.setStyleSheet("")
            else:
                self.line.setText(str(value))
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self.reset.setEnabled(value != p.default)


class ParamForm(QWidget):
    """A grid of rows, one per declared parameter; `changed(name, value)` on every edit by the user."""

    changed = Signal(str, object)
    refused = Signal(str)  # a typed value that was not taken: the one-line reason, naming the parameter

    def __init__(self, params: ParamSet, values: Mapping[str, Any] | None = None, parent: QWidget | None = None,
                 skip: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self.params = params
        self.values: dict[str, Any] = params.defaults()
        self.rows: dict[str, ParamRow] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        grid.setColumnStretch(1, 1)
        for line, param in enumerate(p for p in params if p.name not in skip):
            row = ParamRow(self, param)
            label = QLabel(label_for(param))
            label.setToolTip(describe(param))
            row.label = label
            grid.addWidget(label, line, 0)
            grid.addWidget(row.editor, line, 1)
            grid.addWidget(row.reset, line, 2)
            self.rows[param.name] = row
        self.set_values(values or {})

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Show `values` (defaults for missing ones) without emitting."""
        self.values = self.params.resolve({k: v for k, v in values.items() if k in self.params.names()})
        for name, row in self.rows.items():
            row.show(self.values[name])

    def set_param(self, name: str, value: Any, user: bool = False) -> None:
        param = self.params.get(name)
        value = param.validate(value, name)
        if value == self.values.get(name) and not user:
            return
        changed = value != self.values.get(name)
        self.values[name] = value
        self.rows[name].show(value)
        if changed and user:
            self.changed.emit(name, value)

    def show_only(self, names: tuple[str, ...]) -> None:
        """Show the rows of `names` only (the options that apply); the others keep their values."""
        for name, row in self.rows.items():
            for widget in (row.label, row.editor, row.reset):
                widget.setVisible(name in names)

    def reset_all(self) -> None:
        """Every parameter back to its declared default (one `changed` per parameter that moved)."""
        for param in self.params:
            if param.name in self.rows:
                self.set_param(param.name, param.default, user=True)
