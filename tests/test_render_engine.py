"""The render engine: each frame computed once per stage, the same bytes on any number of workers, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import pytest

from restoration import stages as stage_module
from restoration.errors import ParamError, RestorationError
from restoration.params import Param, declare
from restoration.pipeline import StageSetting
from restoration.project import Project
from restoration.render import render_project, work_folder_for
from restoration.render import engine as engine_module
from restoration.render import tasks as tasks_module
from restoration.render.plan import Step, analysis_span, plan_render
from restoration.shots import shots_in_span
from restoration.stage import FrameWindow, Shot, Stage, StageOutput

REPO = Path(__file__).resolve().parent.parent


def make_clip_with_cut(folder: Path, n: int = 40, cut: int = 20, width: int = 64, height: int = 48) -> Path:
    """A 16-bit PNG sequence of two very different textured shots, the second starting at `cut`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    scenes = [rng.uniform(0.05, 0.35, (height, width, 3)), rng.uniform(0.6, 0.95, (height, width, 3))[..., ::-1]]
    for i in range(n):
        base = scenes[0 if i < cut else 1]
        frame = np.clip(base + rng.normal(0, 0.01, base.shape) + 0.002 * (i % 7), 0, 1)
        cv2.imwrite(str(folder / f"f_{i:04d}.png"), (frame[..., ::-1] * 65535 + 0.5).astype(np.uint16))
    return folder


class Counted(Stage):
    calls: dict[str, list[int]] = {}
    analysed: dict[str, list[tuple[int, int]]] = {}
    radius = 0
    analyses = False

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return self.radius

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return self.analyses

    def analyze(self, frames, shot, params):
        seen = [i for i, _ in frames]
        assert seen == list(range(shot.start, shot.end))
        Counted.analysed.setdefault(self.name, []).append((shot.start, shot.end))
        return len(seen)

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        Counted.calls.setdefault(self.name, []).append(window.index)
        if self.analyses:
            assert analysis == len(window.shot)
        mean = np.mean(window.frames, axis=0).astype(np.float32)
        return StageOutput(np.clip(mean * np.float32(0.9) + np.float32(0.05), 0, 1))


class CountedDust(Counted):
    name, title, radius = "dust", "counted dust", 2
    params = declare(Param("note", "str", "", "Unused."))


class CountedWeave(Counted):
    name, title, analyses = "stabilize", "counted weave", True
    params = declare(Param("note", "str", "", "Unused."))


class CountedGrain(Counted):
    name, title, radius, analyses = "denoise", "counted grain", 1, True
    params = declare(Param("note", "str", "", "Unused."))


@pytest.fixture
def counted_stages(monkeypatch):
    _register_counted(monkeypatch)
    Counted.calls, Counted.analysed = {}, {}


def project_for(source: Path, stages: tuple[str, ...], frame_range=None) -> Project:
    project = Project()
    project.source = str(source)
    for name in stages:
        project.stages[name] = StageSetting(True, {})
    project.range = frame_range
    return project


def framemd5(path: Path) -> list[str]:
    return [line for line in Path(f"{path}.framemd5").read_text().splitlines() if not line.startswith("#")]


def test_every_stage_processes_each_frame_once_and_analyses_each_shot_once(tmp_path, counted_stages):
    clip = make_clip_with_cut(tmp_path / "clip", 40, 20)
    result = render_project(project_for(clip, ("dust", "stabilize", "denoise")), tmp_path / "out.mkv", workers=1)
    assert result.frames == 40
    for name in ("dust", "stabilize", "denoise"):
        assert sorted(Counted.calls[name]) == list(range(40)), name
    assert sorted(Counted.analysed["stabilize"]) == [(0, 20), (20, 40)]
    assert sorted(Counted.analysed["denoise"]) == [(0, 20), (20, 40)]
    assert result.calls["process"] == {"dust": 40, "stabilize": 40, "denoise": 40}
    assert not work_folder_for(tmp_path / "out.mkv").exists()


