"""Render queue: each job renders in its own `filmrestore render` process, so a crash there cannot end the session.

Progress comes from the CLI's plain progress lines ("render: N/M frames, F fps, ETA mm:ss", one per finished
chunk); cancel interrupts the process, and the core guarantees nothing is left at the final output name. The queue
is kept in a file, so a job that a crash, a quit or a cancel interrupted is still there after a restart: starting it
again runs the same command, which resumes from the chunks in its work folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QProcess, QProcessEnvironment, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import restoration
from restoration.bundle import cli_command
from restoration.export import FORMATS
from restoration.export.settings import EXPORT_PARAMS
from restoration.project import Project
from restoration.render import work_folder_for

from .param_form import ParamForm

log = logging.getLogger("filmrestore.app.queue")
PROGRESS_LINE = re.compile(r"^(?P<phase>[^:]+): (?P<done>\d+)/(?P<total>\d+) frames,\s+(?P<fps>[\d.]+|--) fps, "
                           r"ETA (?P<eta>\S+)")
ERROR_PREFIX = "filmrestore: error: "
CANCEL_GRACE_MS = 5000
PROGRESS_EVERY_S = 0.5  # the queue's progress bar moves at least twice a second
PHASE_NAMES = {"render": "rendering", "cuts": "finding cuts", "write": "writing the master"}
RESUMABLE = ("queued", "interrupted")


@dataclass
class RenderJob:
    """One queued render: a frozen copy of the project, where it goes and how far it got."""

    project: dict[str, Any]
    output: Path
    format: str
    overwrite: bool = False
    allow_gaps: bool = False
    state: str = "queued"  # queued, running, done, failed, cancelled, interrupted (resumable)
    phase: str = ""
    done: int = 0
    total: int = 0
    fps: float = 0.0
    eta: str = ""
    message: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.project.get("name") or "untitled")

    def folder(self) -> Path:
        """The folder to open: a sequence's own folder, else the file's."""
        return self.output if FORMATS[self.format].sequence else self.output.parent

    def has_work(self) -> bool:
        """Chunks of an earlier, interrupted render of this job are waiting in its work folder."""
        return work_folder_for(self.output).is_dir()

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "output": str(self.output), "format": self.format,
                "overwrite": self.overwrite, "allow_gaps": self.allow_gaps, "state": self.state,
                "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RenderJob":
        job = cls(dict(data["project"]), Path(data["output"]), str(data["format"]), bool(data.get("overwrite")),
                  bool(data.get("allow_gaps")), str(data.get("state", "queued")), message=str(data.get("message", "")))
        if job.state == "running" or (job.state in ("cancelled", "failed") and job.has_work()):
            job.state, job.message = "interrupted", "interrupted: start the queue to resume from the kept chunks"
        return job


def parse_progress(job: RenderJob, line: str) -> bool:
    """Update `job` from one stderr line of the CLI; True when the line was understood."""
    line = line.strip()
    match = PROGRESS_LINE.match(line)
    if match:
        phase = match["phase"]
        job.phase = PHASE_NAMES.get(phase, phase.replace("analyze ", "analysing "))
        job.done, job.total = int(match["done"]), int(match["total"])
        job.fps = 0.0 if match["fps"] == "--" else float(match["fps"])
        job.eta = match["eta"]
        return True
    if line.startswith(ERROR_PREFIX):
        job.message = line[len(ERROR_PREFIX):]
        return True
    return False


def render_command(job: RenderJob, project_file: Path) -> list[str]:
    """The CLI call that renders `job` (the same interface scripts use)."""
    command = [*cli_command(), "render", "--project", str(project_file),
               "-o", str(job.output), "--format", job.format, "--progress-every", str(PROGRESS_EVERY_S)]
    if job.overwrite:
        command.append("--overwrite")
    if job.allow_gaps:
        command.append("--allow-gaps")
    return command


RENDER_DIR_KEY = "paths/render_dir"
H264_ONLY = ("crf", "preset")  # export options that only the H.264 access copy reads
SEQUENCE_SKIPS = ("audio",)  # an image sequence carries no sound


def suggested_output(project: Project, fmt: str, folder: Path | None = None) -> Path:
    """<chosen folder>/<project name>_<format><ext> (a folder for sequences); never inside the source's folder.

    The source's folder is the archive's: without a chosen folder, or with one inside it, the home folder."""
    spec = FORMATS[fmt]
    source = Path(project.source) if project.source else Path.home() / "untitled"
    base = folder if folder is not None and not _inside(folder, source.parent) else Path.home()
    stem = (project.name if project.name and project.name != "untitled" else source.stem) or "restored"
    return base / (f"{stem}_{fmt}" if spec.sequence else f"{stem}_{fmt}{spec.extension}")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path == folder or folder in path.parents


def export_options_for(fmt: str) -> tuple[str, ...]:
    """The export options that apply to a master format."""
    skip = ("format", "overwrite") + (() if fmt == "h264" else H264_ONLY) + (SEQUENCE_SKIPS if FORMATS[fmt].sequence else ())
    return tuple(p.name for p in EXPORT_PARAMS if p.name not in skip)


class AddRenderDialog(QDialog):
    """Choose the master format, output, range and export options for a new job."""

    def __init__(self, project: Project, in_out: tuple[int, int] | None, folder: Path | None,
                 parent: QWidget | None = None, missing_frames: int = 0, first_number: int = 0) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add to render queue")
        self.project = project
        self.folder = folder
        self.format_box = QComboBox()
        for name, spec in FORMATS.items():
            self.format_box.addItem(spec.label, name)
            self.format_box.setItemData(self.format_box.count() - 1, spec.pix_fmt_rule, 3)  # tooltip role
        current = project.export.get("format", "ffv1")
        self.format_box.setCurrentIndex(max(0, list(FORMATS).index(current) if current in FORMATS else 0))
        self.output = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.output, 1)
        row.addWidget(browse)
        self.whole = QRadioButton("Whole clip")
        self.ranged = QRadioButton(f"In–out: frames {first_number + in_out[0]}–{first_number + in_out[1] - 1} "
                                   f"({in_out[1] - in_out[0]} frames)"
                                   if in_out else "In–out (none set)")
        self.ranged.setEnabled(in_out is not None)
        group = QButtonGroup(self)
        group.addButton(self.whole)
        group.addButton(self.ranged)
        (self.ranged if in_out else self.whole).setChecked(True)
        self.in_out = in_out
        self.overwrite = QCheckBox("Replace an existing output (never the source)")
        self.allow_gaps = QCheckBox(f"Render although {missing_frames} frame number{'s are' if missing_frames != 1 else ' is'}"
                                    " missing from the sequence" if missing_frames else "Render across missing frames")
        self.allow_gaps.setVisible(missing_frames > 0)
        self.options = ParamForm(EXPORT_PARAMS, project.export, skip=("format", "overwrite"))
        options_box = QGroupBox("Export options")
        QVBoxLayout(options_box).addWidget(self.options)
        form = QFormLayout()
        form.addRow("Master format", self.format_box)
        form.addRow("Output", row)
        form.addRow("Range", self.whole)
        form.addRow("", self.ranged)
        form.addRow("", self.overwrite)
        form.addRow("", self.allow_gaps)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add to queue")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(options_box)
        layout.addWidget(buttons)
        self.format_box.currentIndexChanged.connect(self._suggest)
        self._suggest()
        self.resize(640, self.sizeHint().height())

    def format(self) -> str:
        return self.format_box.currentData()

    def _suggest(self) -> None:
        self.output.setText(str(suggested_output(self.project, self.format(), self.folder)))
        self.options.show_only(export_options_for(self.format()))

    def _browse(self) -> None:
        spec = FORMATS[self.format()]
        if spec.sequence:
            path, _ = QFileDialog.getSaveFileName(self, "Folder for the image sequence (created)", self.output.text())
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Master file", self.output.text(),
                                                  f"{spec.label} (*{spec.extension})")
        if path:
            self.output.setText(path)

    def job(self) -> RenderJob:
        project = self.project.to_dict()
        options = {k: v for k, v in self.options.values.items() if k in export_options_for(self.format())}
        project["export"] = {**project["export"], **options, "format": self.format()}
        project["range"] = list(self.in_out) if (self.ranged.isChecked() and self.in_out) else None
        return RenderJob(project, Path(self.output.text()).expanduser(), self.format(), self.overwrite.isChecked(),
                         self.allow_gaps.isChecked())


class RenderQueue(QWidget):
    """A table of jobs run one after another in child processes, with progress, cancel and open-folder."""

    job_finished = Signal(object)  # RenderJob
    COLUMNS = ("Project", "Format", "Output", "Status", "Progress", "Speed")

    def __init__(self, current_project: Callable[[], tuple[Project, tuple[int, int] | None, int]] | None = None,
                 parent: QWidget | None = None, state_file: Path | None = None) -> None:
        super().__init__(parent)
        self.current_project = current_project
        self.state_file = state_file
        self.jobs: list[RenderJob] = []
        self.process: QProcess | None = None
        self.running: RenderJob | None = None
        self.autorun = False
        self._workdir = Path(tempfile.mkdtemp(prefix="filmrestore-queue-"))
        self._partial = ""
        self.last_folder: Path | None = None
        self.settings = None  # the window's QSettings: where the output folder chosen once is remembered
        self.error_reporter: Callable[[str], None] | None = None

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for column in (0, 1, 3, 5):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(4, 180)
        self.buttons: dict[str, QPushButton] = {}
        bar = QHBoxLayout()
        for name, text, slot in (("add", "Add current project…", self.add_current),
                                 ("start", "Start", self.start), ("cancel", "Cancel", self.cancel),
                                 ("remove", "Remove", self.remove_selected),
                                 ("open", "Open output folder", self.open_folder)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            bar.addWidget(button)
            self.buttons[name] = button
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        for job in self._load():
            self.add_job(job)
        self._update_buttons()

    # --- the queue file -------------------------------------------------------------------------------------------
    def _load(self) -> list[RenderJob]:
        if self.state_file is None or not self.state_file.is_file():
            return []
        try:
            return [RenderJob.from_dict(item) for item in json.loads(self.state_file.read_text(encoding="utf-8"))]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("render queue file %s not read: %s", self.state_file, exc)
            return []

    def _save(self) -> None:
        if self.state_file is None:
            return
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temp = self.state_file.with_name(f".{self.state_file.name}.tmp")
            temp.write_text(json.dumps([job.to_dict() for job in self.jobs], indent=1), encoding="utf-8")
            os.replace(temp, self.state_file)
        except OSError as exc:
            log.warning("render queue not saved to %s: %s", self.state_file, exc)

    # --- jobs -----------------------------------------------------------------------------------------------------
    def add_current(self) -> RenderJob | None:
        if self.current_project is None:
            return None
        project, in_out, missing, *first = self.current_project()
        remembered = self.settings.value(RENDER_DIR_KEY) if self.settings is not None else None
        folder = self.last_folder or (Path(str(remembered)) if remembered else None)
        dialog = AddRenderDialog(project, in_out, folder, self, missing_frames=missing,
                                 first_number=first[0] if first else 0)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        job = dialog.job()
        self.last_folder = job.output.parent
        if self.settings is not None:
            self.settings.setValue(RENDER_DIR_KEY, str(self.last_folder))
        return self.add_job(job)

    def add_job(self, job: RenderJob) -> RenderJob:
        self.jobs.append(job)
        self._save()
        row = self.table.rowCount()
        self.table.insertRow(row)
        bar = QProgressBar()
        bar.setRange(0, 100)
        bar.setValue(0)
        self.table.setCellWidget(row, 4, bar)
        self._show(job)
        self.table.selectRow(row)
        return job

    def start(self) -> None:
        """Run queued jobs one after another."""
        self.autorun = True
        self._next()

    def cancel(self) -> None:
        """Stop the running render and the queue: interrupt (the core then removes its temporary output), kill
        if it does not end within a few seconds. Nothing is ever left at the output name."""
        self.autorun = False
        if self.process is None or self.running is None:
            return
        self.running.state = "cancelled"
        process = self.process
        pid = process.processId()
        if os.name == "posix" and pid:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                process.kill()
                return
            QTimer.singleShot(CANCEL_GRACE_MS, lambda: process.kill() if process.state() != QProcess.ProcessState.NotRunning else None)
        else:
            process.kill()

    def remove_selected(self) -> None:
        job = self.selected_job()
        if job is None or job is self.running:
            return
        row = self.jobs.index(job)
        self.jobs.pop(row)
        self.table.removeRow(row)
        self._save()
        self._update_buttons()

    def open_folder(self) -> None:
        job = self.selected_job()
        if job is not None and job.folder().exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(job.folder())))

    def selected_job(self) -> RenderJob | None:
        rows = self.table.selectionModel().selectedRows()
        return self.jobs[rows[0].row()] if rows and rows[0].row() < len(self.jobs) else None

    def is_running(self) -> bool:
        return self.running is not None

    def shutdown(self) -> None:
        self.cancel()
        if self.process is not None:
            self.process.waitForFinished(5000)
        shutil.rmtree(self._workdir, ignore_errors=True)

    # --- process --------------------------------------------------------------------------------------------------
    def _next(self) -> None:
        if self.running is not None or not self.autorun:
            return
        job = next((j for j in self.jobs if j.state in RESUMABLE), None)
        if job is None:
            self.autorun = False
            self._update_buttons()
            return
        project_file = self._workdir / f"job-{self.jobs.index(job)}.json"
        project_file.write_text(json.dumps(job.project, indent=2), encoding="utf-8")
        command = render_command(job, project_file)
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        root = str(Path(restoration.__file__).resolve().parent.parent)
        environment.insert("PYTHONPATH", os.pathsep.join(p for p in (root, environment.value("PYTHONPATH")) if p))
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        process.readyReadStandardError.connect(self._read_progress)
        process.readyReadStandardOutput.connect(lambda: job.log.append(bytes(process.readAllStandardOutput()).decode(errors="replace")))
        process.finished.connect(lambda code, status: self._finished(job, code, status))
        process.errorOccurred.connect(lambda error: self._failed_to_start(job, error))
        self.process, self.running = process, job
        job.state, job.phase = "running", "resuming" if job.has_work() else "starting"
        job.message = ""
        self._save()
        self._partial = ""
        self._show(job)
        process.start(command[0], command[1:])
        self._update_buttons()

    def _read_progress(self) -> None:
        if self.process is None or self.running is None:
            return
        text = self._partial + bytes(self.process.readAllStandardError()).decode(errors="replace")
        lines = text.replace("\r", "\n").split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self.running.log.append(line)
                parse_progress(self.running, line)
        self._show(self.running)

    def _failed_to_start(self, job: RenderJob, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            job.state, job.message = "failed", f"could not start the render process ({sys.executable})"
            self._finished(job, -1, None)

    def _finished(self, job: RenderJob, code: int, status) -> None:
        if self.running is not job:
            return
        self._read_progress()
        if job.state == "cancelled":
            job.message = "cancelled: nothing was written at the output name" + (
                "; its chunks are kept for a resume" if job.has_work() else "")
            if job.has_work():
                job.state = "interrupted"
        elif code == 0:
            job.state = "done"
            job.done = job.total = max(job.total, job.done)
        else:
            job.state = "failed"
            if not job.message:
                tail = [line for line in job.log if line.strip()][-1:] or [f"render process exited with code {code}"]
                job.message = tail[0].strip()
        self.running, self.process = None, None
        self._save()
        self._show(job)
        self._update_buttons()
        self.job_finished.emit(job)
        if job.state == "failed" and self.error_reporter is not None:
            self.error_reporter(f"Render of {job.name} failed: {job.message}")
        self._next()

    # --- display --------------------------------------------------------------------------------------------------
    def _show(self, job: RenderJob) -> None:
        row = self.jobs.index(job)
        status = {"queued": "queued", "running": job.phase or "running", "done": "done",
                  "failed": "failed", "cancelled": "cancelled", "interrupted": "interrupted"}[job.state]
        cells = (job.name, job.format, str(job.output), status, "",
                 (f"{job.fps:.1f} fps · ETA {job.eta}" if job.fps else "measuring…") if job.state == "running" and job.total
                 else "")
        for column, text in enumerate(cells):
            if column == 4:
                continue
            item = QTableWidgetItem(text)
            if job.message:
                item.setToolTip(job.message)
            self.table.setItem(row, column, item)
        bar = self.table.cellWidget(row, 4)
        if isinstance(bar, QProgressBar):
            percent = int(100 * job.done / job.total) if job.total else (100 if job.state == "done" else 0)
            bar.setValue(percent)
            bar.setFormat(f"{job.done}/{job.total}" if job.total else ("%p%" if job.state == "done" else ""))
        if job.message:
            self.table.item(row, 3).setText(f"{status}: {job.message}")

    def _update_buttons(self) -> None:
        job = self.selected_job()
        self.buttons["start"].setEnabled(self.running is None and any(j.state in RESUMABLE for j in self.jobs))
        self.buttons["cancel"].setEnabled(self.running is not None)
        self.buttons["remove"].setEnabled(job is not None and job is not self.running)
        self.buttons["open"].setEnabled(job is not None)
        self.buttons["add"].setEnabled(self.current_project is not None)
