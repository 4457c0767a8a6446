"""The main window: viewer and timeline in the middle, stages left, source/monitor/stage data right, queue below."""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
from PySide6.QtCore import QSettings, QSize, Qt, QThreadPool, QTimer
from PySide6.QtGui import QAction, QActionGroup, QColor, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from restoration.errors import ParamError, RestorationError
from restoration.export.paths import Sources, guard_source
from restoration.io import open_source
from restoration.pipeline import StageSetting
from restoration.project import Project, load_preset, load_project, parse_frame_rate, preset_names
from restoration.stage import STAGE_ORDER, Shot, stage_class, stage_classes

from . import theme
from .autosave import Autosave, Recovery
from .errors import one_line, show_error
from .monitor import MonitorPanel
from .preview import CutDetection, PreviewEngine, PreviewRequest, PreviewResult
from .render_queue import RenderQueue
from .side_panel import SideDataPanel
from .stage_stack import StagePanel, StageStack
from .timeline import TimelinePanel
from .viewer import CompareView, accept_file_drag, dropped_paths

log = logging.getLogger("filmrestore.app")
APP_NAME = "FilmRestore"
MAX_RECENT = 10
AUTOSAVE_DELAY_MS = 1500
PROJECT_SUFFIXES = (".json", ".filmrestore")
SEQUENCE_SUFFIXES = (".dpx", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".exr")
KEEP_ORIGINAL = "keep_original"  # a stage's list parameter of [frame, x, y, w, h] regions it must not touch


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("filmrestore", appauthor=False))


def looks_like_a_sequence_frame(path: str) -> bool:
    """An image whose name ends in a frame number, beside other images of the same kind."""
    file = Path(path)
    if file.suffix.lower() not in SEQUENCE_SUFFIXES or not file.stem[-1:].isdigit():
        return False
    return any(other != file for other in file.parent.glob(f"*{file.suffix}"))


def is_project_file(path: str) -> bool:
    return Path(path).suffix.lower() in PROJECT_SUFFIXES and Path(path).is_file()


def duration(seconds: float) -> str:
    """'840 ms', '12.4 s', '76 s'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def code_values(pixel: np.ndarray, bits: int) -> str:
    """A pixel as the integer code values of a `bits`-deep source (floats when the source is float)."""
    if bits > 16:
        return " ".join(f"{v:.4f}" for v in pixel)
    top = (1 << bits) - 1
    width = len(str(top))
    return " ".join(f"{int(round(float(np.clip(v, 0.0, 1.0)) * top)):>{width}d}" for v in pixel)


class MainWindow(QMainWindow):
    """The restoration workstation: a view over one Project and its source; all processing is in the core."""

    def __init__(self, path: str | None = None, *, settings: QSettings | None = None, data_dir: Path | None = None,
                 confirm_on_close: bool = True, error_dialogs: bool = True, monitor_interval_ms: int = 1000) -> None:
        super().__init__()
        self.error_dialogs = error_dialogs
        self.errors: list[str] = []  # every error reported to the user, in order (headless runs print them)
        self.preview_busy = False
        self.last_failure: tuple[int, str] | None = None  # (generation, message) of the last failed preview
        self.settings = settings or QSettings(APP_NAME, APP_NAME)
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.confirm_on_close = confirm_on_close
        self.project = Project()
        self.project_path: Path | None = None
        self.source = None
        self.info = None
        self.compare: str | None = None
        self.last_result: PreviewResult | None = None
        self.cuts_done = False
        self._cut_token = 0
        self._overlay_colours: dict[str, QColor] = {}
        self._overlay_on: set[str] = set()
        self._closing = False
        self.autosave = Autosave(self.data_dir)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.timeout.connect(self.write_autosave)

        self.engine = PreviewEngine(self)
        self.engine.finished.connect(self._preview_ready)
        self.engine.failed.connect(self._preview_failed)
        self.engine.busy.connect(self._set_busy)
        self.engine.progress.connect(self._preview_progress)

        self.setWindowTitle(f"untitled[*] — {APP_NAME}")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self._build_central()
        self._build_docks(monitor_interval_ms)
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status()
        self.stack.select(STAGE_ORDER[0])
        self.resize(1600, 1000)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._refresh_title()
        if path:
            QTimer.singleShot(0, lambda: self.open_path(path))

    # =========================================================================================================
    # layout
    def _build_central(self) -> None:
        self.viewer = CompareView()
        self.viewer.hovered.connect(self._show_pixel)
        self.viewer.zoom_changed.connect(self._show_zoom)
        self.viewer.files_dropped.connect(lambda paths: QTimer.singleShot(0, lambda: self.open_path(paths[0])))
        self.viewer.region_drawn.connect(self.keep_original)
        self.viewer.placeholder = "Open a film scan or video:  File ▸ Open source (Ctrl+O), or drop it here"
        self.timeline = TimelinePanel()
        self.timeline.index_changed.connect(lambda _: self.request_preview())
        self.timeline.in_out_changed.connect(self._in_out_edited)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(self.timeline)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self, monitor_interval_ms: int) -> None:
        self.stack = StageStack(stage_classes())
        self.stack.enabled_changed.connect(self.set_stage_enabled)
        self.stack.stage_selected.connect(self._show_stage)
        self.panel = StagePanel()
        self.panel.param_changed.connect(self.set_param)
        stages = QSplitter(Qt.Orientation.Vertical)
        stages.addWidget(self.stack)
        stages.addWidget(self.panel)
        stages.setStretchFactor(1, 1)
        self.stages_dock = self._dock("Stages", "stagesDock", stages, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.stages_dock.setMinimumWidth(330)

        self.source_panel = QWidget()
        form = QFormLayout(self.source_panel)
        form.setContentsMargins(10, 8, 10, 8)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.source_fields: dict[str, QLabel] = {}
        for key, label in (("file", "Source"), ("kind", "Kind"), ("geometry", "Picture"), ("frames", "Frames"),
                           ("depth", "Depth"), ("timecode", "Timecode"), ("audio", "Audio"), ("notes", "Notes")):
            field = QLabel("—")
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, field)
            self.source_fields[key] = field
        self.rate_edit = QLineEdit()
        self.rate_edit.setPlaceholderText("e.g. 24, 25, 24000/1001")
        self.rate_edit.setToolTip("Frame rate of an image sequence (stored in the project)")
        self.rate_edit.editingFinished.connect(self._rate_edited)
        form.addRow("Frame rate", self.rate_edit)
        self.source_dock = self._dock("Source", "sourceDock", self.source_panel, Qt.DockWidgetArea.RightDockWidgetArea)

        self.monitor = MonitorPanel(interval_ms=monitor_interval_ms)
        self.monitor_dock = self._dock("Monitor", "monitorDock", self.monitor, Qt.DockWidgetArea.RightDockWidgetArea)
        self.side_panel = SideDataPanel()
        self.side_dock = self._dock("Stage data", "sideDock", self.side_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.monitor_dock, self.side_dock)
        self.monitor_dock.raise_()

        self.queue = RenderQueue(self._project_for_queue)
        self.queue.error_reporter = lambda text: self.statusBar().showMessage(text, 15000)
        self.queue_dock = self._dock("Render queue", "queueDock", self.queue, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.stages_dock, self.source_dock], [360, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.source_dock, self.monitor_dock], [230, 600], Qt.Orientation.Vertical)
        self.resizeDocks([self.queue_dock], [140], Qt.Orientation.Vertical)

    def _action(self, text: str, slot, shortcut: str | QKeySequence | None = None, tip: str = "",
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever focus is (text fields keep their own keys)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a("Open source…", self.open_source_dialog, QKeySequence.StandardKey.Open,
                          "Open a video file or an image-sequence folder")
        self.act_open_folder = a("Open image-sequence folder…", self.open_sequence_folder_dialog, "Ctrl+Shift+F",
                                 "Open a folder of numbered DPX/TIFF/PNG/JPEG frames as one clip")
        self.act_open_project = a("Open project…", self.open_project_dialog, "Ctrl+Shift+O", "Open a project file")
        self.act_save = a("Save project", self.save_project, QKeySequence.StandardKey.Save, "Save the project")
        self.act_save_as = a("Save project as…", self.save_project_as, "Ctrl+Shift+S")
        self.act_quit = a("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_side = a("Side by side", lambda: self.set_view("side"), "1", "Original and result next to each other",
                          checkable=True)
        self.act_split = a("Split wipe", lambda: self.set_view("split"), "2", "One picture, drag the divider to wipe",
                           checkable=True)
        group = QActionGroup(self)
        group.addAction(self.act_side)
        group.addAction(self.act_split)
        self.act_split.setChecked(True)
        self.act_fit = a("Fit", self.viewer.fit, "F", "Fit the picture to the viewer")
        self.act_100 = a("1:1", lambda: self.viewer.set_zoom(1.0), "Ctrl+1", "One picture pixel per screen pixel")
        self.act_200 = a("200 %", lambda: self.viewer.set_zoom(2.0), "Ctrl+2", "Two screen pixels per picture pixel")
        self.act_add_job = a("Add current project to render queue…", self._add_job, "Ctrl+R")
        self.act_start_queue = a("Start render queue", self.queue.start, "Ctrl+Shift+R")
        for key in ("J", "K", "L"):
            a(f"Shuttle {key}", lambda _=False, k=key.lower(): self.timeline.shuttle(k), key)
        a("Previous frame", lambda: self.timeline.step(-1), "Left")
        a("Next frame", lambda: self.timeline.step(1), "Right")
        a("First frame", self.timeline.go_first, "Home")
        a("Last frame", self.timeline.go_last, "End")
        a("Set in point", self.timeline.mark_in, "I")
        a("Set out point", self.timeline.mark_out, "O")

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(16, 16))
        bar.addAction(self.act_open)
        bar.addAction(self.act_save)
        bar.addSeparator()
        bar.addWidget(QLabel("Compare"))
        self.compare_box = QComboBox()
        self.compare_box.addItem("Original ⟷ result", None)
        for cls in stage_classes():
            self.compare_box.addItem(f"Before ⟷ after {cls.title}", cls.name)
        self.compare_box.setToolTip("What the two sides show: the untouched source against the full result, or the "
                                    "picture just before and just after one stage")
        self.compare_box.currentIndexChanged.connect(self._compare_changed)
        bar.addWidget(self.compare_box)
        bar.addSeparator()
        bar.addAction(self.act_side)
        bar.addAction(self.act_split)
        bar.addSeparator()
        bar.addAction(self.act_fit)
        bar.addAction(self.act_100)
        bar.addAction(self.act_200)
        bar.addSeparator()
        self.overlay_menu = QMenu("Overlays", self)
        self.overlay_button = QToolButton()
        self.overlay_button.setText("Overlays")
        self.overlay_button.setToolTip("Draw stage side data (defect masks and maps) over the picture")
        self.overlay_button.setMenu(self.overlay_menu)
        self.overlay_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(self.overlay_button)
        self._rebuild_overlay_menu([])
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.busy_label = QLabel("")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setFixedWidth(110)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setVisible(False)
        bar.addWidget(self.busy_label)
        bar.addWidget(self.busy_bar)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.act_open)
        file_menu.addAction(self.act_open_folder)
        file_menu.addAction(self.act_open_project)
        self.recent_menu = file_menu.addMenu("Open recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addAction(self.act_save)
        file_menu.addAction(self.act_save_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        presets = menu.addMenu("&Presets")
        for name in preset_names():
            action = presets.addAction(name.replace("-", " ").capitalize())
            action.setToolTip(f"Apply the {name} preset's stages and export settings (the source stays)")
            action.triggered.connect(lambda _=False, n=name: self.apply_preset(n))
        view = menu.addMenu("&View")
        for action in (self.act_side, self.act_split, None, self.act_fit, self.act_100, self.act_200):
            view.addSeparator() if action is None else view.addAction(action)
        view.addSeparator()
        view.addMenu(self.overlay_menu)
        view.addSeparator()
        for dock in (self.stages_dock, self.source_dock, self.monitor_dock, self.side_dock, self.queue_dock):
            view.addAction(dock.toggleViewAction())
        render = menu.addMenu("&Render")
        render.addAction(self.act_add_job)
        render.addAction(self.act_start_queue)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction("Keyboard shortcuts", self._show_shortcuts)
        help_menu.addAction("About FilmRestore", self._show_about)

    def _build_status(self) -> None:
        self.pixel_label = QLabel("")
        self.zoom_label = QLabel("")
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.zoom_label)

    # =========================================================================================================
    # opening and saving
    def open_path(self, path: str) -> bool:
        """A project file opens as a project; anything else as a source."""
        return self.open_project(path) if is_project_file(path) else self.open_source(path)

    def open_source_dialog(self) -> None:
        start = str(self.settings.value("paths/last_source_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open source", start,
                                              "Film scans and video (*.mov *.mp4 *.mkv *.avi *.mxf *.m4v *.mpg *.dv "
                                              "*.dpx *.tif *.tiff *.png *.jpg *.exr);;All files (*)")
        if not path:
            return
        if looks_like_a_sequence_frame(path):
            answer = QMessageBox.question(
                self, "Image sequence", f"{Path(path).name} looks like one frame of a numbered sequence. "
                "Open the whole folder as one clip?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
            if answer == QMessageBox.StandardButton.Yes:
                path = str(Path(path).parent)
        self.open_source(path)

    def open_sequence_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image-sequence folder")
        if path:
            self.open_source(path)

    def open_source(self, path: str, keep_project: bool = False) -> bool:
        """Open a source for the current project; a failure shows the core's one-line message and changes nothing."""
        path = os.path.abspath(path)
        same = self.project.source is not None and os.path.abspath(self.project.source) == path
        rate = parse_frame_rate(self.project.source_frame_rate) if (same or keep_project) and self.project.source_frame_rate else None
        try:
            source = open_source(path, frame_rate=rate)
            if len(source) == 0:
                source.close()
                raise ParamError(path, "has no frames")
        except (RestorationError, OSError) as exc:
            self.report_error("Cannot open the source", exc)
            return False
        self.source, self.info = source, source.info
        self.engine.set_source(source)
        if not same:
            self.project.source = path
            if not keep_project:
                self.project.range = None
                self.project.source_frame_rate = None
                self._mark_dirty()
        info = source.info
        self.timeline.set_clip(len(source), info.frame_rate, info.first_frame_number, info.timecode)
        self.timeline.set_in_out(self._valid_range(self.project.range))
        self._show_source_info()
        self.viewer.clear("Rendering the first preview…")
        self.last_result = None
        self._start_cut_detection(path, rate, len(source))
        self._remember(path)
        self.settings.setValue("paths/last_source_dir", str(Path(path).parent))
        self._refresh_title()
        self.request_preview()
        return True

    def _close_source(self, message: str) -> None:
        """Show nothing rather than a picture that belongs to another project."""
        self.source = self.info = None
        self.last_result = None
        self._cut_token += 1
        self.engine.set_source(None)
        self.timeline.set_clip(0, self.timeline.frame_rate)
        self.viewer.clear(message)

    def _valid_range(self, frame_range: tuple[int, int] | None) -> tuple[int, int] | None:
        if frame_range is None or self.source is None:
            return frame_range
        start, stop = frame_range
        return (start, min(stop, len(self.source))) if start < len(self.source) else None

    def open_project_dialog(self) -> None:
        start = str(self.settings.value("paths/last_project_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, "FilmRestore projects (*.json);;All files (*)")
        if path:
            self.open_project(path)

    def open_project(self, path: str) -> bool:
        try:
            project = load_project(path)
        except (RestorationError, OSError) as exc:
            self.report_error("Cannot open the project", exc)
            return False
        self._adopt_project(project, Path(path).resolve())
        self._remember(str(Path(path).resolve()))
        self.settings.setValue("paths/last_project_dir", str(Path(path).resolve().parent))
        return True

    def _adopt_project(self, project: Project, path: Path | None, dirty: bool = False) -> None:
        self.project = project
        self.project_path = path
        self._show_project_settings()
        if project.source:
            if not self.open_source(project.source, keep_project=True):
                self._close_source(f"Source not found or unreadable: {project.source}")
        else:
            self._close_source("This project names no source yet: open one (Ctrl+O)")
        self.timeline.set_in_out(self._valid_range(project.range))
        self._set_clean() if not dirty else self._mark_dirty()

    def save_project(self) -> bool:
        if self.project_path is None:
            return self.save_project_as()
        return self._save_to(self.project_path)

    def save_project_as(self) -> bool:
        start = self.project_path or Path(str(self.settings.value("paths/last_project_dir", str(Path.home())))) / (
            f"{self._display_name()}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(start), "FilmRestore projects (*.json)")
        if not path:
            return False
        if not Path(path).suffix:
            path += ".json"
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        if self.project.name in ("", "untitled"):
            self.project.name = path.stem
        try:
            guard_source(path, Sources.of(self.project.source), folder=False)
            self.project.save(path)
        except (RestorationError, OSError) as exc:
            self.report_error("Cannot save the project", exc)
            return False
        self.project_path = path.resolve()
        self._remember(str(self.project_path))
        self.settings.setValue("paths/last_project_dir", str(self.project_path.parent))
        self._set_clean()
        self.statusBar().showMessage(f"Saved {self.project_path}", 5000)
        return True

    def apply_preset(self, name: str) -> None:
        """Take a preset's stage settings and export settings; the source and range stay."""
        try:
            preset = load_preset(name)
        except RestorationError as exc:
            self.report_error("Cannot apply the preset", exc)
            return
        self.project.stages = copy.deepcopy(preset.stages)
        self.project.export = dict(preset.export)
        self._show_project_settings()
        self._mark_dirty()
        self.statusBar().showMessage(f"Preset {name} applied", 5000)
        self.request_preview()

    # =========================================================================================================
    # editing
    def set_stage_enabled(self, name: str, enabled: bool) -> None:
        setting = self.project.stages.setdefault(name, StageSetting())
        if setting.enabled == enabled:
            return
        setting.enabled = enabled
        self.stack.set_enabled(name, enabled)
        self._mark_dirty()
        self.request_preview()

    def set_param(self, stage: str, name: str, value: Any) -> None:
        try:
            self.project.set_param(stage, name, value)
        except RestorationError as exc:
            self.report_error("Invalid value", exc)
            self.panel.refresh(self._stage_values(stage))
            return
        self._mark_dirty()
        if stage == self.stack.selected() and self.panel.form is not None:
            self.panel.form.set_param(name, self.project.stages[stage].params[name])
        self.request_preview()

    def _stage_values(self, name: str) -> dict[str, Any]:
        return stage_class(name).params.resolve(self.project.stages.get(name, StageSetting()).params)

    def _show_stage(self, name: str) -> None:
        self.panel.show_stage(stage_class(name), self._stage_values(name))

    def _show_project_settings(self) -> None:
        for name in STAGE_ORDER:
            self.stack.set_enabled(name, self.project.stages.get(name, StageSetting()).enabled)
        selected = self.stack.selected()
        if selected:
            self._show_stage(selected)

    def _in_out_edited(self, frame_range: tuple[int, int] | None) -> None:
        self.project.range = frame_range
        self._mark_dirty()

    def _rate_edited(self) -> None:
        text = self.rate_edit.text().strip()
        if self.info is None or text == (self.project.source_frame_rate or ""):
            return
        if text and parse_frame_rate(text) is None:
            self.report_error("Invalid frame rate", ParamError("frame rate", f"{text!r} is not a positive rate such as "
                                                                            "24 or 24000/1001"))
            self.rate_edit.setText(self.project.source_frame_rate or "")
            return
        self.project.source_frame_rate = text or None
        self._mark_dirty()
        self.open_source(self.project.source, keep_project=True)

    def _compare_changed(self) -> None:
        self.compare = self.compare_box.currentData()
        self.request_preview()

    def set_compare(self, stage: str | None) -> None:
        self.compare_box.setCurrentIndex(max(0, self.compare_box.findData(stage)))

    def set_view(self, mode: str) -> None:
        self.viewer.set_mode(mode)
        (self.act_side if mode == "side" else self.act_split).setChecked(True)

    # =========================================================================================================
    # preview
    def request_preview(self) -> int | None:
        if self.source is None or self._closing:
            return None
        return self.engine.request(PreviewRequest(self.timeline.index, self.project.stages, self.compare))

    def _preview_ready(self, result: PreviewResult) -> None:
        if self._closing or (self.last_result is not None and result.generation < self.last_result.generation):
            return
        self.last_result = result
        self.viewer.set_pictures(result.left_display, result.right_display, (result.left_label, result.right_label))
        self.viewer.show_message(result.note, error=False)
        overlays = {}
        for overlay in result.side.overlays:
            colour = self._overlay_colours.setdefault(
                overlay.key, QColor(theme.OVERLAY_COLOURS[len(self._overlay_colours) % len(theme.OVERLAY_COLOURS)]))
            overlays[overlay.key] = (overlay.alpha, colour, overlay.label)
        self.viewer.set_overlays(overlays)
        for key in overlays:
            self.viewer.set_overlay_visible(key, key in self._overlay_on)
        self._rebuild_overlay_menu([(o.key, o.label) for o in result.side.overlays])
        self.side_panel.show_data(result.side, result.index, self.info.first_frame_number if self.info else 0)
        self.monitor.show_timings(result.timings, result.read_seconds, result.seconds)
        times = {t.stage: ("cached" if t.computed == 0 else duration(t.seconds)) for t in result.timings}
        for name in STAGE_ORDER:
            self.stack.set_note(name, times.get(name, "bypassed" if name in result.skipped else ""))
        self._show_pixel(*self._last_hover) if hasattr(self, "_last_hover") else None

    def _preview_failed(self, generation: int, message: str) -> None:
        self.last_failure = (generation, message)
        if generation == self.engine.generation and not self._closing:
            self.viewer.show_message(message, error=True)
            self.statusBar().showMessage(message, 10000)

    def _set_busy(self, busy: bool) -> None:
        self.preview_busy = busy
        self.busy_bar.setVisible(busy)
        self.busy_label.setText("rendering preview…" if busy else "")

    def _preview_progress(self, phase: str, done: int, total: int) -> None:
        if phase.startswith("analyze "):
            name = phase.split(" ", 1)[1]
            title = stage_class(name).title if name in STAGE_ORDER else name
            text = f"analysing shot for {title}: {done}/{total}"
        elif phase == "cuts":
            text = f"finding cuts: {done}/{total}"
        else:
            text = f"{phase}: {done}/{total}"
        self.busy_label.setText(text)

    def _start_cut_detection(self, path: str, rate, count: int) -> None:
        self._cut_token += 1
        self.cuts_done = False
        token = self._cut_token
        job = CutDetection(path, rate, count, token, lambda t: t == self._cut_token and not self._closing)
        job.signals.found.connect(self._cuts_found)
        job.signals.failed.connect(lambda t, message: self._cuts_failed(t, message))
        job.signals.progress.connect(lambda t, done, total: t == self._cut_token and self.statusBar().showMessage(
            f"Finding cuts: {done}/{total} frames", 2000))
        self._cut_job = job  # keep the signal object alive while the job runs
        self.engine.expect_shots()
        QThreadPool.globalInstance().start(job)

    def _cuts_found(self, token: int, shots: list[Shot]) -> None:
        if token != self._cut_token:
            return
        self.cuts_done = True
        self.engine.set_shots(shots)
        self.timeline.set_shots(shots)
        self.statusBar().showMessage(f"{len(shots)} shot{'s' if len(shots) != 1 else ''} found", 4000)

    def _cuts_failed(self, token: int, message: str) -> None:
        if token == self._cut_token:
            self.cuts_done = True
            self.engine.set_shots(None)  # previews detect cuts themselves
            self.statusBar().showMessage(f"Cut detection failed: {message}", 10000)

    # =========================================================================================================
    # readouts
    def _show_pixel(self, x: int, y: int) -> None:
        self._last_hover = (x, y)
        result = self.last_result
        if result is None or x < 0 or y < 0:
            self.pixel_label.setText("")
            return
        height, width = result.right.shape[:2]
        if not (0 <= x < width and 0 <= y < height):
            self.pixel_label.setText("")
            return
        lh, lw = result.left.shape[:2]
        lx, ly = min(lw - 1, x * lw // width), min(lh - 1, y * lh // height)
        bits = self.info.bit_depth if self.info is not None else 8
        depth = f"{bits}-bit code values" if bits <= 16 else "float"
        self.pixel_label.setText(
            f"x {x:>4} y {y:>4}  │  {result.left_label}: {code_values(result.left[ly, lx], bits)}  │  "
            f"{result.right_label}: {code_values(result.right[y, x], bits)}  ({depth}, RGB)")

    def _show_zoom(self, scale: float, fit: bool) -> None:
        self.zoom_label.setText(f"{'fit ' if fit else ''}{scale * 100:.0f} %")

    def _show_source_info(self) -> None:
        info = self.info
        fields = self.source_fields
        fields["file"].setText(Path(info.path).name or info.path)
        fields["file"].setToolTip(info.path)
        fields["kind"].setText(f"{info.kind} · {info.container or '—'} · {info.codec}")
        sar = "" if info.sample_aspect_ratio == 1 else f" · SAR {info.sample_aspect_ratio}"
        rotation = f" · rotated {info.rotation}° (reported, not applied)" if info.rotation else ""
        fields["geometry"].setText(f"{info.width} × {info.height}{sar}{rotation}")
        rate = info.frame_rate
        exact = f"{rate.numerator}/{rate.denominator}" if rate.denominator != 1 else f"{rate.numerator}"
        vfr = " · variable frame rate" if info.variable_frame_rate else ""
        first = f" · numbered from {info.first_frame_number}" if info.kind == "sequence" else ""
        fields["frames"].setText(f"{info.frame_count} at {float(rate):.3f} fps ({exact}){vfr}{first}")
        fields["depth"].setText(f"{info.bit_depth}-bit {info.pixel_format}"
                                f"{' · alpha' if info.has_alpha else ''}{' · greyscale' if info.is_grayscale else ''}")
        fields["timecode"].setText(info.timecode or "none (counting from 00:00:00:00)")
        fields["audio"].setText(", ".join(f"{a.codec} {a.sample_rate} Hz {a.channels} ch" for a in info.audio) or "none")
        notes = []
        if info.missing_frames:
            shown = ", ".join(map(str, info.missing_frames[:8]))
            notes.append(f"missing frame numbers: {shown}{' …' if len(info.missing_frames) > 8 else ''}")
        fields["notes"].setText("; ".join(notes) or "—")
        self.rate_edit.setEnabled(info.kind in ("sequence", "image"))
        self.rate_edit.setText(self.project.source_frame_rate or "")

    # =========================================================================================================
    # overlays
    def _rebuild_overlay_menu(self, overlays: list[tuple[str, str]]) -> None:
        self.overlay_menu.clear()
        if not overlays:
            action = self.overlay_menu.addAction("No stage reported a mask for this frame")
            action.setEnabled(False)
        for key, label in overlays:
            action = self.overlay_menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(key in self._overlay_on)
            action.toggled.connect(lambda on, k=key: self.set_overlay(k, on))
        self.overlay_button.setText(f"Overlays ({len(overlays)})" if overlays else "Overlays")

    def set_overlay(self, key: str, visible: bool) -> None:
        (self._overlay_on.add if visible else self._overlay_on.discard)(key)
        self.viewer.set_overlay_visible(key, visible)

    def keep_original(self, region) -> None:
        """Shift+drag on the picture: the stage that takes keep-original regions leaves this one alone on this frame.

        The selected stage is used when it declares such a parameter, else the first enabled stage that does.
        """
        result = self.last_result
        if result is None:
            return
        takes = [n for n in STAGE_ORDER if KEEP_ORIGINAL in stage_class(n).params.names()
                 and stage_class(n).params.get(KEEP_ORIGINAL).kind == "list"]
        selected = self.stack.selected()
        enabled = [n for n in takes if self.project.stages.get(n, StageSetting()).enabled]
        stage = selected if selected in takes else (enabled[0] if enabled else None)
        if stage is None:
            self.statusBar().showMessage("No enabled stage takes keep-original regions", 6000)
            return
        # The left picture is the stage's input (original, or "before" the compared stage): map the box onto it.
        sy = result.left.shape[0] / result.right.shape[0]
        sx = result.left.shape[1] / result.right.shape[1]
        entry = [result.index, round(region.x() * sx), round(region.y() * sy),
                 max(1, round(region.width() * sx)), max(1, round(region.height() * sy))]
        regions = list(self._stage_values(stage)[KEEP_ORIGINAL]) + [entry]
        self.set_param(stage, KEEP_ORIGINAL, regions)
        self.statusBar().showMessage(
            f"{stage_class(stage).title}: region {entry[1:]} of frame {self.timeline.first_number + result.index} "
            f"kept original (edit or reset “Keep original” to undo)", 8000)

    # =========================================================================================================
    # render queue
    def _project_for_queue(self) -> tuple[Project, tuple[int, int] | None, int]:
        """A frozen copy of the project for a render job, the in/out range and how many frames the source lacks."""
        project = copy.deepcopy(self.project)
        if project.name in ("", "untitled"):
            project.name = self._display_name()
        missing = len(self.info.missing_frames) if self.info is not None else 0
        return project, self.timeline.in_out(), missing

    def _add_job(self) -> None:
        if not self.project.source:
            self.report_error("Nothing to render", "Open a source first.")
            return
        self.queue_dock.show()
        self.queue_dock.raise_()
        self.queue.add_current()

    # =========================================================================================================
    # state, title, autosave, recent files
    def _display_name(self) -> str:
        if self.project_path is not None:
            return self.project_path.stem
        if self.project.name and self.project.name != "untitled":
            return self.project.name
        if self.project.source:
            return Path(self.project.source).stem or Path(self.project.source).name
        return "untitled"

    def _refresh_title(self) -> None:
        self.setWindowTitle(f"{self._display_name()}[*] — {APP_NAME}")

    def _mark_dirty(self) -> None:
        self.setWindowModified(True)
        self._refresh_title()
        self._autosave_timer.start(AUTOSAVE_DELAY_MS)

    def _set_clean(self) -> None:
        self.setWindowModified(False)
        self._refresh_title()
        self._autosave_timer.stop()
        self.autosave.discard()

    def report_error(self, title: str, exc: BaseException | str) -> None:
        """The core's one-line message in a dialog (or on stderr when running headless)."""
        message = exc if isinstance(exc, str) else one_line(exc)
        self.errors.append(message)
        if self.error_dialogs:
            show_error(self, title, exc)
        else:
            print(f"filmrestore: error: {message}", file=sys.stderr)

    def is_dirty(self) -> bool:
        return self.isWindowModified()

    def write_autosave(self) -> None:
        if not self.is_dirty():
            return
        try:
            self.autosave.save(self.project, self.project_path)
        except (RestorationError, OSError) as exc:
            self.statusBar().showMessage(f"Autosave failed: {exc}", 10000)

    def offer_recovery(self) -> bool:
        """Ask to restore the newest project a crashed session left unsaved; True when one was restored."""
        orphans = self.autosave.orphans()
        if not orphans:
            return False
        newest = orphans[0]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(newest.saved_at))
        answer = QMessageBox.question(
            self, "Recover unsaved project",
            f"FilmRestore did not close cleanly. Recover the unsaved project “{newest.name}” from {when}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        restored = answer == QMessageBox.StandardButton.Yes and self.recover(newest)
        for orphan in orphans:
            orphan.discard()
        return restored

    def recover(self, recovery: Recovery) -> bool:
        try:
            project = load_project(recovery.path)
        except RestorationError as exc:
            self.report_error("Cannot recover the project", exc)
            return False
        if project.name == recovery.path.stem:
            project.name = recovery.name
        path = Path(recovery.project_path) if recovery.project_path else None
        self._adopt_project(project, path, dirty=True)
        return True

    def _remember(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in (value or [])]

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        if not recent:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.setEnabled(os.path.exists(path))
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", lambda: self.settings.setValue("recent", []))

    # =========================================================================================================
    # help
    def _show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join((
            "J / K / L — play backwards / stop / play (press again for 2×, 4×, 8×)",
            "Left / Right — previous / next frame", "Home / End — first / last frame",
            "I / O — set in / out point", "1 / 2 — side by side / split wipe",
            "F — fit · Ctrl+1 — 1:1 · Ctrl+2 — 200 %  (mouse wheel zooms, drag pans, double-click fits)",
            "Shift+drag on the picture — keep that region original on this frame (false dust repairs)",
            "Ctrl+O — open source · Ctrl+S — save project · Ctrl+R — add to render queue")))

    def _show_about(self) -> None:
        from restoration import __version__

        QMessageBox.about(self, "About FilmRestore", f"FilmRestore {__version__}\nA restoration workstation for "
                                                     "scanned film. The source is never modified.")

    # =========================================================================================================
    # drag and drop, close
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        accept_file_drag(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = dropped_paths(event)
        if paths:
            QTimer.singleShot(0, lambda: self.open_path(paths[0]))

    def shutdown(self, keep_autosave: bool = True) -> None:
        """Stop workers and child renders. The autosave stays when the session ends without the user deciding."""
        if self._closing:
            return
        self._closing = True
        self._cut_token += 1
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.monitor.timer.stop()
        self._autosave_timer.stop()
        if keep_autosave and self.is_dirty():
            self.write_autosave()
        self.queue.shutdown()
        self.engine.shutdown()
        QThreadPool.globalInstance().waitForDone(10000)
        if not keep_autosave or not self.is_dirty():
            self.autosave.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.confirm_on_close and self.is_dirty():
            answer = QMessageBox.question(
                self, "Unsaved changes", f"Save the changes to “{self._display_name()}” before closing?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Save)
            if answer == QMessageBox.StandardButton.Cancel or (answer == QMessageBox.StandardButton.Save
                                                               and not self.save_project()):
                event.ignore()
                return
        if self.confirm_on_close and self.queue.is_running():
            answer = QMessageBox.question(self, "Render running", "A render is running. Cancel it and quit?",
                                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown(keep_autosave=False)
        super().closeEvent(event)
