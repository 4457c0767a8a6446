"""Stage analyses split into an expensive measurement and a cheap fit: a fit-only edit never measures again."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest

from restoration import stages as stage_module
from restoration.analysis_cache import AnalysisCache
from restoration.params import Param, declare
from restoration.pipeline import ArraySource, Pipeline, StageSetting
from restoration.stage import Shot, Stage, StageOutput


class SplitLevel(Stage):
    """Test stage: measures each frame's mean (expensive, counted), fits the shot's level from them with a
    `smoothing` (fit only) and subtracts `offset`-scaled levels (`offset` feeds the measurement)."""

    name = "color"
    title = "test split level"
    splits_analysis = True
    params = declare(
        Param("offset", "float", 0.0, "added to every measured mean", minimum=-1, maximum=1),
        Param("smoothing", "float", 0.0, "blend of the per-frame means toward their average", minimum=0,
              maximum=1, fit_only=True),
    )
    measured: list[tuple[Shot, dict[str, Any]]] = []
    fitted: list[tuple[Shot, dict[str, Any]]] = []

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return True

    def measure(self, frames, shot, params):
        SplitLevel.measured.append((shot, dict(params)))
        return {i: float(f.mean()) + params["offset"] for i, f in frames}

    def fit(self, measurement, shot, params):
        SplitLevel.fitted.append((shot, dict(params)))
        average = float(np.mean(list(measurement.values())))
        s = params["smoothing"]
        return {i: (1 - s) * m + s * average for i, m in measurement.items()}

    def process(self, window, params, analysis):
        return StageOutput((window.current * 0 + analysis[window.index]).astype(np.float32))


class Unsplit(Stage):
    """A stage that only overrides analyze (every stage before the split): behaves exactly as before."""

    name = "denoise"
    title = "test unsplit"
    params = declare(Param("gain", "float", 1.0, "scale", minimum=0, maximum=2))
    calls = 0

    def needs_analysis(self, params):
        return True

    def analyze(self, frames, shot, params):
        Unsplit.calls += 1
        return float(np.mean([f.mean() for _, f in frames]))

    def process(self, window, params, analysis):
        return StageOutput(window.current * params["gain"])


@pytest.fixture
def split_stages(monkeypatch):
    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "color", SplitLevel)
    monkeypatch.setitem(stage_module._REGISTRY, "denoise", Unsplit)
    SplitLevel.measured, SplitLevel.fitted = [], []
    Unsplit.calls = 0


def _frames(n=8):
    rng = np.random.default_rng(3)
    return [np.full((8, 8, 3), v, np.float32) for v in rng.uniform(0.2, 0.8, n)]


def _settings(offset=0.0, smoothing=0.0, denoise=False, gain=1.0):
    return {"color": StageSetting(True, {"offset": offset, "smoothing": smoothing}),
            "denoise": StageSetting(denoise, {"gain": gain})}


SHOTS = [Shot(0, 8)]


def test_param_fit_only_and_measured_values():
    params = SplitLevel.params
    assert params.fit_only_names() == ["smoothing"]
    assert params.measured({"offset": 0.1, "smoothing": 0.5}) == {"offset": 0.1}
    assert not Param("x", "int", 1, "h").fit_only


def test_base_analyze_is_fit_of_measure(split_stages):
    stage = SplitLevel()
    frames = _frames()
    params = {"offset": 0.0, "smoothing": 1.0}
    analysis = stage.analyze(enumerate(frames), SHOTS[0], params)
    assert len(SplitLevel.measured) == 1 and len(SplitLevel.fitted) == 1
    assert all(v == pytest.approx(np.mean([f.mean() for f in frames])) for v in analysis.values())
    assert Stage().analyze(iter([]), SHOTS[0], {}) is None  # a stage with no shot pass still gets None


def test_fit_only_edit_refits_without_measuring_again_in_memory(split_stages):
    source = ArraySource(_frames())
    first = Pipeline(source, _settings(smoothing=0.0), shots=SHOTS)
    sharp = first.frame(3)
    assert len(SplitLevel.measured) == 1

    second = Pipeline(source, _settings(smoothing=1.0), shots=SHOTS)
    second.adopt(first)
    smooth = second.frame(3)
    assert len(SplitLevel.measured) == 1, "a fit-only change measured the shot again"
    assert len(SplitLevel.fitted) == 2
    assert not np.allclose(sharp, smooth)  # the fit really used the new value

    third = Pipeline(source, _settings(offset=0.1, smoothing=1.0), shots=SHOTS)
    third.adopt(second)
    third.frame(3)
    assert len(SplitLevel.measured) == 2, "a measured parameter's change must measure again"
    assert SplitLevel.measured[-1][1]["offset"] == 0.1


def _adopt_after_gain_change(gain: float) -> None:
    """Render frame 0 at gain 1, then again with another `gain` upstream, adopting the first pipeline's work."""
    source = ArraySource(_frames())
    first = Pipeline(source, _settings(denoise=True, gain=1.0), shots=SHOTS)
    first.frame(0)
    second = Pipeline(source, _settings(denoise=True, gain=gain), shots=SHOTS)
    second.adopt(first)
    second.frame(0)


def test_upstream_change_measures_again(split_stages):
    _adopt_after_gain_change(0.5)
    assert len(SplitLevel.measured) == 2  # its input changed: the old measurement is of other frames


def test_measurement_is_kept_on_disk_under_the_measured_params(split_stages, tmp_path):
    source = ArraySource(_frames())
    def cache():
        return AnalysisCache(tmp_path, {"path": "clip"}, {"rate": None, "fields": None})
    Pipeline(source, _settings(smoothing=0.0), shots=SHOTS, analysis_cache=cache()).frame(2)
    assert len(SplitLevel.measured) == 1
    # a new session (no adoption), another smoothing: the fit is redone from the measurement on disk
    result = Pipeline(source, _settings(smoothing=0.7), shots=SHOTS, analysis_cache=cache()).frame(2)
    assert len(SplitLevel.measured) == 1 and len(SplitLevel.fitted) == 2
    fresh = Pipeline(source, _settings(smoothing=0.7), shots=SHOTS).frame(2)  # no cache: measured afresh
    assert len(SplitLevel.measured) == 2
    np.testing.assert_array_equal(result, fresh)
    # another offset is another measurement
    Pipeline(source, _settings(offset=-0.1, smoothing=0.7), shots=SHOTS, analysis_cache=cache()).frame(2)
    assert len(SplitLevel.measured) == 3
    keys = {cache().measurement_key([], "color", {"offset": 0.0}, SHOTS[0]),
            cache().key([], "color", {"offset": 0.0}, SHOTS[0])}
    assert len(keys) == 2  # a measurement never answers for an analysis


def test_unsplit_stage_analyses_as_before(split_stages):
    _adopt_after_gain_change(1.5)
    assert Unsplit.calls == 2  # no fit-only params: any change of its own analyses the shot again


def test_builtin_fit_only_params_belong_to_splitting_stages():
    for cls in stage_module.stage_classes():
        if cls.params.fit_only_names():
            assert cls.splits_analysis, f"{cls.name}: fit_only params {cls.params.fit_only_names()} but no split"


def test_render_keeps_the_measurement_and_a_fit_only_edit_renders_without_measuring(tmp_path, split_stages,
                                                                                     monkeypatch):
    from test_render_engine import framemd5, make_clip_with_cut, project_for

    from restoration.render import render_project

    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path / "cache"))
    clip = make_clip_with_cut(tmp_path / "clip", 24, 12, width=32, height=24)
    project = project_for(clip, ("color",))
    project.stages["color"].params = {"offset": 0.0, "smoothing": 0.0}
    render_project(project, tmp_path / "a.mkv", workers=1)
    assert sorted(s.start for s, _ in SplitLevel.measured) == [0, 12]
    project.stages["color"].params = {"offset": 0.0, "smoothing": 1.0}
    result = render_project(project, tmp_path / "b.mkv", workers=1)
    assert len(SplitLevel.measured) == 2, "the render measured again for a fit-only change"
    assert result.calls["analyze"]["color"] == 0
    assert framemd5(tmp_path / "b.mkv") != framemd5(tmp_path / "a.mkv")
    # the same as a render that measured afresh
    monkeypatch.setenv("FILMRESTORE_CACHE", "off")
    render_project(project, tmp_path / "c.mkv", workers=1)
    assert len(SplitLevel.measured) == 4
    assert framemd5(tmp_path / "c.mkv") == framemd5(tmp_path / "b.mkv")
    # and the preview pipeline finds the render's measurement too
    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path / "cache"))
    from restoration.io import open_source

    with open_source(str(clip)) as source:
        cache = AnalysisCache.for_source(source.info)
        settings = {"color": StageSetting(True, {"offset": 0.0, "smoothing": 0.4})}
        Pipeline(source, settings, shots=[Shot(0, 12), Shot(12, 24)], analysis_cache=cache).frame(14)
    assert len(SplitLevel.measured) == 4
