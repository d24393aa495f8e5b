"""A bounded, thread-safe least-recently-used map: the one LRU the gateway's tables use.

Why not functools.lru_cache: these tables are keyed by values computed elsewhere (a digest of a
request prefix, a session id), read and written from the event loop and from worker threads, and
must never grow past their bound however many sessions a long-running gateway sees.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["LRU"]


class LRU(Generic[K, V]):
    def __init__(self, size: int):
        if size < 1:
            raise ValueError("an LRU needs room for at least one entry")
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value (now most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store, evicting the least recently used entries beyond the bound."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
