"""Test media made on the fly with PyAV: image sequences and short video clips with known content."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from restoration.io.image import write_image


def pattern_frame(index: int, width: int, height: int, bits: int, seed: int = 0) -> np.ndarray:
    """A distinct, deterministic integer RGB frame (H, W, 3) using the full range of `bits`."""
    top = (1 << bits) - 1
    rng = np.random.default_rng(seed * 100_003 + index)
    yy, xx = np.mgrid[0:height, 0:width]
    ramp = (xx * 7 + yy * 3 + index * 11) % (width + height)
    base = (ramp / (width + height) * top).astype(np.int64)
    noise = rng.integers(-(top // 16), top // 16 + 1, size=(height, width, 3))
    values = np.clip(base[..., None] + noise, 0, top)
    values[0, 0] = (0, top, top // 2)  # the extremes are always present
    dtype = np.uint8 if bits <= 8 else np.uint16
    return values.astype(dtype)


def make_sequence(
    directory: str | Path,
    n: int,
    width: int = 64,
    height: int = 48,
    bits: int = 16,
    fmt: str = "png",
    start_number: int = 0,
    prefix: str = "scan_",
    digits: int = 6,
    skip: tuple[int, ...] = (),
) -> tuple[list[Path], list[np.ndarray]]:
    """Write frames start_number .. start_number+n-1 (minus `skip` numbers) as prefix%0Nd.fmt.

    Returns the written paths and the integer frames stored in them (the exact values for
    lossless formats; for JPEG the values that were handed to the encoder).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    top = (1 << bits) - 1
    paths: list[Path] = []
    frames: list[np.ndarray] = []
    for number in range(start_number, start_number + n):
        if number in skip:
            continue
        values = pattern_frame(number, width, height, bits)
        path = directory / f"{prefix}{number:0{digits}d}.{fmt}"
        write_image(path, values.astype(np.float32) / top, bits=bits)
        paths.append(path)
        frames.append(values)
    return paths, frames


def moving_frame(index: int, width: int, height: int) -> np.ndarray:
    """An 8-bit RGB frame with a moving square and a ramp; smooth enough for lossy codecs."""
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (xx * 255 // max(width - 1, 1)).astype(np.uint8)
    frame[..., 1] = (yy * 255 // max(height - 1, 1)).astype(np.uint8)
    frame[..., 2] = 60
    x0 = (index * 5) % max(width - 12, 1)
    y0 = (index * 3) % max(height - 12, 1)
    frame[y0 : y0 + 12, x0 : x0 + 12] = (240, 240, (index * 37) % 256)
    return frame


def vfr_pts(n: int) -> list[int]:
    """Irregular presentation times (ms) for a variable-frame-rate clip."""
    steps = [40, 40, 80, 40, 120, 40, 33, 47]
    pts = [0]
    for i in range(1, n):
        pts.append(pts[-1] + steps[i % len(steps)])
    return pts


def make_video(
    path: str | Path,
    n: int,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    fps: Fraction | int = 24,
    audio: bool = True,
    vfr: bool = False,
    pix_fmt: str | None = None,
    audio_codec: str | None = None,
    options: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    tags: dict[str, object] | None = None,
) -> list[np.ndarray]:
    """Write an n-frame clip of `moving_frame`s (plus a 440 Hz tone when `audio`); return the RGB frames.

    With `vfr` the frames get the irregular millisecond timestamps of `vfr_pts`. `tags` sets the stream's
    rotation (degrees counter-clockwise), sample_aspect_ratio, timecode and codec-context colour codes.
    """
    path = Path(path)
    fps = Fraction(fps)
    frames = [moving_frame(i, width, height) for i in range(n)]
    defaults = {
        "libx264": ("yuv420p", {"bf": "2", "g": "12", "preset": "ultrafast"}),
        "ffv1": ("yuv444p", {}),
        "mpeg2video": ("yuv420p", {"bf": "2", "g": "12"}),
        "mjpeg": ("yuvj422p", {}),
        "prores_ks": ("yuv422p10le", {}),
    }
    default_fmt, default_opts = defaults.get(codec, ("yuv420p", {}))
    with av.open(str(path), "w") as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or default_fmt
        stream.options = dict(default_opts, **(options or {}))
        _tag_stream(stream, dict(tags or {}))
        if vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
            times = vfr_pts(n)
        else:
            stream.codec_context.time_base = 1 / fps
            times = list(range(n))
        audio_stream = None
        if audio:
            acodec = audio_codec or ("aac" if path.suffix.lower() in (".mp4", ".mov") else "flac")
            audio_stream = container.add_stream(acodec, rate=48000)
            audio_stream.layout = "stereo"
        for frame_rgb, pts in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            duration = (times[-1] / 1000 + 0.04) if vfr else float(n / fps)
            _write_tone(container, audio_stream, duration)
    return frames


def _tag_stream(stream: av.VideoStream, tags: dict[str, object]) -> None:
    ctx = stream.codec_context
    if "rotation" in tags:
        stream.set_display_rotation(tags.pop("rotation"))
    if "timecode" in tags:
        stream.metadata["timecode"] = tags.pop("timecode")
    if "sample_aspect_ratio" in tags:
        ctx.sample_aspect_ratio = tags.pop("sample_aspect_ratio")
    for key, value in tags.items():  # color_primaries, color_trc, colorspace, color_range: FFmpeg codes
        setattr(ctx, key, value)


def _write_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = 48000
    total = int(round(seconds * rate))
    chunk = stream.codec_context.frame_size or 1024
    done = 0
    while done < total:
        count = min(chunk, total - done)
        t = (np.arange(done, done + count) / rate).astype(np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([tone, tone])
        fmt = stream.codec_context.format.name
        if fmt == "fltp":
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        else:
            ints = (samples * 32767).astype(np.int16)
            packed = ints.T.reshape(1, -1) if fmt == "s16" else ints
            frame = av.AudioFrame.from_ndarray(packed, format=fmt, layout="stereo")
        frame.sample_rate = rate
        frame.pts = done
        container.mux(stream.encode(frame))
        done += count
    container.mux(stream.encode(None))


def _filtered(frames: list[av.VideoFrame], rate: Fraction, chain: str) -> list[av.VideoFrame]:
    """Frames through an FFmpeg filter chain (e.g. 'telecine', 'setfield=tff')."""
    graph = av.filter.Graph()
    first = frames[0]
    source = graph.add("buffer", f"video_size={first.width}x{first.height}:pix_fmt={first.format.name}:"
                                 f"time_base={rate.denominator}/{rate.numerator}:pixel_aspect=1/1:"
                                 f"frame_rate={rate.numerator}/{rate.denominator}")
    last = source
    for step in chain.split(","):
        name, _, args = step.partition("=")
        node = graph.add(name, args)
        last.link_to(node)
        last = node
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    out = []
    for frame in [*frames, None]:
        source.push(frame)
        while True:
            try:
                out.append(sink.pull())
            except (av.BlockingIOError, av.EOFError):
                break
    return out


def make_interlaced_video(path: str | Path, n: int, width: int = 128, height: int = 96, order: str = "tff",
                          telecine_from: int | None = None, fps: Fraction = Fraction(30000, 1001)) -> None:
    """An interlaced MPEG-2 (+ilme+ildct, field order `order`) of n fast-moving frames; with `telecine_from`,
    that many 24000/1001 film frames put through 3:2 pulldown instead (n is then ignored)."""
    if telecine_from:
        film = [av.VideoFrame.from_ndarray(moving_frame(3 * i, width, height), format="rgb24").reformat(
            format="yuv420p") for i in range(telecine_from)]
        for i, frame in enumerate(film):
            frame.pts = i
        frames = _filtered(film, Fraction(24000, 1001), f"telecine=first_field={'top' if order == 'tff' else 'bottom'}")
    else:
        frames = []
        for i in range(n):  # each field is its own moment: the first-shown field earlier than the other
            first, second = moving_frame(6 * i, width, height), moving_frame(6 * i + 3, width, height)
            later = slice(1, None, 2) if order == "tff" else slice(0, None, 2)  # the lines of the later field
            woven = first.copy()
            woven[later] = second[later]
            frame = av.VideoFrame.from_ndarray(woven, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            frames.append(frame)
    frames = _filtered(frames, fps, f"setfield={order}")  # the encoder takes the field order from the frames
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg2video", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ctx = stream.codec_context
        ctx.flags |= av.codec.context.Flags.interlaced_me | av.codec.context.Flags.interlaced_dct
        ctx.field_order = 2 if order == "tff" else 3
        stream.options = {"g": "12", "bf": "2", "qscale": "2"}
        for i, frame in enumerate(frames):
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
