"""A scripted OpenAI-compatible server for tests and benchmarks.

A raw asyncio HTTP/1.1 server in a background thread (its own event loop): no framework in the
way, so it can do what real servers do wrong — drop a stream half-way, stall before the first
byte, send SSE keep-alive comments, interleave tool-call fragments, omit ``index``.

    with FakeOpenAI() as fake:                      # or the ``fake_openai`` pytest fixture
        fake.script(Reply(text="hello", chunks=3),
                    Reply(tool_calls=[ToolCall("Read", {"file_path": "a.txt"}, pieces=4)]),
                    Reply.error(400, "Model does not support tool calling"),
                    echo_last_tool_result)          # a callable: Received -> Reply | str
        ... point the gateway at fake.url ("http://127.0.0.1:PORT/v1") ...
        assert fake.requests[0].body["stream"] is True
        assert fake.requests[0].headers["authorization"] == "Bearer x"

Endpoints: ``POST /v1/chat/completions`` (streaming and not; also ``/chat/completions``),
``GET /v1/models``, ``GET /health``, ``HEAD``/``GET /`` (200), and — only when ``lmstudio_models``
is set — LM Studio's ``GET /api/v0/models`` listing those entries.  Anything else: 404 JSON.

Each chat request pops the next scripted reply (in arrival order); when the script is empty the
``default`` reply (``Reply(text="ok")`` unless given) is used.  Every chat request is recorded
in ``.requests`` (``Received``: ``body``, ``headers`` lower-cased, ``path``, ``at``) before its
reply is computed; every request of any kind is in ``.log``.

Streaming follows OpenAI: a first chunk with ``delta.role``, reasoning_content deltas, content
deltas, tool-call deltas, a chunk with ``finish_reason``, then — only when the request had
``stream_options.include_usage`` — a ``choices: []`` chunk with ``usage``, then ``data: [DONE]``.
Streams use chunked transfer encoding on a keep-alive connection; a cut stream closes the socket
without the terminating chunk (httpx raises ``RemoteProtocolError``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, Union

__all__ = [
    "FakeOpenAI",
    "Reply",
    "ToolCall",
    "Received",
    "ReplyLike",
    "split_text",
    "echo_last_tool_result",
    "last_tool_result_text",
]

_AUTO = "auto"


def split_text(text: str, pieces: int) -> list[str]:
    """Split ``text`` into ``pieces`` contiguous non-empty parts (fewer if text is short)."""
    if pieces <= 1 or len(text) <= 1:
        return [text]
    pieces = min(pieces, len(text))
    size, extra = divmod(len(text), pieces)
    out, pos = [], 0
    for i in range(pieces):
        n = size + (1 if i < extra else 0)
        out.append(text[pos:pos + n])
        pos += n
    return out


@dataclass
class ToolCall:
    """One tool call in a reply.

    ``arguments``: a dict (dumped as compact JSON) or the exact string to send (may be invalid
    JSON on purpose).  ``pieces``: how many argument fragments (an int) or the exact fragments
    (a list of strings; they need not join to ``arguments``).  ``id`` defaults to
    ``call_<n>``.  ``empty_first``: the first chunk carries ``arguments: ""`` (OpenAI style)
    and all fragments follow in later chunks.
    """

    name: str
    arguments: str | dict = field(default_factory=dict)
    id: str | None = None
    pieces: int | Sequence[str] = 1
    empty_first: bool = False

    def args_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)

    def fragments(self) -> list[str]:
        if not isinstance(self.pieces, int):
            frags = list(self.pieces)
        else:
            frags = split_text(self.args_text(), self.pieces)
        if self.empty_first:
            frags = [""] + frags
        return frags or [""]


@dataclass
class Reply:
    """What the fake answers to one chat request.

    Content:
      text / chunks            assistant text, streamed in ``chunks`` content deltas
      reasoning / reasoning_chunks   ``delta.reasoning_content`` deltas, sent before the text
      tool_calls               ToolCall list, sent after the text
      interleave               round-robin the tool calls' chunks across indices
                               (first chunk of every call, then fragment 1 of every call, …)
      omit_index               later chunks of a tool call carry no ``index``
      null_id                  later chunks of a tool call carry ``"id": null`` (default: no id)
      null_type_name           later chunks also carry ``"type": null`` and ``"name": null``
      finish_reason            "stop" / "tool_calls" / "length" / None (no finish chunk);
                               default "tool_calls" when there are tool calls, else "stop"
      usage                    dict with prompt_tokens, completion_tokens, cached_tokens
                               (any subset), or "auto" (estimated: prompt ≈ len(messages JSON)/4,
                               completion = number of deltas, no cached_tokens), or None (never
                               send usage).  In a stream it is sent only when the request asked
                               for ``stream_options.include_usage`` (or ``usage_always``).
    Transport:
      status / error_body      HTTP error: status with this body (dict → JSON, str → as is);
                               see ``Reply.error``
      delay                    seconds to wait before the first byte (before the status line)
      keepalive / keepalive_interval   ``: keepalive i/n`` SSE comments before the first chunk
      chunk_delay              seconds between chunks (non-streaming, with chunks > 1: half the
                               body, then a pause of chunk_delay × chunks, then the rest)
      cut_after                send this many data chunks (role chunk included), then drop the
                               connection: no finish chunk, no [DONE], no terminating chunk.
                               For a non-streaming reply: send half the JSON body, then drop.
      done                     send ``data: [DONE]`` at the end (default True)
      headers                  extra response headers
      raw_chunks               send exactly these chunk dicts (``data: {json}``) instead of
                               building them; ``raw_lines`` sends raw SSE text blocks;
                               ``raw_bytes`` sends these bytes as the whole body (not SSE at all)
      model                    the ``model`` field (default: the request's model)
      json_body                non-streaming: send exactly this JSON object
    """

    text: str = ""
    chunks: int = 1
    reasoning: str = ""
    reasoning_chunks: int = 1
    tool_calls: Sequence[ToolCall] = ()
    interleave: bool = False
    omit_index: bool = False
    null_id: bool = False
    null_type_name: bool = False
    finish_reason: str | None = _AUTO
    usage: dict | str | None = _AUTO
    usage_always: bool = False
    role_chunk: bool = True
    status: int = 200
    error_body: dict | str | None = None
    delay: float = 0.0
    keepalive: int = 0
    keepalive_interval: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    done: bool = True
    headers: dict = field(default_factory=dict)
    raw_chunks: Sequence[dict] | None = None
    raw_lines: Sequence[str] | None = None
    raw_bytes: bytes | None = None
    model: str | None = None
    json_body: dict | None = None

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def error(
        cls,
        status: int,
        message: str = "error",
        *,
        type: str | None = None,
        code: str | int | None = None,
        param: str | None = None,
        headers: dict | None = None,
        delay: float = 0.0,
    ) -> "Reply":
        """An HTTP error with an OpenAI error envelope
        ``{"error": {"message", "type", "param", "code"}}``."""
        if type is None:
            type = {400: "invalid_request_error", 401: "authentication_error",
                    404: "not_found_error", 429: "rate_limit_error",
                    503: "service_unavailable"}.get(status, "server_error")
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return cls(status=status, error_body=body, headers=dict(headers or {}), delay=delay)

    @classmethod
    def tools(cls, *calls: ToolCall, text: str = "", **kw) -> "Reply":
        return cls(text=text, tool_calls=list(calls), **kw)

    # -- building --------------------------------------------------------------------------
    def resolved_finish(self) -> str | None:
        if self.finish_reason == _AUTO:
            return "tool_calls" if self.tool_calls else "stop"
        return self.finish_reason

    def _call_ids(self) -> list[str]:
        return [tc.id or f"call_{i}" for i, tc in enumerate(self.tool_calls)]

    def build_chunks(self) -> list[dict]:
        """The delta chunks (role, reasoning, content, tool calls, finish) — no usage."""
        if self.raw_chunks is not None:
            return [dict(c) for c in self.raw_chunks]
        chunks: list[dict] = []
        if self.role_chunk:
            chunks.append({"role": "assistant", "content": ""})
        if self.reasoning:
            for part in split_text(self.reasoning, self.reasoning_chunks):
                chunks.append({"reasoning_content": part})
        if self.text:
            for part in split_text(self.text, self.chunks):
                chunks.append({"content": part})
        ids = self._call_ids()
        per_call: list[list[dict]] = []
        for i, tc in enumerate(self.tool_calls):
            frags = tc.fragments()
            items = []
            for j, frag in enumerate(frags):
                if j == 0:
                    d = {"index": i, "id": ids[i], "type": "function",
                         "function": {"name": tc.name, "arguments": frag}}
                else:
                    d = {"function": {"arguments": frag}}
                    if not self.omit_index:
                        d = {"index": i, **d}
                    if self.null_id:
                        d["id"] = None
                    if self.null_type_name:
                        d["type"] = None
                        d["function"] = {"name": None, **d["function"]}
                items.append(d)
            per_call.append(items)
        if self.interleave:
            for group in itertools.zip_longest(*per_call):
                for d in group:
                    if d is not None:
                        chunks.append({"tool_calls": [d]})
        else:
            for items in per_call:
                for d in items:
                    chunks.append({"tool_calls": [d]})
        out = [{"index": 0, "delta": d, "finish_reason": None, "logprobs": None} for d in chunks]
        fr = self.resolved_finish()
        if fr is not None:
            out.append({"index": 0, "delta": {}, "finish_reason": fr, "logprobs": None})
        return [{"choices": [c]} for c in out]

    def build_usage(self, request_body: dict, n_deltas: int) -> dict | None:
        if self.usage is None:
            return None
        if self.usage == _AUTO:
            msgs = request_body.get("messages") or []
            prompt = max(1, len(json.dumps(msgs)) // 4)
            u = {"prompt_tokens": prompt, "completion_tokens": max(1, n_deltas)}
        else:
            u = dict(self.usage)
        cached = u.pop("cached_tokens", None)
        u.setdefault("prompt_tokens", 0)
        u.setdefault("completion_tokens", 0)
        u.setdefault("total_tokens", u["prompt_tokens"] + u["completion_tokens"])
        if cached is not None:
            details = dict(u.get("prompt_tokens_details") or {})
            details["cached_tokens"] = cached
            u["prompt_tokens_details"] = details
        return u

    def build_message(self, request_body: dict) -> dict:
        """The non-streaming ``chat.completion`` equivalent."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.reasoning:
            msg["reasoning_content"] = self.reasoning
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": cid, "type": "function",
                 "function": {"name": tc.name, "arguments": tc.args_text()}}
                for cid, tc in zip(self._call_ids(), self.tool_calls)
            ]
        n = max(1, len(split_text(self.text, self.chunks)) if self.text else 0) + len(self.tool_calls)
        body = {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": msg, "finish_reason": self.resolved_finish(),
                         "logprobs": None}],
        }
        usage = self.build_usage(request_body, n)
        if usage is not None:
            body["usage"] = usage
        return body


@dataclass
class Received:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON (None when empty or not JSON)
    raw: bytes
    at: float  # time.monotonic() when the request was fully read
    query: str = ""  # the part after "?" ("beta=true"), "" when none

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict]:
        return (self.body or {}).get("messages") or []


ReplyLike = Union[Reply, str, dict, Callable[[Received], Any]]


def last_tool_result_text(body: dict) -> str | None:
    """Content of the last ``role: tool`` message (string or text parts joined), or None."""
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "tool":
            c = m.get("content")
            if isinstance(c, list):
                return "".join(p.get("text", "") for p in c if isinstance(p, dict))
            return c if isinstance(c, str) else json.dumps(c)
    return None


def echo_last_tool_result(req: Received) -> Reply:
    """A callable reply: answer with the text of the last tool result received."""
    text = last_tool_result_text(req.body or {})
    return Reply(text=f"tool said: {text}" if text is not None else "no tool result", chunks=2)


def _as_reply(x: Any) -> Reply:
    if isinstance(x, Reply):
        return x
    if isinstance(x, str):
        return Reply(text=x)
    if isinstance(x, dict):
        return Reply(**x)
    raise TypeError(f"cannot make a Reply from {type(x).__name__}")


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
            529: "Overloaded"}


class _Cut(Exception):
    pass


