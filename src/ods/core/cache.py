"""Small in-memory caches that keep the database off the chunk-serving hot path."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries expire after `ttl` seconds; the oldest go first past `max_items`.

    The expiry bounds how long another process's change (a worker's, say) can
    go unseen here.
    """

    def __init__(self, ttl: float, max_items: int = 1024) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        stored, value = found
        if time.monotonic() - stored > self.ttl:
            del self._items[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()
