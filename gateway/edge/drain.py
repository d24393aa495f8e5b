"""A truthful shutdown: on SIGTERM stop taking requests, let streams finish, then end the rest.

Left to the server, streams still running when its grace period ends are cancelled: the client
sees a cut connection (no ``error`` event, so it cannot tell a crash from a shutdown) and the log
calls them client disconnects. Here, ``grace`` seconds after SIGTERM each remaining stream is
told to stop; its generator then sends an ``overloaded_error`` event (Claude Code retries it) and
logs the request as ``shutdown``. The server's own timeout is set a little longer, so those last
events are written before connections close.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from turnroute.gateway.errors import GatewayError, envelope

log = logging.getLogger("turnroute")

#: Seconds the server waits beyond the grace period for streams to write their last event.
FLUSH_SECONDS = 1.0
SHUTDOWN_MESSAGE = "turnroute is shutting down; retry the request"
SWITCH_INTERVAL = 0.0005


class ShuttingDown(GatewayError):
    """A request refused or ended by the shutdown: ``overloaded_error`` to the client (it retries),
    ``shutdown`` in the log line."""

    status = 529

    def __init__(self) -> None:
        super().__init__(SHUTDOWN_MESSAGE)

    @property
    def error_type(self) -> str:
        return "shutdown"

    def envelope(self) -> dict[str, Any]:
        return envelope("overloaded_error", self.message)


class Drain:
    """Tracks requests in service so a shutdown can end them with an error instead of a cut:
    an ``overloaded_error`` event on a stream, a 529 on a request still waiting for its backend."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.draining = False
        self.streams: dict[str, asyncio.Task] = {}
        self.ended: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    def admit(self) -> None:
        """Refuse a new request once the shutdown began (ones already admitted carry on)."""
        if self.draining:
            raise ShuttingDown()

    def track(self, request_id: str) -> None:
        """Register the running task as serving ``request_id`` (before its answer or its stream)."""
        task = asyncio.current_task()
        if task is not None:
            self.streams[request_id] = task

    def untrack(self, request_id: str) -> None:
        self.streams.pop(request_id, None)
        self.ended.discard(request_id)

    def was_ended(self, request_id: str) -> bool:
        """True when this stream's task was cancelled by the shutdown (not by the client)."""
        return request_id in self.ended

    def begin(self) -> None:
        """Called on the loop when SIGTERM arrives: start the grace period (once)."""
        if self.draining:
            return
        self.draining = True
        log.warning("shutting down: %d streams in flight get %.0f s to finish", len(self.streams), self.grace)
        self._timer = asyncio.get_running_loop().call_later(self.grace, self.end_all)

    def end_all(self) -> None:
        for request_id, task in list(self.streams.items()):
            if not task.done():
                self.ended.add(request_id)
                task.cancel()
        if self.ended:
            log.warning("shutdown: ended %d streams with overloaded_error", len(self.ended))


def serve(app: Any, drain: Drain, **uvicorn_kw: Any) -> None:
    """``uvicorn.run`` whose SIGTERM/SIGINT handler also starts the drain."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            loop = getattr(self, "_turnroute_loop", None)
            if loop is not None:
                loop.call_soon_threadsafe(drain.begin)
            super().handle_exit(sig, frame)

        async def serve(self, sockets: Any = None) -> None:
            self._turnroute_loop = asyncio.get_running_loop()
            await super().serve(sockets)

    # Big bodies are parsed in worker threads; with the default 5 ms GIL switch interval each of
    # the loop's wake-ups could wait that long behind one, which multiplies small requests' latency.
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = uvicorn.Config(app, timeout_graceful_shutdown=drain.grace + FLUSH_SECONDS, **uvicorn_kw)
    Server(config).run()
