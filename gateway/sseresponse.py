"""A streaming response that notices a client hanging up even while the upstream is silent.

Starlette's StreamingResponse, under ASGI 2.4 servers, only learns of a disconnect when a write
fails, so a long prefill would keep generating for nobody. Here the body and a disconnect listener
race: the first to finish cancels the other, and cancellation closes the upstream request.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

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

        async def disconnected() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        writer = asyncio.ensure_future(stream())
        listener = asyncio.ensure_future(disconnected())
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
        aclose = getattr(self.body_iterator, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                pass
