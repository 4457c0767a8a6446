"""Nothing of an archive's data is lost silently: bit depth, geometry/colour/timing metadata, fields (issue 16)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_interlaced_video, make_sequence, make_video, moving_frame

from restoration.cli import main
from restoration.errors import ProjectError
from restoration.io import open_source, probe
from restoration.project import Project, load_project, project_from_dict

W, H = 64, 48


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("filmrestore: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def mixed_depth_sequence(folder: Path, fmt: str = "png") -> list[np.ndarray]:
    """Frames 0-1 at 8 bits, 2-3 at 16 bits; returns each frame's values on the 16-bit scale."""
    _, low = make_sequence(folder, 2, W, H, bits=8, fmt=fmt)
    _, high = make_sequence(folder, 2, W, H, bits=16, fmt=fmt, start_number=2)
    return [v.astype(np.uint16) * 257 for v in low] + list(high)


# --- bit depth -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_probe_reports_the_deepest_frame_of_a_sequence(tmp_path, fmt):
    mixed_depth_sequence(tmp_path / "scan", fmt)
    assert probe(tmp_path / "scan").bit_depth == 16


def test_mixed_8_and_16_bit_sequence_makes_a_16_bit_ffv1_master(tmp_path):
    want = mixed_depth_sequence(tmp_path / "scan")
    out = tmp_path / "master.mkv"
    assert main(["render", str(tmp_path / "scan"), "-o", str(out), "--stages", "none"]) == 0
    with av.open(str(out)) as container:
        got = [f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]
    assert len(got) == 4
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    record = json.loads((tmp_path / "master.mkv.provenance.json").read_text())
    assert record["source"]["bit_depth"] == 16 and record["output"]["bit_depth"] == 16


@pytest.mark.parametrize("fmt, out_name, depth", [("h264", "o.mp4", 8), ("prores", "o.mov", 10),
                                                   ("dpx", "o_dpx", 10)])
def test_a_format_too_shallow_for_the_source_is_refused(tmp_path, capsys, fmt, out_name, depth):
    make_sequence(tmp_path / "scan", 2, W, H, bits=16, fmt="png")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["render", "--stages", "none", str(tmp_path / "scan"), "-o", str(tmp_path / out_name), "--format", fmt])
    line = one_error_line(capsys)
    assert code == 2
    assert out_name in line and f"{depth} bits" in line and "16-bit" in line and "--allow-depth-loss" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_depth_loss_when_asked_for_is_recorded(tmp_path):
    make_sequence(tmp_path / "scan", 2, W, H, bits=16, fmt="png")
    out = tmp_path / "access.mp4"
    assert main(["render", "--stages", "none", str(tmp_path / "scan"), "-o", str(out), "--allow-depth-loss"]) == 0
    record = json.loads((tmp_path / "access.mp4.provenance.json").read_text())
    assert record["export_settings"]["allow_depth_loss"] is True
    assert record["output"]["bit_depth"] == 8 and "16-bit source" in record["output"]["depth_loss"]


def test_a_format_deep_enough_needs_no_permission(tmp_path):
    make_sequence(tmp_path / "scan", 2, W, H, bits=10, fmt="dpx")
    assert main(["render", "--stages", "none", str(tmp_path / "scan"), "-o", str(tmp_path / "o.mov")]) == 0
    record = json.loads((tmp_path / "o.mov.provenance.json").read_text())
    assert record["output"]["bit_depth"] == 10 and "depth_loss" not in record["output"]


# --- geometry, colour and timing metadata --------------------------------------------------------

SD_TAGS = {"rotation": -90, "sample_aspect_ratio": Fraction(8, 9), "timecode": "01:00:00:00",
           "color_primaries": 6, "color_trc": 6, "colorspace": 6, "color_range": 1}


