"""A fast OpenAI-compatible fake backend for benchmarks (stdlib only).

Raw asyncio HTTP/1.1 with keep-alive. Endpoints:

    POST /v1/chat/completions   non-streaming JSON, or (``"stream": true``) a
                                100-content-chunk SSE stream + finish chunk +
                                usage chunk (when ``stream_options.include_usage``)
                                + ``data: [DONE]``
    POST /v1/messages           the same answer as a Messages-API server (JSON or SSE)
    GET  /v1/models             one model
    GET  /health                {"status": "ok"}

It never parses the 80 KB request body as JSON: it only scans the bytes for
``"stream": true`` / ``"include_usage": true`` (object keys are never escaped
inside JSON strings, so a quoted key can only be a real key).  Responses are
pre-rendered at start-up, so the per-request cost is a few ``bytes`` ops.

    python bench/fake_backend.py --port 8901 [--chunks 100] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time

STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')
MODEL = "fake-model"
PROMPT_TOKENS = 20000
MAX_HEADER = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: str, body: bytes, ctype: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + ctype
        + b"\r\ncontent-length: " + str(len(body)).encode()
        + b"\r\nconnection: keep-alive\r\n\r\n" + body
    )


def build_responses(chunks: int) -> dict:
    created = int(time.time())
    words = [f"word{i} " for i in range(chunks)]
    text = "".join(words)
    completion = {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": None,
        }],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks,
                  "total_tokens": PROMPT_TOKENS + chunks,
                  "prompt_tokens_details": {"cached_tokens": 0}},
        "system_fingerprint": "fake",
    }
    base = {"id": "chatcmpl-fake0001", "object": "chat.completion.chunk",
            "created": created, "model": MODEL, "system_fingerprint": "fake"}
    events: list[bytes] = []
    for i, w in enumerate(words):
        delta = {"role": "assistant", "content": w} if i == 0 else {"content": w}
        events.append(_json({**base, "choices": [{"index": 0, "delta": delta,
                                                   "logprobs": None, "finish_reason": None}]}))
    events.append(_json({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                               "finish_reason": "stop"}]}))
    usage_event = _json({**base, "choices": [], "usage": completion["usage"]})

    def chunked(payload: bytes) -> bytes:
        return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"

    sse_head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
                b"connection: keep-alive\r\n\r\n")
    frames = [chunked(b"data: " + e + b"\n\n") for e in events]
    usage_frame = chunked(b"data: " + usage_event + b"\n\n")
    done_frame = chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    models = _json({"object": "list", "data": [{"id": MODEL, "object": "model",
                                                "created": created, "owned_by": "bench"}]})
    return {
        **build_messages_responses(words, chunked, sse_head),
        "completion": _response("200 OK", _json(completion)),
        "sse_head": sse_head,
        "frames": frames,
        "usage_frame": usage_frame,
        "done_frame": done_frame,
        "models": _response("200 OK", models),
        "health": _response("200 OK", b'{"status":"ok"}'),
        "not_found": _response("404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}'),
        "bad": _response("400 Bad Request", b'{"error":{"message":"bad request","type":"invalid_request_error"}}'),
    }


def build_messages_responses(words: list[str], chunked, sse_head: bytes) -> dict:
    """The same answer in Anthropic's Messages format (`POST /v1/messages`, a native server)."""
    usage = {"input_tokens": PROMPT_TOKENS, "cache_read_input_tokens": 0, "output_tokens": len(words)}
    message = {"id": "msg_fake0001", "type": "message", "role": "assistant", "model": MODEL,
               "content": [{"type": "text", "text": "".join(words)}], "stop_reason": "end_turn",
               "stop_sequence": None, "usage": usage}

    def event(name: str, data: dict) -> bytes:
        return chunked(b"event: " + name.encode() + b"\ndata: " + _json(data) + b"\n\n")
    frames = [event("message_start", {"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})]
    frames += [event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": w}}) for w in words]
    frames += [event("content_block_stop", {"type": "content_block_stop", "index": 0}),
               event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                          "stop_sequence": None},
                                       "usage": {"output_tokens": len(words)}}),
               event("message_stop", {"type": "message_stop"}) + b"0\r\n\r\n"]
    return {"message": _response("200 OK", _json(message)), "message_stream": sse_head + b"".join(frames)}


class Stats:
    requests = 0


class HTTPProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 server: content-length or chunked request bodies, keep-alive."""

    __slots__ = ("r", "buf", "transport", "closing")

    def __init__(self, responses: dict) -> None:
        self.r = responses
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        # Bounded: each iteration consumes one full request or returns.
        for _ in range(1000):
            if not self._one():
                return

    def _one(self) -> bool:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER:
                self._fail()
            return False
        head = bytes(buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            self._fail()
            return False
        clen = 0
        chunked = False
        close = False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                clen = int(v.strip())
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
            elif k == "connection" and v.strip().lower() == "close":
                close = True
        start = end + 4
        if chunked:
            body = bytearray()
            pos = start
            while True:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    return False
                size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
                if len(buf) < nl + 2 + size + 2:
                    return False
                body += buf[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
                if size == 0:
                    break
                if len(body) > MAX_BODY:
                    self._fail()
                    return False
            consumed = pos
        else:
            if clen > MAX_BODY:
                self._fail()
                return False
            if len(buf) < start + clen:
                return False
            body = buf[start:start + clen]
            consumed = start + clen
        del self.buf[:consumed]
        self._handle(method, target.split("?", 1)[0], body)
        if close:
            self.transport.close()
            return False
        return True

    def _fail(self) -> None:
        self.transport.write(self.r["bad"])
        self.transport.close()
        self.buf.clear()

    def _handle(self, method: str, path: str, body) -> None:
        Stats.requests += 1
        t = self.transport
        r = self.r
        if path.endswith("/chat/completions") and method == "POST":
            if STREAM_RE.search(body):
                t.write(r["sse_head"])
                for f in r["frames"]:
                    t.write(f)
                if USAGE_RE.search(body):
                    t.write(r["usage_frame"])
                t.write(r["done_frame"])
            else:
                t.write(r["completion"])
        elif path.endswith("/v1/messages") and method == "POST":
            t.write(r["message_stream"] if STREAM_RE.search(body) else r["message"])
        elif path.endswith("/models") and method == "GET":
            t.write(r["models"])
        elif path in ("/health", "/v1/health") and method == "GET":
            t.write(r["health"])
        else:
            print(f"fake backend: 404 {method} {path}", flush=True)
            t.write(r["not_found"])

    def connection_lost(self, exc) -> None:
        self.transport = None


async def serve(host: str, port: int, chunks: int) -> None:
    loop = asyncio.get_running_loop()
    responses = build_responses(chunks)
    server = await loop.create_server(lambda: HTTPProtocol(responses), host, port,
                                      backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake backend listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8901)
    ap.add_argument("--chunks", type=int, default=100)
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    try:
        import uvloop  # type: ignore
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(a.host, a.port, a.chunks))


if __name__ == "__main__":
    main()
