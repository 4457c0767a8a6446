"""Output timestamps: the source's frame rate and per-frame times, carried into the master."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from restoration.io.info import MediaInfo


@dataclass(frozen=True)
class Timing:
    """Where each written frame sits in time.

    `pts` are in `time_base` and start at 0 for the first frame; `start`/`end` are the rendered range on the
    source's clock (seconds, the clock of frame_pts x time_base), which trims the carried audio.
    """

    rate: Fraction
    time_base: Fraction
    pts: tuple[int, ...]
    variable: bool
    start: Fraction
    end: Fraction | None  # None: up to the end of the last frame written

    def frame_pts(self, index: int) -> int:
        """Output pts of frame `index`; frames past the given timestamps follow at the nominal rate."""
        if index < len(self.pts):
            return self.pts[index]
        step = max(1, round(1 / (self.rate * self.time_base)))
        last = self.pts[-1] if self.pts else -step
        return last + step * (index - len(self.pts) + 1)

    def frame_duration(self, index: int) -> int:
        """Duration of frame `index` in `time_base`: up to the next frame, or one nominal frame for the last."""
        if index + 1 < len(self.pts):
            return self.pts[index + 1] - self.pts[index]
        return max(1, round(1 / (self.rate * self.time_base)))


def _as_fraction(value: Fraction | float | int | str | None) -> Fraction | None:
    if value is None:
        return None
    return Fraction(value).limit_denominator(10**9) if isinstance(value, float) else Fraction(value)


def plan_timing(
    info: MediaInfo,
    frame_pts: Sequence[int] | None = None,
    start_time: Fraction | float | None = None,
    end_time: Fraction | float | None = None,
) -> Timing:
    """Output timing for frames taken from `info` at source pts `frame_pts` (in info.time_base).

    Constant-rate sources get time base 1/rate and pts 0, 1, 2, ... (gaps kept); variable-rate sources keep
    their own time base and pts offsets, so they stay variable.
    """
    rate = Fraction(info.frame_rate) if info.frame_rate and info.frame_rate > 0 else Fraction(25)
    source_tb = Fraction(info.time_base) if info.time_base and info.time_base > 0 else 1 / rate
    given = [int(p) for p in frame_pts] if frame_pts is not None else None
    pts: list[int] = []
    variable = False
    first = Fraction(0)
    time_base = 1 / rate
    if given:
        first = given[0] * source_tb
        variable = bool(info.variable_frame_rate)
        if variable:
            time_base = source_tb
        for p in given:
            tick = p - given[0] if variable else round((p - given[0]) * source_tb * rate)
            pts.append(max(tick, pts[-1] + 1) if pts else tick)  # the muxer needs strictly rising pts
    start = _as_fraction(start_time) if start_time is not None else first
    end = _as_fraction(end_time)
    if end is None and pts:
        end = start + (pts[-1] + max(1, round(1 / (rate * time_base)))) * time_base
    return Timing(rate, time_base, tuple(pts), variable, start, end)