def test_probe_reads_rotation_aspect_colour_and_timecode(tmp_path):
    make_video(tmp_path / "tagged.mkv", 6, codec="libx264", audio=False, tags=dict(SD_TAGS))
    info = probe(tmp_path / "tagged.mkv")
    assert info.rotation == 270 and info.sample_aspect_ratio == Fraction(8, 9)
    assert info.timecode == "01:00:00:00"  # Matroska writes the tag as TIMECODE
    assert (info.color_primaries, info.color_transfer, info.color_matrix, info.color_range) == \
        ("smpte170m", "smpte170m", "smpte170m", "tv")
    assert info.field_order == "progressive" and not info.interlaced


@pytest.mark.parametrize("out_name, matrix, colour_range", [("m.mkv", "gbr", "pc"), ("m.mov", "bt709", "tv"),
                                                             ("m.mp4", "bt709", "tv")])
def test_master_carries_rotation_aspect_colour_and_timecode(tmp_path, out_name, matrix, colour_range):
    make_video(tmp_path / "tagged.mkv", 8, codec="libx264", audio=False, tags=dict(SD_TAGS))
    out = tmp_path / out_name
    assert main(["render", "--stages", "none", str(tmp_path / "tagged.mkv"), "-o", str(out), "--range", "2:8"]) == 0
    master = probe(out)
    assert master.rotation == 270  # the display matrix, as the source had it: frames are stored unrotated
    record = json.loads(out.with_name(out.name + ".provenance.json").read_text())
    if out_name.endswith(".mkv"):  # PyAV cannot set the stream's aspect for Matroska: the provenance says so
        assert record["output"]["metadata_not_held"] == ["sample_aspect_ratio"]
    else:
        assert master.sample_aspect_ratio == Fraction(8, 9) and record["output"]["metadata_not_held"] == []
    assert (master.color_primaries, master.color_transfer) == ("smpte170m", "smpte170m")
    assert (master.color_matrix, master.color_range) == (matrix, colour_range)
    assert master.timecode == "01:00:00:02"  # the timecode of the first rendered frame
    assert record["source"]["rotation"] == 270 and record["source"]["sample_aspect_ratio"] == "8/9"
    assert record["source"]["color_matrix"] == "smpte170m" and record["source"]["timecode"] == "01:00:00:00"
    assert record["output"]["metadata"]["rotation"] == 270 and record["output"]["metadata"]["timecode"] == "01:00:00:02"


def test_a_sequence_master_names_the_metadata_it_cannot_hold(tmp_path):
    make_video(tmp_path / "tagged.mkv", 3, codec="libx264", audio=False, tags=dict(SD_TAGS))
    assert main(["render", "--stages", "none", str(tmp_path / "tagged.mkv"), "-o", str(tmp_path / "frames"), "--format", "tiff"]) == 0
    record = json.loads((tmp_path / "frames.provenance.json").read_text())
    assert record["source"]["rotation"] == 270
    assert {"rotation", "sample_aspect_ratio", "timecode", "color_primaries"} <= set(record["output"]["metadata_not_held"])


# --- interlaced and telecined sources ------------------------------------------------------------

@pytest.fixture(scope="module")
def interlaced(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fields")
    clips = {"tff": folder / "tff.mpg", "bff": folder / "bff.mpg", "telecined": folder / "telecined.mpg",
             "progressive": folder / "progressive.mpg"}
    make_interlaced_video(clips["tff"], 30)
    make_interlaced_video(clips["bff"], 30, order="bff")
    make_interlaced_video(clips["telecined"], 0, telecine_from=48)
    make_video(clips["progressive"], 30, width=128, height=96, codec="mpeg2video", fps=Fraction(30000, 1001),
               audio=False)
    return clips


def test_probe_reports_field_order_and_pulldown(interlaced, capsys):
    assert (probe(interlaced["tff"]).field_order, probe(interlaced["tff"]).pulldown) == ("tff", None)
    assert probe(interlaced["bff"]).field_order == "bff"
    telecined = probe(interlaced["telecined"])
    assert telecined.pulldown == "3:2" and telecined.interlaced
    progressive = probe(interlaced["progressive"])
    assert (progressive.field_order, progressive.pulldown, progressive.interlaced) == ("progressive", None, False)
    assert main(["probe", str(interlaced["telecined"]), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["field_order"] == "tff" and shown["pulldown"] == "3:2"


@pytest.mark.parametrize("clip", ["tff", "telecined"])
@pytest.mark.parametrize("command", ["render", "preview"])
def test_fields_are_not_taken_for_frames_without_a_choice(tmp_path, interlaced, capsys, clip, command):
    out = tmp_path / ("o.mkv" if command == "render" else "o.png")
    extra = ["--frame", "3"] if command == "preview" else []
    assert main([command, str(interlaced[clip]), "-o", str(out), *extra]) == 2
    line = one_error_line(capsys)
    assert interlaced[clip].name in line and "--fields keep|deinterlace|ivtc" in line
    assert ("3:2" in line) == (clip == "telecined")
    assert list(tmp_path.iterdir()) == []


def comb(frame: np.ndarray) -> float:
    """Mean difference between each line and the average of its neighbours: high where fields disagree."""
    y = frame.mean(axis=2)
    return float(np.abs(y[1:-1] - (y[:-2] + y[2:]) / 2).mean())


def test_keep_and_deinterlace_are_recorded_and_deinterlace_removes_combing(tmp_path, interlaced):
    kept, smooth = tmp_path / "kept.mkv", tmp_path / "smooth.mkv"
    assert main(["render", "--stages", "none", str(interlaced["tff"]), "-o", str(kept), "--fields", "keep"]) == 0
    assert main(["render", "--stages", "none", str(interlaced["tff"]), "-o", str(smooth), "--fields", "deinterlace"]) == 0
    assert probe(kept).field_order == "tff" and probe(smooth).field_order == "progressive"
    with open_source(kept) as a, open_source(smooth) as b:
        assert len(a) == len(b) == 30
        combing = [(comb(a.frame(i)), comb(b.frame(i))) for i in range(5, 25)]
    assert np.mean([k for k, _ in combing]) > 2 * np.mean([d for _, d in combing])
    kept_record = json.loads((tmp_path / "kept.mkv.provenance.json").read_text())
    record = json.loads((tmp_path / "smooth.mkv.provenance.json").read_text())
    assert kept_record["provenance"]["fields"]["handling"] == "keep"
    assert record["provenance"]["fields"]["handling"] == "deinterlace"
    assert record["provenance"]["fields"]["filters"].startswith("bwdif=")
    assert record["provenance"]["fields"]["source_field_order"] == "tff"


def test_ivtc_restores_the_film_frames_and_rate(tmp_path, interlaced):
    out = tmp_path / "film.mkv"
    assert main(["render", "--stages", "none", str(interlaced["telecined"]), "-o", str(out), "--fields", "ivtc"]) == 0
    master = probe(out)
    assert master.frame_count == 48 and master.frame_rate == Fraction(24000, 1001)
    with open_source(out) as film:
        for i in (0, 7, 23, 40, 47):  # each frame is the film frame, not a mix of two
            want = moving_frame(3 * i, 128, 96).astype(np.float32) / 255
            assert np.abs(film.frame(i) - want).mean() < 0.03, i
    record = json.loads((tmp_path / "film.mkv.provenance.json").read_text())
    assert record["provenance"]["fields"]["handling"] == "ivtc"
    assert record["provenance"]["fields"]["source_frames"] == 60
    assert record["provenance"]["fields"]["source_pulldown"] == "3:2"


def test_field_choice_random_access_matches_streaming(interlaced):
    from restoration.io.probe import open_with_fields

    with open_with_fields(interlaced["telecined"], fields="ivtc") as source:
        streamed = [frame for _, frame in source.frames()]
        for i in (0, 15, 16, 33, 47):
            assert np.array_equal(source.frame(i), streamed[i])


def test_project_holds_the_field_choice(tmp_path, interlaced):
    project = Project(source=str(interlaced["tff"]), fields="deinterlace")
    project.save(tmp_path / "p.json")
    assert load_project(tmp_path / "p.json").fields == "deinterlace"
    with pytest.raises(ProjectError, match="fields"):
        project_from_dict({"fields": "weave"})
    assert main(["render", "--project", str(tmp_path / "p.json"), "-o", str(tmp_path / "o.mkv")]) == 0
