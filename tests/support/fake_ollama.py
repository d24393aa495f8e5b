"""A scripted Ollama `/api/chat` server (what LiteLLM's `ollama_chat/` provider talks to).

Same script and transport as `FakeOpenAI` (a subclass); Ollama's wire format: one JSON object per
line (NDJSON) when streaming, `message.tool_calls[].function.arguments` as an object, usage as
`prompt_eval_count` / `eval_count` on the final `done: true` object. ``GET /api/tags`` lists
the models.
"""

from __future__ import annotations

import asyncio
import json

from tests.support.fake_openai import FakeOpenAI, Received, Reply, split_text

__all__ = ["FakeOllama"]


class FakeOllama(FakeOpenAI):
    async def _dispatch(self, req: Received, writer: asyncio.StreamWriter) -> bool:
        with self._lock:
            self.log.append(req)
        keep = req.headers.get("connection", "").lower() != "close"
        if req.method == "POST" and req.path == "/api/chat" and isinstance(req.body, dict):
            return await self._chat(req, self._next_reply(req), writer, keep)
        if req.method == "GET" and req.path == "/api/tags":
            await self._send_json(writer, 200, {"models": [{"name": m, "model": m} for m in self.models]}, keep)
            return keep
        await self._send_json(writer, 404, {"error": f"no route {req.method} {req.path}"}, keep)
        return keep

    async def _chat(self, req: Received, reply: Reply, writer, keep: bool) -> bool:
        if reply.status != 200:
            await self._send_json(writer, reply.status, reply.error_body or {"error": "error"}, keep)
            return keep
        model = req.body.get("model")
        calls = [{"function": {"name": tc.name, "arguments": json.loads(tc.args_text())}} for tc in reply.tool_calls]
        usage = {"prompt_eval_count": 42, "eval_count": 7}
        final = {"model": model, "created_at": "2026-12-01T00:00:00Z", "done": True,
                 "done_reason": "length" if reply.finish_reason == "length" else "stop", **usage}
        if not req.body.get("stream"):
            msg = {"role": "assistant", "content": reply.text, **({"tool_calls": calls} if calls else {})}
            await self._send_json(writer, 200, {**final, "message": msg}, keep)
            return keep
        lines = [{"model": model, "message": {"role": "assistant", "content": part}, "done": False}
                 for part in (split_text(reply.text, reply.chunks) if reply.text else [])]
        if calls:
            lines.append({"model": model, "message": {"role": "assistant", "content": "", "tool_calls": calls},
                          "done": False})
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        writer.write(self._head(200, {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked",
                                      "Connection": "keep-alive" if keep else "close"}))
        for line in lines:
            payload = json.dumps(line).encode() + b"\n"
            writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep
