"""Where encoded pictures go: a video container (FFV1/ProRes/H.264) or a folder of numbered images."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange

from restoration.errors import ExportError
from restoration.export.formats import OutputFormat
from restoration.export.settings import ExportSettings
from restoration.export.timing import Timing
from restoration.io.tags import FIELD_ORDERS, PRIMARIES, TRANSFERS, code_of

_BT709 = 1  # AVCOL_PRI_BT709 / AVCOL_TRC_BT709 / AVCOL_SPC_BT709


class ContainerTarget:
    """One video stream in a Matroska/MOV/MP4 file, encoded with frame pts from `timing`."""

    def __init__(self, path: Path, fmt: OutputFormat, settings: ExportSettings, width: int, height: int,
                 pix_fmt: str, timing: Timing, sample_aspect_ratio: Fraction = Fraction(1),
                 tags: Mapping[str, Any] | None = None):
        container_options = {"movflags": "+faststart"} if fmt.name == "h264" else {}
        self.container = av.open(str(path), "w", format=fmt.container, container_options=container_options)
        self.tags = dict(tags or {})
        self.lossless = fmt.lossless
        try:
            self.stream = self._add_video(fmt, settings, width, height, pix_fmt, timing, sample_aspect_ratio)
            self._tag(self.stream)
        except BaseException:
            self.container.close()
            raise
        self.timing = timing

    def _tag(self, stream: av.VideoStream) -> None:
        """Carry the source's rotation, colour, field order and timecode where this container holds them."""
        tags, ctx = self.tags, stream.codec_context
        primaries = code_of(PRIMARIES, tags.get("color_primaries"))
        transfer = code_of(TRANSFERS, tags.get("color_transfer"))
        if self.lossless:  # RGB exactly as decoded: the source's primaries and transfer, no matrix, full range
            ctx.colorspace, ctx.color_range = 0, ColorRange.JPEG
        if primaries:
            ctx.color_primaries = primaries
        if transfer:
            ctx.color_trc = transfer
        field_order = code_of(FIELD_ORDERS, tags.get("field_order"))
        if field_order:
            ctx.field_order = field_order
        if tags.get("rotation"):
            stream.set_display_rotation(int(tags["rotation"]))
        if tags.get("timecode"):
            stream.metadata["timecode"] = str(tags["timecode"])

    def _add_video(self, fmt: OutputFormat, settings: ExportSettings, width: int, height: int, pix_fmt: str,
                   timing: Timing, sar: Fraction) -> av.VideoStream:
        stream = self.container.add_stream(fmt.codec, rate=timing.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        ctx = stream.codec_context
        ctx.time_base = timing.time_base
        stream.time_base = timing.time_base
        if sar and sar > 0:
            ctx.sample_aspect_ratio = sar
        options = dict(fmt.options)
        if fmt.codec == "ffv1":
            options["slices"] = str(ffv1_slices(width, height, int(options.get("slices", "1"))))
        if fmt.name == "h264":
            options.update(crf=str(settings.crf), preset=settings.preset)
        if not fmt.lossless:  # Y'CbCr made by values_to_frame: BT.709 matrix, limited range
            ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT709
            ctx.color_range = ColorRange.MPEG
        stream.options = options
        ctx.thread_type = "AUTO"
        ctx.thread_count = settings.threads
        return stream

    def mux(self, packets: av.Packet | list[av.Packet]) -> None:
        """Hand packets to the muxer (the one place output bytes are written)."""
        self.container.mux(packets)

    def write(self, frame: VideoFrame, index: int, number: int) -> None:
        frame.pts = self.timing.frame_pts(index)
        frame.time_base = self.timing.time_base
        frame.duration = self.timing.frame_duration(index)
        if not self.lossless:  # prores_ks tags its bitstream from the frame, not the context
            frame.color_primaries = self.stream.codec_context.color_primaries
            frame.color_trc = self.stream.codec_context.color_trc
        self.mux(self.stream.encode(frame))

    def finish(self) -> None:
        """Flush the encoder; audio must be finished before `close`."""
        self.mux(self.stream.encode(None))

    def close(self) -> None:
        self.container.close()


def ffv1_slices(width: int, height: int, wanted: int) -> int:
    """The slice count FFV1 can use for this picture: its slices form a square grid of at least 1 px per cell."""
    slices = max(1, wanted)
    while slices > 1 and min(width, height) < math.isqrt(slices):
        slices //= 4
    return slices


class SequenceTarget:
    """Numbered image files `<name>_%06d.<ext>` in a folder, one encoder context reused for all."""

    def __init__(self, folder: Path, name: str, fmt: OutputFormat, width: int, height: int, pix_fmt: str):
        self.folder = folder
        self.name = name
        self.extension = fmt.extension
        self.codec = av.CodecContext.create(fmt.codec, "w")
        self.codec.width, self.codec.height, self.codec.pix_fmt = width, height, pix_fmt
        self.codec.time_base = Fraction(1, 25)
        self.files: list[Path] = []

    def file_name(self, number: int) -> str:
        return f"{self.name}_{number:06d}{self.extension}"

    def write_file(self, path: Path, data: bytes) -> None:
        """Write one image file; refuses a name already written in this render."""
        with open(path, "xb") as handle:
            handle.write(data)

    def write(self, frame: VideoFrame, index: int, number: int) -> None:
        data = b"".join(bytes(p) for p in self.codec.encode(frame))
        if not data:
            raise ExportError(self.folder, f"the {self.codec.name} encoder returned no picture for frame {number}")
        path = self.folder / self.file_name(number)
        if path.exists():
            raise ExportError(path, f"frame number {number} was given twice")
        self.write_file(path, data)
        self.files.append(path)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass
