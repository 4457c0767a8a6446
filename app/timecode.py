"""SMPTE timecode labels for the timeline: frame index -> HH:MM:SS:FF (drop-frame when the source says so)."""

from __future__ import annotations

from fractions import Fraction


def nominal_rate(frame_rate: Fraction) -> int:
    """The whole frame count a timecode second holds (30 for 29.97, 24 for 23.976)."""
    return max(1, round(float(frame_rate)))


def is_drop_frame(frame_rate: Fraction, start: str | None) -> bool:
    """Drop-frame counting applies to the NTSC x/1001 rates when the source timecode is written with ';'."""
    return bool(start and ";" in start) and Fraction(frame_rate).denominator == 1001 and nominal_rate(frame_rate) % 30 == 0


def _dropped_per_minute(fps: int) -> int:
    return 2 * (fps // 30)


def parse_timecode(text: str, frame_rate: Fraction) -> int:
    """Frame count of a 'HH:MM:SS:FF' (or ';'-separated drop-frame) label; ValueError when malformed."""
    parts = text.replace(";", ":").replace(".", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a HH:MM:SS:FF timecode")
    hours, minutes, seconds, frames = (int(p) for p in parts)
    fps = nominal_rate(frame_rate)
    total = ((hours * 60 + minutes) * 60 + seconds) * fps + frames
    if is_drop_frame(frame_rate, text):
        drop = _dropped_per_minute(fps)
        total_minutes = hours * 60 + minutes
        total -= drop * (total_minutes - total_minutes // 10)
    return total


def format_timecode(count: int, frame_rate: Fraction, drop_frame: bool = False) -> str:
    """'HH:MM:SS:FF' for a frame count (';' before the frames in drop-frame counting)."""
    fps = nominal_rate(frame_rate)
    count = max(0, int(count))
    if drop_frame:
        drop = _dropped_per_minute(fps)
        per_ten_minutes = fps * 600 - drop * 9
        per_minute = fps * 60 - drop
        tens, rest = divmod(count, per_ten_minutes)
        extra = 0 if rest < drop else drop * ((rest - drop) // per_minute)
        count += drop * 9 * tens + extra
    frames = count % fps
    seconds = count // fps
    separator = ";" if drop_frame else ":"
    return f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{separator}{frames:02d}"


def timecode_at(index: int, frame_rate: Fraction, start: str | None = None) -> str:
    """Timecode of frame `index` of a source whose first frame carries `start` (00:00:00:00 when absent)."""
    drop = is_drop_frame(frame_rate, start)
    offset = 0
    if start:
        try:
            offset = parse_timecode(start, frame_rate)
        except ValueError:
            offset = 0
    return format_timecode(offset + index, frame_rate, drop)