def test_the_engine_gives_the_pipelines_bytes(tmp_path, counted_stages):
    """The same chain through the streaming Pipeline (what the GUI previews) and through the engine."""
    from restoration.io import open_source
    from restoration.io.pixels import float_to_int
    from restoration.pipeline import Pipeline

    clip = make_clip_with_cut(tmp_path / "clip", 40, 20)
    project = project_for(clip, ("dust", "stabilize", "denoise"))
    render_project(project, tmp_path / "tiffs", workers=1)
    with open_source(str(clip)) as source:
        pipeline = Pipeline(source, project.stages)
        for index in (0, 1, 19, 20, 39):
            expected = float_to_int(pipeline.frame(index), 16)
            written = cv2.imread(str(sorted((tmp_path / "tiffs").glob("*.tif*"))[index]), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(written[..., ::-1], expected), index


def test_a_range_computes_only_what_it_needs(tmp_path, counted_stages, monkeypatch):
    clip = make_clip_with_cut(tmp_path / "clip", 200, 150, width=32, height=24)
    monkeypatch.setattr(engine_module, "analysis_span", lambda r, n, t: analysis_span(r, n, t, handle=10))
    render_project(project_for(clip, ("dust", "denoise"), (60, 70)), tmp_path / "out.mkv", workers=1)
    assert sorted(Counted.calls["denoise"]) == list(range(60, 70))
    # denoise analyses its shot, clipped to the range ± the handle; dust computes exactly what that reads
    assert Counted.analysed["denoise"] == [(50, 80)]
    assert sorted(Counted.calls["dust"]) == list(range(50, 80))


def test_the_plan_walks_radii_and_analyses_back_from_the_range():
    steps = [Step(1, "dust", {}, 2, False), Step(2, "deflicker", {}, 3, False), Step(3, "color", {}, 0, True)]
    shots = shots_in_span([30], (0, 100))
    plan = plan_render(steps, (40, 50), (0, 100), shots, chunk_frames=4)
    shot = Shot(30, 100)
    assert plan.runs[(shot, 3)] == (40, 50)
    assert plan.runs[(shot, 2)] == (30, 100)  # color analyses its whole shot
    assert plan.runs[(shot, 1)] == (30, 100)
    assert plan.runs[(shot, 0)] == (30, 100)
    assert [(u.start, u.stop) for u in plan.chunks()] == [(40, 44), (44, 48), (48, 50)]
    plan = plan_render(steps[:2], (40, 50), (0, 100), shots)
    assert plan.runs[(shot, 1)] == (37, 53) and plan.runs[(shot, 0)] == (35, 55)
    assert analysis_span((0, 100), 100, True) == (0, 100)
    assert analysis_span((40, 50), 100, True, handle=48) == (0, 100)
    # previews of nearby frames share one span (so their clipped shots, and cached analyses, are the same)
    assert analysis_span((100, 101), 1000, True, handle=48) == analysis_span((110, 111), 1000, True, 48) == (48, 192)
    assert analysis_span((40, 50), 100, False) == (40, 50)


def test_two_workers_give_the_same_bytes_as_one(tmp_path):
    clip = make_clip_with_cut(tmp_path / "clip", 30, 15)
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.mkv"
        project = project_for(clip, ("dust", "stabilize", "deflicker", "denoise", "color"))
        result = render_project(project, out, workers=workers, chunk_frames=6)
        assert result.calls["process"] == {n: 30 for n in ("dust", "stabilize", "deflicker", "denoise", "color")}
        outputs.append(framemd5(out))
    assert outputs[0] == outputs[1]


def test_an_interrupted_render_resumes_from_its_chunks(tmp_path, counted_stages, monkeypatch):
    clip = make_clip_with_cut(tmp_path / "clip", 40, 20)
    project = project_for(clip, ("dust", "denoise"))
    render_project(project, tmp_path / "whole.mkv", workers=1, chunk_frames=5)
    real_run = tasks_module.run_unit
    finals: list[int] = []

    def dying(job, unit):
        if unit.final and len(finals) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the fourth chunk
        result = real_run(job, unit)
        finals.extend([unit.start] if unit.final else [])
        return result

    monkeypatch.setattr("restoration.render.executors.run_unit", dying)
    with pytest.raises(KeyboardInterrupt):
        render_project(project, tmp_path / "out.mkv", workers=1, chunk_frames=5)
    assert not (tmp_path / "out.mkv").exists() and work_folder_for(tmp_path / "out.mkv").is_dir()
    monkeypatch.setattr("restoration.render.executors.run_unit", real_run)
    Counted.calls = {}
    notes: list[str] = []
    result = render_project(project, tmp_path / "out.mkv", workers=1, chunk_frames=5, notes=notes.append)
    assert result.chunks_kept == 3 and any("resuming: 3 of 8 chunks kept" in n for n in notes)
    kept_frames = {i for start in finals for i in range(start, start + 5)}
    assert sorted(Counted.calls["denoise"]) == [i for i in range(40) if i not in kept_frames]
    assert "dust" not in Counted.calls  # its outputs and the shot analyses were kept in the work folder
    assert framemd5(tmp_path / "out.mkv") == framemd5(tmp_path / "whole.mkv")
    assert not work_folder_for(tmp_path / "out.mkv").exists()


def test_a_changed_project_is_never_resumed_into(tmp_path, counted_stages, monkeypatch):
    clip = make_clip_with_cut(tmp_path / "clip", 20, 10)
    monkeypatch.setattr("restoration.render.executors.run_unit", _dies_after_first_chunk())
    with pytest.raises(KeyboardInterrupt):
        render_project(project_for(clip, ("dust",)), tmp_path / "out.mkv", workers=1, chunk_frames=5)
    monkeypatch.undo()
    _register_counted(monkeypatch)
    notes: list[str] = []
    result = render_project(project_for(clip, ("dust", "denoise")), tmp_path / "out.mkv", workers=1,
                            chunk_frames=5, notes=notes.append)
    assert result.chunks_kept == 0 and any("another project" in n for n in notes)
    render_project(project_for(clip, ("dust", "denoise")), tmp_path / "ref.mkv", workers=1, chunk_frames=5)
    assert framemd5(tmp_path / "out.mkv") == framemd5(tmp_path / "ref.mkv")


def test_a_folder_that_is_not_ours_is_never_taken_for_a_work_folder(tmp_path, counted_stages):
    clip = make_clip_with_cut(tmp_path / "clip", 10, 5)
    stranger = work_folder_for(tmp_path / "out.mkv")
    stranger.mkdir()
    (stranger / "important.txt").write_text("keep me")
    with pytest.raises(RestorationError, match="not a FilmRestore work folder"):
        render_project(project_for(clip, ("dust",)), tmp_path / "out.mkv", workers=1)
    assert (stranger / "important.txt").read_text() == "keep me"


def _dies_after_first_chunk():
    real_run = tasks_module.run_unit
    seen: list[int] = []

    def dying(job, unit):
        if unit.final and seen:
            raise KeyboardInterrupt
        result = real_run(job, unit)
        if unit.final:
            seen.append(unit.start)
        return result

    return dying


def _register_counted(monkeypatch) -> None:
    stage_module._load_builtin_stages()
    for cls in (CountedDust, CountedWeave, CountedGrain):
        monkeypatch.setitem(stage_module._REGISTRY, cls.name, cls)


def test_ray_missing_or_unreachable_is_one_line(tmp_path, monkeypatch):
    clip = make_clip_with_cut(tmp_path / "clip", 10, 5)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ParamError, match=r"pip install filmrestore\[cluster\]"):
        render_project(project_for(clip, ("dust",)), tmp_path / "out.mkv", ray="local")


def test_a_killed_render_resumes_when_the_command_is_run_again(tmp_path):
    """A real `kill -9` of a two-worker render, then the same command: the master equals an uninterrupted one."""
    clip = make_clip_with_cut(tmp_path / "clip", 48, 24, width=96, height=64)
    command = [sys.executable, "-m", "restoration.cli", "render", str(clip), "-o", str(tmp_path / "out.mkv"),
               "--stages", "dust,deflicker,denoise", "--workers", "2", "--progress-every", "0"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    work = work_folder_for(tmp_path / "out.mkv")
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((work / "chunks").glob("*.json"))) >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()[1].decode()[-2000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "out.mkv").exists() and work.is_dir()
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming:" in again.stderr
    reference = subprocess.run([*command[:6], str(tmp_path / "ref.mkv"), *command[7:-4], "--workers", "1"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert framemd5(tmp_path / "out.mkv") == framemd5(tmp_path / "ref.mkv")
    assert not work.exists()


def test_call_counts_are_written_where_asked(tmp_path, counted_stages, monkeypatch):
    clip = make_clip_with_cut(tmp_path / "clip", 20, 10)
    monkeypatch.setenv("FILMRESTORE_CALL_COUNTS", str(tmp_path / "calls.json"))
    render_project(project_for(clip, ("dust", "stabilize")), tmp_path / "out.mkv", workers=1)
    calls = json.loads((tmp_path / "calls.json").read_text())
    assert calls == {"frames": 20, "process": {"dust": 20, "stabilize": 20}, "analyze": {"dust": 0, "stabilize": 2}}


def test_a_local_ray_runtime_gives_the_same_bytes(tmp_path):
    """A real Ray runtime on 127.0.0.1 with two workers renders the chain bit for bit as one local worker does."""
    ray = pytest.importorskip("ray")
    clip = make_clip_with_cut(tmp_path / "clip", 24, 12)
    project = project_for(clip, ("dust", "stabilize", "deflicker", "denoise"))
    render_project(project, tmp_path / "one.mkv", workers=1, chunk_frames=6)
    try:
        result = render_project(project, tmp_path / "ray.mkv", workers=2, ray="local", chunk_frames=6)
    finally:
        ray.shutdown()
    assert result.calls["process"] == {n: 24 for n in ("dust", "stabilize", "deflicker", "denoise")}
    assert framemd5(tmp_path / "ray.mkv") == framemd5(tmp_path / "one.mkv")


def test_an_unreachable_ray_cluster_is_one_line_and_no_work(tmp_path):
    pytest.importorskip("ray")
    clip = make_clip_with_cut(tmp_path / "clip", 10, 5)
    with pytest.raises(ParamError, match="cannot reach the Ray cluster"):
        render_project(project_for(clip, ("dust",)), tmp_path / "out.mkv", ray="127.0.0.1:1")
    assert not work_folder_for(tmp_path / "out.mkv").exists()


def test_a_killed_worker_is_retried_and_the_master_is_still_right(tmp_path):
    """kill -9 of one worker process mid-render: its unit runs again on a fresh worker, the render completes."""
    import threading

    import psutil

    clip = make_clip_with_cut(tmp_path / "clip", 40, 20, width=96, height=64)
    project = project_for(clip, ("dust", "deflicker", "denoise"))
    outcome: dict[str, Any] = {}

    def render() -> None:
        try:
            outcome["result"] = render_project(project, tmp_path / "out.mkv", workers=2, chunk_frames=4)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=render)
    thread.start()
    work = work_folder_for(tmp_path / "out.mkv")
    killed = None
    deadline = time.monotonic() + 240
    while thread.is_alive() and killed is None and time.monotonic() < deadline:
        workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
        if workers and list(work.glob("step1/*.npy")):
            workers[0].kill()
            killed = workers[0].pid
        time.sleep(0.02)
    thread.join(600)
    assert killed is not None and "error" not in outcome, outcome.get("error")
    render_project(project, tmp_path / "ref.mkv", workers=1, chunk_frames=4)
    assert framemd5(tmp_path / "out.mkv") == framemd5(tmp_path / "ref.mkv")


def test_a_second_render_reads_the_shot_analyses_back_from_the_cache(tmp_path, counted_stages, monkeypatch):
    import restoration.analysis_cache as cache_module

    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path / "cache"))
    clip = make_clip_with_cut(tmp_path / "clip", 40, 20)
    project = project_for(clip, ("dust", "stabilize", "denoise"))
    render_project(project, tmp_path / "first.mkv", workers=1)
    assert sorted(Counted.analysed["denoise"]) == [(0, 20), (20, 40)]
    Counted.calls, Counted.analysed = {}, {}
    result = render_project(project, tmp_path / "second.mkv", workers=1)
    assert Counted.analysed == {} and result.calls["analyze"] == {"dust": 0, "stabilize": 0, "denoise": 0}
    assert framemd5(tmp_path / "second.mkv") == framemd5(tmp_path / "first.mkv")
    # other settings upstream of an analysing stage are other analyses
    project.stages["dust"].params["note"] = "changed"
    Counted.analysed = {}
    render_project(project, tmp_path / "third.mkv", workers=1)
    assert sorted(Counted.analysed["stabilize"]) == [(0, 20), (20, 40)]
    # an analysis made by other code (an upgrade, a fixed stage) is measured again
    monkeypatch.setattr(cache_module, "code_fingerprint", lambda: "an upgraded release")
    Counted.analysed = {}
    render_project(project, tmp_path / "fourth.mkv", workers=1)
    assert sorted(Counted.analysed["denoise"]) == [(0, 20), (20, 40)]


def test_the_code_fingerprint_follows_the_core_source_but_not_the_bench(tmp_path):
    from restoration.analysis_cache import code_fingerprint

    (tmp_path / "bench").mkdir()
    (tmp_path / "stage.py").write_text("STRENGTH = 1\n")
    (tmp_path / "bench" / "report.py").write_text("TITLE = 'a'\n")
    first = code_fingerprint(tmp_path)
    code_fingerprint.cache_clear()
    (tmp_path / "bench" / "report.py").write_text("TITLE = 'b'\n")
    assert code_fingerprint(tmp_path) == first
    code_fingerprint.cache_clear()
    (tmp_path / "stage.py").write_text("STRENGTH = 2\n")
    assert code_fingerprint(tmp_path) != first
    code_fingerprint.cache_clear()


def test_with_a_cached_analysis_a_range_computes_only_its_windows(tmp_path, counted_stages, monkeypatch):
    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engine_module, "analysis_span", lambda r, n, t: analysis_span(r, n, t, handle=10))
    clip = make_clip_with_cut(tmp_path / "clip", 200, 150, width=32, height=24)
    project = project_for(clip, ("dust", "denoise"), (60, 70))
    render_project(project, tmp_path / "a.mkv", workers=1)
    Counted.calls, Counted.analysed = {}, {}
    render_project(project, tmp_path / "b.mkv", workers=1)
    assert Counted.analysed == {}
    assert sorted(Counted.calls["dust"]) == list(range(59, 71))  # denoise's radius 1 around the range, no more
    assert framemd5(tmp_path / "b.mkv") == framemd5(tmp_path / "a.mkv")


def test_the_preview_pipeline_shares_the_cache(tmp_path, counted_stages, monkeypatch):
    from restoration.analysis_cache import AnalysisCache
    from restoration.io import open_source
    from restoration.pipeline import Pipeline

    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path / "cache"))
    clip = make_clip_with_cut(tmp_path / "clip", 40, 20)
    project = project_for(clip, ("dust", "denoise"))
    render_project(project, tmp_path / "out.mkv", workers=1)
    Counted.analysed = {}
    with open_source(str(clip)) as source:
        pipeline = Pipeline(source, project.stages, analysis_cache=AnalysisCache.for_source(source.info))
        pipeline.frame(25)
    assert Counted.analysed == {}
