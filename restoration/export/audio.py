"""Carry a source's audio into a master: copied where the container allows, else FLAC (PCM in MOV).

Audio is trimmed to the rendered range and read by a second demuxer on the source that the writer
advances to the current video time, so audio and video interleave and nothing long is held in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction

import av
import numpy as np

from restoration.errors import MediaError
from restoration.io.image import describe_av_error

# Lossy codecs each container takes as they are: their packets are copied, never re-encoded.
COPY_CODECS: dict[str, frozenset[str]] = {
    "matroska": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "dts", "opus", "vorbis"}),
    "mov": frozenset({"aac", "mp3", "ac3", "eac3"}),
    "mp4": frozenset({"aac", "mp3", "ac3", "eac3", "opus"}),
}
# PCM each container holds; lossless audio is decoded and re-encoded (exactly) so it is cut to the sample.
PCM_CODECS: dict[str, frozenset[str]] = {
    "matroska": frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_s16be", "pcm_s24be",
                           "pcm_s32be", "pcm_u8"}),
    "mov": frozenset({"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be",
                      "pcm_f32le", "pcm_f32be", "pcm_u8"}),
    "mp4": frozenset(),
}
# Containers whose muxer keeps negative timestamps (edit lists), so a packet straddling the range start may stay.
_NEGATIVE_TS_OK = {"mov", "mp4"}
_WIDE_FORMATS = {"s32", "s32p", "flt", "fltp", "dbl", "dblp", "s64", "s64p"}


def audio_plan(codec: str, sample_format: str, muxer: str) -> tuple[str, str | None]:
    """(encoder, sample format) for an audio stream going into `muxer`; ("copy", None) when copied.

    Lossy audio is copied where the container allows it; PCM stays the same PCM where allowed; anything
    else becomes FLAC (PCM in MOV, which cannot hold FLAC).
    """
    if codec in COPY_CODECS.get(muxer, ()):
        return "copy", None
    if codec in PCM_CODECS.get(muxer, ()):
        return codec, av.Codec(codec, "w").audio_formats[0].name
    wide = sample_format in _WIDE_FORMATS
    if muxer == "mov":
        return ("pcm_s24le", "s32") if wide else ("pcm_s16le", "s16")
    return "flac", ("s32" if wide else "s16")


_SAMPLE_DTYPES = {"u8": (np.uint8, 128), "s16": (np.int16, 0), "s32": (np.int32, 0), "s64": (np.int64, 0),
                  "flt": (np.float32, 0), "dbl": (np.float64, 0)}

Mux = Callable[[av.Packet], None]


class _CopyTrack:
    """Packets copied unchanged, shifted so the range start is 0."""

    def __init__(self, source: av.AudioStream, output: av.container.OutputContainer, start: Fraction, muxer: str):
        self.source = source
        self.stream = output.add_stream_from_template(source)
        self.mode = "copy"
        self._offset = round(start / source.time_base)
        self._keep_straddling = muxer in _NEGATIVE_TS_OK

    def take(self, packet: av.Packet, end: Fraction | None) -> list[av.Packet]:
        ts = packet.pts if packet.pts is not None else packet.dts
        if end is not None and ts * self.source.time_base >= end:
            return []
        if ts < self._offset:
            # Before the range: MOV/MP4 keep the packet just before the start (decoder pre-roll, hidden by
            # the edit list); Matroska cannot hold negative times, so it starts at the first whole packet.
            if not self._keep_straddling or ts + (packet.duration or 0) < self._offset:
                return []
        packet.pts = ts - self._offset
        if packet.dts is not None:
            packet.dts -= self._offset
        packet.stream = self.stream
        return [packet]

    def flush(self, end: Fraction) -> list[av.Packet]:
        return []


class _TranscodeTrack:
    """Decoded, cut to the range at sample precision, gaps filled with silence, and re-encoded losslessly."""

    def __init__(self, source: av.AudioStream, output: av.container.OutputContainer, start: Fraction,
                 codec: str, sample_format: str):
        self.source = source
        self.mode = codec
        self.rate = source.codec_context.sample_rate
        self.layout = source.codec_context.layout.name
        self.stream = output.add_stream(codec, rate=self.rate)
        self.stream.layout = self.layout
        self.stream.format = sample_format
        self.stream.codec_context.time_base = Fraction(1, self.rate)
        self._start_sample = start * self.rate  # range start, in samples on the source clock
        self._written = 0  # samples handed to the encoder
        self._format: str | None = None  # sample format of the decoded audio
        self._slack = math.ceil(source.time_base * self.rate) + 1  # samples one source tick may hide

    def _frame(self, samples: np.ndarray, planar: bool, fmt: str) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=fmt, layout=self.layout)
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = self._written
        self._written += samples.shape[1] if planar else samples.shape[1] // len(frame.layout.channels)
        return frame

    def _cut(self, frame: av.AudioFrame, end_sample: Fraction | None) -> list[av.AudioFrame]:
        if frame.pts is not None:
            first = round(frame.pts * frame.time_base * self.rate - self._start_sample)
        else:
            first = self._written
        if self._written > 0 and abs(first - self._written) <= self._slack:
            first = self._written  # timestamp rounding, not a real gap or overlap
        count = frame.samples
        lo = max(0, self._written - first)  # drop what overlaps audio already written or precedes the range
        hi = count if end_sample is None else min(count, math.floor(end_sample - self._start_sample) - first)
        if hi <= lo:
            return []
        planar = frame.format.is_planar
        self._format = frame.format.name
        channels = len(frame.layout.channels)
        out = []
        gap = first + lo - self._written
        if gap > 0:  # the source has no audio here: keep sync with silence
            out.extend(self._silence(gap))
        data = frame.to_ndarray()
        piece = data[:, lo:hi] if planar else data[:, lo * channels : hi * channels]
        out.append(self._frame(piece, planar, self._format))
        return out

    def _silence(self, count: int) -> Iterator[av.AudioFrame]:
        """`count` samples of silence, one second at a time, in the format the encoder has been fed so far."""
        fmt = av.AudioFormat(self._format or self.stream.format.name)
        channels = len(self.stream.layout.channels)
        dtype, zero = _SAMPLE_DTYPES[fmt.packed.name]
        while count > 0:
            n = min(count, self.rate)
            shape = (channels, n) if fmt.is_planar else (1, n * channels)
            yield self._frame(np.full(shape, zero, dtype), fmt.is_planar, fmt.name)
            count -= n

    def take(self, packet: av.Packet, end: Fraction | None) -> list[av.Packet]:
        end_sample = end * self.rate if end is not None else None
        packets: list[av.Packet] = []
        for frame in packet.decode():
            for piece in self._cut(frame, end_sample):
                packets.extend(self.stream.encode(piece))
        return packets

    def flush(self, end: Fraction) -> list[av.Packet]:
        packets: list[av.Packet] = []
        end_sample = end * self.rate
        for frame in self.source.codec_context.decode(None):
            for piece in self._cut(frame, end_sample):
                packets.extend(self.stream.encode(piece))
        missing = math.floor(end_sample - self._start_sample) - self._written
        for silence in self._silence(missing):  # the source's audio ends before the picture does
            packets.extend(self.stream.encode(silence))
        packets.extend(self.stream.encode(None))
        return packets


@contextmanager
def _reading(source_path: str) -> Iterator[None]:
    """Blame a failure to read the source's audio on the source, not on the master being written."""
    try:
        yield
    except av.FFmpegError as exc:
        raise MediaError(source_path, f"its audio cannot be read (damaged: {describe_av_error(exc)}); "
                                      "repair it, or render without it (export 'audio': false)") from None


class AudioCarrier:
    """The source's audio streams, read in step with the video being written."""

    def __init__(self, source_path: str, stream_indices: list[int], output: av.container.OutputContainer,
                 muxer: str, start: Fraction):
        self._path = source_path
        with _reading(source_path):
            self._input = av.open(source_path, metadata_errors="replace")
        try:
            streams = [s for s in self._input.streams.audio if s.index in set(stream_indices)]
            self.tracks = []
            for stream in streams:
                ctx = stream.codec_context
                if ctx is None:
                    raise MediaError(source_path, f"audio stream {stream.index} has an unknown or damaged codec and "
                                                  "cannot be carried; repair it, or render without it "
                                                  "(export 'audio': false)")
                encoder, sample_format = audio_plan(ctx.name, ctx.format.name if ctx.format else "", muxer)
                if encoder == "copy":
                    self.tracks.append(_CopyTrack(stream, output, start, muxer))
                else:
                    self.tracks.append(_TranscodeTrack(stream, output, start, encoder, sample_format))
            self._start = start
            if start > 1:
                with _reading(source_path):
                    self._input.seek(int((start - 1) * av.time_base), backward=True, any_frame=False)
            self._packets: Iterator[av.Packet] | None = self._input.demux(*streams) if streams else None
        except BaseException:
            self._input.close()
            raise
        self._by_index = {t.source.index: t for t in self.tracks}
        self._pending: av.Packet | None = None

    def _peek(self) -> av.Packet | None:
        while self._pending is None and self._packets is not None:
            with _reading(self._path):
                packet = next(self._packets, None)
            if packet is None:
                self._packets = None
            elif packet.pts is not None or packet.dts is not None:
                self._pending = packet
        return self._pending

    def advance(self, until: Fraction, mux: Mux, end: Fraction | None = None) -> None:
        """Mux the audio packets that start before `until` seconds after the range start, cut at `end`."""
        limit = self._start + until
        while (packet := self._peek()) is not None:
            ts = packet.pts if packet.pts is not None else packet.dts
            when = ts * packet.time_base
            if when >= limit:
                return
            self._pending = None
            if end is not None and when >= end + 1:
                self._packets = None  # well past the range: stop reading the source
                return
            with _reading(self._path):
                taken = self._by_index[packet.stream.index].take(packet, end)
            for out in taken:
                mux(out)

    def finish(self, end: Fraction, mux: Mux) -> None:
        """Mux the rest of the range up to `end` (source clock) and flush the encoders."""
        self.advance(end - self._start + 1, mux, end)
        for track in self.tracks:
            with _reading(self._path):
                flushed = track.flush(end)
            for out in flushed:
                mux(out)

    def describe(self) -> list[dict[str, object]]:
        """Per stream: source index, source codec, and how it was carried."""
        return [{"source_stream": t.source.index, "codec": t.source.codec_context.name, "carried_as": t.mode}
                for t in self.tracks]

    def close(self) -> None:
        self._input.close()
