"""Shot boundaries: detect cuts once per clip so no temporal stage ever mixes frames across a cut."""

from __future__ import annotations

import bisect
from fractions import Fraction
from typing import Iterable

import cv2
import numpy as np

from .stage import Shot

DETECT_WIDTH = 320


def detect_cuts(frames: Iterable[tuple[int, np.ndarray]], frame_rate: Fraction | float = 24,
                threshold: float = 27.0, min_shot_frames: int = 8) -> list[int]:
    """Indices of the first frame of every shot after the first, using PySceneDetect's content detector."""
    from scenedetect.common import FrameTimecode  # imported here: it costs half a second at start-up
    from scenedetect.detectors import ContentDetector

    detector = ContentDetector(threshold=threshold, min_scene_len=min_shot_frames)
    fps = float(frame_rate) or 24.0
    cuts: list[int] = []
    first: int | None = None
    for index, frame in frames:
        if first is None:
            first = index
        found = detector.process_frame(FrameTimecode(index - first, fps=fps), _detector_image(frame))
        cuts.extend(first + int(tc.frame_num) for tc in found)
    return sorted(set(c for c in cuts if first is not None and c > first))


def _detector_image(frame: np.ndarray) -> np.ndarray:
    """8-bit BGR at a small width: cut detection needs no detail, and this keeps the pass cheap."""
    height, width = frame.shape[:2]
    if width > DETECT_WIDTH:
        frame = cv2.resize(frame, (DETECT_WIDTH, max(1, round(height * DETECT_WIDTH / width))),
                           interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    return (np.clip(bgr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def shots_from_cuts(cuts: Iterable[int], frame_count: int) -> list[Shot]:
    """Split `frame_count` frames into shots at the given cut indices."""
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < frame_count) + [frame_count]
    return [Shot(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def shots_in_span(cuts: Iterable[int], span: tuple[int, int]) -> list[Shot]:
    """Split the frames [start, stop) of `span` into shots at the cuts that fall inside it."""
    bounds = [span[0]] + sorted(c for c in set(cuts) if span[0] < c < span[1]) + [span[1]]
    return [Shot(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def shot_at(shots: list[Shot], index: int) -> Shot:
    """The shot holding frame `index` (shots sorted and contiguous)."""
    starts = [s.start for s in shots]
    position = bisect.bisect_right(starts, index) - 1
    if position < 0 or index not in shots[position]:
        raise IndexError(f"frame {index} is outside every shot")
    return shots[position]


def mirror_index(index: int, shot: Shot) -> int:
    """Reflect an index that falls outside `shot` back inside it (edge frame not repeated)."""
    if len(shot) == 1:
        return shot.start
    last = shot.end - 1
    while index < shot.start or index > last:
        index = 2 * shot.start - index if index < shot.start else 2 * last - index
    return index
