"""Media input: bit-exact stills and sequences, video probing, exact random access, bad input."""

from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from av.video.frame import PictureType

from media import _write_tone, make_sequence, make_video, pattern_frame, vfr_pts
from restoration.errors import MediaError
from restoration.io import open_source, probe, read_image, write_image
from restoration.io.pixels import float_to_int

W, H = 64, 48


def _ints(frame: np.ndarray, bits: int) -> np.ndarray:
    return float_to_int(frame, bits).astype(np.int64)


# --- stills -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "suffix,bits",
    [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".tiff", 16), (".dpx", 8), (".dpx", 10),
     (".dpx", 12), (".dpx", 16)],
)
def test_image_round_trip_is_bit_exact(tmp_path: Path, suffix: str, bits: int) -> None:
    values = pattern_frame(3, W, H, bits)
    top = (1 << bits) - 1
    frame = values.astype(np.float32) / np.float32(top)
    path = tmp_path / f"still{suffix}"
    write_image(path, frame, bits=bits)
    read, depth = read_image(path)
    assert depth == bits
    assert read.dtype == np.float32 and read.shape == (H, W, 3) and read.flags.c_contiguous
    assert np.array_equal(read, frame)  # v / (2**b - 1) exactly, so writing it back is lossless
    assert np.array_equal(_ints(read, bits), values)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_files_hold_the_values_for_other_readers(tmp_path: Path, suffix: str) -> None:
    values = pattern_frame(1, W, H, 16)
    path = tmp_path / f"still{suffix}"
    write_image(path, values / 65535.0, bits=16)
    other = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert other.dtype == np.uint16
    assert np.array_equal(other, values)


def _dpx_pixels(path: Path) -> tuple[int, np.ndarray]:
    """Independent DPX reader for the two layouts we write: 10-bit filled method A and 16-bit."""
    data = path.read_bytes()
    order = ">" if data[:4] == b"SDPX" else "<"
    (offset,) = struct.unpack(order + "I", data[4:8])
    width, height = struct.unpack(order + "II", data[772:780])
    (bits,) = struct.unpack(order + "B", data[803:804])
    body = data[offset:]
    if bits == 10:
        words = np.frombuffer(body, dtype=order + "u4")[: width * height].reshape(height, width)
        rgb = np.stack([(words >> 22) & 0x3FF, (words >> 12) & 0x3FF, (words >> 2) & 0x3FF], axis=-1)
    else:
        rgb = np.frombuffer(body, dtype=order + "u2")[: width * height * 3].reshape(height, width, 3)
    return bits, rgb.astype(np.int64)


@pytest.mark.parametrize("bits", [10, 16])
def test_dpx_files_use_the_standard_layout(tmp_path: Path, bits: int) -> None:
    values = pattern_frame(2, W, H, bits)
    path = tmp_path / "scan.dpx"
    write_image(path, values / float((1 << bits) - 1), bits=bits)
    stored_bits, stored = _dpx_pixels(path)
    assert stored_bits == bits
    assert np.array_equal(stored, values)


def test_jpeg_still_reads_close_to_what_was_written(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:H, 0:W]
    smooth = np.stack([xx / (W - 1), yy / (H - 1), (xx + yy) / (W + H - 2)], axis=-1).astype(np.float32)
    path = tmp_path / "still.jpg"
    write_image(path, smooth, bits=8)
    read, bits = read_image(path)
    assert bits == 8
    assert np.abs(read - smooth).max() < 0.04
    assert np.array_equal(_ints(read, 8).astype(np.float32) / 255, read)  # 8-bit steps, nothing rescaled


def test_write_image_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    write_image(path, np.zeros((H, W, 3), np.float32), bits=16)
    write_image(path, np.ones((H, W, 3), np.float32), bits=16)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert read_image(path)[0].min() == 1.0


def test_write_image_refuses_unsupported_depth(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="10"):
        write_image(tmp_path / "x.png", np.zeros((H, W, 3), np.float32), bits=10)
    assert not list(tmp_path.iterdir())


def _encode_still(path: Path, codec: str, pix_fmt: str, array: np.ndarray) -> None:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = array.shape[1], array.shape[0], pix_fmt, Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(array, format=pix_fmt)
    path.write_bytes(b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None)))


def test_grayscale_16bit_becomes_rgb_exactly(tmp_path: Path) -> None:
    gray = pattern_frame(4, W, H, 16)[..., 1]
    path = tmp_path / "gray.png"
    _encode_still(path, "png", "gray16be", gray)
    frame, bits = read_image(path)
    assert bits == 16 and frame.shape == (H, W, 3)
    for c in range(3):
        assert np.array_equal(_ints(frame[..., c], 16), gray)
    info = probe(path)
    assert info.is_grayscale and info.kind == "image" and info.frame_count == 1


def test_rgba_drops_alpha_and_probe_reports_it(tmp_path: Path) -> None:
    rgba = np.concatenate([pattern_frame(5, W, H, 16), np.full((H, W, 1), 1234, np.uint16)], axis=-1)
    path = tmp_path / "alpha.png"
    _encode_still(path, "png", "rgba64be", rgba)
    frame, bits = read_image(path)
    assert bits == 16 and frame.shape == (H, W, 3)
    assert np.array_equal(_ints(frame, 16), rgba[..., :3])
    info = probe(path)
    assert info.has_alpha and not info.is_grayscale and info.bit_depth == 16


# --- image sequences --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,bits", [("png", 16), ("tif", 16), ("dpx", 10), ("dpx", 16), ("png", 8)])
def test_sequence_decodes_bit_exact(tmp_path: Path, fmt: str, bits: int) -> None:
    _, values = make_sequence(tmp_path / "seq", 4, W, H, bits=bits, fmt=fmt)
    with open_source(tmp_path / "seq") as source:
        assert source.info.kind == "sequence" and source.info.bit_depth == bits
        assert len(source) == 4
        for (index, frame), expected in zip(source.frames(), values):
            assert np.array_equal(_ints(frame, bits), expected), index
            assert np.array_equal(source.frame(index), frame)


def test_jpeg_sequence_reads_consistently(tmp_path: Path) -> None:
    _, values = make_sequence(tmp_path / "seq", 3, W, H, bits=8, fmt="jpg")
    with open_source(tmp_path / "seq") as source:
        assert source.info.codec == "mjpeg" and source.info.bit_depth == 8
        streamed = dict(source.frames())
        for index in (2, 0, 1):
            assert np.array_equal(source.frame(index), streamed[index])
        # a noisy pattern through JPEG: close on average, not exact
        assert np.abs(streamed[0] * 255 - values[0]).mean() < 12


def test_sequence_from_frame_1000_reports_gap(tmp_path: Path) -> None:
    folder = tmp_path / "reel"
    paths, values = make_sequence(folder, 6, W, H, bits=16, fmt="png", start_number=1000, digits=6, skip=(1003,))
    for source_path in (folder, folder / "scan_%06d.png", folder / "scan_######.png"):
        info = probe(source_path)
        assert info.first_frame_number == 1000
        assert info.missing_frames == [1003]
        assert info.frame_count == 5
    with open_source(folder / "scan_%06d.png", frame_rate=Fraction(25)) as source:
        assert len(source) == 5
        assert [source.frame_number(i) for i in range(5)] == [1000, 1001, 1002, 1004, 1005]
        assert source.files == paths
        assert np.array_equal(_ints(source.frame(3), 16), values[3])  # index 3 is file 1004
        assert source.frame_times() == [Fraction(i, 25) for i in range(5)]
        assert source.info.frame_rate == 25 and source.info.time_base == Fraction(1, 25)
    json.dumps(info.to_dict())


def test_sequence_streaming_can_start_midway(tmp_path: Path) -> None:
    _, values = make_sequence(tmp_path / "s", 6, W, H, bits=16, fmt="tif", start_number=1)
    with open_source(tmp_path / "s") as source:
        got = list(source.frames(2, 5))
        assert [i for i, _ in got] == [2, 3, 4]
        assert all(np.array_equal(_ints(f, 16), values[i]) for i, f in got)


def test_cached_frames_are_read_only_and_the_cache_is_bounded(tmp_path: Path) -> None:
    make_sequence(tmp_path / "s", 6, W, H, bits=8, fmt="png")
    with open_source(tmp_path / "s", cache_frames=2) as source:
        first = source.frame(0)
        assert source.frame(0) is first
        with pytest.raises(ValueError):
            first[0, 0, 0] = 1.0
        for i in range(1, 6):
            source.frame(i)
        assert len(source._cache) == 2
        assert source.frame(0) is not first and np.array_equal(source.frame(0), first)
        streamed = next(source.frames())[1]
        streamed[0, 0, 0] = 0.5  # streamed frames belong to the caller


def test_real_film_scan_probes_to_150_frames(shared_data: Path) -> None:
    folder = shared_data / "archival" / "rtn_test_data_1_002_f1000-1149"
    if not folder.is_dir():
        pytest.skip("archival test film missing")
    info = probe(folder)
    assert info.frame_count == 150
    assert info.first_frame_number == 1000 and info.missing_frames == []
    with open_source(folder) as source:
        frame = source.frame(149)
        assert frame.shape == (info.height, info.width, 3)
        assert source.frame_number(149) == 1149


# --- video ------------------------------------------------------------------------------------

