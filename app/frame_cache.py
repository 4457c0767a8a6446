"""The playback cache: finished preview pictures kept by (frame, settings, comparison), bounded by bytes.

Once a frame has been rendered at the current settings, playing over it again shows it at the clip's rate without
asking the pipeline; an edit changes the settings key, so older pictures are simply not found (and age out).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable

DEFAULT_BUDGET_BYTES = 1 << 30  # 1 GiB: about 100 frames of 640×480 with their float copies, 25 of a 2K scan


class FrameCache:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget = int(budget_bytes)
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> Any:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if size > self.budget:
            return
        if key in self._items:
            self.bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.budget and self._items:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
