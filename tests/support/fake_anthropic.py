"""A scripted Messages-API server (what LM Studio, Ollama, llama.cpp, vLLM or the cloud answer).

Same transport and script as `FakeOpenAI` (it is a subclass: keep-alive, chunked SSE, cut
streams, delays), a different wire format:

    with FakeAnthropic(reject=("context_management",)) as fake:
        fake.script(Reply(text="hello", chunks=3),
                    Reply.tools(ToolCall("Read", {"file_path": "a.txt"}, id="toolu_srv1", pieces=3)),
                    anthropic_error(529, "busy", "overloaded_error"),
                    Reply(text="cut", chunks=4, cut_after=3))      # events, then the socket closes
        ... point a `type: anthropic` backend at fake.base ...
        fake.requests[0].raw        # the exact bytes that arrived

Endpoints: ``POST /v1/messages`` (streaming and not), ``POST /v1/messages/count_tokens`` (404
when ``count_tokens=False``), ``GET /v1/models``, ``GET /``. A body carrying a field named in
``reject`` (dotted paths) gets the 400 a strict server sends. ``usage`` of a Reply here uses the
Anthropic names (input_tokens, cache_read_input_tokens, cache_creation_input_tokens,
output_tokens); "auto" estimates input from the body size.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterable

from tests.support.fake_openai import FakeOpenAI, Received, Reply, ToolCall, split_text

__all__ = ["FakeAnthropic", "Reply", "ToolCall", "anthropic_error", "has_path"]

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def anthropic_error(status: int, message: str, type: str = "invalid_request_error") -> Reply:
    return Reply(status=status, error_body={"type": "error", "error": {"type": type, "message": message}})


def has_path(body: Any, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return False
        body = body[part]
    return True


def sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic(FakeOpenAI):
    def __init__(self, *, reject: Iterable[str] = (), count_tokens: bool = True, **kw: Any):
        self.reject = tuple(reject)
        self.count_tokens = count_tokens
        super().__init__(**kw)

    def __repr__(self) -> str:
        return f"FakeAnthropic({self.base}, requests={len(self.requests)}, pending={self.pending})"

    async def _dispatch(self, req: Received, writer: asyncio.StreamWriter) -> bool:
        with self._lock:
            self.log.append(req)
        keep = req.headers.get("connection", "").lower() != "close"
        p = req.path.rstrip("/")
        if req.method == "POST" and p in ("/v1/messages", "/v1/messages/count_tokens"):
            rejected = [f for f in self.reject if has_path(req.body, f)]
            if not isinstance(req.body, dict) or rejected:
                with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                why = f"{rejected[0]}: Extra inputs are not permitted" if rejected else "body is not JSON"
                await self._send_json(writer, 400, {"type": "error", "error": {
                    "type": "invalid_request_error", "message": why}}, keep)
                return keep
            if p.endswith("count_tokens"):
                if not self.count_tokens:
                    await self._send_json(writer, 404, {"type": "error", "error": {
                        "type": "not_found_error", "message": "no count_tokens here"}}, keep)
                    return keep
                with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                await self._send_json(writer, 200, {"input_tokens": 1000 + len(req.raw) // 4}, keep)
                return keep
            return await self._send_message(req, self._next_reply(req), writer, keep)
        if req.method in ("GET", "HEAD") and p in ("/v1/models", ""):
            await self._send_json(writer, 200, {"data": [{"type": "model", "id": m} for m in self.models],
                                                "has_more": False}, keep, head=req.method == "HEAD")
            return keep
        await self._send_json(writer, 404, {"type": "error", "error": {
            "type": "not_found_error", "message": f"no route {req.method} {req.path}"}}, keep)
        return keep

    def _usage(self, reply: Reply, body: dict, n_out: int) -> dict:
        if isinstance(reply.usage, dict):
            return {"input_tokens": 0, "output_tokens": n_out, **reply.usage}
        return {"input_tokens": max(1, len(json.dumps(body.get("messages"))) // 4), "output_tokens": n_out}

    def _blocks(self, reply: Reply) -> list[dict]:
        blocks: list[dict] = []
        if reply.reasoning:
            blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": "sig-fake"})
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for i, tc in enumerate(reply.tool_calls):
            blocks.append({"type": "tool_use", "id": tc.id or f"toolu_fake{i}", "name": tc.name,
                           "input": json.loads(tc.args_text())})
        return blocks

    def _events(self, reply: Reply, body: dict, mid: str) -> list[bytes]:
        model = reply.model or body.get("model")
        blocks = self._blocks(reply)
        usage = self._usage(reply, body, max(1, len(blocks)))
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
        out = [sse("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**start_usage, "output_tokens": 1}}})]
        for i, b in enumerate(blocks):
            kind = b["type"]
            if kind == "text":
                out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                for part in split_text(b["text"], reply.chunks):
                    out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "text_delta", "text": part}}))
            elif kind == "thinking":
                out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "thinking", "thinking": ""}}))
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "thinking_delta", "thinking": b["thinking"]}}))
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "signature_delta", "signature": b["signature"]}}))
            else:
                tc = reply.tool_calls[i - (len(blocks) - len(reply.tool_calls))]
                out.append(sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}))
                for frag in tc.fragments():
                    out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                        "type": "input_json_delta", "partial_json": frag}}))
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        stop = _STOP.get(reply.resolved_finish() or "stop", "end_turn")
        out.append(sse("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": usage["output_tokens"]}}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return out

    async def _send_message(self, req: Received, reply: Reply, writer, keep: bool) -> bool:
        body = req.body
        mid = f"msg_fake{next(self._ids)}"
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200 or reply.error_body is not None:
            await self._send_json(writer, reply.status, reply.error_body or {}, keep, extra=reply.headers)
            return keep
        if not body.get("stream"):
            blocks = self._blocks(reply)
            msg = {"id": mid, "type": "message", "role": "assistant", "model": reply.model or body.get("model"),
                   "content": blocks, "stop_reason": _STOP.get(reply.resolved_finish() or "stop", "end_turn"),
                   "stop_sequence": None, "usage": self._usage(reply, body, max(1, len(blocks)))}
            await self._send_json(writer, 200, reply.json_body or msg, keep, extra=reply.headers)
            return keep
        writer.write(self._head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                      "Transfer-Encoding": "chunked",
                                      "Connection": "keep-alive" if keep else "close", **reply.headers}))
        events = [line.encode() for line in reply.raw_lines] if reply.raw_lines is not None \
            else self._events(reply, body, mid)
        for i, ev in enumerate(events):
            if reply.cut_after is not None and i >= reply.cut_after:
                await writer.drain()
                writer.close()
                return False
            if i and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            writer.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep
