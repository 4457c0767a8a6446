"""The desktop application, offscreen: open, scrub, tune, compare, save/reload, render from the queue, errors."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage, QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QAbstractSlider, QApplication, QMessageBox  # noqa: E402

from app.main_window import MainWindow, code_values  # noqa: E402
from app.preview import PreviewEngine, PreviewRequest  # noqa: E402
from app.render_queue import RenderJob, parse_progress, render_command  # noqa: E402
from app.side_data import describe_side_data  # noqa: E402
from app.timecode import format_timecode, parse_timecode, timecode_at  # noqa: E402
from restoration import stages as stage_module  # noqa: E402
from restoration.io import open_source  # noqa: E402
from restoration.params import Param, declare  # noqa: E402
from restoration.pipeline import ArraySource, StageSetting  # noqa: E402
from restoration.progress import ProgressPrinter  # noqa: E402
from restoration.project import load_project  # noqa: E402
from restoration.stage import FrameWindow, PlaceholderStage, Stage, StageOutput  # noqa: E402
from media import make_sequence  # noqa: E402

WAIT_MS = 30000


# --- test stages (registered in the real stage slots for the duration of a test) -----------------------------------
class CountingPass(Stage):
    """Identity stage that records every frame it processes (shows what the per-stage cache saves)."""

    name = "dust"
    title = "Counting pass"
    summary = "Test stage: passes frames through and counts them."
    params = declare(Param("note", "str", "", "Unused text."),
                     Param("keep_original", "list", [], "Regions left untouched: [[frame, x, y, w, h], ...]."))
    processed: list[int] = []

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        CountingPass.processed.append(window.index)
        return StageOutput(window.current.copy())


class Gain(Stage):
    """Test stage with a parameter of every kind, a temporal radius and side data of every shape."""

    name = "denoise"
    title = "Test gain"
    summary = "Test stage: multiplies the picture."
    params = declare(
        Param("gain", "float", 1.0, "Multiplier.", minimum=0.0, maximum=2.0, step=0.05),
        Param("radius", "int", 0, "Frames averaged on each side.", minimum=0, maximum=2, unit="frames"),
        Param("invert", "bool", False, "Invert the picture."),
        Param("channel", "choice", "all", "Channels affected.", choices=("all", "red")),
        Param("label", "str", "", "A note."),
        Param("regions", "list", [], "Rectangles [x, y, w, h]."),
        Param("delay", "float", 0.0, "Seconds to sleep per frame.", minimum=0.0, maximum=1.0, unit="s"),
        Param("analyse", "bool", False, "Measure the shot's mean level first."),
    )

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return params["radius"]

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return params["analyse"]

    def analyze(self, frames, shot, params):
        return float(np.mean([frame.mean() for _, frame in frames]))

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        time.sleep(params["delay"])
        frame = np.mean(window.frames, axis=0).astype(np.float32)
        gained = frame * np.float32(params["gain"])
        if params["channel"] == "red":
            gained[..., 1:] = frame[..., 1:]
        if params["invert"]:
            gained = 1.0 - gained
        out = np.clip(gained, 0.0, 1.0).astype(np.float32)
        side = {"bright": out[..., 0] > 0.5, "levels": {"red": out[..., 0].mean(axis=0).tolist(),
                                                       "green": out[..., 1].mean(axis=0).tolist()},
                "gain": params["gain"]}
        return StageOutput(out, side)


class UnfinishedColour(PlaceholderStage):
    name = "color"
    title = "Unfinished colour"
    params = declare(Param("strength", "float", 1.0, "Unused.", minimum=0.0, maximum=1.0))


@pytest.fixture
def test_stages(monkeypatch):
    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "dust", CountingPass)
    monkeypatch.setitem(stage_module._REGISTRY, "denoise", Gain)
    monkeypatch.setitem(stage_module._REGISTRY, "color", UnfinishedColour)
    CountingPass.processed = []


@pytest.fixture
def clip(tmp_path) -> Path:
    """An 8-frame 16-bit PNG sequence numbered from 100."""
    folder = tmp_path / "clip"
    make_sequence(folder, 8, width=64, height=48, bits=16, start_number=100)
    return folder


@pytest.fixture
def make_window(qtbot, tmp_path):
    def make(default_stages: bool = False) -> MainWindow:
        """A window whose new project has every stage off (these tests enable what they test), or the defaults."""
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, data_dir=tmp_path / "data", confirm_on_close=False,
                            monitor_interval_ms=250)
        qtbot.addWidget(window)
        if not default_stages:
            window.project.stages = {name: StageSetting(False) for name in window.project.stages}
            window._show_project_settings()
        window.resize(1280, 800)
        window.show()
        return window

    return make


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def wait_for_frame(qtbot, window: MainWindow, index: int, after_generation: int = 0) -> None:
    qtbot.waitUntil(lambda: window.last_result is not None and window.last_result.index == index
                    and window.last_result.generation >= after_generation and not window.preview_busy,
                    timeout=WAIT_MS)


def opened(qtbot, window: MainWindow, clip: Path) -> MainWindow:
    assert window.open_source(str(clip))
    wait_for_frame(qtbot, window, 0)
    return window


# --- opening, scrubbing ----------------------------------------------------------------------------------------------
def test_open_clip_shows_preview_info_and_title(qtbot, window, clip):
    opened(qtbot, window, clip)
    result = window.last_result
    assert window.viewer.has_pictures() and window.viewer.picture_size() == (64, 48)
    source = open_source(str(clip))
    assert np.array_equal(result.left, source.frame(0)) and np.array_equal(result.right, source.frame(0))
    assert window.timeline.count == 8 and "frame 100" in window.timeline.frame_info.text()
    assert window.timeline.timecode.text() == "00:00:04:04"  # frame 100 at 24 fps, as the scan numbers it
    assert window.source_fields["depth"].text().startswith("16-bit")
    assert window.windowTitle().startswith("clip")
    assert not window.isWindowModified()  # opening a source alone is no work to lose
    qtbot.waitUntil(lambda: window.cuts_done, timeout=WAIT_MS)
    assert len(window.timeline.shots) == 1
    assert window.settings.value("recent") in ([str(clip)], str(clip))


def test_a_new_project_starts_with_the_cleaning_stages_on(make_window):
    from restoration.project import DEFAULT_STAGES

    window = make_window(default_stages=True)
    on = [name for name, setting in window.project.stages.items() if setting.enabled]
    assert on == list(DEFAULT_STAGES) == ["dust", "stabilize", "deflicker", "denoise", "color"]
    assert [name for name, row in window.stack.rows.items() if row.check.isChecked()] == on


def test_a_numbered_frame_is_recognised_as_part_of_a_sequence(clip, tmp_path):
    from app.main_window import looks_like_a_sequence_frame

    frames = sorted(clip.iterdir())
    assert looks_like_a_sequence_frame(str(frames[0]))
    still = tmp_path / "still" / "poster.png"
    still.parent.mkdir()
    still.write_bytes(frames[0].read_bytes())
    assert not looks_like_a_sequence_frame(str(still))


def test_drop_a_project_file_on_the_window(qtbot, window, clip, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    opened(qtbot, window, clip)
    window.set_param("deflicker", "window", 11)
    path = tmp_path / "dropped.json"
    assert window._save_to(path)
    window.set_param("deflicker", "window", 5)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)  # what Qt calls once a drag is released over the window
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: window.project.stages["deflicker"].params["window"] == 11, timeout=WAIT_MS)
    assert window.project_path == path.resolve() and not window.isWindowModified()


def test_scrub_with_timeline_and_keys(qtbot, window, clip):
    opened(qtbot, window, clip)
    window.timeline.set_index(5)
    wait_for_frame(qtbot, window, 5)
    assert np.array_equal(window.last_result.right, open_source(str(clip)).frame(5))
    assert window.timeline.timecode.text() == "00:00:04:09" and "frame 105" in window.timeline.frame_info.text()
    with qtbot.waitActive(window, timeout=5000):  # shortcuts reach the active window only (real X servers)
        window.activateWindow()
    window.viewer.setFocus()
    for key, expected in ((Qt.Key.Key_Right, 6), (Qt.Key.Key_Left, 5), (Qt.Key.Key_End, 7), (Qt.Key.Key_Home, 0)):
        qtbot.keyClick(window.viewer, key)
        assert window.timeline.index == expected
    wait_for_frame(qtbot, window, 0)
    qtbot.keyClick(window.viewer, Qt.Key.Key_L)  # play
    qtbot.waitUntil(lambda: window.timeline.index >= 3, timeout=WAIT_MS)
    qtbot.keyClick(window.viewer, Qt.Key.Key_K)  # stop
    stopped = window.timeline.index
    qtbot.wait(150)
    assert window.timeline.index == stopped and window.timeline.speed == 0
    scrubber = window.timeline.scrubber
    qtbot.mouseClick(scrubber, Qt.MouseButton.LeftButton, pos=QPointF(scrubber.x_of(2), 20).toPoint())
    assert window.timeline.index == 2
    qtbot.keyClick(window.viewer, Qt.Key.Key_I)
    window.timeline.set_index(4)
    qtbot.keyClick(window.viewer, Qt.Key.Key_O)
    assert window.project.range == (2, 5)


# --- stage stack and generated parameter panels -------------------------------------------------------------------
def test_parameter_panel_is_generated_and_changes_rerender(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    stack = window.stack
    assert not stack.rows["color"].check.isEnabled() and "not implemented" in stack.rows["color"].note.text()
    stack.rows["denoise"].check.setChecked(True)
    assert window.project.stages["denoise"].enabled
    stack.select("denoise")
    form = window.panel.form
    assert set(form.rows) == set(Gain.params.names())
    row = form.rows["gain"]
    assert row.slider is not None and "Multiplier." in row.spin.toolTip() and row.spin.maximum() == 2.0
    assert form.rows["radius"].spin.suffix() == " frames"
    before = window.engine.generation
    row.spin.setValue(0.5)
    assert window.project.stages["denoise"].params["gain"] == 0.5 and window.isWindowModified()
    wait_for_frame(qtbot, window, 0, after_generation=before + 1)
    source = open_source(str(clip)).frame(0)
    assert np.allclose(window.last_result.right, source * 0.5, atol=1e-6)
    assert np.array_equal(window.last_result.left, source)
    assert [t.stage for t in window.last_result.timings] == ["denoise"]
    assert window.stack.rows["denoise"].note.text().endswith(("ms", " s"))
    # the slider drives the same value; reset-to-default per parameter and per stage
    row.slider.setValue(row.scale.to_ticks(1.5))
    assert window.project.stages["denoise"].params["gain"] == 1.5 and row.spin.value() == 1.5
    row.reset.click()
    assert window.project.stages["denoise"].params["gain"] == 1.0
    form.rows["invert"].check.setChecked(True)
    form.rows["channel"].combo.setCurrentText("red")
    window.panel.reset_button.click()
    assert Gain.params.resolve(window.project.stages["denoise"].params) == Gain.params.defaults()
    assert not form.rows["invert"].check.isChecked() and not form.rows["gain"].reset.isEnabled()


def test_toggle_stage_and_compare_before_after_a_stage(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    window.project.stages["denoise"].params["gain"] = 0.25
    window.stack.rows["denoise"].check.setChecked(True)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    source = open_source(str(clip)).frame(0)
    assert np.allclose(window.last_result.right, source * 0.25, atol=1e-6)
    assert window.last_result.side.overlays and window.last_result.side.plots
    window.set_overlay("denoise/bright", True)
    assert window.viewer.visible_overlays() == ["denoise/bright"]
    window.stack.rows["dust"].check.setChecked(True)
    window.set_compare("denoise")
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    result = window.last_result
    assert result.left_label == "before Test gain" and np.array_equal(result.left, source)
    window.stack.rows["denoise"].check.setChecked(False)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    assert np.array_equal(window.last_result.right, source)
    assert "not running" in window.viewer.banner.text()


def test_unchanged_stages_keep_their_cache_when_a_later_stage_is_tuned(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    window.stack.rows["dust"].check.setChecked(True)
    window.stack.rows["denoise"].check.setChecked(True)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    counted = len(CountingPass.processed)
    assert counted >= 1
    window.set_param("denoise", "gain", 0.3)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    assert np.allclose(window.last_result.right, open_source(str(clip)).frame(0) * 0.3, atol=1e-6)
    assert len(CountingPass.processed) == counted  # the counting stage's output came from its cache


def test_long_passes_survive_edits_to_later_stages():
    from app.preview import upstream_key

    base = {"dust": StageSetting(True, {}), "stabilize": StageSetting(True, {}), "deflicker": StageSetting(False)}
    later = dict(base, deflicker=StageSetting(True, {"window": 3}))
    earlier = dict(base, dust=StageSetting(True, {"sensitivity": 0.9}))
    assert upstream_key(later, "stabilize") == upstream_key(base, "stabilize")
    assert upstream_key(earlier, "stabilize") != upstream_key(base, "stabilize")
    assert upstream_key(later, "deflicker") != upstream_key(base, "deflicker")


def test_stage_timing_reports_the_shot_analysis(qtbot, test_stages):
    frames = [np.full((24, 32, 3), i / 10, np.float32) for i in range(6)]
    engine = PreviewEngine()
    engine.set_source(ArraySource(frames))
    shown = []
    engine.finished.connect(shown.append)
    engine.request(PreviewRequest(2, {"dust": StageSetting(True), "denoise": StageSetting(True, {"analyse": True})}))
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    dust, gain = shown[0].timings
    assert (dust.stage, dust.computed, dust.analysis_frames) == ("dust", 1, 0)
    assert (gain.stage, gain.analysis_frames) == ("denoise", 6) and 0 < gain.analysis_seconds <= gain.seconds
    engine.shutdown()


def test_stale_preview_requests_are_dropped(qtbot, test_stages):
    frames = [np.full((24, 32, 3), i / 10, np.float32) for i in range(6)]
    engine = PreviewEngine()
    engine.set_source(ArraySource(frames))
    shown = []
    engine.finished.connect(shown.append)
    settings = {"denoise": StageSetting(True, {"delay": 0.05})}
    for index in range(6):
        engine.request(PreviewRequest(index, settings))
    qtbot.waitUntil(lambda: bool(shown) and shown[-1].generation == engine.generation, timeout=WAIT_MS)
    assert engine.wait(WAIT_MS)
    assert shown[-1].index == 5 and np.allclose(shown[-1].right, frames[5])
    assert len(shown) < 6
    engine.shutdown()


# --- viewer --------------------------------------------------------------------------------------------------------
def _drag(widget, start: QPointF, end: QPointF) -> None:
    for kind, pos, buttons in ((QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton),
                               (QEvent.Type.MouseMove, end, Qt.MouseButton.LeftButton),
                               (QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)):
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)


def test_split_divider_drags_and_zoom_is_shared(qtbot, window, clip):
    opened(qtbot, window, clip)
    viewer = window.viewer
    window.set_view("split")
    assert viewer.divider == 0.5
    middle = QPointF(viewer.divider_x(), viewer.height() / 2)
    _drag(viewer, middle, QPointF(viewer.width() * 0.25, viewer.height() / 2))
    assert viewer.divider == pytest.approx(0.25, abs=0.01)
    window.set_view("side")
    window.act_200.trigger()
    assert viewer.scale() == 2.0 and "200 %" in window.zoom_label.text()
    left, right = viewer._panes()
    assert viewer.picture_point(left.center()) == viewer.picture_point(right.center())
    _drag(viewer, left.center(), left.center() + QPointF(10, 0))  # pan in one pane moves both
    assert viewer.picture_point(left.center()) == viewer.picture_point(right.center())
    assert viewer.picture_point(left.center()).x() == pytest.approx(32 - 5)
    window.act_fit.trigger()
    assert viewer.is_fit()


def test_shift_drag_keeps_a_region_original(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    window.stack.rows["dust"].check.setChecked(True)
    window.timeline.set_index(3)
    wait_for_frame(qtbot, window, 3, after_generation=window.engine.generation)
    viewer = window.viewer
    rect = viewer._picture_rect(viewer._panes()[0])
    s = viewer.scale()

    def at(x: float, y: float) -> QPointF:
        return QPointF(rect.left() + x * s, rect.top() + y * s)

    for kind, pos, buttons in ((QEvent.Type.MouseButtonPress, at(10.5, 5.5), Qt.MouseButton.LeftButton),
                               (QEvent.Type.MouseMove, at(20.5, 12.5), Qt.MouseButton.LeftButton),
                               (QEvent.Type.MouseButtonRelease, at(20.5, 12.5), Qt.MouseButton.NoButton)):
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        QApplication.sendEvent(viewer, QMouseEvent(kind, pos, viewer.mapToGlobal(pos), button, buttons,
                                                   Qt.KeyboardModifier.ShiftModifier))
    assert window.project.stages["dust"].params["keep_original"] == [[3, 10, 5, 11, 8]]
    assert viewer.divider == 0.5  # Shift+drag drew a region; it did not move the wipe


def test_pixel_readout_shows_source_code_values(qtbot, window, clip):
    opened(qtbot, window, clip)
    viewer = window.viewer
    pane = viewer._panes()[0]
    rect = viewer._picture_rect(pane)
    x, y = 10, 20
    pos = QPointF(rect.left() + (x + 0.5) * viewer.scale(), rect.top() + (y + 0.5) * viewer.scale())
    qtbot.mouseMove(viewer, pos.toPoint())
    expected = code_values(open_source(str(clip)).frame(0)[y, x], 16)
    assert f"x   {x} y   {y}" in window.pixel_label.text()
    assert expected in window.pixel_label.text() and "16-bit code values" in window.pixel_label.text()
    assert code_values(np.array([0.0, 1.0, 0.5]), 10) == "   0 1023  512"


# --- projects ------------------------------------------------------------------------------------------------------
def test_project_save_and_reload_round_trips_every_parameter(qtbot, test_stages, make_window, clip, tmp_path):
    window = opened(qtbot, make_window(), clip)
    window.stack.rows["denoise"].check.setChecked(True)
    window.stack.select("denoise")
    rows = window.panel.form.rows
    rows["gain"].spin.setValue(1.35)
    rows["radius"].slider.setValue(2)
    rows["invert"].check.setChecked(True)
    rows["channel"].combo.setCurrentText("red")
    rows["label"].line.setText("reel 3")
    rows["label"].line.editingFinished.emit()
    rows["regions"].line.setText("[[1, 2, 3, 4]]")
    rows["regions"].line.editingFinished.emit()
    window.set_param("color", "strength", 0.4)  # a placeholder stage's settings are kept too
    window.timeline.set_index(1)
    window.timeline.mark_in()
    window.timeline.set_index(6)
    window.timeline.mark_out()
    expected = {"gain": 1.35, "radius": 2, "invert": True, "channel": "red", "label": "reel 3",
                "regions": [[1, 2, 3, 4]], "delay": 0.0, "analyse": False}
    assert Gain.params.resolve(window.project.stages["denoise"].params) == expected
    path = tmp_path / "reel3.json"
    assert window._save_to(path)
    assert not window.isWindowModified() and window.windowTitle().startswith("reel3")
    saved = json.loads(path.read_text())
    assert saved["stages"]["denoise"] == {"enabled": True, "params": expected}
    assert saved["range"] == [1, 7] and saved["stages"]["color"]["params"] == {"strength": 0.4}

    other = make_window()
    assert other.open_project(str(path))
    wait_for_frame(qtbot, other, 0)
    assert other.project.to_dict() == load_project(path).to_dict()
    assert other.project.to_dict()["stages"] == saved["stages"]
    assert other.project.range == (1, 7) and other.timeline.in_out() == (1, 7)
    assert other.stack.rows["denoise"].check.isChecked() and not other.isWindowModified()
    other.stack.select("denoise")
    shown = other.panel.form.rows
    assert shown["gain"].spin.value() == 1.35 and shown["channel"].combo.currentText() == "red"
    assert shown["regions"].line.text() == "[[1, 2, 3, 4]]" and shown["invert"].check.isChecked()


def test_project_is_never_saved_over_or_into_the_source(qtbot, window, clip, tmp_path):
    window.error_dialogs = False  # a modal dialog would wait for a click
    opened(qtbot, window, clip)
    frame = sorted(clip.iterdir())[0]
    before = {p.name: p.read_bytes() for p in clip.iterdir()}
    (tmp_path / "link.json").symlink_to(frame)
    for target in (frame, clip / "reel.json", tmp_path / "link.json"):
        assert not window._save_to(target)
        assert "source" in window.errors[-1]
    assert {p.name: p.read_bytes() for p in clip.iterdir()} == before
    assert (tmp_path / "link.json").is_symlink()


def test_autosave_is_offered_back_after_a_crash(qtbot, make_window, clip, tmp_path):
    window = opened(qtbot, make_window(), clip)
    window.set_param("deflicker", "window", 9)
    window.write_autosave()
    assert window.autosave.path.is_file()
    window.autosave._lock.unlock()  # as if the session had died without cleaning up
    survivor = make_window()
    orphans = survivor.autosave.orphans()
    assert [o.path for o in orphans] == [window.autosave.path]
    assert survivor.recover(orphans[0])
    assert survivor.project.stages["deflicker"].params["window"] == 9 and survivor.isWindowModified()
    assert survivor.project.source == str(clip)


def test_preset_applies_stage_settings_and_keeps_the_source(qtbot, window, clip):
    opened(qtbot, window, clip)
    window.apply_preset("archival-master")
    assert window.project.source == str(clip)
    assert window.project.stages["stabilize"].params["border"] == "fill"
    assert window.stack.rows["stabilize"].check.isChecked() == window.project.stages["stabilize"].enabled


# --- errors -----------------------------------------------------------------------------------------------------------
def _capture_dialog(found: list[str]) -> None:
    def close() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QMessageBox):
            found.append(dialog.text())
            dialog.done(0)
        else:
            QTimer.singleShot(20, close)

    QTimer.singleShot(20, close)


def test_unreadable_file_shows_a_one_line_error_dialog(qtbot, window, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 50)
    shown: list[str] = []
    _capture_dialog(shown)
    assert not window.open_source(str(broken))
    assert len(shown) == 1 and "broken.mp4" in shown[0] and "Traceback" not in shown[0]
    assert window.source is None and window.errors == [shown[0].splitlines()[0]]


# --- render queue ---------------------------------------------------------------------------------------------------
def test_render_from_the_queue_writes_the_master(qtbot, window, clip, tmp_path):
    opened(qtbot, window, clip)
    project, in_out, missing, _ = window._project_for_queue()
    output = tmp_path / "out" / "master.mkv"
    output.parent.mkdir()
    job = window.queue.add_job(RenderJob(project.to_dict(), output, "ffv1"))
    with qtbot.waitSignal(window.queue.job_finished, timeout=120000):
        window.queue.buttons["start"].click()
    assert job.state == "done", job.log
    assert job.total == 8 and job.done == 8
    with open_source(str(output)) as master, open_source(str(clip)) as source:
        assert len(master) == 8 and np.array_equal(master.frame(3), source.frame(3))
    assert window.queue.table.item(0, 3).text() == "done"


def test_failed_render_reports_the_core_message(qtbot, window, clip, tmp_path):
    opened(qtbot, window, clip)
    project, *_ = window._project_for_queue()
    output = tmp_path / "exists.mkv"
    output.write_bytes(b"x")
    job = window.queue.add_job(RenderJob(project.to_dict(), output, "ffv1"))
    with qtbot.waitSignal(window.queue.job_finished, timeout=120000):
        window.queue.start()
    assert job.state == "failed" and "already exists" in job.message
    assert output.read_bytes() == b"x"


def test_progress_lines_of_the_cli_are_understood():
    stream = io.StringIO()
    printer = ProgressPrinter(stream)
    printer("render", 1, 40)
    job = RenderJob({}, Path("x.mkv"), "ffv1")
    assert parse_progress(job, stream.getvalue().splitlines()[0])
    assert (job.phase, job.done, job.total) == ("rendering", 1, 40) and job.eta
    assert parse_progress(job, "analyze dust: 12/40 frames,  3.50 fps, ETA 00:08")
    assert (job.phase, job.done, job.fps, job.eta) == ("analysing dust", 12, 3.5, "00:08")
    assert parse_progress(job, "filmrestore: error: x.mkv: already exists") and job.message == "x.mkv: already exists"


def test_queued_renders_report_progress_often(tmp_path):
    """The child render is asked for a line every half second, and the printer honours a short interval."""
    command = render_command(RenderJob({}, Path("x.mkv"), "ffv1"), tmp_path / "job.json")
    assert command[command.index("--progress-every") + 1] == "0.5"
    stream = io.StringIO()
    printer = ProgressPrinter(stream, every_seconds=0.0)
    for done in range(1, 6):
        printer("render", done, 40)
    assert len(stream.getvalue().splitlines()) == 5
    quiet = io.StringIO()
    slow = ProgressPrinter(quiet, every_seconds=60.0)
    for done in range(1, 6):
        slow("render", done, 40)
    assert len(quiet.getvalue().splitlines()) == 1  # only the first frame's line within a minute


# --- screenshot entry point, small helpers ------------------------------------------------------------------------
def test_screenshot_entry_point_writes_the_window(qtbot, clip, tmp_path, monkeypatch):
    from app.__main__ import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    out = tmp_path / "shot.png"
    assert main(["--screenshot", str(out), "--open", str(clip), "--frame", "3", "--view", "side",
                 "--size", "1280x800"]) == 0
    image = QImage(str(out))
    assert image.width() >= 1280 and image.height() >= 800
    assert main(["--screenshot", str(tmp_path / "bad.png"), "--open", str(tmp_path / "missing.mov")]) == 2
    # the new views: difference with the scopes tab, and the stale marker as a lagging preview shows it
    diff = tmp_path / "difference.png"
    assert main(["--screenshot", str(diff), "--open", str(clip), "--frame", "2", "--view", "difference",
                 "--tab", "scopes", "--scope", "histogram", "--stages", "dust", "--size", "1280x800"]) == 0
    stale = tmp_path / "stale.png"
    assert main(["--screenshot", str(stale), "--open", str(clip), "--frame", "2", "--playhead", "6",
                 "--view", "b", "--stages", "none", "--size", "1280x800"]) == 0
    assert QImage(str(diff)).width() >= 1280 and QImage(str(stale)).width() >= 1280


def test_timecodes():
    assert timecode_at(0, 24) == "00:00:00:00" and timecode_at(49, 25) == "00:00:01:24"
    assert timecode_at(24 * 3600, 24) == "01:00:00:00"
    assert timecode_at(10, 24, "01:00:00:00") == "01:00:00:10"
    ntsc = 30000 / 1001
    from fractions import Fraction

    rate = Fraction(30000, 1001)
    assert format_timecode(1800, rate, drop_frame=True) == "00:01:00;02"  # frames 00 and 01 are skipped
    assert format_timecode(17982, rate, drop_frame=True) == "00:10:00;00"
    assert parse_timecode("00:01:00;02", rate) == 1800
    assert timecode_at(0, rate, "01:00:00;00") == "01:00:00;00" and ntsc > 29


def test_side_data_is_sorted_into_overlays_plots_and_values():
    codes = np.zeros((20, 30), np.uint8)
    codes[2:4, 5:9] = 2
    side = describe_side_data({"dust": {"defects": codes, "components": [{"bbox": [5, 2, 4, 2]}],
                                        "fraction": 0.01},
                               "stabilize": {"path": {"start": 40, "measured_dx": [0.1, -0.2, 0.3, 0.1, 0.0],
                                                      "intended_dx": [0.0] * 5, "measured_dy": [0.2] * 5,
                                                      "intended_dy": [0.0] * 5, "zoom": 1.0},
                                             "levels": {"red": list(range(6)), "green": list(range(6))},
                                             "correction": [0.1, 0.2, 0.003], "pose": np.eye(3)},
                               "deflicker": {"local_gain": np.ones((8, 10)), "curves": np.zeros((256, 3))}})
    assert [o.key for o in side.overlays] == ["dust/defects"]
    assert side.overlays[0].alpha.max() == 255 and side.overlays[0].alpha.sum() == 255 * 8
    assert [p.key for p in side.plots] == ["stabilize/path/dx", "stabilize/path/dy", "stabilize/levels",
                                           "deflicker/curves"]
    assert [m.key for m in side.maps] == ["deflicker/local_gain"] and len(side.plots[3].series) == 3
    assert set(side.plots[0].series) == {"measured", "intended"} and side.plots[0].first_frame == 40
    assert set(side.plots[2].series) == {"red", "green"} and side.plots[2].first_frame is None
    values = dict(side.values)
    title = stage_module.stage_class("stabilize").title
    assert values[f"{title}: correction"] == "0.1, 0.2, 0.003" and values[f"{title}: path › zoom"] == "1"
    assert values["Dust & scratches: defects found"] == "1"
    assert side.plots[0].label == f"{title}: path › horizontal"


def test_side_data_speaks_the_restorers_words():
    """No raw key reaches the window: the stages' real side data gets names and units."""
    codes = np.zeros((20, 30), np.uint8)
    side = describe_side_data({
        "dust": {"defects": codes, "motion_rejected": 7, "defect_fraction": 0.0005,
                 "components": [{"kind": "dust"}, {"kind": "dust"}, {"kind": "scratch"}]},
        "stabilize": {"weave": {"dx": -1.25, "dy": 0.5, "rotation_deg": 0.01},
                      "weave_path": {"start": 0, "measured_dx": [0.0] * 5, "intended_dx": [0.0] * 5,
                                     "locked": {"dx": True}, "models": {"dx": "still"}}},
        "deflicker": {"gain": 1.02, "frames_averaged": 9, "some_new_key": 3}})
    values = dict(side.values)
    assert values["Dust & scratches: defects found"] == "3 (2 dust, 1 scratch)"
    assert values["Dust & scratches: candidates left alone as movement"] == "7 regions"
    assert values["Dust & scratches: picture repaired"] == "0.05 %"
    weave = stage_module.stage_class("stabilize").title
    assert values[f"{weave}: horizontal weave"] == "-1.25 px"
    assert values[f"{weave}: rotational weave"] == "0.01 °"
    assert values[f"{weave}: held still › horizontal"] == "yes"
    assert values["Deflicker: frames in the brightness reference"] == "9 frames"
    assert values["Deflicker: some new key"] == "3"  # an unknown key is still spelled out
    assert [p.label for p in side.plots] == [f"{weave}: horizontal position over the shot (px)"]
    shown = " ".join([*values, *values.values(), *(p.label for p in side.plots), *(o.label for o in side.overlays)])
    for raw in ("motion_rejected", "weave_path", "rotation_deg", "frames_averaged", "record", "_"):
        assert raw not in shown, raw


def test_source_kind_and_depth_in_words():
    from types import SimpleNamespace

    from app.vocabulary import picture_depth, source_kind

    seq = SimpleNamespace(kind="sequence", container="image_sequence", codec="png", path="/x/scan",
                          pixel_format="rgb48be", bit_depth=16, is_grayscale=False, has_alpha=False)
    assert source_kind(seq) == "Image sequence · PNG frames"
    assert picture_depth(seq) == "16-bit RGB"
    video = SimpleNamespace(kind="video", container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", path="/x/a.mov",
                            pixel_format="yuv422p10le", bit_depth=10, is_grayscale=False, has_alpha=False)
    assert source_kind(video) == "Video file · QuickTime (MOV) · H.264"
    assert picture_depth(video) == "10-bit Y′CbCr 4:2:2"
    odd = SimpleNamespace(kind="video", container="nut", codec="weird", path="/x/a.nut")
    assert source_kind(odd) == "Video file · NUT · WEIRD"


def test_monitor_labels_gpu_and_cpu_readings_for_what_they_are(qtbot, monkeypatch):
    from types import SimpleNamespace

    from app.monitor import MonitorPanel, ResourceProbe

    cpu = ResourceProbe()
    if not cpu.cuda:
        reading = cpu.sample()
        assert not reading.gpu and reading.used_mib > 0
        assert MonitorPanel.describe(reading).startswith("<b>No GPU</b> — this process")
    gib = 1 << 30
    fake_cuda = SimpleNamespace(is_available=lambda: True, get_device_name=lambda i: "Test GPU",
                                mem_get_info=lambda: (30 * gib, 80 * gib))
    monkeypatch.setitem(__import__("sys").modules, "torch", SimpleNamespace(cuda=fake_cuda))
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)  # NVML absent: utilisation is n/a
    gpu = ResourceProbe()
    reading = gpu.sample()
    assert reading.gpu and reading.used_mib == 50 * 1024 and reading.free_mib == 30 * 1024
    text = MonitorPanel.describe(reading)
    assert "Test GPU" in text and "51,200 MiB used" in text and "n/a" in text
    import threading

    import app.monitor

    gate = threading.Event()

    class SlowProbe(ResourceProbe):
        """A probe whose construction (torch, CUDA: seconds) is held until the test lets it go."""

        def __init__(self) -> None:
            gate.wait(10)
            super().__init__()

    monkeypatch.setattr(app.monitor, "ResourceProbe", SlowProbe)
    panel = MonitorPanel(interval_ms=60000)
    qtbot.addWidget(panel)
    panel.refresh()  # the probe is built on a thread; the window never waits for it (had it, gate.wait timed out)
    assert panel.probe is None and not gate.is_set()
    gate.set()

    def titled() -> bool:
        panel.refresh()
        return "GPU memory" in panel.memory_plot.getPlotItem().titleLabel.text

    qtbot.waitUntil(titled, timeout=10000)
    panel.timer.stop()


def test_add_to_queue_dialog_builds_the_job(qtbot, window, clip, tmp_path, tmp_path_factory):
    from app.render_queue import AddRenderDialog

    opened(qtbot, window, clip)
    window.timeline.set_index(2)
    window.timeline.mark_in()
    project, in_out, missing, first = window._project_for_queue()
    assert missing == 0 and first == 100
    renders = tmp_path_factory.mktemp("renders")  # a folder of the user's, outside the archive's
    dialog = AddRenderDialog(project, in_out, renders, missing_frames=2, first_number=first)
    qtbot.addWidget(dialog)
    assert "frames 102–107" in dialog.ranged.text()  # as the timeline and the scan's names number them
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("dpx"))
    assert dialog.output.text() == str(renders / "clip_dpx")
    assert not dialog.options.rows["crf"].editor.isVisibleTo(dialog)  # H.264 options for H.264 only
    assert not dialog.options.rows["audio"].editor.isVisibleTo(dialog)  # a sequence has no sound
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("h264"))
    assert dialog.output.text().endswith("clip_h264.mp4")
    assert dialog.options.rows["crf"].editor.isVisibleTo(dialog)
    assert dialog.options.rows["crf"].label.text() == "Quality (CRF, lower is better)"
    dialog.options.rows["crf"].spin.setValue(22)
    dialog.allow_gaps.setChecked(True)
    job = dialog.job()
    assert job.allow_gaps and "--allow-gaps" in render_command(job, tmp_path / "job.json")
    assert job.format == "h264" and job.project["export"]["crf"] == 22 and job.project["export"]["format"] == "h264"
    assert job.project["range"] == [2, 8] and job.project["source"] == str(clip)
    archive = AddRenderDialog(project, in_out, clip.parent)  # the folder the scans live in is the archive's
    qtbot.addWidget(archive)
    assert Path(archive.output.text()).parent == Path.home()


def test_the_queue_remembers_the_output_folder_chosen_once(qtbot, window, clip, tmp_path_factory, monkeypatch):
    from app import render_queue

    opened(qtbot, window, clip)
    chosen = tmp_path_factory.mktemp("masters")
    proposed = []

    def accept(dialog):
        proposed.append(Path(dialog.output.text()).parent)
        dialog.output.setText(str(chosen / "reel.mkv"))
        return render_queue.QDialog.DialogCode.Accepted

    monkeypatch.setattr(render_queue.AddRenderDialog, "exec", accept)
    window.queue.add_current()
    assert proposed == [Path.home()] and window.settings.value("paths/render_dir") == str(chosen)
    window.queue.last_folder = None  # as after a restart: only the settings remember
    window.queue.add_current()
    assert proposed[-1] == chosen


def test_a_job_interrupted_by_a_crash_is_resumed_from_the_queue_after_a_restart(qtbot, tmp_path):
    """The queue is kept in a file; a job that was running when the app died comes back 'interrupted', and starting
    it resumes the render from the chunks in its work folder."""
    import os
    import signal
    import subprocess
    import sys

    from app.render_queue import RenderQueue
    from restoration.render import work_folder_for

    folder = tmp_path / "clip"
    make_sequence(folder, 40, width=96, height=64, bits=16)
    project = {"version": 1, "name": "reel", "source": str(folder),
               "stages": {"dust": {"enabled": True, "params": {}}, "deflicker": {"enabled": True, "params": {}}}}
    output = tmp_path / "reel.mkv"
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(project))
    job = RenderJob(project, output, "ffv1")
    command = render_command(job, job_file) + ["--workers", "1"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    crashed = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, start_new_session=True)
    chunks = work_folder_for(output) / "chunks"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and crashed.poll() is None and not list(chunks.glob("*.json")):
        time.sleep(0.05)
    assert crashed.poll() is None
    os.killpg(crashed.pid, signal.SIGKILL)
    crashed.wait()
    state_file = tmp_path / "data" / "render-queue.json"
    state_file.parent.mkdir()
    job.state = "running"  # what the queue file said when the application died
    state_file.write_text(json.dumps([job.to_dict()]))

    queue = RenderQueue(state_file=state_file)
    qtbot.addWidget(queue)
    restored = queue.jobs[0]
    assert restored.state == "interrupted" and "resume" in restored.message
    assert queue.buttons["start"].isEnabled()
    with qtbot.waitSignal(queue.job_finished, timeout=240000):
        queue.start()
    assert restored.state == "done", restored.log
    assert any("resuming:" in line for line in restored.log)
    assert json.loads(state_file.read_text())[0]["state"] == "done"
    assert output.is_file() and not work_folder_for(output).exists()


# --- the first hour: words, fine sliders, honest dialogs -----------------------------------------------------------
def test_an_ampersand_in_an_overlay_name_is_shown_not_taken_for_a_shortcut(window):
    window._rebuild_overlay_menu([("dust/defects", "Dust & scratches: defects")])
    action = window.overlay_menu.actions()[0]
    assert action.text() == "Dust && scratches: defects"  # Qt shows "&&" as one "&"


def test_sliders_are_wide_and_arrow_keys_nudge_one_fine_step(qtbot, test_stages, window):
    window.stack.rows["denoise"].check.setChecked(True)
    window.stack.select("denoise")
    row = window.panel.form.rows["delay"]  # 0–1 s, no declared step
    assert row.slider.minimumWidth() >= 160
    row.slider.setValue(row.scale.to_ticks(0.5))
    step = QAbstractSlider.SliderAction  # what Qt runs for the Right and Left arrow keys
    row.slider.triggerAction(step.SliderSingleStepAdd)
    assert window.project.stages["denoise"].params["delay"] == pytest.approx(0.51)
    assert row.spin.singleStep() == pytest.approx(0.01)
    row.slider.triggerAction(step.SliderSingleStepSub)
    assert window.project.stages["denoise"].params["delay"] == pytest.approx(0.5)


def test_closing_asks_about_the_running_render_before_saving(qtbot, window, monkeypatch):
    asked = []

    def question(parent, title, *args, **kwargs):
        asked.append(title)
        return QMessageBox.StandardButton.No  # keep the render running

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(window.queue, "is_running", lambda: True)
    window.confirm_on_close = True
    window.set_stage_enabled("dust", True)  # an unsaved change
    window.close()
    assert asked == ["Render running"] and window.isVisible()
    window.confirm_on_close = False


def test_keep_original_takes_five_numbers_and_says_why_in_one_line(qtbot, window, clip):
    opened(qtbot, window, clip)
    window.stack.select("dust")
    row = window.panel.form.rows["keep_original"]
    assert row.label.text() == "Leave as scanned"
    row.line.setText("[[1, 2, 3]]")
    row.line.editingFinished.emit()
    message = window.statusBar().currentMessage()
    assert message == "dust.keep_original: entry 0 must be [frame, x, y, w, h] (5 numbers), got [1, 2, 3]"
    assert window.project.stages["dust"].params.get("keep_original", []) == []
    row.line.setText("[[100, 2, 3, 4, 5]]")
    row.line.editingFinished.emit()
    assert window.project.stages["dust"].params["keep_original"] == [[100, 2, 3, 4, 5]]


def test_a_screenshot_with_an_unknown_stage_ends_with_one_line(tmp_path, clip):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "app", "--screenshot", str(tmp_path / "s.png"), "--open", str(clip),
                           "--stages", "dust,foo"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent, env={**__import__("os").environ,
                                                                           "QT_QPA_PLATFORM": "offscreen"})
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert done.returncode == 2 and errors == ["python -m app: error: --stages foo: unknown stage (known: dust, "
                                               "stabilize, deflicker, denoise, color, sr)"], done.stderr
    assert not (tmp_path / "s.png").exists()


# --- A/B flip, difference view, scopes, playback cache and stale marker, measuring progress ----------------------
def test_ab_flip_and_difference_view_show_what_a_stage_changed(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    window.project.stages["denoise"].params["gain"] = 0.5
    window.stack.rows["denoise"].check.setChecked(True)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    result = window.last_result
    source = open_source(str(clip)).frame(0)
    expected = np.abs(source * 0.5 - source)
    shown = np.clip(expected * result.difference_gain, 0, 1)
    assert np.abs(result.difference_display.astype(int) - np.round(shown * 255)).max() <= 1
    assert result.difference_gain >= 1 and f"×{result.difference_gain:g}" in result.difference_label
    assert round(result.difference_largest) == round(float(expected.max()) * 255)
    window.set_view("difference")
    assert window.viewer.mode == "difference" and window.act_difference.isChecked()
    window.set_view("flip")
    assert window.viewer.mode == "flip" and window.viewer.flip_side == "left" and window.act_flip.isChecked()
    window.set_view("flip")
    assert window.viewer.flip_side == "right"
    picture = window.viewer.grab().toImage()
    middle = picture.pixelColor(picture.width() // 2, picture.height() // 2)
    window.set_view("flip")
    other = window.viewer.grab().toImage().pixelColor(picture.width() // 2, picture.height() // 2)
    assert middle != other  # the same place shows the other picture
    # both sides' scopes came with the picture, computed off the GUI thread
    left, right = result.scopes
    assert left.histogram.shape == (3, 256) and not np.array_equal(left.waveform, right.waveform)
    window.scopes_dock.raise_()
    qtbot.waitUntil(lambda: window.scopes.right.scopes is right and window.scopes.left.scopes is left)


def test_playback_cache_shows_rendered_frames_without_rendering_and_marks_stale(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    window.stack.rows["denoise"].check.setChecked(True)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    window.timeline.set_index(3)
    assert window.viewer.stale.startswith("STALE · showing frame 100 · playhead at 103")
    wait_for_frame(qtbot, window, 3, after_generation=window.engine.generation)
    assert window.viewer.stale == ""
    generation = window.engine.generation
    window.timeline.set_index(0)  # rendered before at these settings: shown at once from the cache
    assert window.last_result.index == 0 and window.engine.generation == generation
    assert window.viewer.stale == "" and window.frame_cache.hits >= 1
    window.set_param("denoise", "gain", 0.7)  # other settings: not in the cache, stale until rendered
    assert window.viewer.stale == "STALE · rendering the new settings…"
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    assert window.viewer.stale == ""
    # playing renders ahead into the cache; a second pass plays from it
    window.timeline.shuttle("l")
    qtbot.waitUntil(lambda: window.timeline.speed == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.engine.is_busy(), timeout=WAIT_MS)
    cached = {key[0] for key in window.frame_cache._items if key[1] == window.last_result.key}
    assert len(cached) >= 4
    hits = window.frame_cache.hits
    window.timeline.set_index(0)
    window.timeline.shuttle("l")
    qtbot.waitUntil(lambda: window.timeline.speed == 0, timeout=WAIT_MS)
    assert window.frame_cache.hits > hits


def test_playback_cache_is_bounded_by_bytes():
    from app.frame_cache import FrameCache

    cache = FrameCache(budget_bytes=100)
    for i in range(5):
        cache.put(i, f"picture {i}", 30)
    assert len(cache) == 3 and cache.bytes == 90 and 0 not in cache and 4 in cache
    cache.put("huge", "x", 101)
    assert "huge" not in cache
    assert cache.get(2) == "picture 2" and cache.get(0) is None and (cache.hits, cache.misses) == (1, 1)


def test_a_stage_measuring_shows_its_progress_in_its_row(qtbot, test_stages, window, clip):
    opened(qtbot, window, clip)
    row = window.stack.rows["denoise"]
    window._preview_progress("analyze denoise", 3, 8)
    assert row.progress.isVisible() and row.progress.value() == 3 and row.progress.maximum() == 8
    assert "measuring" in window.busy_label.text()
    window._preview_progress("analyze denoise", 8, 8)
    assert not row.progress.isVisible()
    window._preview_progress("analyze denoise", 2, 8)
    window._set_busy(False)
    assert not row.progress.isVisible()


def test_a_fit_only_edit_does_not_abandon_a_running_measurement():
    from app.preview import upstream_key
    from restoration.pipeline import StageSetting as Setting

    class Split(Stage):
        name, title, splits_analysis = "color", "split test", True
        params = declare(Param("measured", "float", 0.0, "m", minimum=0, maximum=1),
                         Param("smoothing", "float", 0.0, "s", minimum=0, maximum=1, fit_only=True))

    stage_module._load_builtin_stages()
    saved = stage_module._REGISTRY["color"]
    stage_module._REGISTRY["color"] = Split
    try:
        def key(**params):
            return upstream_key({"color": Setting(True, params)}, "color")
        assert key(smoothing=0.2) == key(smoothing=0.9)
        assert key(measured=0.2) != key(measured=0.9)
    finally:
        stage_module._REGISTRY["color"] = saved


class SlowSplit(Stage):
    """A stage whose shot measurement is slow (a sleep per frame) and whose fit is instant."""

    name = "color"
    title = "Test split"
    splits_analysis = True
    params = declare(Param("offset", "float", 0.0, "Measured.", minimum=-1.0, maximum=1.0),
                     Param("strength", "float", 1.0, "Fit only.", minimum=0.0, maximum=1.0, fit_only=True))
    measured = 0

    def needs_analysis(self, params):
        return True

    def measure(self, frames, shot, params):
        SlowSplit.measured += 1
        means = []
        for _, frame in frames:
            time.sleep(0.15)
            means.append(float(frame.mean()) + params["offset"])
        return float(np.mean(means))

    def fit(self, measurement, shot, params):
        return measurement * params["strength"]

    def process(self, window, params, analysis):
        return StageOutput(np.clip(window.current * 0 + analysis, 0, 1).astype(np.float32))


def test_a_fit_only_change_re_renders_in_under_a_second_from_the_kept_measurement(qtbot, monkeypatch, make_window,
                                                                                clip, tmp_path):
    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path / "analyses"))
    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "color", SlowSplit)
    SlowSplit.measured = 0
    window = make_window()
    opened(qtbot, window, clip)
    window.set_stage_enabled("color", True)
    window.stack.select("color")
    assert "re-fits" in window.panel.form.rows["strength"].spin.toolTip()
    assert "re-fits" not in window.panel.form.rows["offset"].spin.toolTip()
    started = time.monotonic()
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    measuring = time.monotonic() - started
    assert SlowSplit.measured == 1 and measuring > 1.0  # 8 frames × 0.15 s
    started = time.monotonic()
    window.set_param("color", "strength", 0.5)
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    refit = time.monotonic() - started
    print(f"\nshot measured in {measuring:.2f} s; a fit-only change re-rendered in {refit * 1000:.0f} ms")
    assert SlowSplit.measured == 1 and refit < 1.0
    assert np.allclose(window.last_result.right, window.last_result.right.flat[0])
    window.set_param("color", "offset", 0.1)  # a measured parameter: measured again
    wait_for_frame(qtbot, window, 0, after_generation=window.engine.generation)
    assert SlowSplit.measured == 2


def test_arrow_keys_on_a_focused_slider_nudge_it_not_the_playhead(qtbot, test_stages, window, clip):
    """The window's Left/Right/Home/End shortcuts step frames; a slider with the focus keeps those keys."""
    opened(qtbot, window, clip)
    window.timeline.set_index(3)
    window.stack.rows["denoise"].check.setChecked(True)
    window.stack.select("denoise")
    row = window.panel.form.rows["delay"]
    row.slider.setValue(row.scale.to_ticks(0.5))
    row.slider.setFocus()
    qtbot.waitUntil(row.slider.hasFocus)
    qtbot.keyClick(row.slider, Qt.Key.Key_Right)
    assert window.project.stages["denoise"].params["delay"] == pytest.approx(0.51)
    qtbot.keyClick(row.slider, Qt.Key.Key_PageDown)
    assert window.project.stages["denoise"].params["delay"] == pytest.approx(0.41)
    qtbot.keyClick(row.slider, Qt.Key.Key_Left)
    assert window.project.stages["denoise"].params["delay"] == pytest.approx(0.40)
    assert window.timeline.index == 3  # the playhead did not move
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Right)
    assert window.timeline.index == 4