def test_probe_ffv1_mkv_with_flac(tmp_path: Path) -> None:
    path = tmp_path / "master.mkv"
    make_video(path, 12, W, H, codec="ffv1", fps=Fraction(24000, 1001), audio=True)
    info = probe(path)
    assert (info.kind, info.codec, info.width, info.height) == ("video", "ffv1", W, H)
    assert info.frame_count == 12
    assert info.frame_rate == Fraction(24000, 1001)
    assert not info.variable_frame_rate
    assert info.bit_depth == 8 and info.pixel_format == "yuv444p"
    assert len(info.audio) == 1
    audio = info.audio[0]
    assert (audio.codec, audio.sample_rate, audio.channels) == ("flac", 48000, 2)
    assert audio.duration == pytest.approx(12 * 1001 / 24000, abs=0.03)
    data = json.loads(json.dumps(info.to_dict()))
    assert data["frame_rate"] == "24000/1001" and data["audio"][0]["codec"] == "flac"


def test_probe_h264_mp4_with_aac(tmp_path: Path) -> None:
    path = tmp_path / "access.mp4"
    make_video(path, 20, W, H, codec="libx264", fps=25, audio=True)
    info = probe(path)
    assert (info.codec, info.frame_count, info.frame_rate) == ("h264", 20, Fraction(25))
    assert info.duration == pytest.approx(0.8)
    assert info.audio and info.audio[0].codec == "aac" and info.audio[0].channels == 2
    assert not info.variable_frame_rate and info.rotation == 0 and info.timecode is None


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_variable_frame_rate_is_detected_and_timestamps_kept(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"vfr{suffix}"
    make_video(path, 16, W, H, codec="libx264", fps=25, audio=False, vfr=True)
    with open_source(path) as source:
        assert source.info.variable_frame_rate
        assert len(source) == 16
        expected = [Fraction(ms, 1000) for ms in vfr_pts(16)]
        assert source.frame_times() == expected
        assert [p * source.info.time_base for p in source.frame_pts()] == expected


def test_constant_rate_clip_is_not_vfr_despite_millisecond_rounding(tmp_path: Path) -> None:
    path = tmp_path / "cfr.mkv"  # Matroska stores 1/1000 s: 41/42 ms steps for 23.976 fps
    make_video(path, 24, W, H, codec="ffv1", fps=Fraction(24000, 1001), audio=False)
    assert not probe(path).variable_frame_rate


def _has_b_frames(path: Path) -> bool:
    with av.open(str(path)) as container:
        return any(int(f.pict_type) == int(PictureType.B) for f in container.decode(video=0))


@pytest.mark.parametrize("cache_frames", [0, 32])
def test_random_access_equals_streaming_with_b_frames(tmp_path: Path, cache_frames: int) -> None:
    path = tmp_path / "gop.mp4"
    make_video(path, 40, W, H, codec="libx264", fps=24, audio=False, options={"bf": "3", "g": "10"})
    assert _has_b_frames(path)
    with open_source(path, cache_frames=cache_frames) as source:
        streamed = dict(source.frames())
        assert sorted(streamed) == list(range(40))
        order = list(range(39, -1, -1)) + [17, 3, 29, 30, 31, 8, 0, 39, 21]
        for index in order:
            assert np.array_equal(source.frame(index), streamed[index]), index
        tail = list(source.frames(start=23, stop=27))
        assert [i for i, _ in tail] == [23, 24, 25, 26]
        assert all(np.array_equal(f, streamed[i]) for i, f in tail)
        frames = [streamed[i] for i in range(40)]
        assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))  # all frames are distinct


def test_yuv_video_converts_with_the_right_matrix(tmp_path: Path) -> None:
    path = tmp_path / "lossless.mkv"
    originals = make_video(path, 4, W, H, codec="libx264", audio=False, pix_fmt="yuv444p",
                           options={"crf": "0", "qp": "0"})
    with open_source(path) as source:
        for index, frame in source.frames():
            assert frame.dtype == np.float32 and frame.flags.c_contiguous
            assert np.abs(frame * 255 - originals[index]).max() <= 2.5


