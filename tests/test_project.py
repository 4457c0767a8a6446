"""Projects and presets: round trip, every bad field reported by name, parameter declarations."""

from __future__ import annotations

import json
import os
import stat

import pytest

from restoration.errors import ParamError, ProjectError
from restoration.params import Param, declare
from restoration.project import Project, load_preset, load_project, preset_names, project_from_dict
from restoration.stage import STAGE_ORDER
from restoration.stages import stage_classes


def test_every_stage_declares_complete_parameters():
    assert [c.name for c in stage_classes()] == list(STAGE_ORDER)
    for cls in stage_classes():
        assert cls.title and len(cls.params) > 0
        for p in cls.params:
            assert p.help and p.validate(p.default) == p.default
            if p.kind in ("float", "int"):
                assert p.minimum is not None and p.maximum is not None and p.minimum <= p.default <= p.maximum


def test_param_validation_and_parsing():
    p = Param("strength", "float", 0.5, "how much", minimum=0.0, maximum=1.0, unit="x")
    assert p.parse("0.25") == 0.25
    with pytest.raises(ParamError, match="above the maximum 1 x"):
        p.parse("2")
    with pytest.raises(ParamError, match="not a number"):
        p.validate("a lot")
    flag = Param("on", "bool", False, "switch")
    assert flag.parse("on") is True and flag.parse("0") is False
    with pytest.raises(ParamError):
        flag.parse("maybe")
    mode = Param("mode", "choice", "a", "pick", choices=("a", "b"))
    with pytest.raises(ParamError, match="not one of a, b"):
        mode.validate("c")
    count = Param("n", "int", 1, "count", minimum=1, maximum=5)
    assert count.parse("3") == 3
    with pytest.raises(ParamError, match="whole number"):
        count.validate(2.5)
    with pytest.raises(ValueError):
        declare(p, p)


def test_project_round_trip(tmp_path):
    project = Project(source=str(tmp_path / "clip.mkv"), range=(10, 20), name="reel 3", source_frame_rate="24000/1001")
    project.stages["deflicker"].enabled = True
    project.set_param("deflicker", "window", 11)
    project.set_param("sr", "mode", "perceptual")
    project.export = {"format": "prores"}
    path = project.save(tmp_path / "reel3.json")
    loaded = load_project(path)
    assert loaded.to_dict()["stages"] == project.to_dict()["stages"]
    assert loaded.range == (10, 20) and loaded.export == {"format": "prores"} and loaded.name == "reel 3"
    assert loaded.source == str((tmp_path / "clip.mkv").resolve())
    assert loaded.source_frame_rate == "24000/1001"
    assert not list(tmp_path.glob("*.partial"))
    assert json.loads(path.read_text())["source"] == "clip.mkv"  # beside the project: stored relative to it


def test_a_project_renders_from_wherever_it_is_opened(tmp_path, monkeypatch):
    """A source named relative to the working folder is saved so that the file finds it from anywhere."""
    (tmp_path / "demo" / "scan").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    Project(source="demo/scan").save("demo/demo.json")
    assert json.loads((tmp_path / "demo" / "demo.json").read_text())["source"] == "scan"
    monkeypatch.chdir(tmp_path / "demo")
    assert load_project("demo.json").source == str((tmp_path / "demo" / "scan").resolve())
    elsewhere = tmp_path / "archive" / "reel.mkv"
    Project(source=str(elsewhere)).save(tmp_path / "demo" / "other.json")
    assert json.loads((tmp_path / "demo" / "other.json").read_text())["source"] == str(elsewhere)
    assert load_project(tmp_path / "demo" / "other.json").source == str(elsewhere)  # absolute paths keep working


def test_a_saved_project_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = Project().save(tmp_path / "p.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_project_reports_every_bad_field(tmp_path):
    bad = {
        "format": "filmrestore-project", "version": 1, "colour": "yes", "range": [5, 2],
        "source_frame_rate": "fast",
        "stages": {
            "dust": {"enabled": "yes", "params": {"sensitivity": 4, "min_size": 3}},
            "sr": {"params": {"mode": "dream", "scale": 9}},
            "grading": {"enabled": True},
        },
        "export": {"format": "gif"},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for field in ("colour: unknown field", "range:", "source_frame_rate:", "stages.dust.enabled",
                  "stages.dust.params.sensitivity: 4 is above the maximum 1", "stages.sr.params.mode",
                  "stages.sr.params.scale", "stages.grading: unknown stage", "export.format"):
        assert field in message
    assert "\n" not in message
    assert len(caught.value.problems) == 9


def test_unreadable_project_files(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(ProjectError, match="not valid JSON"):
        load_project(broken)
    with pytest.raises(ProjectError, match="version"):
        project_from_dict({"version": 99})


def test_presets_load_and_validate():
    names = preset_names()
    assert {"archival-master", "access-copy"} <= set(names)
    for name in names:
        project = load_preset(name)
        assert project.source is None
        assert project.to_dict()["stages"].keys() == set(STAGE_ORDER)
    with pytest.raises(ProjectError, match="no such preset"):
        load_preset("nope")
