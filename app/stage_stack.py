"""The stage stack (fixed order, an enable box each) and the selected stage's generated parameter panel."""

from __future__ import annotations

from typing import Any, Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from restoration.stage import Stage

from .param_form import ParamForm

NOT_IMPLEMENTED = "not implemented yet"


class StageRow(QFrame):
    """One line of the stack: enable box, title, and a note (not implemented / last preview time)."""

    clicked = Signal(str)

    def __init__(self, stage: type[Stage], position: int) -> None:
        super().__init__()
        self.stage = stage
        self.setObjectName("stageRow")
        self.setProperty("selected", False)
        self.setToolTip(stage.summary)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.check = QCheckBox()
        self.check.setToolTip(f"Enable {stage.title}" if stage.implemented
                              else f"{stage.title} is {NOT_IMPLEMENTED}: it can only be bypassed")
        self.check.setEnabled(stage.implemented)
        self.title = QLabel(f"{position}   {stage.title}")
        self.note = QLabel("" if stage.implemented else NOT_IMPLEMENTED)
        self.note.setObjectName("stageNote")
        self.note.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if not stage.implemented:
            self.title.setEnabled(False)
        self.progress = QProgressBar()  # a shot measurement in progress for this stage
        self.progress.setObjectName("stageProgress")
        self.progress.setFixedWidth(90)
        self.progress.setFixedHeight(14)
        self.progress.setTextVisible(True)
        self.progress.setFormat("measuring %p%")
        self.progress.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 5, 10, 5)
        layout.addWidget(self.check)
        layout.addWidget(self.title, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.note)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.clicked.emit(self.stage.name)

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.style().unpolish(self)
        self.style().polish(self)


class StageStack(QFrame):
    """The stages in the fixed pipeline order; checking a box enables the stage, clicking a row shows its parameters."""

    enabled_changed = Signal(str, bool)
    stage_selected = Signal(str)

    def __init__(self, stages: list[type[Stage]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stageStack")
        self.rows: dict[str, StageRow] = {}
        self._selected: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        for position, stage in enumerate(stages, 1):
            row = StageRow(stage, position)
            row.check.toggled.connect(lambda on, name=stage.name: self.enabled_changed.emit(name, on))
            row.clicked.connect(self.select)
            layout.addWidget(row)
            self.rows[stage.name] = row
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def select(self, name: str) -> None:
        if name not in self.rows:
            return
        for key, row in self.rows.items():
            row.set_selected(key == name)
        if name != self._selected:
            self._selected = name
            self.stage_selected.emit(name)

    def selected(self) -> str | None:
        return self._selected

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Show a stage's enabled state (from a project) without emitting."""
        check = self.rows[name].check
        check.blockSignals(True)
        check.setChecked(enabled)
        check.blockSignals(False)

    def set_progress(self, name: str, done: int, total: int) -> None:
        """Show a stage's shot measurement progressing in its row (hidden once done, or with total 0)."""
        row = self.rows.get(name)
        if row is None:
            return
        if total <= 0 or done >= total:
            row.progress.hide()
            return
        row.progress.setRange(0, total)
        row.progress.setValue(done)
        row.progress.setToolTip(f"{row.stage.title}: measuring the shot, {done} of {total} frames")
        row.progress.show()

    def clear_progress(self) -> None:
        for row in self.rows.values():
            row.progress.hide()

    def set_note(self, name: str, text: str) -> None:
        row = self.rows[name]
        row.note.setText(text if row.stage.implemented else NOT_IMPLEMENTED)


class StagePanel(QScrollArea):
    """The selected stage's title, summary and generated parameter form, with a reset-stage button."""

    param_changed = Signal(str, str, object)  # stage, param, value
    param_refused = Signal(str)  # the one-line reason a typed value was not taken

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.stage: type[Stage] | None = None
        self.form: ParamForm | None = None
        self.setWidget(QLabel("Select a stage to see its parameters"))

    def show_stage(self, stage: type[Stage], values: Mapping[str, Any]) -> None:
        self.stage = stage
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(10, 8, 10, 8)
        title = QLabel(stage.title)
        title.setObjectName("panelTitle")
        summary = QLabel(stage.summary)
        summary.setObjectName("panelSummary")
        summary.setWordWrap(True)
        layout.addWidget(title)
        layout.addWidget(summary)
        if not stage.implemented:
            note = QLabel(f"This stage is {NOT_IMPLEMENTED}: it is bypassed. Its settings are kept in the "
                          "project and take effect once it lands.")
            note.setObjectName("stageNote")
            note.setWordWrap(True)
            layout.addWidget(note)
        layout.addSpacing(6)
        self.form = ParamForm(stage.params, values)
        self.form.changed.connect(lambda name, value: self.param_changed.emit(stage.name, name, value))
        self.form.refused.connect(lambda reason: self.param_refused.emit(f"{stage.name}.{reason}"))
        layout.addWidget(self.form)
        reset = QPushButton("Reset stage to defaults")
        reset.setToolTip(f"Every {stage.title} parameter back to its declared default")
        reset.clicked.connect(self.form.reset_all)
        layout.addSpacing(6)
        layout.addWidget(reset, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.reset_button = reset
        self.setWidget(body)

    def refresh(self, values: Mapping[str, Any]) -> None:
        if self.form is not None:
            self.form.set_values(values)
