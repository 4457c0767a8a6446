"""Issue 16's bad-input campaign kept as named cases: each ends in one line (exit 2, nothing written) or a result."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_sequence, make_video

from restoration.cli import main
from restoration.errors import MediaError
from restoration.io import open_source
from restoration.pipeline import ArraySource, Pipeline, settings_for


def run(capsys, *args: object) -> tuple[int, list[str]]:
    """Exit code and stderr lines of one in-process command (progress lines left out)."""
    code = main([str(a) for a in args])
    err = [line for line in capsys.readouterr().err.splitlines() if line and not line.startswith(("render:", "cuts:",
                                                                                                 "analyze "))]
    return code, err


def assert_one_line(code: int, err: list[str], *words: str) -> str:
    assert code == 2, err
    errors = [line for line in err if not line.startswith("filmrestore: note:")]
    assert len(errors) == 1 and errors[0].startswith("filmrestore: error: "), err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def nothing_written(folder: Path, keep: set[str]) -> bool:
    return {p.name for p in folder.iterdir()} <= keep


# --- tracebacks: tiny frames -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("stages", ["deflicker", "deflicker,color", "all"])
def test_tiny_source_is_refused_naming_the_source_and_the_size_needed(tmp_path, capsys, size, stages):
    make_sequence(tmp_path / "scan", 3, width=size, height=size, bits=16)
    code, err = run(capsys, "render", tmp_path / "scan", "-o", tmp_path / "out.mkv", "--stages", stages)
    first = "dust" if stages == "all" else "deflicker"
    need = {"dust": "16x16", "deflicker": "4x4"}[first]
    assert_one_line(code, err, str(tmp_path / "scan"), f"{size}x{size}", need, first)
    assert nothing_written(tmp_path, {"scan"})


@pytest.mark.parametrize("stage, need", [("dust", 16), ("deflicker", 4), ("denoise", 8)])
def test_each_stage_works_at_its_minimum_size_and_refuses_below(stage, need):
    for width, height in ((need, need), (need, 40), (40, need)):
        frames = [np.random.default_rng(i).random((height, width, 3), dtype=np.float32) for i in range(3)]
        out = [f for _, f in Pipeline(ArraySource(frames), settings_for([stage])).frames()]
        assert out[0].shape == (height, width, 3) and np.isfinite(out[0]).all()
    for width, height in ((need - 1, need - 1), (need - 1, 40), (40, need - 1)):
        frames = [np.zeros((height, width, 3), np.float32)] * 3
        with pytest.raises(MediaError, match=f"{width}x{height} frames are smaller than the {need}x{need}"):
            Pipeline(ArraySource(frames), settings_for([stage]))


def test_tiny_source_with_stages_that_need_no_area_is_restored(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 3, width=1, height=1, bits=16)
    code, err = run(capsys, "render", tmp_path / "scan", "-o", tmp_path / "out", "--stages", "stabilize,color")
    assert code == 0, err
    assert len([p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]) == 3  # and our manifest


# --- tracebacks: deeply nested JSON --------------------------------------------------------------------------------

def test_project_nested_100000_deep_is_one_line(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 2, width=16, height=16, bits=8)
    project = tmp_path / "deep.json"
    project.write_text("[" * 100_000 + "]" * 100_000)
    code, err = run(capsys, "render", tmp_path / "scan", "-o", tmp_path / "out.mkv", "--project", project)
    assert_one_line(code, err, str(project), "nested too deeply")
    assert nothing_written(tmp_path, {"scan", "deep.json"})


def test_set_value_nested_too_deeply_is_one_line(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 2, width=16, height=16, bits=8)
    code, err = run(capsys, "render", tmp_path / "scan", "-o", tmp_path / "out.mkv",
                    "--set", "color.neutral=" + "[" * 50_000)
    assert_one_line(code, err, "--set color.neutral", "nested too deeply")


# --- misleading lines ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("percent", [90, 95, 50])
def test_mp4_cut_short_says_truncated_and_where(tmp_path, capsys, percent):
    whole = tmp_path / "clip.mp4"
    make_video(whole, 24, 64, 48, audio=True)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * percent // 100])
    code, err = run(capsys, "probe", cut)
    line = assert_one_line(code, err, str(cut), "truncated", f"ends at byte {cut.stat().st_size}")
    assert "no video stream" not in line


def test_audio_only_file_still_says_it_has_no_video(tmp_path, capsys):
    path = tmp_path / "tone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    code, err = run(capsys, "probe", path)
    assert_one_line(code, err, str(path), "has no video stream", "audio")


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("bits", [8, 16])
def test_ffv1_master_of_tiny_frames_is_written_bit_exact(tmp_path, capsys, size, bits):
    _, frames = make_sequence(tmp_path / "scan", 3, width=size, height=size, bits=bits)
    out = tmp_path / "tiny.mkv"
    code, err = run(capsys, "render", "--stages", "none", tmp_path / "scan", "-o", out)
    assert code == 0, err
    top = (1 << bits) - 1
    with open_source(out) as master:
        got = [np.round(f * top).astype(np.int64) for _, f in master.frames()]
    assert [g.tolist() for g in got] == [f.astype(np.int64).tolist() for f in frames]


def test_ffv1_keeps_its_sixteen_slices_where_the_picture_allows(tmp_path):
    from restoration.export.targets import ffv1_slices

    assert ffv1_slices(64, 48, 16) == 16 and ffv1_slices(4, 4000, 16) == 16
    assert ffv1_slices(3, 3, 16) == 4 and ffv1_slices(2, 64, 16) == 4
    assert ffv1_slices(1, 1, 16) == 1 and ffv1_slices(4000, 1, 16) == 1


@pytest.mark.parametrize("command", ["probe", "render"])
def test_symlink_loop_source_says_loop(tmp_path, capsys, command):
    os.symlink(tmp_path / "b.mp4", tmp_path / "a.mp4")
    os.symlink(tmp_path / "a.mp4", tmp_path / "b.mp4")
    args = [command, tmp_path / "a.mp4"] + (["-o", tmp_path / "out.mkv"] if command == "render" else [])
    line = assert_one_line(*run(capsys, *args), str(tmp_path / "a.mp4"), "symbolic-link loop")
    assert "not found" not in line
    assert nothing_written(tmp_path, {"a.mp4", "b.mp4"})


def test_symlink_loop_project_says_loop(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 2, width=16, height=16, bits=8)
    os.symlink(tmp_path / "p.json", tmp_path / "p.json")
    code, err = run(capsys, "render", tmp_path / "scan", "-o", tmp_path / "out.mkv", "--project", tmp_path / "p.json")
    assert_one_line(code, err, str(tmp_path / "p.json"), "symbolic-link loop")


def test_dangling_symlink_names_its_target(tmp_path, capsys):
    os.symlink(tmp_path / "gone" / "reel.mov", tmp_path / "reel.mov")
    code, err = run(capsys, "probe", tmp_path / "reel.mov")
    assert_one_line(code, err, str(tmp_path / "reel.mov"), "symbolic link to", "does not exist")


# --- found by tests/test_fuzz.py ------------------------------------------------------------------------------------

def test_dpx_with_unreadable_header_text_still_probes(tmp_path, capsys):
    from media import pattern_frame

    from restoration.io import write_image

    path = tmp_path / "scan.dpx"
    write_image(path, pattern_frame(1, 32, 24, 10).astype(np.float32) / 1023, bits=10)
    data = bytearray(path.read_bytes())
    data[160] = 0xAE  # first byte of the creator field: not UTF-8
    path.write_bytes(bytes(data))
    code, err = run(capsys, "probe", path)
    assert code == 0, err


def test_damaged_audio_track_header_is_one_line_naming_the_source(tmp_path, capsys):
    path = tmp_path / "clip.mp4"
    make_video(path, 6, 32, 24, audio=True)
    data = bytearray(path.read_bytes())
    sound = data.find(b"hdlr" + bytes(8) + b"soun")
    data[sound - 3] |= 0x04  # the audio track's handler box now claims 256 KiB
    path.write_bytes(bytes(data))
    code, err = run(capsys, "render", "--stages", "none", path, "-o", tmp_path / "out.mkv")
    assert_one_line(code, err, str(path), "audio stream 1", "cannot be carried")
    assert nothing_written(tmp_path, {"clip.mp4"})


def test_mp4_with_garbage_where_a_box_should_be_says_where(tmp_path, capsys):
    path = tmp_path / "clip.mp4"
    make_video(path, 6, 32, 24, audio=False)
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat") - 4
    data[mdat:mdat + 8] = b"\x00\x00\x00\x10\x9b\xfe\x01\x02"  # a small box with an unprintable type
    path.write_bytes(bytes(data))
    code, err = run(capsys, "probe", path)
    line = assert_one_line(code, err, str(path), "damaged: no valid box at byte 40")
    assert line.isprintable()


def test_project_that_is_not_utf8_says_so(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 2, width=16, height=16, bits=8)
    project = tmp_path / "p.json"
    project.write_bytes(b'{"name": "\xae"}')
    code, err = run(capsys, "render", tmp_path / "scan", "-o", tmp_path / "out.mkv", "--project", project)
    assert_one_line(code, err, str(project), "not UTF-8", "byte 10")
