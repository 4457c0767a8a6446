"""The main window: viewer and timeline in the middle, stages left, source/monitor/stage data right, queue below."""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDockWidget,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from restoration.errors import ParamError, RestorationError
from restoration.pipeline import StageSetting
from restoration.project import Project, new_project, parse_frame_rate
from restoration.stage import STAGE_ORDER, Shot
from restoration.stages import stage_class, stage_classes

from . import theme
from .actions import WindowActions
from .autosave import Autosave
from .errors import one_line, show_error
from .monitor import MonitorPanel
from .frame_cache import DEFAULT_BUDGET_BYTES, FrameCache
from .preview import CutDetection, PreviewEngine, PreviewRequest, PreviewResult, settings_key
from .scopes_panel import ScopePanel
from .render_queue import RenderQueue
from .session import APP_NAME, ProjectSession, default_data_dir, looks_like_a_sequence_frame  # noqa: F401
from .side_panel import SideDataPanel
from .color_curves import ColourCurvesView, colour_side
from .stage_stack import StagePanel, StageStack
from .timeline import TimelinePanel
from .viewer import CompareView, accept_file_drag, dropped_paths
from .vocabulary import picture_depth, source_kind

log = logging.getLogger("filmrestore.app")
KEEP_ORIGINAL = "keep_original"  # a stage's list parameter of [frame, x, y, w, h] regions it must not touch
PREFETCH_FRAMES = 48  # while playing, render up to this many frames ahead of the playhead into the playback cache
PANEL_REFRESH_MS = 250  # the stage-data plots and stage timings redraw at most this often (4 Hz)


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


