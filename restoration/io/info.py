"""What a probe tells about a source: geometry, timing, depth, audio."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any


@dataclass
class AudioStreamInfo:
    """One audio stream of a source."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration: float | None


@dataclass
class MediaInfo:
    """Everything the pipeline and export need to know about a source, from one probe."""

    path: str
    kind: str  # "video", "sequence" or "image"
    container: str
    codec: str
    width: int
    height: int
    frame_count: int
    frame_rate: Fraction
    time_base: Fraction
    variable_frame_rate: bool
    bit_depth: int
    pixel_format: str
    sample_aspect_ratio: Fraction = Fraction(1, 1)
    rotation: int = 0
    timecode: str | None = None
    has_alpha: bool = False
    is_grayscale: bool = False
    audio: list[AudioStreamInfo] = field(default_factory=list)
    first_frame_number: int = 0
    missing_frames: list[int] = field(default_factory=list)
    duration: float | None = None
    files: list[str] = field(default_factory=list)
    color_primaries: str | None = None  # FFmpeg names (bt709, smpte170m, ...); None where the source does not say
    color_transfer: str | None = None
    color_matrix: str | None = None
    color_range: str | None = None  # "tv" (limited) or "pc" (full)
    field_order: str = "progressive"  # progressive, tff, bff, tb, bt, or "interlaced" when the order is not given
    pulldown: str | None = None  # "3:2" when a telecine cadence was measured in a sample of frames

    @property
    def interlaced(self) -> bool:
        """True when the frames hold two fields each (flagged interlaced, or telecined)."""
        return self.field_order not in ("progressive", "unknown") or self.pulldown is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: fractions as 'num/den' strings, file lists summarised."""
        data = asdict(self)
        for key in ("frame_rate", "time_base", "sample_aspect_ratio"):
            value = getattr(self, key)
            data[key] = f"{value.numerator}/{value.denominator}"
        data["frame_rate_float"] = float(self.frame_rate)
        data["files"] = len(self.files)
        return data
