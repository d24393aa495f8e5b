"""One prefill at a time per (server, session): keep mlx_lm.server from thrashing its cache.

mlx_lm.server batches concurrent requests but does not share prefixes between them: two cold
prefills sent together took 42 s each against 11–20 s alone. Claude Code
sends title generation alongside the first turn of a session, so a session's requests to one
server wait for the previous one's first token (its prefill) before they start. Sessions never
wait on each other. Memory is bounded: idle locks are dropped oldest-first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import AsyncIterator


class PrefillGate:
    def __init__(self, max_keys: int = 1024):
        self.max_keys = max_keys
        self._locks: OrderedDict[tuple[str, str], asyncio.Lock] = OrderedDict()

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            if len(self._locks) > self.max_keys:
                for k in [k for k, v in self._locks.items() if not v.locked()][: len(self._locks) - self.max_keys]:
                    del self._locks[k]
        self._locks.move_to_end(key)
        return lock

    @asynccontextmanager
    async def hold(self, server: str, session: str | None, enabled: bool = True) -> AsyncIterator[None]:
        if not enabled or not session:
            yield
            return
        async with self._lock((server, session)):
            yield
