"""Interlaced and telecined video: measure the field order and 3:2 pulldown, and turn fields into frames.

Field handling: `keep` treats each frame as a picture (as stored), `deinterlace` makes one frame per frame
with FFmpeg's bwdif, `ivtc` undoes 3:2 pulldown with fieldmatch + decimate (30000/1001 -> 24000/1001).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from restoration.errors import MediaError
from restoration.io.image import describe_av_error
from restoration.io.info import MediaInfo
from restoration.io.pixels import frame_to_rgb
from restoration.io.source import DEFAULT_CACHE_BYTES
from restoration.io.video import VideoIndex, VideoSource, _Handle, open_container, _video_stream

FIELD_HANDLINGS = ("keep", "deinterlace", "ivtc")
PULLDOWN_SAMPLE = 60  # frames measured for the cadence: 12 cycles of 3:2
_CHUNK = 16  # output frames filtered together; inputs overlap by the filters' reach
_IVTC_CYCLE = 5  # decimate drops one frame in five


def _filter_graph(info: MediaInfo, frame: av.VideoFrame, chain: list[tuple[str, str]]):
    """A buffer -> chain -> buffersink graph for frames like `frame` at the source's rate."""
    graph = av.filter.Graph()
    tb, rate = Fraction(frame.time_base or info.time_base), Fraction(info.frame_rate)
    sar = info.sample_aspect_ratio or Fraction(1)
    source = graph.add("buffer", f"video_size={frame.width}x{frame.height}:pix_fmt={frame.format.name}:"
                                 f"time_base={tb.numerator}/{tb.denominator}:pixel_aspect={sar.numerator}/"
                                 f"{sar.denominator}:frame_rate={rate.numerator}/{rate.denominator}")
    last = source
    for name, args in chain:
        node = graph.add(name, args)
        last.link_to(node)
        last = node
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    return graph, source, sink  # the graph owns the filters: keep it alive while they are used


def run_filters(info: MediaInfo, frames: list[av.VideoFrame], chain: list[tuple[str, str]]) -> list[av.VideoFrame]:
    """Push `frames` through the filter chain and flush it; the frames that come out."""
    if not frames:
        return []
    _graph, source, sink = _filter_graph(info, frames[0], chain)
    out: list[av.VideoFrame] = []

    def drain() -> None:
        while True:
            try:
                out.append(sink.pull())
            except (av.BlockingIOError, av.EOFError):
                return

    for frame in frames:
        source.push(frame)
        drain()
    source.push(None)
    drain()
    return out


def _measure_sample(path: Path, info: MediaInfo, index: VideoIndex, count: int) -> list[av.VideoFrame]:
    """idet's verdict on up to `count` frames from a third of the way in, past leaders and titles."""
    with open_container(path) as container:  # decoded frames must not outlive their container
        stream = _video_stream(container, path)
        start = info.frame_count // 3 if info.frame_count > 2 * count else 0
        frames: list[av.VideoFrame] = []
        try:
            if start and index.exact:
                k = bisect.bisect_right(index.keyframe_pts, index.pts[start]) - 1
                container.seek(index.keyframe_pts[max(k, 0)], stream=stream, backward=True)
            for frame in container.decode(stream):
                frames.append(frame)
                if len(frames) >= count:
                    break
        except av.FFmpegError as exc:
            raise MediaError(path, f"cannot decode video ({describe_av_error(exc)})") from None
        try:
            return run_filters(info, frames, [("idet", "")])
        except (av.FFmpegError, ValueError):
            return []  # a pixel format idet cannot take: the flags alone tell


def measure_fields(info: MediaInfo, index: VideoIndex, sample: int = PULLDOWN_SAMPLE) -> MediaInfo:
    """`info` with the pulldown measured (FFmpeg's idet over a sample) and an unstated field order filled in.

    3:2 pulldown repeats a field in two frames of every five; the repeats fall on the same places of the cycle.
    """
    measured = _measure_sample(Path(info.path), info, index, sample)
    repeats = [i for i, f in enumerate(measured)
               if f.metadata.get("lavfi.idet.repeated.current_frame") in ("top", "bottom")]
    pulldown = None
    if len(repeats) >= max(3, len(measured) // 4):
        places = Counter(i % _IVTC_CYCLE for i in repeats)
        if sum(n for _, n in places.most_common(2)) >= 0.8 * len(repeats):
            pulldown = "3:2"
    order = info.field_order
    if order == "interlaced" or pulldown:
        votes = Counter(f.metadata.get("lavfi.idet.multiple.current_frame") for f in measured)
        if order == "interlaced" and max(votes["tff"], votes["bff"]) > 0:
            order = "tff" if votes["tff"] >= votes["bff"] else "bff"
    return replace(info, pulldown=pulldown, field_order=order)


def _display_parity(field_order: str) -> str:
    """bwdif/fieldmatch parity: the field shown first (tb is coded top first but shown bottom first)."""
    return {"tff": "tff", "bt": "tff", "bff": "bff", "tb": "bff"}.get(field_order, "auto")


class FieldFilteredSource(VideoSource):
    """A video's frames after field handling: `deinterlace` (bwdif) or `ivtc` (fieldmatch + decimate).

    Frames are filtered in chunks of 16 outputs with enough overlap that the filters see what they would in
    one pass, so random access gives the same pictures as streaming.
    """

    def __init__(self, path: str | Path, fields: str, cache_frames: int = 32,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, probed: tuple[MediaInfo, VideoIndex] | None = None) -> None:
        if fields not in ("deinterlace", "ivtc"):
            raise ValueError(f"no filtering for field handling {fields!r}")
        super().__init__(path, cache_frames, cache_bytes, probed)
        self.fields = fields
        source = self.source_info = self.info  # what was decoded; self.info describes the frames delivered
        self.inputs = source.frame_count
        parity = _display_parity(source.field_order)
        if fields == "deinterlace":
            self.chain = [("bwdif", f"mode=send_frame:parity={parity}:deint=all")]
            self.info = replace(source, field_order="progressive", pulldown=None)
            self._pts = list(self._index.pts)
        else:
            self.chain = [("fieldmatch", f"order={'bff' if parity == 'bff' else 'tff'}"), ("decimate", "")]
            count = 4 * (self.inputs // _IVTC_CYCLE) + self.inputs % _IVTC_CYCLE
            rate = Fraction(source.frame_rate) * 4 / 5
            start = round(self._index.pts[0] * Fraction(source.time_base) * rate)
            self.info = replace(source, frame_count=count, frame_rate=rate, time_base=1 / rate,
                                variable_frame_rate=False, field_order="progressive", pulldown=None,
                                duration=float(count / rate))
            self._pts = list(range(start, start + count))

    def frame_pts(self) -> list[int]:
        return list(self._pts)

    def _inputs_of(self, chunk: int) -> tuple[int, int, int]:
        """(first input, end input, outputs to drop) that give chunk `chunk`'s output frames."""
        if self.fields == "deinterlace":
            first = max(0, chunk * _CHUNK - 2)  # bwdif reaches two frames either way
            return first, min(self.inputs, (chunk + 1) * _CHUNK + 2), chunk * _CHUNK - first
        per = _CHUNK // 4 * _IVTC_CYCLE  # decimate's cycles must start where one pass would start them
        first = max(0, chunk * per - _IVTC_CYCLE)
        return first, min(self.inputs, (chunk + 1) * per + 1), 4 if chunk else 0

    def _filter(self, chunk: int, frames: dict[int, av.VideoFrame]) -> list[np.ndarray]:
        first, end, drop = self._inputs_of(chunk)
        try:
            out = run_filters(self.source_info, [frames[i] for i in range(first, end)], self.chain)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(self.path, f"{self.fields} failed ({exc})") from None
        wanted = min(_CHUNK, self.info.frame_count - chunk * _CHUNK)
        if len(out) - drop < wanted:
            raise MediaError(self.path, f"{self.fields} gave {len(out) - drop} of {wanted} frames at frame "
                                        f"{chunk * _CHUNK}")
        return [frame_to_rgb(f) for f in out[drop: drop + wanted]]

    def _raw(self, handle: _Handle, chunk: int, decoder, frames: dict[int, av.VideoFrame]):
        """Fill `frames` with the inputs chunk `chunk` needs, decoding on with `decoder` (made when None)."""
        first, end, _ = self._inputs_of(chunk)
        if decoder is None:
            decoder = self._decode_from(handle, first)
        while not all(i in frames for i in range(first, end)):
            index, frame = next(decoder)
            if index >= first:
                frames[index] = frame
        return decoder

    def _read(self, index: int) -> np.ndarray:
        if self._handle is None:
            self._handle = _Handle(self.path)
        chunk = index // _CHUNK
        frames: dict[int, av.VideoFrame] = {}
        self._raw(self._handle, chunk, None, frames)
        pictures = self._filter(chunk, frames)
        for offset, picture in enumerate(pictures):
            if chunk * _CHUNK + offset != index:
                self._cache.put(chunk * _CHUNK + offset, picture)
        return pictures[index - chunk * _CHUNK]

    def _stream(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        handle = _Handle(self.path)
        try:
            decoder = None
            frames: dict[int, av.VideoFrame] = {}
            for chunk in range(start // _CHUNK, (stop - 1) // _CHUNK + 1):
                decoder = self._raw(handle, chunk, decoder, frames)
                for offset, picture in enumerate(self._filter(chunk, frames)):
                    if start <= chunk * _CHUNK + offset < stop:
                        yield chunk * _CHUNK + offset, picture
                keep_from = self._inputs_of(chunk + 1)[0]
                frames = {i: f for i, f in frames.items() if i >= keep_from}
        finally:
            handle.close()