class FakeOpenAI:
    """The scripted server.  Starts on construction; ``stop()`` (or the context manager) ends it.

    Attributes: ``url`` ("http://127.0.0.1:PORT/v1"), ``base``, ``port``, ``requests`` (chat
    requests, ``Received``), ``log`` (all requests), ``default`` (the reply when the script is
    empty), ``models`` (ids listed by ``GET /v1/models``), ``healthy`` (``GET /health`` 200 or
    503), ``lmstudio_models`` (None, or the entries of LM Studio's ``GET /api/v0/models``, e.g.
    ``{"id": "m", "state": "loaded", "loaded_context_length": 8192, "max_context_length": 32768}``).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default: ReplyLike = "ok",
        models: Sequence[str] = ("fake-model",),
        script: Iterable[ReplyLike] = (),
    ):
        self.default: ReplyLike = default
        self.models = list(models)
        self.healthy = True
        self.lmstudio_models: list[dict] | None = None
        self.requests: list[Received] = []
        self.log: list[Received] = []
        self._script: list[ReplyLike] = list(script)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._conns: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, args=(port,), name="fake-openai",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise RuntimeError("FakeOpenAI failed to start") from self._startup_error
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/v1"

    # -- public API --------------------------------------------------------------------------
    def script(self, *replies: ReplyLike | Sequence[ReplyLike]) -> "FakeOpenAI":
        """Queue replies (appended to what is queued).  Accepts replies or one list of them."""
        if len(replies) == 1 and isinstance(replies[0], (list, tuple)):
            replies = tuple(replies[0])
        with self._lock:
            self._script.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def clear(self) -> None:
        """Forget recorded requests and queued replies."""
        with self._lock:
            self.requests.clear()
            self.log.clear()
            self._script.clear()

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``n`` chat requests arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.requests)} of {n} requests after {timeout}s")
                self._cond.wait(left)
            return list(self.requests)

    @property
    def bodies(self) -> list[dict]:
        return [r.body for r in self.requests]

    @property
    def last(self) -> Received:
        return self.requests[-1]

    def stop(self) -> None:
        if not self._loop.is_running():
            return

        async def _shutdown():
            if self._server is not None:
                self._server.close()
            for t in list(self._conns):
                t.cancel()
            await asyncio.sleep(0)

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(5)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "FakeOpenAI":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeOpenAI({self.url}, requests={len(self.requests)}, pending={self.pending})"

    # -- server internals --------------------------------------------------------------------
    def _run(self, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle_conn, "127.0.0.1", port, backlog=512)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:  # pragma: no cover
            self._startup_error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            try:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                self._loop.close()

    async def _handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        self._conns.add(task)
        try:
            while True:
                req = await self._read_request(reader)
                if req is None:
                    break
                keep = await self._dispatch(req, writer)
                if not keep:
                    break
        except (_Cut, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(task)
            try:
                writer.close()
            except Exception:
                pass

    async def _read_request(self, reader: asyncio.StreamReader) -> Received | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        raw = b""
        if "content-length" in headers:
            n = int(headers["content-length"])
            raw = await reader.readexactly(n) if n else b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            raw = b"".join(parts)
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        path, _, query = target.partition("?")
        return Received(method=method.upper(), path=path, headers=headers, body=body, raw=raw,
                        at=time.monotonic(), query=query)

    def _next_reply(self, req: Received) -> Reply:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
            item = self._script.pop(0) if self._script else self.default
        if callable(item) and not isinstance(item, Reply):
            item = item(req)
        return _as_reply(item)

    async def _dispatch(self, req: Received, writer: asyncio.StreamWriter) -> bool:
        with self._lock:
            self.log.append(req)
        keep = req.headers.get("connection", "").lower() != "close"
        p = req.path.rstrip("/")
        if req.method == "POST" and p in ("/v1/chat/completions", "/chat/completions"):
            if not isinstance(req.body, dict):
                with self._lock:
                    self.requests.append(req)
                await self._send_json(writer, 400, {"error": {
                    "message": "request body is not a JSON object", "type": "invalid_request_error",
                    "param": None, "code": None}}, keep)
                return keep
            try:
                reply = self._next_reply(req)
            except Exception as e:  # a broken callable reply: report it as a 500
                await self._send_json(writer, 500, {"error": {
                    "message": f"fake reply failed: {type(e).__name__}: {e}",
                    "type": "server_error", "param": None, "code": None}}, keep)
                return keep
            return await self._send_chat(req, reply, writer, keep)
        if req.method in ("GET", "HEAD") and p in ("/v1/models", "/models"):
            data = {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]}
            await self._send_json(writer, 200, data, keep, head=req.method == "HEAD")
            return keep
        if req.method == "GET" and p == "/api/v0/models" and self.lmstudio_models is not None:
            await self._send_json(writer, 200, {"object": "list", "data": self.lmstudio_models}, keep)
            return keep
        if req.method in ("GET", "HEAD") and p == "/health":
            status = 200 if self.healthy else 503
            await self._send_json(writer, status, {"status": "ok" if self.healthy else "unavailable"},
                                  keep, head=req.method == "HEAD")
            return keep
        if req.method in ("GET", "HEAD") and p == "":
            await self._send_json(writer, 200, {"status": "ok"}, keep, head=req.method == "HEAD")
            return keep
        await self._send_json(writer, 404, {"error": {
            "message": f"no route {req.method} {req.path}", "type": "not_found_error",
            "param": None, "code": None}}, keep)
        return keep

    @staticmethod
    def _head(status: int, headers: dict) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send_json(self, writer, status: int, data: Any, keep: bool, *, head: bool = False,
                         extra: dict | None = None) -> None:
        body = data if isinstance(data, bytes) else (
            data.encode() if isinstance(data, str) else json.dumps(data).encode())
        ctype = "application/json"
        hdrs = {"Content-Type": ctype, "Content-Length": str(len(body)),
                "Connection": "keep-alive" if keep else "close", **(extra or {})}
        writer.write(self._head(status, hdrs) + (b"" if head else body))
        await writer.drain()

    async def _send_chat(self, req: Received, reply: Reply, writer, keep: bool) -> bool:
        body = req.body
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200 or reply.error_body is not None:
            err = reply.error_body if reply.error_body is not None else {"error": {
                "message": "error", "type": "server_error", "param": None, "code": None}}
            await self._send_json(writer, reply.status, err, keep, extra=reply.headers)
            return keep
        cid = f"chatcmpl-fake-{next(self._ids)}"
        created = int(time.time())
        model = reply.model or body.get("model") or "fake-model"
        if not body.get("stream"):
            data = reply.json_body if reply.json_body is not None else {
                "id": cid, "created": created, "model": model, **reply.build_message(body)}
            raw = json.dumps(data).encode()
            if reply.raw_bytes is not None or reply.raw_lines is not None:   # not JSON at all
                raw = reply.raw_bytes if reply.raw_bytes is not None else "".join(reply.raw_lines).encode()
            if reply.chunk_delay and reply.chunks > 1:     # a body that stalls half-way
                hdrs = {"Content-Type": "application/json", "Content-Length": str(len(raw)),
                        **reply.headers}
                writer.write(self._head(200, hdrs) + raw[: len(raw) // 2])
                await writer.drain()
                await asyncio.sleep(reply.chunk_delay * reply.chunks)
                writer.write(raw[len(raw) // 2:])
                await writer.drain()
                return keep
            if reply.cut_after is not None:
                hdrs = {"Content-Type": "application/json", "Content-Length": str(len(raw)),
                        **reply.headers}
                writer.write(self._head(200, hdrs) + raw[: len(raw) // 2])
                await writer.drain()
                raise _Cut()
            await self._send_json(writer, 200, raw, keep, extra=reply.headers)
            return keep

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        hdrs = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked", "Connection": "keep-alive" if keep else "close",
                **reply.headers}
        writer.write(self._head(200, hdrs))
        await writer.drain()

        def frame(payload: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(payload), payload)

        async def send(payload: bytes) -> None:
            writer.write(frame(payload))
            await writer.drain()

        for i in range(reply.keepalive):
            if i and reply.keepalive_interval:
                await asyncio.sleep(reply.keepalive_interval)
            await send(f": keepalive {i + 1}/{reply.keepalive}\n\n".encode())
        if reply.keepalive and reply.keepalive_interval:
            await asyncio.sleep(reply.keepalive_interval)

        if reply.raw_bytes is not None:
            events = [reply.raw_bytes]
            n_deltas = 0
        elif reply.raw_lines is not None:
            events = [line.encode() for line in reply.raw_lines]
            n_deltas = len(events)
        else:
            chunks = reply.build_chunks()
            n_deltas = sum(1 for c in chunks if c.get("choices") and c["choices"][0].get("delta"))
            events = []
            for c in chunks:
                full = {"id": cid, "object": "chat.completion.chunk", "created": created,
                        "model": model, **c}
                events.append(b"data: " + json.dumps(full).encode() + b"\n\n")
            usage = reply.build_usage(body, n_deltas)
            if usage is not None and (include_usage or reply.usage_always):
                full = {"id": cid, "object": "chat.completion.chunk", "created": created,
                        "model": model, "choices": [], "usage": usage}
                events.append(b"data: " + json.dumps(full).encode() + b"\n\n")
        sent = 0
        for ev in events:
            if reply.cut_after is not None and sent >= reply.cut_after:
                raise _Cut()
            if sent and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await send(ev)
            sent += 1
        if reply.cut_after is not None:
            raise _Cut()
        if reply.done:
            await send(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep
