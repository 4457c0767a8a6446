"""Video files: probe (one demux pass, no decode but the first frame) and frame-exact decoding.

Frame index i is the i-th frame in presentation order. The index -> pts table comes from
demuxing every packet once, so random access is exact for B-frames and variable frame rate.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from restoration.errors import MediaError
from restoration.io.image import describe_av_error, why_missing
from restoration.io.info import AudioStreamInfo, MediaInfo
from restoration.io.pixels import (
    format_bit_depth,
    format_has_alpha,
    format_is_grayscale,
    frame_to_rgb,
)
from restoration.io.source import DEFAULT_CACHE_BYTES, FrameSource
from restoration.io.tags import FIELD_ORDERS, colour_tags, name_of

VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".mxf", ".mpg", ".mpeg", ".m2v", ".vob",
    ".ts", ".m2ts", ".mts", ".dv", ".dif", ".flv", ".wmv", ".asf", ".ogv", ".ogg", ".3gp", ".nut",
    ".y4m", ".h264", ".264", ".hevc", ".h265", ".265", ".ivf", ".gif", ".mj2",
}

_FORWARD_DECODE_LIMIT = 48  # frames: beyond this a seek is cheaper than decoding on from the current spot


@dataclass
class VideoIndex:
    """Per-frame presentation timestamps and the keyframes to seek to, from one demux pass."""

    pts: list[int]  # presentation order, one per frame
    keyframe_pts: list[int]  # sorted
    last_duration: int  # duration of the last frame, in time_base units (0 if unknown)
    exact: bool  # False when packets carried no timestamps and pts were synthesised from the rate


def open_container(path: Path) -> av.container.InputContainer:
    """Open a media file, turning every PyAV/OS failure into a one-line MediaError."""
    if not path.exists():
        raise MediaError(path, why_missing(path))
    if path.is_dir():
        raise MediaError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (zero bytes)")
    try:
        return av.open(str(path), metadata_errors="replace")
    except (av.error.EOFError, av.error.InvalidDataError) as exc:
        cut = iso_truncation(path) if path.suffix.lower() in _ISO_SUFFIXES else None
        if cut:
            raise MediaError(path, cut) from None
        if isinstance(exc, av.error.EOFError):
            raise MediaError(path, "file is truncated (ends before its index could be read)") from None
        raise MediaError(path, "not a readable media file (corrupt, truncated or of an unknown format)") from None
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(path, f"cannot open ({describe_av_error(exc)})") from None


_ISO_SUFFIXES = {".mp4", ".m4v", ".mov", ".qt", ".3gp", ".mj2"}


def iso_truncation(path: Path) -> str | None:
    """Where an MP4/MOV file is cut short: the top-level box that runs past its end; None when all boxes fit."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            offset = 0
            while offset + 8 <= size:
                handle.seek(offset)
                header = handle.read(16)
                length, box = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
                if not re.fullmatch(r"[A-Za-z0-9 ]{4}|\xa9[A-Za-z0-9 ]{3}", box):
                    return f"damaged: no valid box at byte {offset} (the data there is not MP4/MOV structure)"
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")
                elif length == 0:
                    return None  # the last box runs to the end by definition
                if length < 8:
                    return f"damaged: the '{box}' box at byte {offset} has an impossible size ({length})"
                if offset + length > size:
                    return (f"truncated: the file ends at byte {size}, inside its '{box}' box that starts at byte "
                            f"{offset} and needs {offset + length - size} bytes more (cut off or copied only in part)")
                offset += length
    except OSError:
        return None
    return None


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        cut = iso_truncation(path) if path.suffix.lower() in _ISO_SUFFIXES else None
        if cut:
            raise MediaError(path, cut)
        found = sorted({s.type for s in container.streams})
        if not found:
            raise MediaError(path, "damaged: no stream at all could be read from it (corrupt header)")
        if "data" in found:  # a video track whose header is damaged is read as an unknown data stream
            raise MediaError(path, f"has no readable video stream (only {', '.join(found)}: its video track header "
                                   "may be damaged)")
        raise MediaError(path, f"has no video stream (only {', '.join(found)})")
    stream = streams[0]
    if stream.codec_context is None:
        raise MediaError(path, "unknown or unsupported video codec")
    return stream


