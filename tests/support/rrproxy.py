"""A round-robin TCP proxy on 127.0.0.1: what a load balancer in front of gateway replicas does.

Each new client connection goes to the next upstream port in turn; bytes are piped both ways
until either side closes. Runs its own event loop in a thread; `stop()` (or the context manager)
ends it and every connection it holds.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Sequence

__all__ = ["RoundRobinProxy"]


class RoundRobinProxy:
    def __init__(self, upstream_ports: Sequence[int]):
        self._next = itertools.cycle(upstream_ports)
        self.connections: list[int] = []           # upstream port chosen for each connection
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task] = set()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="rr-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        self.base = f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        port = next(self._next)
        self.connections.append(port)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._tasks.discard(asyncio.current_task())

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "RoundRobinProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
