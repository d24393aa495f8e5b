"""What a request may cost the gateway before it is served: body bytes, and a place in line.

The body limit is enforced while reading, chunk by chunk, so a chunked upload (no
``Content-Length``) of 200 MB costs at most the limit plus one chunk, not 200 MB. Requests beyond
``limits.max_concurrent`` are answered at once with 529 ``overloaded_error`` (Claude Code retries
it) rather than queued without bound. Bodies big enough to take milliseconds to parse, validate
and count are handled in a worker thread so other requests' streams keep flowing.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

from turnroute.gateway.errors import BackendUnavailable, RequestTooLarge

T = TypeVar("T")

#: Bodies above this many bytes are parsed, validated and token-counted off the event loop
#: (a 256 KB body takes ~2 ms on the loop; a 5 MB one ~40 ms, which every stream would feel).
OFF_LOOP_BYTES = 256 * 1024


def too_large(size: int, limit: int, *, partial: bool = False) -> RequestTooLarge:
    size_text = f"more than {limit}" if partial else str(size)
    return RequestTooLarge(f"request body is {size_text} bytes; the limit is {limit} (limits.max_body_bytes)")


async def read_limited(receive: Callable[[], Awaitable[dict]], limit: int, declared: str | None) -> bytes:
    """The request body, refusing it (413) as soon as it is known to exceed ``limit`` bytes."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit, partial=True)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def maybe_off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a worker thread when the body is big, inline when it is small (cheaper)."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


class Admission:
    """At most ``limit`` requests in service; ``enter`` refuses the next one with a 529."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active: set[str] = set()

    def enter(self, request_id: str) -> None:
        if len(self.active) >= self.limit:
            raise BackendUnavailable(
                f"turnroute is serving {len(self.active)} requests, its limit (limits.max_concurrent); "
                "retry shortly")
        self.active.add(request_id)

    def leave(self, request_id: str) -> None:
        self.active.discard(request_id)