def _rate_of(stream: av.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if rate:
            return Fraction(rate)
    return None


def scan_packets(container: av.container.InputContainer, stream: av.VideoStream, path: Path) -> VideoIndex:
    """Demux (without decoding) every packet of `stream`: the frame -> pts table and keyframes."""
    pts: list[int | None] = []
    dts: list[int | None] = []
    keyframes: list[int] = []
    last_duration = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            stamp = packet.pts
            pts.append(stamp)
            dts.append(packet.dts)
            if packet.is_keyframe and stamp is not None:
                keyframes.append(stamp)
            last_duration = packet.duration or last_duration
    except av.FFmpegError as exc:
        raise MediaError(path, f"damaged file: demuxing stopped after {len(pts)} frames ({describe_av_error(exc)})") from None
    if not pts:
        return VideoIndex([], [], 0, True)
    if all(p is not None for p in pts):
        ordered = sorted(pts)  # type: ignore[arg-type]
        if len(set(ordered)) == len(ordered):
            return VideoIndex(ordered, sorted(keyframes), last_duration, True)
    # No usable pts (raw streams, some AVI): synthesise them from the frame rate; decode by counting.
    rate = _rate_of(stream) or Fraction(24)
    step = 1 / (rate * stream.time_base) if stream.time_base else Fraction(1)
    step_ticks = max(1, round(step))
    synthetic = [i * step_ticks for i in range(len(pts))]
    return VideoIndex(synthetic, [0], step_ticks, False)


def detect_vfr(pts: list[int]) -> bool:
    """Variable frame rate when frame intervals differ by more than timestamp rounding (1 tick, 1 %)."""
    if len(pts) < 3:
        return False
    deltas = np.diff(np.asarray(pts, dtype=np.int64))
    spread = int(deltas.max() - deltas.min())
    return spread > max(1, int(0.01 * float(np.median(deltas))))


def _frame_rate(stream: av.VideoStream, index: VideoIndex, vfr: bool) -> Fraction:
    """The stream's declared rate when the timestamps agree with it (within 1 %), else the measured one."""
    declared = [Fraction(r) for r in (stream.average_rate, stream.base_rate, stream.guessed_rate) if r]
    time_base = Fraction(stream.time_base) if stream.time_base else None
    measured = None
    if time_base and len(index.pts) >= 2 and index.exact:
        if vfr:
            span = (index.pts[-1] - index.pts[0]) * time_base
            measured = Fraction(len(index.pts) - 1) / span if span > 0 else None
        else:
            step = Fraction(int(np.median(np.diff(np.asarray(index.pts, dtype=np.int64))))) * time_base
            measured = 1 / step if step > 0 else None
    if measured is None:
        return declared[0] if declared else Fraction(24)
    if vfr:
        return declared[0] if declared and abs(declared[0] / measured - 1) < Fraction(1, 100) else measured
    close = [r for r in declared if abs(r / measured - 1) < Fraction(1, 100)]
    if close:
        return min(close, key=lambda r: r.denominator)
    return measured.limit_denominator(1001)


def _parse_tag_duration(text: str | None) -> float | None:
    """Matroska 'DURATION' tags: 'HH:MM:SS.nnnnnnnnn' -> seconds."""
    if not text:
        return None
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not match:
        return None
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def _stream_duration(stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    return _parse_tag_duration(stream.metadata.get("DURATION") or stream.metadata.get("duration"))


def _audio_streams(container: av.container.InputContainer) -> list[AudioStreamInfo]:
    result = []
    for stream in container.streams.audio:
        ctx = stream.codec_context
        layout = ctx.layout.name if ctx is not None and ctx.layout is not None else ""
        result.append(
            AudioStreamInfo(
                index=stream.index,
                codec=ctx.name if ctx is not None else "unknown",
                sample_rate=int(ctx.sample_rate or 0) if ctx is not None else 0,
                channels=int(ctx.channels or 0) if ctx is not None else 0,
                layout=layout,
                duration=_stream_duration(stream),
            )
        )
    return result


def _timecode(container: av.container.InputContainer, stream: av.VideoStream) -> str | None:
    for metadata in [stream.metadata, container.metadata] + [s.metadata for s in container.streams]:
        value = metadata.get("timecode") or metadata.get("TIMECODE")  # Matroska tags are upper case
        if value:
            return str(value)
    return None


def _field_order(ctx: av.video.codeccontext.VideoCodecContext, first: av.VideoFrame) -> str:
    """The stream's field order; 'interlaced' when only the decoded frame says it holds fields."""
    order = name_of(FIELD_ORDERS, ctx.field_order)
    if order and order != "progressive":
        return order
    return "interlaced" if first.interlaced_frame else (order or "progressive")


def _rotation(container: av.container.InputContainer, stream: av.VideoStream, first: av.VideoFrame | None) -> int:
    if first is not None:
        try:
            angle = first.rotation
        except (AttributeError, ValueError):
            angle = 0
        if angle:
            return int(round(angle)) % 360
    value = stream.metadata.get("rotate")
    if value:
        try:
            return (-int(float(value))) % 360  # legacy tag is clockwise; the display matrix is counter-clockwise
        except ValueError:
            return 0
    return 0


def _decode_first(path: Path) -> av.VideoFrame:
    """Decode the first frame (proves the codec works and gives rotation and pixel format)."""
    with open_container(path) as container:
        stream = _video_stream(container, path)
        try:
            for frame in container.decode(stream):
                return frame
        except av.FFmpegError as exc:
            raise MediaError(path, f"cannot decode video ({describe_av_error(exc)})") from None
    raise MediaError(path, "no video frame could be decoded (corrupt or truncated)")


def probe_video(path: str | Path) -> tuple[MediaInfo, VideoIndex]:
    """Probe a video file: geometry, exact frame count and timing (from demuxed packets), audio."""
    path = Path(path)
    with open_container(path) as container:
        stream = _video_stream(container, path)
        ctx = stream.codec_context
        codec = ctx.name
        try:
            av.codec.Codec(codec, "r")
        except (av.FFmpegError, ValueError):
            raise MediaError(path, f"no decoder for video codec '{codec}'") from None
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
        declared_frames = int(stream.frames or 0)
        declared_seconds = _stream_duration(stream)
        audio = _audio_streams(container)
        container_name = container.format.name
        index = scan_packets(container, stream, path)
        timecode = _timecode(container, stream)
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        if not index.pts:
            raise MediaError(path, "has zero video frames")
        if declared_frames and len(index.pts) < declared_frames:
            raise MediaError(
                path, f"truncated or damaged: {len(index.pts)} of {declared_frames} video frames could be read"
            )
        vfr = detect_vfr(index.pts) if index.exact else False
        rate = _frame_rate(stream, index, vfr)
        last = index.last_duration or max(1, round(1 / (rate * time_base)))
        seconds = float((index.pts[-1] - index.pts[0] + last) * time_base)
        if declared_seconds and not declared_frames and seconds < declared_seconds - 1.5 / float(rate):
            raise MediaError(
                path, f"truncated or damaged: video stops at {seconds:.3f} s of {declared_seconds:.3f} s"
            )
        first = _decode_first(path)
        pix_fmt = first.format.name
        rotation = _rotation(container, stream, first)
        field_order = _field_order(ctx, first)
    info = MediaInfo(
        path=str(path),
        kind="video",
        container=container_name,
        codec=codec,
        width=first.width,
        height=first.height,
        frame_count=len(index.pts),
        frame_rate=rate,
        time_base=time_base,
        variable_frame_rate=vfr,
        bit_depth=format_bit_depth(pix_fmt),
        pixel_format=pix_fmt,
        sample_aspect_ratio=Fraction(sar) if sar else Fraction(1, 1),
        rotation=rotation,
        timecode=timecode,
        has_alpha=format_has_alpha(pix_fmt),
        is_grayscale=format_is_grayscale(pix_fmt),
        audio=audio,
        first_frame_number=0,
        missing_frames=[],
        duration=seconds,
        files=[],
        **colour_tags(first),
        field_order=field_order,
    )
    return info, index


class _Handle:
    """An open container and its video stream; `reopen` starts again from the first byte."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container: av.container.InputContainer | None = None
        self.stream: av.VideoStream | None = None
        self.reopen()

    def reopen(self) -> None:
        self.close()
        self.container = open_container(self.path)
        self.stream = _video_stream(self.container, self.path)
        self.stream.thread_type = "AUTO"

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container = None
        self.stream = None


class VideoSource(FrameSource):
    """Frames of a video file. YUV streams are converted to RGB with their colour matrix
    (BT.709 for HD, BT.601 for SD when unspecified) at 16-bit precision for deep sources;
    that conversion is not lossless. RGB/gray streams (FFV1 RGB, ...) convert exactly.
    """

    def __init__(
        self,
        path: str | Path,
        cache_frames: int = 32,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        probed: tuple[MediaInfo, VideoIndex] | None = None,
    ) -> None:
        self.path = Path(path)
        info, index = probed or probe_video(self.path)
        super().__init__(info, cache_frames, cache_bytes)
        self._index = index
        self._index_of = {p: i for i, p in enumerate(index.pts)}
        # "seek": keyframe seeks land where the index says; "scan": seeks are unreliable (e.g. MPEG-PS),
        # decode from the start matching pts; "count": decoded pts do not match packets, count frames.
        self._mode = "seek" if index.exact else "count"
        self._handle: _Handle | None = None
        self._decoder: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._position = -1  # index of the last frame the random-access decoder produced

    # --- timing ---------------------------------------------------------------------------
    def frame_pts(self) -> list[int]:
        return list(self._index.pts)

    # --- decoding -------------------------------------------------------------------------
    def _convert(self, frame: av.VideoFrame, index: int) -> np.ndarray:
        if frame.width != self.info.width or frame.height != self.info.height:
            raise MediaError(
                self.path,
                f"frame {index} is {frame.width}x{frame.height}, the stream starts at "
                f"{self.info.width}x{self.info.height} (size changes mid-stream are not supported)",
            )
        return frame_to_rgb(frame)

    def _decoded(self, handle: _Handle, min_pts: int | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decoded frames with their index; frames before `min_pts` (open-GOP leading frames) are dropped."""
        try:
            for frame in handle.container.decode(handle.stream):
                if frame.pts is None or (min_pts is not None and frame.pts < min_pts):
                    continue
                index = self._index_of.get(frame.pts)
                if index is not None:
                    yield index, frame
        except av.FFmpegError as exc:
            raise MediaError(self.path, f"decoding failed ({describe_av_error(exc)})") from None

    def _counted(self, handle: _Handle) -> Iterator[tuple[int, av.VideoFrame]]:
        try:
            for index, frame in enumerate(handle.container.decode(handle.stream)):
                yield index, frame
        except av.FFmpegError as exc:
            raise MediaError(self.path, f"decoding failed ({describe_av_error(exc)})") from None

    def _seek_to_keyframe(self, handle: _Handle, start: int) -> Iterator[tuple[int, av.VideoFrame]] | None:
        """Seek to the last keyframe at or before frame `start` and decode from there.

        Retries from earlier keyframes while decoding lands after `start`; None when the
        decoded timestamps do not match the index (the container's seeking cannot be trusted).
        """
        target = self._index.pts[start]
        keyframes = self._index.keyframe_pts
        k = bisect.bisect_right(keyframes, target) - 1
        while k >= 0:
            try:
                handle.container.seek(keyframes[k], stream=handle.stream, backward=True)
            except av.FFmpegError:
                return None
            frames = self._decoded(handle, min_pts=keyframes[k])
            first = next(frames, None)
            if first is None or first[1].pts < keyframes[k]:
                return None
            if first[1].pts == keyframes[k] and first[0] <= start:
                return _chain(first, frames)
            k -= 1  # landed after the keyframe: its picture may be broken, so start from the one before
        return None

    def _frames_for(self, handle: _Handle, start: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Indexed frames from at or before `start`, in the most direct way this file allows."""
        if self._mode == "seek":
            frames = self._seek_to_keyframe(handle, start)
            if frames is not None:
                return frames
            self._mode = "scan"
        if self._mode == "scan":
            handle.reopen()
            frames = self._decoded(handle)
            first = next(frames, None)
            if first is not None and first[0] == 0:
                return _chain(first, frames)
            self._mode = "count"
        handle.reopen()
        return self._counted(handle)

    def _decode_from(self, handle: _Handle, start: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Yield (index, frame) in order from some frame at or before `start` to the end.

        From `start` on, every index is yielded exactly once. When decoded timestamps skip a frame
        (unreliable seeking, or AVI-style timestamps on B-frames) it falls back to decoding from
        the start, and finally to counting decoded frames.
        """
        expected = start
        while True:
            gap = False
            for index, frame in self._frames_for(handle, expected):
                if index < expected:
                    if index < start:
                        yield index, frame
                    continue
                if index > expected:
                    gap = True
                    break
                yield index, frame
                expected += 1
            if not gap:
                break
            self._mode = "scan" if self._mode == "seek" else "count"
        if expected < self.info.frame_count:
            raise MediaError(
                self.path, f"decoding stopped at frame {expected} of {self.info.frame_count} (truncated or damaged)"
            )

    def _decode_on_to(self, index: int) -> bool:
        """Whether decoding on from the current position beats seeking: close ahead, or no keyframe between."""
        ahead = index - self._position
        if ahead <= 0 or self._position < 0:
            return False
        if ahead <= _FORWARD_DECODE_LIMIT or self._mode != "seek":
            return True
        keyframes = self._index.keyframe_pts
        k = bisect.bisect_right(keyframes, self._index.pts[index]) - 1
        return k < 0 or keyframes[k] <= self._index.pts[self._position]

    def _read(self, index: int) -> np.ndarray:
        if self._handle is None:
            self._handle = _Handle(self.path)
            self._decoder = None
        if self._decoder is None or not self._decode_on_to(index):
            self._decoder = self._decode_from(self._handle, index)
            self._position = -1
        keep_from = index - self._cache.max_frames // 2
        try:
            for current, frame in self._decoder:
                self._position = current
                if current == index:
                    return self._convert(frame, current)
                if keep_from <= current < index and current not in self._cache:
                    self._cache.put(current, self._convert(frame, current))
        except MediaError:
            self._decoder = None
            raise
        self._decoder = None
        raise MediaError(self.path, f"frame {index} could not be decoded")

    def _stream(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        handle = _Handle(self.path)
        try:
            for index, frame in self._decode_from(handle, start):
                if index < start:
                    continue
                if index >= stop:
                    break
                yield index, self._convert(frame, index)
        finally:
            handle.close()

    def close(self) -> None:
        self._decoder = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


def _chain(first: tuple[int, av.VideoFrame], rest: Iterator[tuple[int, av.VideoFrame]]):
    yield first
    yield from rest
