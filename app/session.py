"""The main window's session: the source and project it holds, opening and saving, title, autosave and recent files."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import platformdirs

from PySide6.QtWidgets import QFileDialog, QMessageBox

from restoration.errors import ParamError, RestorationError
from restoration.export.paths import Sources, guard_source
from restoration.io import open_source
from restoration.project import Project, load_preset, load_project, parse_frame_rate
from .autosave import Recovery

APP_NAME = "FilmRestore"
MAX_RECENT = 10
AUTOSAVE_DELAY_MS = 1500
PROJECT_SUFFIXES = (".json", ".filmrestore")
SEQUENCE_SUFFIXES = (".dpx", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".exr")


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


class ProjectSession:
    """Opening sources and projects, saving, presets, the unsaved-changes state and recovery of MainWindow."""

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
                if self.project_path is not None:  # a saved project now names another source; a new one is no work yet
                    self._mark_dirty()
        info = source.info
        self.timeline.set_clip(len(source), info.frame_rate, info.first_frame_number, info.timecode)
        self.timeline.set_in_out(self._valid_range(self.project.range))
        self._show_source_info()
        self.viewer.clear("Rendering the first preview…")
        self.last_result = None
        self.frame_cache.clear()  # its keys are frame and settings: another source (or rate) has other pictures
        self.viewer.set_stale("")
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
        self.frame_cache.clear()
        self.viewer.set_stale("")
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
