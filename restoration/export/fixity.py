"""Fixity: decode a finished master back and hash every frame as `ffmpeg -i OUT -f framemd5 -` does.

Each decoded frame is packed by PyAV's rawvideo encoder (the packing FFmpeg's framemd5 hashes), so the
text matches FFmpeg's output apart from its '#software' line. The decoded RGB values are hashed too, so
lossless masters can be checked against what was written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import VideoFrame

from restoration.export.pictures import values_digest
from restoration.io.image import IMAGE_CODECS, decode_image_file
from restoration.io.pixels import frame_to_rgb_int


def _ratio(value: Fraction | None) -> str:
    if not value:
        return "0/1"
    return f"{value.numerator}/{value.denominator}"


@dataclass
class FrameMD5:
    """Builds framemd5 text (version 2) for one video stream, a frame at a time."""

    time_base: Fraction
    sample_aspect_ratio: Fraction | None = None
    lines: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    _packer: av.CodecContext | None = None

    def add(self, frame: VideoFrame, pts: int) -> None:
        if self._packer is None:
            self._packer = av.CodecContext.create("rawvideo", "w")
            self._packer.width, self._packer.height = frame.width, frame.height
            self._packer.pix_fmt = frame.format.name
            self._packer.time_base = self.time_base
            self.header = [
                "#format: frame checksums",
                "#version: 2",
                "#hash: MD5",
                f"#tb 0: {_ratio(self.time_base)}",
                "#media_type 0: video",
                "#codec_id 0: rawvideo",
                f"#dimensions 0: {frame.width}x{frame.height}",
                f"#sar 0: {_ratio(self.sample_aspect_ratio)}",
                "#stream#, dts,        pts, duration,     size, hash",
            ]
        frame.pts = None  # the packer only packs; timestamps are written below
        data = b"".join(bytes(p) for p in self._packer.encode(frame))
        digest = hashlib.md5(data).hexdigest()
        self.lines.append(f"0, {pts:10d}, {pts:10d}, {1:8d}, {len(data):8d}, {digest}")

    @property
    def text(self) -> str:
        return "\n".join(self.header + self.lines) + "\n"


@dataclass
class DecodedMaster:
    """What decoding a finished master gave back."""

    framemd5: str
    value_digests: list[str]
    value_bits: int
    pix_fmt: str
    frame_times: list[Fraction]


def hash_container(path: Path) -> DecodedMaster:
    """Decode the video stream of `path` and hash each frame (FFmpeg-compatible) and its RGB values."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        rate = Fraction(stream.guessed_rate or stream.average_rate or 25)
        hasher = FrameMD5(1 / rate, stream.codec_context.sample_aspect_ratio)
        digests, times, bits, pix_fmt = [], [], 0, ""
        for index, frame in enumerate(container.decode(stream)):
            when = Fraction(frame.pts) * stream.time_base if frame.pts is not None else index / rate
            times.append(when)
            values, bits = frame_to_rgb_int(frame)
            digests.append(values_digest(values))
            pix_fmt = frame.format.name
            hasher.add(frame, round(when * rate))
    return DecodedMaster(hasher.text, digests, bits, pix_fmt, times)


def hash_sequence(files: list[Path], rate: Fraction) -> DecodedMaster:
    """Decode each image file in order and hash it as FFmpeg's image2 demuxer at `rate` would present it."""
    rate = Fraction(rate)
    hasher: FrameMD5 | None = None
    digests, times, bits, pix_fmt = [], [], 0, ""
    for index, path in enumerate(files):
        # A fresh decoder per file: a reused PNG decoder misreads the second file (it expects APNG deltas).
        context = av.CodecContext.create(IMAGE_CODECS[path.suffix.lower()], "r")
        frame = decode_image_file(path, context)
        if hasher is None:
            hasher = FrameMD5(1 / rate, context.sample_aspect_ratio)
        values, bits = frame_to_rgb_int(frame)
        digests.append(values_digest(values))
        times.append(index / rate)
        pix_fmt = frame.format.name
        hasher.add(frame, index)
    return DecodedMaster(hasher.text if hasher else "", digests, bits, pix_fmt, times)
