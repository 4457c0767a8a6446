"""Masters export: bit-exact lossless masters, timestamps, audio in sync, provenance/framemd5, output safety."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media import _write_tone, make_sequence, make_video
from restoration import __version__
from restoration.errors import ExportError, ParamError
from restoration.export import FORMATS, ExportSettings, MasterWriter, format_for_output
from restoration.export.targets import ContainerTarget, SequenceTarget
from restoration.io import open_source

W, H = 34, 26  # even: every format takes it
FFMPEG = shutil.which("ffmpeg")


def render(source: Path, output: Path, fmt: str | None = None, start: int = 0, stop: int | None = None,
           provenance: dict | None = None, **settings) -> MasterWriter:
    """Write frames start..stop of `source` to `output`, the way the render engine does."""
    with open_source(source) as src:
        stop = len(src) if stop is None else stop
        fmt = format_for_output(output, fmt)
        writer = MasterWriter(output, ExportSettings(format=fmt, **settings), source_info=src.info,
                              width=src.info.width, height=src.info.height, frame_pts=src.frame_pts()[start:stop],
                              provenance=provenance)
        with writer:
            for _, frame in src.frames(start, stop):
                writer.write(frame)
    return writer


def to_array(frame: av.VideoFrame) -> np.ndarray:
    """PyAV's ndarray of a frame; bgr0 (which PyAV does not convert) read straight from its plane."""
    name = frame.format.name
    if name.startswith("yuv"):
        return frame.reformat(format="rgb48le").to_ndarray()
    if name != "bgr0":
        return frame.to_ndarray()
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : frame.width * 4].reshape(frame.height, frame.width, 4).copy()


def decode_video(path: Path) -> tuple[list[np.ndarray], list[Fraction], av.VideoStream]:
    """Every frame of the first video stream as PyAV's ndarray, with its time in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        arrays, times = [], []
        for frame in container.decode(stream):
            arrays.append(to_array(frame))
            times.append(frame.pts * stream.time_base)
        return arrays, times, stream


def decode_image(path: Path, codec: str) -> np.ndarray:
    ctx = av.CodecContext.create(codec, "r")
    frames = ctx.decode(av.Packet(path.read_bytes()))
    return frames[0].to_ndarray()


def decode_audio(path: Path, index: int = 0) -> tuple[np.ndarray, Fraction, int, str]:
    """All samples of an audio stream as (channels, samples) float64, its start time, rate and codec."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = frame.pts * frame.time_base
            data = frame.to_ndarray()
            if not frame.format.is_planar:
                data = data.reshape(-1, len(frame.layout.channels)).T
            scale = {"s16": 2**15, "s32": 2**31}.get(frame.format.packed.name, 1)
            chunks.append(data.astype(np.float64) / scale)
        return np.concatenate(chunks, axis=1), start, stream.rate, stream.codec_context.name


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or ".replaced" in p.name)


