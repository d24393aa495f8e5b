"""The live set of backends, swapped atomically when the config is reloaded.

Why a pool object: a reload must keep the warm connection pools of backends whose settings did not
change, and close the replaced ones only after the requests they are serving had time to end — and
that closing task must be held somewhere, so it is neither garbage-collected mid-flight nor lost at
shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterator, Mapping

from turnroute.gateway.backends import Backend, BackendConfig, build_backend

log = logging.getLogger("turnroute")


class BackendPool(Mapping[str, Backend]):
    """name → Backend, read-only for requests; `swap` installs a reloaded config's backends."""

    def __init__(self, configs: Mapping[str, BackendConfig]):
        self._backends: dict[str, Backend] = {n: build_backend(c) for n, c in configs.items()}
        self._retired: set[Backend] = set()
        self._closing: set[asyncio.Task] = set()

    def __getitem__(self, name: str) -> Backend:
        return self._backends[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._backends)

    def __len__(self) -> int:
        return len(self._backends)

    def swap(self, configs: Mapping[str, BackendConfig]) -> None:
        """Use new settings: unchanged backends keep their client (and its warm pool)."""
        new: dict[str, Backend] = {}
        for name, cfg in configs.items():
            old = self._backends.get(name)
            new[name] = old if old is not None and old.config == cfg else build_backend(cfg)
        replaced = [b for n, b in self._backends.items() if new.get(n) is not b]
        self._backends = new
        for backend in replaced:
            self._retire(backend)

    def _retire(self, backend: Backend) -> None:
        """Close a replaced backend once its in-flight requests have had their read timeout."""
        self._retired.add(backend)

        async def later() -> None:
            await asyncio.sleep(backend.config.read_timeout + 5)
            if backend in self._retired:
                self._retired.discard(backend)
                await backend.aclose()
        try:
            task = asyncio.get_running_loop().create_task(later())
        except RuntimeError:      # no running loop (applied from a test): closed by aclose()
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for task in list(self._closing):
            task.cancel()
        for b in [*self._backends.values(), *self._retired]:
            try:
                await b.aclose()
            except Exception:
                log.exception("closing backend %s", b.name)
        self._retired.clear()
