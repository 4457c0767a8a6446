"""FrameSource: random access with an LRU cache, and streaming, over any probed source."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from restoration.io.info import MediaInfo

DEFAULT_CACHE_BYTES = 2 << 30  # never hold more than 2 GiB of cached frames, whatever cache_frames says


class FrameCache:
    """Least-recently-used cache of decoded frames, bounded by a frame count and a byte budget."""

    def __init__(self, max_frames: int, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_frames = max(0, int(max_frames))
        self.max_bytes = max(0, int(max_bytes))
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def get(self, index: int) -> np.ndarray | None:
        frame = self._frames.get(index)
        if frame is not None:
            self._frames.move_to_end(index)
        return frame

    def put(self, index: int, frame: np.ndarray) -> None:
        if self.max_frames == 0 or frame.nbytes > self.max_bytes or index in self._frames:
            return
        frame.flags.writeable = False  # cached frames are shared: callers copy before editing
        self._frames[index] = frame
        self._bytes += frame.nbytes
        while len(self._frames) > self.max_frames or self._bytes > self.max_bytes:
            _, old = self._frames.popitem(last=False)
            self._bytes -= old.nbytes

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0


class FrameSource:
    """A decoded source: `frame(i)` for scrubbing (cached), `frames()` for renders (streaming).

    Frames are float32 RGB (H, W, 3) in [0, 1], C-contiguous, as stored (rotation is reported in
    `info.rotation`, not applied). Frames returned by `frame()` are shared with the cache and
    read-only; frames yielded by `frames()` are fresh and writable.
    """

    def __init__(self, info: MediaInfo, cache_frames: int = 32, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.info = info
        self.files: list[Path] = [Path(p) for p in info.files]  # one per frame for sequences, empty for video
        self._cache = FrameCache(cache_frames, cache_bytes)
        self._closed = False

    # --- what subclasses provide -------------------------------------------------------------
    def _read(self, index: int) -> np.ndarray:
        """Decode frame `index` (random access); may fill the cache with neighbours it decoded."""
        raise NotImplementedError

    def _stream(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """Decode frames start..stop-1 in order, holding only a few at a time."""
        raise NotImplementedError

    def frame_pts(self) -> list[int]:
        """Presentation timestamp of each frame, in `info.time_base` units."""
        raise NotImplementedError

    # --- shared behaviour -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.info.frame_count

    def _check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.info.frame_count:
            raise IndexError(f"{self.info.path}: frame index {index} outside 0..{self.info.frame_count - 1}")
        return index

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0-based) as float32 RGB; recently used frames come from the cache."""
        self._check_open()
        index = self._check_index(index)
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        frame = self._read(index)
        self._cache.put(index, frame)
        return frame

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (index, frame) for start <= index < stop in order, decoding sequentially."""
        self._check_open()
        stop = self.info.frame_count if stop is None else min(int(stop), self.info.frame_count)
        start = max(0, int(start))
        if start >= stop:
            return iter(())
        return self._stream(start, stop)

    def frame_times(self) -> list[Fraction]:
        """Presentation time of each frame in seconds, relative to the first frame (exact fractions)."""
        pts = self.frame_pts()
        if not pts:
            return []
        first = pts[0]
        return [(p - first) * self.info.time_base for p in pts]

    def frame_number(self, index: int) -> int:
        """The number that names frame `index` (a sequence's file number; the index for video)."""
        return self.info.first_frame_number + self._check_index(index)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.info.path}: source is closed")

    def close(self) -> None:
        """Release decoders and the cache."""
        self._closed = True
        self._cache.clear()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        info = self.info
        return f"<{type(self).__name__} {info.path!r} {info.width}x{info.height} {info.frame_count} frames>"
