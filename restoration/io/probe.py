"""Entry points: `probe` a source and `open_source` it, whatever it is (video, sequence, still)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from restoration.errors import MediaError, ParamError
from restoration.io.fields import FIELD_HANDLINGS, FieldFilteredSource, measure_fields
from restoration.io.image import IMAGE_CODECS, why_missing
from restoration.io.info import MediaInfo
from restoration.io.sequence import (
    ImageSequenceSource,
    SequenceFiles,
    find_folder_files,
    find_pattern_files,
    is_sequence_pattern,
    probe_files,
)
from restoration.io.source import DEFAULT_CACHE_BYTES, FrameSource
from restoration.io.video import VIDEO_EXTENSIONS, VideoSource, probe_video


def source_kind(source: str | os.PathLike) -> str:
    """'video', 'sequence' or 'image' for a path, folder or frame-number pattern; MediaError otherwise."""
    path = Path(source)
    if path.is_dir():
        return "sequence"
    if not path.exists():
        if is_sequence_pattern(str(source)):
            return "sequence"
        raise MediaError(path, why_missing(path))
    suffix = path.suffix.lower()
    if suffix in IMAGE_CODECS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    raise MediaError(
        path,
        f"unknown file type '{suffix or path.name}' (video: {', '.join(sorted(VIDEO_EXTENSIONS))}; "
        f"images: {', '.join(IMAGE_CODECS)})",
    )


def as_frame_rate(value: Fraction | int | float | str | None) -> Fraction | None:
    """A user-given frame rate as an exact fraction; 23.976, 29.97 and 59.94 mean the NTSC x/1001 rates."""
    if value is None:
        return None
    if isinstance(value, float):
        for nominal in (24, 30, 48, 60, 120):
            if abs(value - nominal * 1000 / 1001) < 0.005:
                return Fraction(nominal * 1000, 1001)
        rate = Fraction(value).limit_denominator(1001)
    else:
        try:
            rate = Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise MediaError("frame rate", f"'{value}' is not a frame rate (use e.g. 24, 25 or 24000/1001)") from None
    if rate <= 0:
        raise MediaError("frame rate", f"must be positive, got {value}")
    return rate


def _find_files(source: str | os.PathLike, kind: str) -> SequenceFiles:
    path = Path(source)
    if kind == "image":
        return SequenceFiles([path], [0], [])
    return find_folder_files(path) if path.is_dir() else find_pattern_files(path)


def probe(source: str | os.PathLike, frame_rate: Fraction | int | float | str | None = None) -> MediaInfo:
    """Describe a video file, image sequence (folder or pattern) or still; `frame_rate` applies to stills only."""
    kind = source_kind(source)
    if kind == "video":
        return measure_fields(*probe_video(source))
    rate = as_frame_rate(frame_rate)
    return probe_files(source, _find_files(source, kind), kind, rate)


def open_source(
    source: str | os.PathLike,
    frame_rate: Fraction | int | float | str | None = None,
    cache_frames: int = 32,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> FrameSource:
    """Open any source for decoding: random access `frame(i)` (LRU-cached) and streaming `frames()`.

    `frame_rate` sets the rate of image sequences (default 24/1); video files keep their own.
    """
    kind = source_kind(source)
    if kind == "video":
        return VideoSource(source, cache_frames=cache_frames, cache_bytes=cache_bytes)
    rate = as_frame_rate(frame_rate)
    found = _find_files(source, kind)
    info = probe_files(source, found, kind, rate)
    return ImageSequenceSource(info, found.numbers, cache_frames=cache_frames, cache_bytes=cache_bytes)


def open_with_fields(
    source: str | os.PathLike,
    frame_rate: Fraction | int | float | str | None = None,
    fields: str | None = None,
    cache_frames: int = 32,
) -> FrameSource:
    """Open a source for rendering: an interlaced or telecined video is refused unless `fields` says how
    to treat its fields (keep, deinterlace, ivtc)."""
    if fields is not None and fields not in FIELD_HANDLINGS:
        raise ParamError("fields", f"{fields!r} is not one of {', '.join(FIELD_HANDLINGS)}")
    if source_kind(source) != "video":
        if fields in ("deinterlace", "ivtc"):
            raise ParamError("fields", f"{fields} applies to video files; image sequences hold whole frames")
        return open_source(source, frame_rate=frame_rate, cache_frames=cache_frames)
    info, index = probe_video(source)
    info = measure_fields(info, index)
    if info.interlaced and fields is None:
        what = f"telecined ({info.pulldown} pulldown" + (f", {info.field_order})" if info.field_order != "progressive"
                                                          else ")") if info.pulldown else \
            f"interlaced ({info.field_order})"
        raise MediaError(source, f"is {what}: choose how to treat its fields with --fields keep|deinterlace|ivtc")
    if fields in ("deinterlace", "ivtc"):
        return FieldFilteredSource(source, fields, cache_frames=cache_frames, probed=(info, index))
    return VideoSource(source, cache_frames=cache_frames, probed=(info, index))
