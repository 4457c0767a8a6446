"""FFmpeg's colour and field-order codes by name, and timecode arithmetic, for probe, masters and provenance."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
             10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
             10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
             15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
            9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c",
            14: "ictcp"}
RANGES = {1: "tv", 2: "pc"}
FIELD_ORDERS = {1: "progressive", 2: "tff", 3: "bff", 4: "tb", 5: "bt"}  # tb/bt: coded one way, shown the other


def name_of(table: dict[int, str], code: int | None) -> str | None:
    """The name of an FFmpeg code, or None for unspecified/unknown ones."""
    return table.get(int(code)) if code is not None else None


def colour_tags(frame: Any) -> dict[str, str | None]:
    """The colour primaries, transfer, matrix and range a decoded frame is tagged with, by name."""
    return {
        "color_primaries": name_of(PRIMARIES, frame.color_primaries),
        "color_transfer": name_of(TRANSFERS, frame.color_trc),
        "color_matrix": name_of(MATRICES, frame.colorspace),
        "color_range": name_of(RANGES, frame.color_range),
    }


def code_of(table: dict[int, str], name: str | None) -> int | None:
    """The FFmpeg code of a name from `table`, or None."""
    for code, known in table.items():
        if known == name:
            return code
    return None


_TIMECODE = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})")


def offset_timecode(timecode: str, frames: int, rate: Fraction) -> str | None:
    """`timecode` moved on by `frames` at `rate` (drop-frame when written with ';'); None when it is not SMPTE."""
    match = _TIMECODE.fullmatch(timecode.strip())
    if not match or rate <= 0:
        return None
    hours, minutes, seconds, sep, ff = match.groups()
    nominal = round(rate)
    drop = 2 * (nominal // 30) if sep in ";," and Fraction(rate).denominator == 1001 else 0
    total_minutes = int(hours) * 60 + int(minutes)
    count = (total_minutes * 60 + int(seconds)) * nominal + int(ff)
    count -= drop * (total_minutes - total_minutes // 10)  # labels dropped at each minute but every tenth
    count += frames
    if drop:  # back from a frame count to labels (SMPTE 12M drop-frame)
        per_10min = 10 * 60 * nominal - 9 * drop
        per_min = 60 * nominal - drop
        tens, rest = divmod(count, per_10min)
        count += 9 * drop * tens + (drop * ((rest - drop) // per_min) if rest > drop else 0)
    ff_out = count % nominal
    secs = count // nominal
    return f"{secs // 3600 % 24:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}{sep}{ff_out:02d}"
