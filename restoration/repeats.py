"""Repeated frames: step-printed film holds pairs (or runs) of the same picture, which every temporal stage treats
as one.

A frame is a repeat when it is identical, or identical but for coding noise, to the frame before it: on a
quarter-size luma its mean difference is under REPEAT_MEAN, a small share of what separates the clip's distinct
neighbouring frames there (REPEAT_RATIO of the local 75th percentile, so a quiet locked-off shot's grain is not
taken for a repeat), no detail moved (99.9th percentile under REPEAT_PEAK) and most full-size pixels are within a
code of the frame before (REPEAT_SAME: fresh grain, however fine, changes most of them). The map is computed once
per clip (in the cut-detection pass) and used by the Pipeline and the render engine alike: a repeat is given its
original's frame (exact copies from the source on), every window is built on the timeline of unique pictures, and a
repeat's output is its original's output, so a repeated pair leaves every chain bit-identical.
"""

from __future__ import annotations

import bisect
import json
from typing import Iterable, Mapping

import cv2
import numpy as np

from .stage import Shot

REPEAT_MEAN = 0.6 / 255  # mean |Δluma| on the quarter-size luma above which a frame is never a repeat
REPEAT_PEAK = 10.0 / 255  # 99.9th percentile of |Δluma|: a small moving thing makes a frame new
REPEAT_RATIO = 0.25  # ... and its mean must be under this share of the local distinct-frame difference
REPEAT_SAME = 0.8  # ... and this share of its full-size pixels within SAME_CODE of the frame before (a repeat's
# coding noise leaves most pixels as they were; fresh grain, however fine, changes most)
SAME_CODE = 1.0 / 255
EXACT = 0.05 / 255  # at or below this, a frame is a repeat whatever its neighbours (a held title, exact copies)
LOCAL = 12  # frames each side the local distinct-frame difference is taken over
SMALL_WIDTH = 160  # px; the comparison luma is about this wide (at most a quarter of the frame)


class RepeatMap:
    """repeat index -> the index of its original (the first frame of its run of identical pictures)."""

    def __init__(self, originals: Mapping[int, int] | None = None):
        self.originals: dict[int, int] = {int(k): int(v) for k, v in (originals or {}).items()}
        self._unique: dict[tuple[int, int], list[int]] = {}

    def __len__(self) -> int:
        return len(self.originals)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RepeatMap) and self.originals == other.originals

    def __getstate__(self) -> dict:
        return {"originals": self.originals}

    def __setstate__(self, state: dict) -> None:
        self.originals = state["originals"]
        self._unique = {}

    def original(self, index: int) -> int:
        return self.originals.get(index, index)

    def is_repeat(self, index: int) -> bool:
        return index in self.originals

    def unique(self, shot: Shot) -> list[int]:
        """The shot's frames that are not repeats, in order."""
        key = (shot.start, shot.end)
        if key not in self._unique:
            self._unique[key] = [i for i in range(shot.start, shot.end) if i not in self.originals]
        return self._unique[key]

    def window(self, index: int, radius: int, shot: Shot) -> list[int]:
        """Indices of the window of `index`'s picture: ±radius unique pictures, mirrored inside the shot."""
        from .shots import mirror_index

        if not self.originals:
            return [mirror_index(index + k, shot) for k in range(-radius, radius + 1)]
        unique = self.unique(shot)
        position = bisect.bisect_left(unique, self.original(index))
        timeline = Shot(0, len(unique))
        return [unique[mirror_index(position + k, timeline)] for k in range(-radius, radius + 1)]

    def reach(self, start: int, stop: int, radius: int, shot: Shot) -> tuple[int, int]:
        """The contiguous frames [a, b) the windows of frames [start, stop) of `shot` read."""
        if not self.originals:
            return max(shot.start, start - radius), min(shot.end, stop + radius)
        unique = self.unique(shot)
        first = bisect.bisect_left(unique, self.original(start))
        last = bisect.bisect_left(unique, self.original(stop - 1))
        return unique[max(0, first - radius)], unique[min(len(unique) - 1, last + radius)] + 1

    def within(self, span: tuple[int, int]) -> "RepeatMap":
        return RepeatMap({k: v for k, v in self.originals.items() if span[0] <= v and k < span[1]})

    def to_json(self) -> str:
        return json.dumps(sorted(self.originals.items()))

    @classmethod
    def from_json(cls, text: str) -> "RepeatMap":
        return cls({int(k): int(v) for k, v in json.loads(text)})


def _luma(frame: np.ndarray) -> np.ndarray:
    luma = frame @ np.array([0.2126, 0.7152, 0.0722], np.float32) if frame.ndim == 3 else frame
    return np.ascontiguousarray(luma, dtype=np.float32)


def _small_luma(luma: np.ndarray) -> np.ndarray:
    height, width = luma.shape
    factor = max(4, width // SMALL_WIDTH)
    if min(width, height) < 4 * factor:
        return luma
    return cv2.resize(luma, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


class RepeatFinder:
    """Fed the frames of a span in order (alongside cut detection); `result` gives the RepeatMap."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._indices: list[int] = []
        self._mean: list[float] = []  # difference to the frame before (inf for the first)
        self._peak: list[float] = []
        self._same: list[float] = []  # share of full-size pixels within SAME_CODE of the frame before
        self._previous_full: np.ndarray | None = None

    def add(self, index: int, frame: np.ndarray) -> None:
        full = _luma(frame)
        small = _small_luma(full)
        if self._previous is None or self._previous.shape != small.shape or (
                self._indices and index != self._indices[-1] + 1):
            mean = peak = float("inf")
            same = 0.0
        else:
            diff = np.abs(small - self._previous)
            mean = float(diff.mean())
            peak = same = 0.0
            if mean <= REPEAT_MEAN:  # only a candidate is looked at closely
                peak = float(np.percentile(diff, 99.9))
                same = float(np.mean(np.abs(full - self._previous_full) <= SAME_CODE))
        self._previous, self._previous_full = small, full
        self._same.append(same)
        self._indices.append(index)
        self._mean.append(mean)
        self._peak.append(peak)

    def feed(self, frames: Iterable[tuple[int, np.ndarray]]) -> Iterable[tuple[int, np.ndarray]]:
        """Pass frames through (to another consumer, e.g. cut detection) while looking at them."""
        for index, frame in frames:
            self.add(index, frame)
            yield index, frame

    def result(self, shots: Iterable[Shot] | None = None) -> RepeatMap:
        mean = np.asarray(self._mean, dtype=np.float64)
        finite = np.where(np.isfinite(mean), mean, np.nan)
        originals: dict[int, int] = {}
        starts = {s.start for s in shots} if shots is not None else set()
        for k, index in enumerate(self._indices):
            if not np.isfinite(mean[k]) or index in starts:
                continue
            local = finite[max(0, k - LOCAL):k + LOCAL + 1]
            local = local[np.isfinite(local)]
            typical = float(np.percentile(local, 75)) if local.size else 0.0
            repeat = mean[k] <= EXACT or (mean[k] <= min(REPEAT_MEAN, REPEAT_RATIO * typical)
                                          and self._peak[k] <= REPEAT_PEAK and self._same[k] >= REPEAT_SAME)
            if repeat:
                previous = self._indices[k - 1]
                originals[index] = originals.get(previous, previous)
        return RepeatMap(originals)


def find_repeats(frames: Iterable[tuple[int, np.ndarray]], shots: Iterable[Shot] | None = None) -> RepeatMap:
    """The repeat map of frames given in order (no repeat crosses the start of one of `shots`)."""
    finder = RepeatFinder()
    for index, frame in frames:
        finder.add(index, frame)
    return finder.result(shots)
