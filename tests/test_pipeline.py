"""The streaming pipeline: shot-aware mirrored windows, preview equals render, bounded caches, placeholders."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest

from restoration import stages as stage_module
from restoration.errors import ParamError, StageNotImplemented
from restoration.params import Param, declare
from restoration.pipeline import ArraySource, Pipeline, StageSetting, run_stage_on_frames, settings_for
from restoration.shots import detect_cuts, mirror_index, shot_at, shots_from_cuts
from restoration.stage import FrameWindow, PlaceholderStage, Shot, Stage, StageOutput


class TemporalMean(Stage):
    """Test stage: mean of a ±radius window, recording which frames each window held."""

    name = "denoise"
    title = "test mean"
    params = declare(Param("radius", "int", 1, "window radius", minimum=0, maximum=3))

    def __init__(self) -> None:
        self.windows: dict[int, list[int]] = {}

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return params["radius"]

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        self.windows[window.index] = list(window.indices)
        return StageOutput(np.mean(window.frames, axis=0).astype(np.float32), {"held": list(window.indices)})


class ShotMean(Stage):
    """Test stage with a per-shot analysis: subtracts the shot's mean level."""

    name = "color"
    title = "test shot mean"
    params = declare(Param("on", "bool", True, "unused"))
    analyzed: list[Shot] = []

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return True

    def analyze(self, frames, shot, params):
        ShotMean.analyzed.append(shot)
        return float(np.mean([f.mean() for _, f in frames]))

    def process(self, window, params, analysis):
        return StageOutput(window.current - analysis + 0.5)


@pytest.fixture
def test_stages(monkeypatch):
    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "denoise", TemporalMean)
    monkeypatch.setitem(stage_module._REGISTRY, "color", ShotMean)
    ShotMean.analyzed = []


def ramp_clip(count: int, size=(6, 8)) -> list[np.ndarray]:
    return [np.full((*size, 3), i / 100.0, np.float32) for i in range(count)]


def test_mirror_index_stays_inside_shot():
    shot = Shot(5, 10)
    assert [mirror_index(i, shot) for i in (3, 4, 5, 9, 10, 11)] == [7, 6, 5, 9, 8, 7]
    assert mirror_index(-4, Shot(0, 2)) == 0
    assert mirror_index(3, Shot(3, 4)) == 3


def test_shots_from_cuts_and_lookup():
    shots = shots_from_cuts([5, 0, 12, 99], 15)
    assert shots == [Shot(0, 5), Shot(5, 12), Shot(12, 15)]
    assert shot_at(shots, 11) == Shot(5, 12)
    with pytest.raises(IndexError):
        shot_at(shots, 15)


def test_windows_never_cross_a_cut(test_stages):
    pipeline = Pipeline(ArraySource(ramp_clip(10)), settings_for(["denoise"], {"denoise": {"radius": 2}}),
                        shots=[Shot(0, 5), Shot(5, 10)])
    list(pipeline.frames())
    windows = pipeline.nodes[0].stage.windows
    assert windows[4] == [2, 3, 4, 3, 2]
    assert windows[5] == [7, 6, 5, 6, 7]
    assert windows[0] == [2, 1, 0, 1, 2]


def test_preview_of_any_frame_equals_the_render(test_stages):
    frames = [np.random.default_rng(i).random((6, 8, 3), dtype=np.float32) for i in range(12)]
    settings = settings_for(["denoise", "color"], {"denoise": {"radius": 2}})
    shots = [Shot(0, 7), Shot(7, 12)]
    rendered = dict(Pipeline(ArraySource(frames), settings, shots=shots).frames())
    for index in (11, 0, 6, 7, 3):
        fresh = Pipeline(ArraySource(frames), settings, shots=shots)
        assert np.array_equal(fresh.frame(index), rendered[index])
    again = dict(Pipeline(ArraySource(frames), settings, shots=shots).frames())
    assert all(np.array_equal(again[i], rendered[i]) for i in rendered)


def test_output_after_each_stage_and_side_data(test_stages):
    frames = ramp_clip(6)
    pipeline = Pipeline(ArraySource(frames), settings_for(["denoise", "color"]), shots=[Shot(0, 6)])
    assert pipeline.active == ["denoise", "color"]
    assert np.array_equal(pipeline.frame(2, after="source"), frames[2])
    assert np.allclose(pipeline.frame(2, after="denoise"), frames[2])  # mean of a linear ramp is its centre
    assert np.allclose(pipeline.frame(2, after="stabilize"), frames[2])  # before denoise: the source
    assert pipeline.side_data(2)["denoise"] == {"held": [1, 2, 3]}
    with pytest.raises(ParamError, match="unknown stage"):
        pipeline.frame(2, after="grading")
    with pytest.raises(ParamError, match="outside"):
        pipeline.frame(6)


