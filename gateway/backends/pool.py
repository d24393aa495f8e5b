"""The live set of backends, swapped atomically when the config is reloaded.

Why a pool object: a reload must keep the warm connection pools of backends whose settings did not
change, and close the replaced ones only after the requests they are serving had time to end — and
that closing task must be held somewhere, so it is neither garbage-collected mid-flight nor lost at
shutdown. The pool also keeps the context windows the servers report (see window.py): live state
of the backends, read at start-up and on every health check, dropped when a backend is replaced.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterator, Mapping

import httpx

from turnroute.gateway.backends import Backend, BackendConfig, build_backend
from turnroute.gateway.backends.window import effective_window, read_window

log = logging.getLogger("turnroute")


class BackendPool(Mapping[str, Backend]):
    """name → Backend, read-only for requests; `swap` installs a reloaded config's backends."""

    def __init__(self, configs: Mapping[str, BackendConfig]):
        self._backends: dict[str, Backend] = {n: build_backend(c) for n, c in configs.items()}
        self._retired: set[Backend] = set()
        self._closing: set[asyncio.Task] = set()
        self._reported: dict[str, int] = {}       # name → context window its server reported

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
            # a `model: auto` backend's config carries the picked model: compare what the YAML said
            same = old is not None and getattr(old, "declared", old.config) == cfg
            new[name] = old if same else build_backend(cfg)
        replaced = [b for n, b in self._backends.items() if new.get(n) is not b]
        # a reported window belongs to the server it was read from: only unchanged backends keep it
        self._reported = {n: w for n, w in self._reported.items() if new.get(n) is self._backends.get(n)}
        self._backends = new
        for backend in replaced:
            self._retire(backend)

    def windows(self) -> dict[str, int]:
        """name → context window (configured and reported, the smaller), where one is known."""
        out = {}
        for name, b in self._backends.items():
            window = effective_window(b.config.context_window, self._reported.get(name))
            if window:
                out[name] = window
        return out

    async def refresh_windows(self) -> None:
        """Re-read the windows the servers report; a server that says nothing now forgets its figure."""
        backends = list(self._backends.values())
        async with httpx.AsyncClient() as client:
            found = await asyncio.gather(*(read_window(client, b.config) for b in backends))
        for b, window in zip(backends, found):
            if self._backends.get(b.name) is not b:
                continue                       # replaced while we asked
            if window is None:
                self._reported.pop(b.name, None)
            else:
                self._reported[b.name] = window

    def refresh_windows_soon(self) -> None:
        """Start a refresh in the background (start-up, reload); the task is held until it ends."""
        async def run() -> None:
            try:
                await self.refresh_windows()
            except Exception:
                log.exception("reading the backends' context windows")
        try:
            task = asyncio.get_running_loop().create_task(run())
        except RuntimeError:      # no running loop: the next health check reads them
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

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
