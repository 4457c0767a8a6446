"""The `filmrestore` command end to end: bit-exact bypass renders, audio and VFR kept, flat memory, bad input."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from media import make_sequence, make_video

from restoration import stages as stage_module
from restoration.cli import main
from restoration.io import open_source, read_image
from restoration.params import Param, declare
from restoration.stage import FrameWindow, Stage, StageOutput

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed entry point in a fresh process, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "restoration.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def decode_rgb48(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gbrp16le") for f in container.decode(video=0)]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name or p.name.startswith("."))


@pytest.mark.parametrize("fmt", ["tiff", "png", "dpx"])
def test_16bit_sequence_bypass_to_ffv1_is_bit_exact(tmp_path, fmt):
    _, frames = make_sequence(tmp_path / "scan", 4, bits=16, fmt=fmt, start_number=86400)
    out = tmp_path / "master.mkv"
    assert main(["render", str(tmp_path / "scan"), "-o", str(out), "--stages", "none"]) == 0
    with open_source(out) as master:
        assert master.info.bit_depth == 16
        decoded = [np.round(frame * 65535).astype(np.uint16) for _, frame in master.frames()]
    assert len(decoded) == len(frames)
    for got, want in zip(decoded, frames):
        assert np.array_equal(got, want)


def test_16bit_sequence_bypass_to_tiff_keeps_values_and_numbers(tmp_path):
    paths, frames = make_sequence(tmp_path / "scan", 3, bits=16, fmt="dpx", start_number=1001)
    out = tmp_path / "reel1"
    assert main(["render", "--stages", "none", str(tmp_path / "scan"), "-o", str(out), "--format", "tiff"]) == 0
    written = sorted(p for p in out.iterdir() if not p.name.startswith("."))  # the manifest aside
    assert [p.name for p in written] == [f"reel1_{n:06d}.tif" for n in (1001, 1002, 1003)]
    for path, want in zip(written, frames):
        frame, bits = read_image(path)
        assert bits == 16 and np.array_equal(np.round(frame * 65535).astype(np.uint16), want)
    provenance = json.loads((tmp_path / "reel1.provenance.json").read_text())
    assert provenance["source"]["path"].endswith("scan") or "scan" in json.dumps(provenance["source"])
    assert "framemd5" in json.dumps(provenance)


def test_render_keeps_audio_in_sync_and_vfr_timestamps(tmp_path):
    source = tmp_path / "talkie.mkv"
    make_video(source, 30, codec="ffv1", vfr=True, audio=True)
    out = tmp_path / "restored.mkv"
    assert main(["render", "--stages", "none", str(source), "-o", str(out)]) == 0
    with open_source(source) as src, open_source(out) as dst:
        assert dst.info.variable_frame_rate
        assert [float(t) for t in dst.frame_times()] == pytest.approx([float(t) for t in src.frame_times()],
                                                                      abs=1e-3)
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = list(container.decode(video))
        video_end = float(frames[-1].time) + 0.04
        container.seek(0)
        audio_end = max(float(f.time) + f.samples / f.sample_rate for f in container.decode(audio))
    assert abs(audio_end - video_end) <= 1 / 24 + 1e-3


def test_range_render_with_h264_access_copy(tmp_path):
    source = tmp_path / "clip.mp4"
    make_video(source, 24, width=64, height=48, audio=True)
    out = tmp_path / "access.mp4"
    assert main(["render", "--stages", "none", str(source), "-o", str(out), "--range", "6:18"]) == 0
    with open_source(out) as master:
        assert len(master) == 12 and master.info.frame_rate == Fraction(24)
        assert master.info.audio


class RunningMean(Stage):
    name = "denoise"
    title = "test running mean"
    params = declare(Param("radius", "int", 2, "window", minimum=0, maximum=4))

    def temporal_radius(self, params):
        return params["radius"]

    def process(self, window: FrameWindow, params, analysis):
        return StageOutput(np.mean(window.frames, axis=0).astype(np.float32))


def test_memory_stays_flat_over_a_long_clip(tmp_path, monkeypatch):
    from restoration.pipeline import Pipeline, StageSetting

    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "denoise", RunningMean)
    source = tmp_path / "long.mkv"
    make_video(source, 10_000, width=96, height=72, codec="ffv1", audio=False)
    from restoration.export import ExportSettings, MasterWriter

    rss: dict[int, float] = {}
    process = psutil.Process()
    with open_source(source) as src:
        pipeline = Pipeline(src, {"denoise": StageSetting(True)})
        with MasterWriter(tmp_path / "out.mkv", ExportSettings(format="ffv1"), source_info=src.info, width=96,
                          height=72, frame_pts=src.frame_pts()) as writer:
            for index, frame in pipeline.frames():
                writer.write(frame)
                if index in (1_000, 9_999):
                    rss[index] = process.memory_info().rss / 2**20
    assert len(pipeline.shots()) >= 1
    assert rss[9_999] - rss[1_000] < 25, rss


def test_probe_json(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 5, bits=16, fmt="png", start_number=7, skip=(9,))
    assert main(["probe", str(tmp_path / "scan"), "--json", "--fps", "24000/1001"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frame_count"] == 4 and info["bit_depth"] == 16 and info["missing_frames"] == [9]
    assert info["frame_rate"] == "24000/1001" and info["first_frame_number"] == 7


def test_preview_writes_side_by_side(tmp_path):
    source = tmp_path / "clip.mkv"
    make_video(source, 6, codec="ffv1", audio=False)
    out = tmp_path / "compare.png"
    assert main(["preview", "--stages", "none", str(source), "--frame", "3", "-o", str(out)]) == 0
    image, bits = read_image(out)
    assert bits == 8 and image.shape[1] > 2 * 64


def bad(tmp_path: Path) -> dict[str, Path]:
    make_sequence(tmp_path / "gappy", 4, bits=8, fmt="png", skip=(2,))
    make_sequence(tmp_path / "mixed", 2, width=64, bits=8, fmt="png")
    make_sequence(tmp_path / "mixed", 1, width=32, bits=8, fmt="png", start_number=2)
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(4000))
    (tmp_path / "empty.mov").write_bytes(b"")
    good = tmp_path / "good.mkv"
    make_video(good, 8, codec="ffv1", audio=False)
    truncated = tmp_path / "truncated.mp4"
    make_video(truncated, 24, audio=False, options={"movflags": "+faststart"})
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    odd = tmp_path / "odd"
    make_sequence(odd, 2, width=63, height=47, bits=8, fmt="png")
    return {"gappy": tmp_path / "gappy", "mixed": tmp_path / "mixed", "garbage": tmp_path / "garbage.mp4",
            "empty": tmp_path / "empty.mov", "good": good, "truncated": truncated, "odd": odd}


@pytest.mark.parametrize("case, args, expected", [
    ("missing", ["render", "--stages", "none", "{tmp}/nope.mov", "-o", "{tmp}/o.mkv"], "nope.mov"),
    ("garbage", ["render", "--stages", "none", "{garbage}", "-o", "{tmp}/o.mkv"], "garbage.mp4"),
    ("empty", ["render", "--stages", "none", "{empty}", "-o", "{tmp}/o.mkv"], "empty.mov"),
    ("truncated", ["render", "--stages", "none", "{truncated}", "-o", "{tmp}/o.mkv"], "truncated.mp4"),
    ("gaps", ["render", "--stages", "none", "{gappy}", "-o", "{tmp}/o.mkv"], "missing frame"),
    ("mixed sizes", ["render", "--stages", "none", "{mixed}", "-o", "{tmp}/o.mkv"], "mixed"),
    ("odd size for h264", ["render", "--stages", "none", "{odd}", "-o", "{tmp}/o.mp4"], "even width and height"),
    ("unknown stage", ["render", "{good}", "-o", "{tmp}/o.mkv", "--stages", "grading"], "grading"),
    ("unknown param", ["render", "--stages", "none", "{good}", "-o", "{tmp}/o.mkv", "--set", "dust.strength=2"], "dust.strength"),
    ("out of range", ["render", "--stages", "none", "{good}", "-o", "{tmp}/o.mkv", "--set", "deflicker.window=500"], "maximum"),
    ("bad range", ["render", "--stages", "none", "{good}", "-o", "{tmp}/o.mkv", "--range", "5:2"], "--range"),
    ("range past end", ["render", "--stages", "none", "{good}", "-o", "{tmp}/o.mkv", "--range", "0:99"], "last frame"),
    ("overwrite source", ["render", "--stages", "none", "{good}", "-o", "{good}", "--overwrite"], "source"),
    ("bad project", ["render", "{good}", "-o", "{tmp}/o.mkv", "--project", "{tmp}/nope.json"], "nope.json"),
    ("frame outside", ["preview", "--stages", "none", "{good}", "--frame", "50", "-o", "{tmp}/p.png"], "frame 50"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, case, args, expected):
    paths = bad(tmp_path)
    filled = [a.format(tmp=tmp_path, **paths) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(*filled)
    assert result.returncode == 2, (case, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("filmrestore: error:")]
    assert len(lines) == 1 and expected in lines[0], (case, result.stderr)
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert paths["good"].stat().st_size > 0


def test_gaps_can_be_allowed(tmp_path):
    make_sequence(tmp_path / "gappy", 4, bits=8, fmt="png", skip=(2,))
    assert main(["render", "--stages", "none", str(tmp_path / "gappy"), "-o", str(tmp_path / "o.mkv"), "--allow-gaps"]) == 0
    with open_source(tmp_path / "o.mkv") as out:
        assert len(out) == 3


def test_existing_output_needs_overwrite(tmp_path, capsys):
    source = tmp_path / "clip.mkv"
    make_video(source, 4, codec="ffv1", audio=False)
    out = tmp_path / "out.mkv"
    out.write_bytes(b"precious")
    assert main(["render", "--stages", "none", str(source), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["render", "--stages", "none", str(source), "-o", str(out), "--overwrite"]) == 0
    assert out.stat().st_size > 100


def test_grayscale_and_alpha_sources_render(tmp_path):
    gray = tmp_path / "gray.png"
    rgba = tmp_path / "rgba.png"
    with av.open(str(gray), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 32, 16, "gray16be"
        c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((16, 32), 40000, np.uint16), format="gray16be")))
    with av.open(str(rgba), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 32, 16, "rgba"
        c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((16, 32, 4), 200, np.uint8), format="rgba")))
    for still in (gray, rgba):
        out = tmp_path / f"{still.stem}.mkv"
        assert main(["render", "--stages", "none", str(still), "-o", str(out)]) == 0
        with open_source(out) as master:
            frame = master.frame(0)
        assert frame.shape == (16, 32, 3) and np.ptp(frame) == 0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_output_folder(tmp_path):
    source = tmp_path / "clip.mkv"
    make_video(source, 4, codec="ffv1", audio=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run_cli("render", "--stages", "none", source, "-o", locked / "out.mkv")
    finally:
        locked.chmod(0o700)
    assert result.returncode == 2 and "locked" in result.stderr and "Traceback" not in result.stderr


def test_read_only_output_folder_as_root(tmp_path, monkeypatch, capsys):
    """Root ignores permission bits, so the refusal the OS would give is simulated at the write."""
    import restoration.export.writer as writer_module

    source = tmp_path / "clip.mkv"
    make_video(source, 4, codec="ffv1", audio=False)
    real_write = writer_module.MasterWriter.write_values  # the render engine writes the master's integers

    def refuse(self, values):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.final))

    monkeypatch.setattr(writer_module.MasterWriter, "write_values", refuse)
    assert main(["render", "--stages", "none", str(source), "-o", str(tmp_path / "out.mkv")]) == 2
    assert "Permission denied" in capsys.readouterr().err
    assert not (tmp_path / "out.mkv").exists() and leftovers(tmp_path) == []
    monkeypatch.setattr(writer_module.MasterWriter, "write_values", real_write)


def test_full_disk_leaves_nothing(tmp_path, monkeypatch, capsys):
    import restoration.export.writer as writer_module

    source = tmp_path / "clip.mkv"
    make_video(source, 4, codec="ffv1", audio=False)

    def full(self, values):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.final))

    monkeypatch.setattr(writer_module.MasterWriter, "write_values", full)
    assert main(["render", "--stages", "none", str(source), "-o", str(tmp_path / "out.mkv")]) == 2
    err = capsys.readouterr().err
    assert "no space left" in err.lower() and "out.mkv" in err
    assert not (tmp_path / "out.mkv").exists() and leftovers(tmp_path) == []


def test_sequence_with_allowed_gap_keeps_source_numbers(tmp_path):
    make_sequence(tmp_path / "gappy", 5, bits=16, fmt="png", start_number=500, skip=(502,))
    out = tmp_path / "reel"
    assert main(["render", "--stages", "none", str(tmp_path / "gappy"), "-o", str(out), "--format", "png", "--allow-gaps"]) == 0
    assert [p.name for p in sorted(out.glob("reel_*"))] == [f"reel_{n:06d}.png" for n in (500, 501, 503, 504)]


def test_render_restores_with_the_cleaning_stages_unless_told_otherwise(tmp_path, capsys):
    make_sequence(tmp_path / "scan", 6, width=64, height=48, bits=8)
    assert main(["render", str(tmp_path / "scan"), "-o", str(tmp_path / "a.mkv"), "--workers", "1"]) == 0
    assert "filmrestore: note: stages: dust, stabilize, deflicker, denoise, color\n" in capsys.readouterr().err
    stages = json.loads((tmp_path / "a.mkv.provenance.json").read_text())["provenance"]["stages"]
    assert [name for name, entry in stages.items() if entry["enabled"]] == \
        ["dust", "stabilize", "deflicker", "denoise", "color"]
    assert main(["render", str(tmp_path / "scan"), "-o", str(tmp_path / "b.mkv"), "--stages", "none"]) == 0
    assert "filmrestore: note: stages: none (a plain transcode)\n" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert "default: dust,stabilize,deflicker,denoise,color" in " ".join(capsys.readouterr().out.split())


class SlowShots(Stage):
    """A stage whose shot analysis takes a while, so the render's phases interleave."""

    name = "denoise"
    title = "test slow shots"
    params = declare(Param("pause", "float", 0.01, "seconds per frame", minimum=0.0, maximum=1.0))

    def needs_analysis(self, params):
        return True

    def analyze(self, frames, shot, params):
        time.sleep(0.5)
        return None

    def process(self, window: FrameWindow, params, analysis):
        time.sleep(params["pause"])
        return StageOutput(window.current.copy())


def test_the_last_line_reports_the_speed_the_progress_showed(tmp_path, monkeypatch, capsys):
    stage_module._load_builtin_stages()
    monkeypatch.setitem(stage_module._REGISTRY, "denoise", SlowShots)
    make_sequence(tmp_path / "scan", 30, width=64, height=48, bits=8)
    assert main(["render", str(tmp_path / "scan"), "-o", str(tmp_path / "o.mkv"), "--stages", "denoise",
                 "--workers", "1", "--progress-every", "0"]) == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("render: ")]
    assert progress[-1].startswith("render: 30/30 frames")
    shown = float(progress[-1].split(",")[1].split()[0])
    final = float(captured.out.strip().rsplit(", ", 1)[1].split()[0])
    assert final == pytest.approx(shown, abs=0.02), (progress[-1], captured.out)
    assert final < 30 / 0.5  # the shot analysis is part of the render's time