def test_ffv1_16bit_rgb_decodes_bit_exact(tmp_path: Path) -> None:
    path = tmp_path / "rgb16.mkv"
    values = [pattern_frame(i, W, H, 16) for i in range(3)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "gbrp16le"
        for i, v in enumerate(values):
            frame = av.VideoFrame.from_ndarray(v, format="gbrp16le")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with open_source(path) as source:
        assert source.info.bit_depth == 16
        for index, frame in source.frames():
            assert np.array_equal(_ints(frame, 16), values[index])


def test_rotation_timecode_and_aspect_are_probed(tmp_path: Path) -> None:
    path = tmp_path / "phone.mov"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.set_display_rotation(90)
        stream.metadata["timecode"] = "01:02:03:04"
        stream.codec_context.sample_aspect_ratio = Fraction(16, 15)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, W, H, 8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe(path)
    assert (info.rotation, info.timecode, info.sample_aspect_ratio) == (90, "01:02:03:04", Fraction(16, 15))


# --- bad input --------------------------------------------------------------------------------

def _assert_media_error(source: Path | str, name: str, problem: str | None = None) -> None:
    with pytest.raises(MediaError) as caught:
        probe(source)
    message = str(caught.value)
    assert name in message and "\n" not in message
    if problem:
        assert problem in message
    with pytest.raises(MediaError):
        open_source(source)


def test_missing_file(tmp_path: Path) -> None:
    _assert_media_error(tmp_path / "nowhere.mov", "nowhere.mov", "not found")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _assert_media_error(tmp_path / "empty", "empty", "no image files")


def test_pattern_matching_nothing(tmp_path: Path) -> None:
    make_sequence(tmp_path, 2, W, H, bits=8, fmt="png", prefix="scan_")
    _assert_media_error(tmp_path / "shot_%06d.png", "shot_%06d.png", "no files match")


def test_garbage_bytes_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_media_error(path, "garbage.mp4")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing.mkv"
    path.write_bytes(b"")
    _assert_media_error(path, "nothing.mkv", "empty")


def test_truncated_mp4(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    make_video(path, 20, W, H, codec="libx264", audio=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    _assert_media_error(cut, "cut.mp4")


def test_truncated_faststart_mp4(tmp_path: Path) -> None:
    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, W, H, 8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    cut = tmp_path / "cutfast.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    _assert_media_error(cut, "cutfast.mp4", "truncated")


def test_truncated_mkv(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    make_video(path, 20, W, H, codec="ffv1", audio=True)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _assert_media_error(cut, "cut.mkv", "truncated")


def test_zero_frame_file(tmp_path: Path) -> None:
    path = tmp_path / "silent.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=24)
        video.width, video.height, video.pix_fmt = W, H, "yuv444p"
        audio = container.add_stream("flac", rate=48000)
        audio.layout = "stereo"
        _write_tone(container, audio, 0.2)
    _assert_media_error(path, "silent.mkv", "zero video frames")


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.xyz"
    path.write_text("not media")
    _assert_media_error(path, "notes.xyz", "unknown file type")


def test_mixed_size_sequence_names_the_first_odd_file(tmp_path: Path) -> None:
    make_sequence(tmp_path, 3, W, H, bits=16, fmt="dpx", start_number=1)
    make_sequence(tmp_path, 2, W + 2, H, bits=16, fmt="dpx", start_number=4)
    _assert_media_error(tmp_path, "scan_000004.dpx", "mixed frame sizes")


def test_mixed_types_in_folder(tmp_path: Path) -> None:
    make_sequence(tmp_path, 2, W, H, bits=8, fmt="png")
    make_sequence(tmp_path, 2, W, H, bits=8, fmt="jpg")
    _assert_media_error(tmp_path, tmp_path.name, "several types")


def test_corrupt_frame_in_sequence_names_the_file(tmp_path: Path) -> None:
    paths, _ = make_sequence(tmp_path, 3, W, H, bits=10, fmt="dpx")
    paths[1].write_bytes(paths[1].read_bytes()[:3000])  # header intact, picture cut short
    with open_source(tmp_path) as source:
        source.frame(0)
        with pytest.raises(MediaError, match="scan_000001.dpx.*corrupt"):
            source.frame(1)
        with pytest.raises(MediaError, match="scan_000001.dpx"):
            list(source.frames())


def test_corrupt_single_image(tmp_path: Path) -> None:
    path = tmp_path / "broken.dpx"
    path.write_bytes(b"SDPX" + b"\x01" * 100)
    _assert_media_error(path, "broken.dpx")


def test_single_image_is_a_one_frame_source(tmp_path: Path) -> None:
    path = tmp_path / "poster.tif"
    values = pattern_frame(7, W, H, 16)
    write_image(path, values / 65535.0, bits=16)
    info = probe(path, frame_rate=23.976)
    assert (info.kind, info.frame_count, info.frame_rate) == ("image", 1, Fraction(24000, 1001))
    with open_source(path) as source:
        assert len(source) == 1 and source.frame_number(0) == 0
        assert np.array_equal(_ints(source.frame(0), 16), values)
        with pytest.raises(IndexError):
            source.frame(1)


def test_prores_reports_ten_bits(tmp_path: Path) -> None:
    path = tmp_path / "mezzanine.mov"
    make_video(path, 6, W, H, codec="prores_ks", fps=25, audio=False)
    info = probe(path)
    assert (info.codec, info.bit_depth, info.pixel_format, info.frame_count) == ("prores", 10, "yuv422p10le", 6)
    with open_source(path) as source:
        assert source.frame(5).shape == (H, W, 3)
