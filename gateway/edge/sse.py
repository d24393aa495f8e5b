"""A streaming response that notices a client hanging up even while the upstream is silent.

Starlette's StreamingResponse, under ASGI 2.4 servers, only learns of a disconnect when a write
fails, so a long prefill would keep generating for nobody. Here the body and a disconnect listener
race: the first to finish cancels the other, and cancellation closes the upstream request.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


class ClientGone(Exception):
    """The client hung up before the backend answered."""


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Any, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client hangs up first (e.g. Esc during a long prefill),
    so the upstream request is closed and a session's prefill gate is released at once."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        watcher.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    try:
        late = await task                      # finished despite the cancel: close what it opened
    except (asyncio.CancelledError, Exception):
        late = None
    if getattr(late, "chunks", None) is not None:
        await close_quietly(late.chunks)
    raise ClientGone()


async def close_quietly(stream: Any) -> None:
    """Close an async generator (the upstream stream) whatever state it is in."""
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        try:
            await asyncio.shield(closer())
        except asyncio.CancelledError:
            raise                  # our own task is being cancelled: never swallow that
        except Exception:
            pass                   # a broken upstream may fail to close; it is gone either way


SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]


class SSEResponse(Response):
    def __init__(self, body: AsyncIterator[bytes], *, headers: dict[str, str] | None = None, status: int = 200):
        self.body_iterator = body
        self.status_code = self.status = status
        self.background = None
        self.raw_headers = SSE_HEADERS + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stream() -> None:
            await send({"type": "http.response.start", "status": self.status, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        writer = asyncio.ensure_future(stream())
        listener = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, listener):
                if not task.done():
                    task.cancel()
            for task in (writer, listener):
                try:
                    await task
                except (asyncio.CancelledError, OSError):
                    pass
        if writer in done and writer.exception() is None:
            return
        # Client went away first: make sure the body generator's cleanup ran (logs a 499).
        await close_quietly(self.body_iterator)
