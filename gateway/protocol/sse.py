"""Server-sent events: encode Anthropic events, decode upstream OpenAI SSE lines.

Both sides are on the hot path of every streamed token, so they avoid regexes and per-line
allocations beyond what splitting needs.
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = "[DONE]"


def encode_event(name: str, data: Any) -> bytes:
    """One SSE event: ``event: NAME\\ndata: {json}\\n\\n`` (compact JSON, one line)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class SSEDecoder:
    """Incremental parser for upstream ``data:`` lines.

    ``feed(bytes)`` returns the complete events seen so far: parsed JSON objects, the string
    ``"[DONE]"`` for the end sentinel, or (rarely) the raw text of a payload that is not JSON,
    so the caller can log it instead of it vanishing. Comments (``: keepalive 10/200``), blank
    lines and ``event:``/``id:``/``retry:`` fields are ignored. Lines may be split across feeds
    and end in ``\\n`` or ``\\r\\n``.
    """

    __slots__ = ("_buf", "_pending")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: list[bytes] = []  # data lines of an event whose JSON is not complete yet

    def feed(self, data: bytes) -> list[dict | str]:
        if not data:
            return []
        buf = self._buf + data if self._buf else data
        lines = buf.split(b"\n")
        self._buf = lines.pop()  # incomplete last line (b"" when data ended with \n)
        out: list[dict | str] = []
        for line in lines:
            self._line(line, out)
        return out

    def flush(self) -> list[dict | str]:
        """End of stream: process a last line without a newline and any pending payload."""
        out: list[dict | str] = []
        if self._buf:
            line, self._buf = self._buf, b""
            self._line(line, out)
        self._dispatch(out, final=True)
        return out

    def _line(self, line: bytes, out: list[dict | str]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            self._dispatch(out, final=True)  # blank line ends the event
            return
        if line.startswith(b"data:"):
            payload = line[5:]
            if payload.startswith(b" "):
                payload = payload[1:]
            self._pending.append(payload)
            self._dispatch(out, final=False)
        # ":" comments, "event:", "id:", "retry:" and junk lines are ignored

    def _dispatch(self, out: list[dict | str], *, final: bool) -> None:
        if not self._pending:
            return
        payload = b"\n".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        stripped = payload.strip()
        if not stripped:
            if final:
                self._pending = []
            return
        if stripped == b"[DONE]":
            self._pending = []
            out.append(DONE)
            return
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            if final:  # the event ended and its data is still not JSON
                self._pending = []
                out.append(payload.decode("utf-8", "replace"))
            return  # otherwise wait: a multi-line data field may complete it
        self._pending = []
        out.append(obj)