def test_analysis_runs_once_per_shot(test_stages):
    pipeline = Pipeline(ArraySource(ramp_clip(9)), settings_for(["color"]), shots=[Shot(0, 4), Shot(4, 9)])
    out = dict(pipeline.frames())
    assert ShotMean.analyzed == [Shot(0, 4), Shot(4, 9)]
    assert np.allclose(out[0], 0.5 - 0.015) and np.allclose(out[4], 0.5 - 0.02)


def test_caches_stay_bounded_over_a_long_clip(test_stages):
    frames = ramp_clip(400, size=(2, 2))
    pipeline = Pipeline(ArraySource(frames), settings_for(["denoise", "color"], {"denoise": {"radius": 3}}),
                        shots=[Shot(0, 400)])
    for _ in pipeline.frames():
        pass
    source_cache = pipeline._source_node.cache
    assert source_cache.capacity == 8 and len(source_cache._items) <= 8
    assert all(len(node.cache._items) <= node.cache.capacity <= 8 for node in pipeline.nodes)


class UnfinishedDust(PlaceholderStage):
    name = "dust"
    title = "unfinished"
    params = declare(Param("sensitivity", "float", 0.5, "unused", minimum=0.0, maximum=1.0))


def test_placeholder_stages_are_bypass_only(monkeypatch):
    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "dust", UnfinishedDust)
    with pytest.raises(StageNotImplemented, match="stage dust"):
        settings_for(["dust"])
    pipeline = Pipeline(ArraySource(ramp_clip(3)), {"dust": StageSetting(True)})
    assert pipeline.skipped == ["dust"] and pipeline.active == []
    assert np.array_equal(pipeline.frame(1), ramp_clip(3)[1])
    with pytest.raises(StageNotImplemented, match="not implemented yet"):
        UnfinishedDust().process(None, {}, None)


def test_unknown_stage_and_bad_param_are_named():
    with pytest.raises(ParamError, match="stage grading: unknown stage"):
        Pipeline(ArraySource(ramp_clip(2)), {"grading": StageSetting(True)})
    with pytest.raises(ParamError, match=r"deflicker\.window: 0 is below the minimum 1"):
        Pipeline(ArraySource(ramp_clip(2)), {"deflicker": StageSetting(False, {"window": 0})})
    with pytest.raises(ParamError, match=r"sr\.bogus: unknown parameter"):
        Pipeline(ArraySource(ramp_clip(2)), {"sr": StageSetting(False, {"bogus": 1})})


def test_cut_detection_finds_a_hard_cut():
    rng = np.random.default_rng(3)
    first = rng.random((72, 96, 3), dtype=np.float32)
    second = np.roll(1.0 - first, 17, axis=1)
    clip = [first] * 12 + [second] * 12
    assert detect_cuts(enumerate(clip), 24) == [12]
    assert detect_cuts(enumerate([first] * 20), 24) == []


def test_temporal_pipeline_detects_shots_itself(test_stages):
    rng = np.random.default_rng(5)
    a, b = rng.random((48, 64, 3), dtype=np.float32), rng.random((48, 64, 3), dtype=np.float32)
    out = run_stage_on_frames("denoise", [a] * 10 + [b] * 10, {"radius": 2})
    assert np.allclose(out[9], a, atol=1e-6) and np.allclose(out[10], b, atol=1e-6)  # mixing shots would blend


def test_adopt_keeps_unchanged_leading_stages_and_recomputes_the_rest(test_stages):
    frames = [np.random.default_rng(i).random((6, 8, 3), dtype=np.float32) for i in range(8)]
    source, shots = ArraySource(frames), [Shot(0, 8)]
    first = Pipeline(source, settings_for(["denoise", "color"], {"denoise": {"radius": 1}}), shots=shots)
    before = first.frame(3)
    denoise_stage = first.nodes[0].stage
    computed = dict(denoise_stage.windows)
    ShotMean.analyzed = []

    edited = Pipeline(source, settings_for(["denoise", "color"], {"denoise": {"radius": 1}}), shots=shots)
    assert edited.adopt(first) == 2
    assert np.array_equal(edited.frame(3), before)
    assert edited.nodes[0].stage.windows == computed and ShotMean.analyzed == []  # nothing computed again

    changed = Pipeline(source, settings_for(["denoise", "color"], {"denoise": {"radius": 2}}), shots=shots)
    assert changed.adopt(edited) == 0  # the first stage changed: every output downstream is stale
    assert changed.frame(3).shape == before.shape and ShotMean.analyzed == [Shot(0, 8)]
    assert Pipeline(ArraySource(frames), settings_for(["denoise"])).adopt(first) == 0  # another source