def pictures(folder: Path) -> list[Path]:
    """The files a sequence folder shows (our hidden manifest aside)."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


# --- formats and settings -------------------------------------------------------------------------------


def test_format_inferred_from_output_and_checked_against_it(tmp_path):
    assert format_for_output(tmp_path / "a.mkv") == "ffv1"
    assert format_for_output(tmp_path / "a.MOV") == "prores"
    assert format_for_output(tmp_path / "a.mp4") == "h264"
    assert format_for_output(tmp_path / "reel1") == "tiff"
    assert format_for_output(tmp_path / "a.mov", "prores4444") == "prores4444"
    assert format_for_output(tmp_path / "scans", "dpx") == "dpx"
    with pytest.raises(ExportError, match="ffv1 is written as .mkv"):
        format_for_output(tmp_path / "a.mov", "ffv1")
    with pytest.raises(ExportError, match="unknown export format 'webm'"):
        format_for_output(tmp_path / "a.mkv", "webm")
    with pytest.raises(ExportError, match="unknown output extension '.avi'"):
        format_for_output(tmp_path / "a.avi")
    with pytest.raises(ExportError, match="folder"):
        format_for_output(tmp_path / "a.tif")
    with pytest.raises(ExportError, match="folder"):
        format_for_output(tmp_path / "a.mkv", "tiff")
    assert set(FORMATS) == {"ffv1", "prores", "prores4444", "tiff", "dpx", "png", "h264"}
    assert all(f.label and f.codec and f.pix_fmt_rule for f in FORMATS.values())


def test_export_settings_round_trip_and_bad_fields():
    settings = ExportSettings(format="h264", crf=23, preset="slow", overwrite=True)
    assert ExportSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert ExportSettings.from_dict({"format": None}).format == "ffv1"
    with pytest.raises(ParamError, match="export.crf"):
        ExportSettings.from_dict({"crf": 60})
    with pytest.raises(ParamError, match="export.codec"):
        ExportSettings.from_dict({"codec": "x"})
    with pytest.raises(ParamError, match="export.format"):
        ExportSettings(format="mpeg1")
    assert ExportSettings.problems({"crf": -1, "preset": "quick"}) and not ExportSettings.problems({"crf": 0})


# --- bit-exact lossless masters --------------------------------------------------------------------------


@pytest.mark.parametrize("source_fmt", ["png", "tif", "dpx"])
def test_16bit_sequence_to_ffv1_and_tiff_is_bit_exact(tmp_path, source_fmt):
    _, values = make_sequence(tmp_path / "scans", 4, W + 1, H + 1, bits=16, fmt=source_fmt, start_number=100)

    render(tmp_path / "scans", tmp_path / "master.mkv")
    arrays, _, stream = decode_video(tmp_path / "master.mkv")
    assert stream.codec_context.name == "ffv1" and stream.codec_context.pix_fmt == "gbrp16le"
    assert stream.codec_context.extradata  # FFV1 version 3 keeps its configuration record there
    assert len(arrays) == 4
    for got, want in zip(arrays, values):
        assert got.dtype == np.uint16 and np.array_equal(got, want)

    render(tmp_path / "scans", tmp_path / "tiffs")
    files = pictures(tmp_path / "tiffs")
    assert [f.name for f in files] == [f"tiffs_{n:06d}.tif" for n in range(100, 104)]
    for path, want in zip(files, values):
        got = decode_image(path, "tiff")
        assert got.dtype == np.uint16 and np.array_equal(got, want)


def test_8bit_sequence_to_ffv1_is_exact(tmp_path):
    _, values = make_sequence(tmp_path / "scans", 3, W, H, bits=8, fmt="png")
    render(tmp_path / "scans", tmp_path / "m.mkv")
    arrays, _, stream = decode_video(tmp_path / "m.mkv")
    assert stream.codec_context.pix_fmt == "bgr0"
    for got, want in zip(arrays, values):
        assert np.array_equal(got[..., [2, 1, 0]], want)  # bgr0 -> RGB


def test_10bit_dpx_and_16bit_png_sequences_are_exact(tmp_path):
    _, ten = make_sequence(tmp_path / "dpx10", 3, W, H, bits=10, fmt="dpx")
    render(tmp_path / "dpx10", tmp_path / "out_dpx", "dpx")
    for path, want in zip(pictures(tmp_path / "out_dpx"), ten):
        assert np.array_equal(decode_image(path, "dpx"), want)

    _, sixteen = make_sequence(tmp_path / "tif16", 3, W, H, bits=16, fmt="tif")
    render(tmp_path / "tif16", tmp_path / "out_png", "png")
    for path, want in zip(pictures(tmp_path / "out_png"), sixteen):
        got = decode_image(path, "png")
        assert np.array_equal(got.astype(np.uint16), want)


# --- timestamps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["m.mkv", "p.mov", "h.mp4"])
def test_constant_rate_and_frame_times_kept(tmp_path, output):
    make_video(tmp_path / "src.mp4", 20, W, H, fps=Fraction(24000, 1001), audio=False)
    render(tmp_path / "src.mp4", tmp_path / output, start=3, stop=15, preset="ultrafast")
    _, times, stream = decode_video(tmp_path / output)
    assert stream.average_rate == Fraction(24000, 1001)
    tick = max(stream.time_base, Fraction(1, 1000))
    assert len(times) == 12
    for i, t in enumerate(times):
        assert abs((t - times[0]) - i * Fraction(1001, 24000)) <= tick


@pytest.mark.parametrize("output", ["m.mkv", "p.mov", "h.mp4"])
def test_variable_rate_stays_variable(tmp_path, output):
    make_video(tmp_path / "vfr.mkv", 16, W, H, codec="ffv1", vfr=True, audio=False)
    with open_source(tmp_path / "vfr.mkv") as src:
        assert src.info.variable_frame_rate
        want = src.frame_times()[2:14]
    render(tmp_path / "vfr.mkv", tmp_path / output, start=2, stop=14, preset="ultrafast")
    _, times, stream = decode_video(tmp_path / output)
    tick = max(stream.time_base, Fraction(1, 1000))
    assert len(times) == len(want)
    for got, expected in zip(times, want):
        assert abs((got - times[0]) - (expected - want[0])) <= tick
    steps = {round(float(b - a), 3) for a, b in zip(times, times[1:])}
    assert len(steps) > 1  # still variable: not resampled to a constant rate


# --- audio -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "stop"), [(5, 25), (40, 57)])  # the second range makes the reader seek
def test_pcm_audio_cut_to_range_sample_exact(tmp_path, start, stop):
    fps = Fraction(24000, 1001)
    make_video(tmp_path / "src.mov", 60, W, H, fps=fps, audio_codec="pcm_s16le")
    source_audio, _, rate, _ = decode_audio(tmp_path / "src.mov")
    writer = render(tmp_path / "src.mov", tmp_path / "m.mkv", start=start, stop=stop)
    audio, audio_start, out_rate, codec = decode_audio(tmp_path / "m.mkv")
    assert codec == "pcm_s16le" and out_rate == rate and audio_start == 0
    first = round(start / fps * rate)
    expected = round((stop - start) / fps * rate)
    assert audio.shape[1] == expected  # exactly the picture's duration
    assert np.array_equal(audio, source_audio[:, first : first + expected])  # in sync to the sample
    assert writer.record(writer.decoded)["output"]["audio"][0]["carried_as"] == "pcm_s16le"


@pytest.mark.parametrize(("source", "output", "carried"), [
    ("src.mp4", "m.mkv", "aac"),     # lossy: packets copied
    ("src.mp4", "p.mov", "aac"),
    ("src.mkv", "p.mov", "pcm_s16le"),  # FLAC cannot go in MOV
    ("src.mkv", "h.mp4", "flac"),
])
def test_audio_carried_in_sync_with_the_picture(tmp_path, source, output, carried):
    fps = Fraction(24)
    codec = "ffv1" if source.endswith(".mkv") else "libx264"
    make_video(tmp_path / source, 40, W, H, codec=codec, fps=fps)
    with open_source(tmp_path / source) as src:  # where frame 7 sits on the source clock (ms in Matroska)
        source_start = float(src.frame_pts()[7] * src.info.time_base)
    render(tmp_path / source, tmp_path / output, start=7, stop=31, preset="ultrafast")
    audio, start, rate, codec_name = decode_audio(tmp_path / output)
    assert codec_name == carried
    video_duration = Fraction(24) / fps
    frame = 1 / fps
    assert abs(start) < frame
    assert abs(Fraction(audio.shape[1], rate) - video_duration) < frame
    # The 440 Hz test tone continues at the right phase: output sample k is source time of frame 7 + k/rate.
    t = source_start + float(start) + np.arange(audio.shape[1]) / rate
    reference = 0.2 * np.sin(2 * np.pi * 440 * t)
    middle = slice(audio.shape[1] // 4, 3 * audio.shape[1] // 4)
    assert np.corrcoef(audio[0, middle], reference[middle])[0, 1] > 0.95


def test_short_source_audio_is_padded_with_silence(tmp_path):
    """Audio that stops before the picture is completed with silence, so the master stays in sync."""
    path = tmp_path / "short.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=24)
        video.width, video.height, video.pix_fmt = W, H, "bgr0"
        audio_stream = container.add_stream("pcm_s16le", rate=48000)
        audio_stream.layout = "stereo"
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), i * 10, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame.reformat(format="bgr0")))
        container.mux(video.encode(None))
        _write_tone(container, audio_stream, 0.5)  # half a second of sound for one second of picture
    render(path, tmp_path / "m.mkv")
    audio, start, rate, codec = decode_audio(tmp_path / "m.mkv")
    assert start == 0 and audio.shape[1] == rate  # one second, like the picture
    assert np.abs(audio[:, : rate // 2 - 10]).max() > 0.1 and not audio[:, rate // 2 :].any()


def test_audio_interleaved_with_video(tmp_path):
    make_video(tmp_path / "src.mov", 72, W, H, fps=24, audio_codec="pcm_s16le")
    render(tmp_path / "src.mov", tmp_path / "m.mkv")
    with av.open(str(tmp_path / "m.mkv")) as container:
        kinds = [p.stream.type for p in container.demux() if p.size]
    last_video = max(i for i, k in enumerate(kinds) if k == "video")
    first_half_audio = [i for i, k in enumerate(kinds) if k == "audio" and i < last_video / 2]
    assert first_half_audio, "audio must be muxed along with the picture, not after it"


def test_audio_can_be_left_out_and_sequences_have_none(tmp_path):
    make_video(tmp_path / "src.mp4", 6, W, H)
    render(tmp_path / "src.mp4", tmp_path / "m.mkv", audio=False)
    with av.open(str(tmp_path / "m.mkv")) as container:
        assert not container.streams.audio
    writer = render(tmp_path / "src.mp4", tmp_path / "frames")
    assert writer.record(writer.decoded)["output"]["audio"] == []
    assert sorted(p.suffix for p in pictures(tmp_path / "frames")) == [".tif"] * 6


# --- provenance and fixity -----------------------------------------------------------------------------------


def test_provenance_sidecar_and_framemd5(tmp_path):
    make_video(tmp_path / "src.mp4", 8, W, H)
    params = {"stages": {"dust": {"enabled": False}}, "project": "reel 1"}
    render(tmp_path / "src.mp4", tmp_path / "m.mkv", provenance=params)
    record = json.loads((tmp_path / "m.mkv.provenance.json").read_text())
    assert record["source"]["path"] == str(tmp_path / "src.mp4")
    assert record["source"]["sha256"] == hashlib.sha256((tmp_path / "src.mp4").read_bytes()).hexdigest()
    assert record["software"]["filmrestore"] == __version__
    assert record["provenance"] == params
    assert record["export_settings"]["format"] == "ffv1"
    assert record["created_utc"].endswith("Z")
    assert record["output"]["frames"] == 8 and record["output"]["frame_rate"] == "24/1"
    lines = record["framemd5"].splitlines()
    assert lines[:3] == ["#format: frame checksums", "#version: 2", "#hash: MD5"]
    assert f"#dimensions 0: {W}x{H}" in lines and "#codec_id 0: rawvideo" in lines
    assert len([ln for ln in lines if not ln.startswith("#")]) == 8
    assert (tmp_path / "m.mkv.framemd5").read_text() == record["framemd5"]


def test_sequence_provenance_and_framemd5_hash_the_pixels(tmp_path):
    paths, values = make_sequence(tmp_path / "scans", 3, W, H, bits=16, fmt="png", start_number=7)
    render(tmp_path / "scans", tmp_path / "reel")
    record = json.loads((tmp_path / "reel.provenance.json").read_text())
    combined = hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n"
                                       for p in paths)).hexdigest()
    assert record["source"]["sha256"] == combined and record["source"]["files"] == 3
    assert record["output"]["files"] == [f"reel_{n:06d}.tif" for n in (7, 8, 9)]
    rows = [ln.split(", ") for ln in record["framemd5"].splitlines() if not ln.startswith("#")]
    for row, want in zip(rows, values):
        # rgb48le rawvideo is the values' little-endian bytes, row after row
        packed = want.astype("<u2").tobytes()
        assert int(row[4]) == len(packed) and row[5] == hashlib.md5(packed).hexdigest()


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg binary not installed")
@pytest.mark.parametrize("output", ["m.mkv", "tiffs"])
def test_framemd5_matches_ffmpeg(tmp_path, output):
    make_sequence(tmp_path / "scans", 4, W + 1, H + 1, bits=16, fmt="tif", start_number=3)
    render(tmp_path / "scans", tmp_path / output)
    ours = (tmp_path / f"{output}.framemd5").read_text()
    if output.endswith(".mkv"):
        args = ["-i", str(tmp_path / output)]
    else:
        args = ["-framerate", "24", "-start_number", "3", "-i", str(tmp_path / output / f"{output}_%06d.tif")]
    theirs = subprocess.run([FFMPEG, "-v", "error", *args, "-map", "0:v", "-f", "framemd5", "-"],
                            check=True, capture_output=True, text=True).stdout
    theirs = "".join(ln for ln in theirs.splitlines(keepends=True) if not ln.startswith("#software"))
    assert ours == theirs


# --- lossy formats: colour tags and layout ------------------------------------------------------------------


def _top_level_atoms(path: Path) -> list[str]:
    data, atoms, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        atoms.append(data[pos + 4 : pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        pos += max(size, 8)
    return atoms


def test_h264_access_copy_is_tagged_bt709_and_fast_start(tmp_path):
    make_sequence(tmp_path / "scans", 4, W, H, bits=8, fmt="png")
    render(tmp_path / "scans", tmp_path / "a.mp4", preset="ultrafast", crf=20)
    atoms = _top_level_atoms(tmp_path / "a.mp4")
    assert atoms.index("moov") < atoms.index("mdat")
    with av.open(str(tmp_path / "a.mp4")) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (int(frame.colorspace), int(frame.color_primaries), int(frame.color_trc)) == (1, 1, 1)
        assert int(frame.color_range) == 1  # limited ("tv") range


@pytest.mark.parametrize(("fmt", "pix_fmt", "profile"), [("prores", "yuv422p10le", "HQ"),
                                                         ("prores4444", "yuv444p12le", "4444")])
def test_prores_profiles_and_colour(tmp_path, fmt, pix_fmt, profile):
    """ProRes 4444 decodes to 12 bits whatever was encoded; the encoder took 10-bit 4:4:4."""
    _, values = make_sequence(tmp_path / "scans", 2, W, H, bits=16, fmt="png")
    render(tmp_path / "scans", tmp_path / "p.mov", fmt, allow_depth_loss=True)  # 16-bit scans into 10 bits
    with av.open(str(tmp_path / "p.mov")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == pix_fmt
        assert profile in (stream.codec_context.profile or "")
        frame = next(container.decode(stream))
        assert (int(frame.colorspace), int(frame.color_primaries), int(frame.color_trc)) == (1, 1, 1)
        rgb = frame.reformat(format="rgb48le", src_colorspace="ITU709", dst_colorspace="ITU709",
                             src_color_range="MPEG", dst_color_range="JPEG").to_ndarray()
    error = np.abs(rgb.astype(np.int64) - values[0]).mean() / 65535
    assert error < 0.03  # right matrix and range: a swapped one is off by far more


# --- safety -------------------------------------------------------------------------------------------------


def test_existing_output_needs_overwrite(tmp_path):
    make_sequence(tmp_path / "scans", 2, W, H, bits=16, fmt="png")
    (tmp_path / "m.mkv").write_bytes(b"old master")
    with pytest.raises(ExportError, match="already exists"):
        render(tmp_path / "scans", tmp_path / "m.mkv")
    assert (tmp_path / "m.mkv").read_bytes() == b"old master"
    render(tmp_path / "scans", tmp_path / "m.mkv", overwrite=True)
    assert len(decode_video(tmp_path / "m.mkv")[0]) == 2
    (tmp_path / "seq").mkdir()
    render(tmp_path / "scans", tmp_path / "seq")  # an existing empty folder is fine
    with pytest.raises(ExportError, match="already exists"):
        render(tmp_path / "scans", tmp_path / "seq")
    render(tmp_path / "scans", tmp_path / "seq", overwrite=True)  # a sequence we wrote is ours to replace
    assert [p.name for p in pictures(tmp_path / "seq")] == ["seq_000000.tif", "seq_000001.tif"]
    (tmp_path / "seq" / "stray.txt").write_text("x")
    with pytest.raises(ExportError, match=r"did not write \(stray.txt\)"):
        render(tmp_path / "scans", tmp_path / "seq", overwrite=True)
    assert (tmp_path / "seq" / "stray.txt").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_never_writes_over_the_source(tmp_path):
    make_video(tmp_path / "src.mkv", 3, W, H, codec="ffv1", audio=False)
    before = (tmp_path / "src.mkv").read_bytes()
    with pytest.raises(ExportError, match="source"):
        render(tmp_path / "src.mkv", tmp_path / "src.mkv", overwrite=True)
    os.symlink(tmp_path / "src.mkv", tmp_path / "link.mkv")
    with pytest.raises(ExportError, match="source"):
        render(tmp_path / "src.mkv", tmp_path / "link.mkv", overwrite=True)
    assert (tmp_path / "src.mkv").read_bytes() == before

    make_sequence(tmp_path / "scans", 2, W, H, bits=16, fmt="tif")
    with pytest.raises(ExportError, match="source itself"):
        render(tmp_path / "scans", tmp_path / "scans", overwrite=True)
    with pytest.raises(ExportError, match="holds the source"):
        render(tmp_path / "scans", tmp_path, "tiff", overwrite=True)
    assert len(list((tmp_path / "scans").iterdir())) == 2


@pytest.mark.parametrize("output", ["m.mkv", "seq"])
def test_cancelled_render_leaves_nothing(tmp_path, output):
    make_sequence(tmp_path / "scans", 4, W, H, bits=16, fmt="png")
    with open_source(tmp_path / "scans") as src:
        with pytest.raises(KeyboardInterrupt):
            with MasterWriter(tmp_path / output, ExportSettings(format=format_for_output(tmp_path / output)),
                              source_info=src.info, width=W, height=H, frame_pts=src.frame_pts()) as writer:
                for index, frame in src.frames():
                    writer.write(frame)
                    if index == 2:
                        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans"]


def test_unreadable_master_is_caught_by_the_decode_back(tmp_path, monkeypatch):
    make_sequence(tmp_path / "scans", 3, W, H, bits=16, fmt="png")
    close = ContainerTarget.close

    def close_and_damage(self):
        close(self)
        path = Path(self.container.name)
        path.write_bytes(path.read_bytes()[:600])  # as if the disk had lost the end of the file

    monkeypatch.setattr(ContainerTarget, "close", close_and_damage)
    with pytest.raises(ExportError, match="decod"):
        render(tmp_path / "scans", tmp_path / "m.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans"]


def test_sequence_files_take_the_given_frame_numbers(tmp_path):
    make_sequence(tmp_path / "scans", 3, W, H, bits=16, fmt="png")
    with open_source(tmp_path / "scans") as src:
        with MasterWriter(tmp_path / "out", ExportSettings(format="dpx", allow_depth_loss=True),
                          source_info=src.info, width=W, height=H,
                          frame_numbers=[1001, 1002, 1005]) as writer:
            for _, frame in src.frames():
                writer.write(frame)
    assert [p.name for p in pictures(tmp_path / "out")] == [
        "out_001001.dpx", "out_001002.dpx", "out_001005.dpx"]


def test_bad_frame_size_and_empty_render_fail_cleanly(tmp_path):
    make_sequence(tmp_path / "scans", 2, W, H, bits=16, fmt="png")
    with open_source(tmp_path / "scans") as src:
        with pytest.raises(ExportError, match=f"frame 0: frame is {W + 2}x{H}"):
            with MasterWriter(tmp_path / "m.mkv", source_info=src.info, width=W, height=H) as writer:
                writer.write(np.zeros((H, W + 2, 3), np.float32))
        with pytest.raises(ExportError, match="no frames"):
            with MasterWriter(tmp_path / "m.mkv", source_info=src.info, width=W, height=H):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans"]


def test_read_only_folder_is_refused(tmp_path, monkeypatch):
    make_sequence(tmp_path / "scans", 2, W, H, bits=16, fmt="png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores permission bits: report them as the kernel would to a user
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if (
                Path(p) == locked and mode & os.W_OK) else real_access(p, mode, **kw))
        with pytest.raises(ExportError, match="read-only"):
            render(tmp_path / "scans", locked / "m.mkv")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_unwritable_temp_is_a_clean_error(tmp_path, monkeypatch):
    make_sequence(tmp_path / "scans", 2, W, H, bits=16, fmt="png")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(ExportError, match="read-only"):
        render(tmp_path / "scans", tmp_path / "seq")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans"]


@pytest.mark.parametrize("output", ["m.mkv", "seq"])
def test_disk_full_is_a_clean_error(tmp_path, monkeypatch, output):
    make_video(tmp_path / "src.mov", 6, W, H, audio_codec="pcm_s16le")
    calls = {"n": 0}

    def fill_up() -> None:
        calls["n"] += 1
        if calls["n"] >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    if output.endswith(".mkv"):
        mux = ContainerTarget.mux
        monkeypatch.setattr(ContainerTarget, "mux", lambda self, packets: (fill_up(), mux(self, packets)))
    else:
        write_file = SequenceTarget.write_file
        monkeypatch.setattr(SequenceTarget, "write_file", lambda self, path, data: (fill_up(),
                                                                                    write_file(self, path, data)))
    with pytest.raises(ExportError, match="disk full"):
        render(tmp_path / "src.mov", tmp_path / output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mov"]


@pytest.mark.parametrize(("fmt", "size", "ok"), [
    ("h264", (W + 1, H), False), ("h264", (W, H + 1), False), ("prores", (W + 1, H), False),
    ("prores", (W, H + 1), True), ("prores4444", (W + 1, H + 1), True), ("ffv1", (W + 1, H + 1), True),
])
def test_odd_sizes_refused_where_chroma_is_subsampled(tmp_path, fmt, size, ok):
    width, height = size
    make_sequence(tmp_path / "scans", 2, width, height, bits=8, fmt="png")
    output = tmp_path / ("out" + FORMATS[fmt].extension)
    if ok:
        render(tmp_path / "scans", output, fmt, preset="ultrafast")
        assert decode_video(output)[0][0].shape[:2] == (height, width)
    else:
        with pytest.raises(ExportError, match=f"needs an even .*{width}x{height}.*ffv1 or tiff"):
            render(tmp_path / "scans", output, fmt)
        assert not output.exists()