class MainWindow(WindowActions, ProjectSession, QMainWindow):
    """The restoration workstation: a view over one Project and its source; all processing is in the core."""

    def __init__(self, path: str | None = None, *, settings: QSettings | None = None, data_dir: Path | None = None,
                 confirm_on_close: bool = True, error_dialogs: bool = True, monitor_interval_ms: int = 1000,
                 frame_cache_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        super().__init__()
        self.error_dialogs = error_dialogs
        self.errors: list[str] = []  # every error reported to the user, in order (headless runs print them)
        self.preview_busy = False
        self.last_failure: tuple[int, str] | None = None  # (generation, message) of the last failed preview
        self.settings = settings or QSettings(APP_NAME, APP_NAME)
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.confirm_on_close = confirm_on_close
        self.project = new_project()
        self.project_path: Path | None = None
        self.source = None
        self.info = None
        self.compare: str | None = None
        self.last_result: PreviewResult | None = None
        self.frame_cache = FrameCache(frame_cache_bytes)  # rendered pictures for playback at the clip's rate
        self._requested: tuple[int, str, str | None] | None = None  # the last (frame, settings, compare) asked for
        self._panel_pending: PreviewResult | None = None
        self._panel_timer = QTimer(self)
        self._panel_timer.setSingleShot(True)
        self._panel_timer.timeout.connect(self._refresh_panels)
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
        self._show_project_settings()
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
        self.panel.param_refused.connect(lambda reason: self.statusBar().showMessage(reason, 10000))
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
        self.scopes = ScopePanel()
        self.scopes_dock = self._dock("Scopes", "scopesDock", self.scopes, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.side_dock, self.scopes_dock)
        self.colour_view = ColourCurvesView()
        self.colour_dock = self._dock("Colour curves", "colourDock", self.colour_view,
                                      Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.side_dock, self.colour_dock)
        self.monitor_dock.raise_()

        self.queue = RenderQueue(self._project_for_queue, state_file=self.data_dir / "render-queue.json")
        self.queue.error_reporter = lambda text: self.statusBar().showMessage(text, 15000)
        self.queue.settings = self.settings
        self.queue_dock = self._dock("Render queue", "queueDock", self.queue, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.stages_dock, self.source_dock], [440, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.source_dock, self.monitor_dock], [230, 600], Qt.Orientation.Vertical)
        self.resizeDocks([self.queue_dock], [140], Qt.Orientation.Vertical)

    # =========================================================================================================
    # opening and saving
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
        """'side', 'split', 'difference', or 'flip' (A/B: each call shows the other picture in the same place)."""
        if mode == "flip":
            side = self.viewer.flip()
            if self.last_result is not None:
                label = self.last_result.left_label if side == "left" else self.last_result.right_label
                self.statusBar().showMessage(f"A/B: showing {'A' if side == 'left' else 'B'} · {label}", 3000)
        else:
            self.viewer.set_mode(mode)
        {"side": self.act_side, "split": self.act_split, "flip": self.act_flip,
         "difference": self.act_difference}[mode].setChecked(True)

    # =========================================================================================================
    # preview
    def request_preview(self) -> int | None:
        """Show frame `timeline.index` at the current settings: from the playback cache when it was rendered
        already, else ask the preview worker (while playing, the worker renders ahead of the playhead instead)."""
        if self.source is None or self._closing:
            return None
        index, key = self.timeline.index, settings_key(self.project.stages)
        wanted = (index, key, self.compare)
        cached = self.frame_cache.get(wanted)
        if cached is not None:
            self._show_result(dataclasses.replace(cached, generation=self.engine.generation))
            self._update_stale()
            if self.timeline.speed:
                self._prefetch(key)
            return self.engine.generation
        if self.timeline.speed and self.engine.is_busy() and self._requested is not None \
                and self._requested[1:] == wanted[1:]:
            self._update_stale()  # the worker is rendering ahead at these settings; the picture lags meanwhile
            return None
        self._requested = wanted
        generation = self.engine.request(PreviewRequest(index, self.project.stages, self.compare))
        self._update_stale()
        return generation

    def _prefetch(self, key: str) -> None:
        """While playing: ask for the first frame at or ahead of the playhead that the cache does not hold."""
        if self.engine.is_busy() or self.source is None:
            return
        step = 1 if self.timeline.speed > 0 else -1
        for ahead in range(PREFETCH_FRAMES):
            index = self.timeline.index + ahead * step
            if not 0 <= index < self.timeline.count:
                return
            wanted = (index, key, self.compare)
            if wanted not in self.frame_cache:
                self._requested = wanted
                self.engine.request(PreviewRequest(index, self.project.stages, self.compare))
                return

    def _is_current(self, result: PreviewResult) -> bool:
        return (result.index == self.timeline.index and result.compare == self.compare
                and result.key == settings_key(self.project.stages))

    def _preview_ready(self, result: PreviewResult) -> None:
        if self._closing or self.source is None:
            return
        if result.key:
            self.frame_cache.put((result.index, result.key, result.compare), result, result.nbytes())
        shown = self.last_result
        # the playhead's frame at these settings always shows; another only replaces a picture that lags too
        if self._is_current(result) or shown is None or (result.generation >= shown.generation
                                                         and not self._is_current(shown)):
            self._show_result(result)
        self._update_stale()
        if self.timeline.speed:
            self._prefetch(settings_key(self.project.stages))

    def _update_stale(self) -> None:
        """The amber marker while the picture is not the playhead's frame at the current settings."""
        result = self.last_result
        text = ""
        if result is not None and self.source is not None:
            first = self.timeline.first_number
            if result.index != self.timeline.index:
                text = (f"STALE · showing frame {first + result.index} · playhead at "
                        f"{first + self.timeline.index}")
            elif result.compare != self.compare or result.key != settings_key(self.project.stages):
                text = "STALE · rendering the new settings…"
        self.viewer.set_stale(text)

    def _show_result(self, result: PreviewResult) -> None:
        """Put a finished preview on screen: pictures and scopes now, the plots and timings at most 4 times a second."""
        self.last_result = result
        self.viewer.set_pictures(result.left_display, result.right_display, (result.left_label, result.right_label),
                                 result.difference_display, result.difference_label)
        self.viewer.show_message(result.note, error=False)
        overlays = {}
        for overlay in result.side.overlays:
            colour = self._overlay_colours.setdefault(
                overlay.key, QColor(theme.OVERLAY_COLOURS[len(self._overlay_colours) % len(theme.OVERLAY_COLOURS)]))
            overlays[overlay.key] = (overlay.alpha, colour, overlay.label)
        self.viewer.set_overlays(overlays)
        for key in overlays:
            self.viewer.set_overlay_visible(key, key in self._overlay_on)
        menu = [(o.key, o.label) for o in result.side.overlays]
        if menu != getattr(self, "_overlay_menu_items", None):
            self._overlay_menu_items = menu
            self._rebuild_overlay_menu(menu)
        self.scopes.show_scopes(result.scopes, (result.left_label, result.right_label))
        self.colour_view.show_side(colour_side(result.side.raw))
        times = {t.stage: ("cached" if t.computed == 0 else duration(t.seconds)) for t in result.timings}
        for name in STAGE_ORDER:
            self.stack.set_note(name, times.get(name, "bypassed" if name in result.skipped else ""))
        self.stack.clear_progress()
        self._panel_pending = result
        if not self._panel_timer.isActive():
            self._panel_timer.start(0 if not self.timeline.speed else PANEL_REFRESH_MS)
        self._show_pixel(*self._last_hover) if hasattr(self, "_last_hover") else None

    def _refresh_panels(self) -> None:
        """Stage data and stage timings: redrawn for the newest picture, throttled (plots are the slow part)."""
        result, self._panel_pending = self._panel_pending, None
        if result is None or self._closing:
            return
        self.side_panel.show_data(result.side, result.index, self.info.first_frame_number if self.info else 0)
        self.monitor.show_timings(result.timings, result.read_seconds, result.seconds)
        self._panel_timer.start(PANEL_REFRESH_MS)  # the next one waits at least this long

    def _preview_failed(self, generation: int, message: str) -> None:
        self.last_failure = (generation, message)
        if generation == self.engine.generation and not self._closing:
            self.viewer.show_message(message, error=True)
            self.statusBar().showMessage(message, 10000)

    def _set_busy(self, busy: bool) -> None:
        self.preview_busy = busy
        if not busy:
            self.stack.clear_progress()
        self.busy_bar.setVisible(busy)
        self.busy_label.setText("rendering preview…" if busy else "")

    def _preview_progress(self, phase: str, done: int, total: int) -> None:
        if phase.startswith("analyze "):
            name = phase.split(" ", 1)[1]
            title = stage_class(name).title if name in STAGE_ORDER else name
            text = f"measuring the shot for {title}: {done}/{total}"
            self.stack.set_progress(name, done, total)
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
        fields["kind"].setText(source_kind(info))
        fields["kind"].setToolTip(f"{info.kind} · {info.container or '—'} · {info.codec} (as FFmpeg names them)")
        sar = "" if info.sample_aspect_ratio == 1 else f" · SAR {info.sample_aspect_ratio}"
        rotation = f" · rotated {info.rotation}° (reported, not applied)" if info.rotation else ""
        fields["geometry"].setText(f"{info.width} × {info.height}{sar}{rotation}")
        rate = info.frame_rate
        exact = f"{rate.numerator}/{rate.denominator}" if rate.denominator != 1 else f"{rate.numerator}"
        vfr = " · variable frame rate" if info.variable_frame_rate else ""
        first = f" · numbered from {info.first_frame_number}" if info.kind == "sequence" else ""
        fields["frames"].setText(f"{info.frame_count} at {float(rate):.3f} fps ({exact}){vfr}{first}")
        fields["depth"].setText(picture_depth(info))
        fields["depth"].setToolTip(f"pixel format {info.pixel_format}")
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
            action = self.overlay_menu.addAction(label.replace("&", "&&"))  # a lone & is a Qt accelerator
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
    def _project_for_queue(self) -> tuple[Project, tuple[int, int] | None, int, int]:
        """A frozen copy of the project for a render job, the in/out range, how many frames the source lacks and
        the source's first frame number."""
        project = copy.deepcopy(self.project)
        if project.name in ("", "untitled"):
            project.name = self._display_name()
        missing = len(self.info.missing_frames) if self.info is not None else 0
        return project, self.timeline.in_out(), missing, self.timeline.first_number

    def _add_job(self) -> None:
        if not self.project.source:
            self.report_error("Nothing to render", "Open a source first.")
            return
        self.queue_dock.show()
        self.queue_dock.raise_()
        self.queue.add_current()

    # =========================================================================================================
    # state, title, autosave, recent files
    def report_error(self, title: str, exc: BaseException | str) -> None:
        """The core's one-line message in a dialog (or on stderr when running headless)."""
        message = exc if isinstance(exc, str) else one_line(exc)
        self.errors.append(message)
        if self.error_dialogs:
            show_error(self, title, exc)
        else:
            print(f"filmrestore: error: {message}", file=sys.stderr)

    # =========================================================================================================
    # help
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
        # The running render first: whoever keeps it running should not have been asked about saving.
        if self.confirm_on_close and self.queue.is_running():
            answer = QMessageBox.question(self, "Render running", "A render is running. Cancel it and quit?",
                                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if self.confirm_on_close and self.is_dirty():
            answer = QMessageBox.question(
                self, "Unsaved changes", f"Save the changes to “{self._display_name()}” before closing?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Save)
            if answer == QMessageBox.StandardButton.Cancel or (answer == QMessageBox.StandardButton.Save
                                                               and not self.save_project()):
                event.ignore()
                return
        self.shutdown(keep_autosave=False)
        super().closeEvent(event)
