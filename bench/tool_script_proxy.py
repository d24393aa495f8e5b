"""A scripting proxy in front of a real mlx_lm.server: the server does the prefill, the script the tool calls.

The tiny random model never emits a tool call, so for a request that carries tools while the
session script (bench/session_script.py) has a tool call due, the proxy forwards the request
unchanged (the server prefills the whole prompt and reports its usage and cache reuse), waits for
the server's first generated token, sends the scripted tool call in its place, drops the rest of
the text and finishes with ``finish_reason: tool_calls`` and the server's own usage. Every other
request is relayed byte for byte. So time to first token and prompt tokens are the server's; only
the words are scripted.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from turnroute.gateway.protocol.sse import SSEDecoder
from session_script import Call, turn_of


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or () if isinstance(p, dict))


def next_call(body: dict) -> tuple[int, Call] | None:
    """The scripted tool call due for this request (and its index in the turn), or None."""
    if not body.get("tools"):
        return None
    msgs = body.get("messages") or []
    last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=None)
    if last_user is None or (turn := turn_of(_text(msgs[last_user].get("content")))) is None:
        return None
    done = sum(1 for m in msgs[last_user + 1:] if m.get("role") == "assistant" and m.get("tool_calls"))
    return (done, turn.calls[done]) if done < len(turn.calls) else None


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class ScriptProxy:
    def __init__(self, upstream_base: str) -> None:
        self.upstream = upstream_base.rstrip("/")
        self.scripted = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/{tail:.*}", self._get)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get(self, request: web.Request) -> web.Response:
        async with self._session.get(self.upstream + request.path) as up:   # type: ignore[union-attr]
            return web.Response(status=up.status, body=await up.read(), content_type=up.content_type)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        body["model"] = "default_model"            # what mlx_lm.server calls the model it serves
        due = next_call(body) if body.get("stream") else None
        up = await self._session.post(self.upstream + "/v1/chat/completions", json=body)  # type: ignore[union-attr]
        try:
            if up.status != 200 or due is None:
                resp = web.StreamResponse(status=up.status, headers={"content-type": up.headers.get(
                    "content-type", "application/json")})
                await resp.prepare(request)
                try:
                    async for raw in up.content.iter_any():
                        await resp.write(raw)
                    await resp.write_eof()
                except ConnectionError:     # the gateway hung up once it saw [DONE]
                    pass
                return resp
            return await self._scripted(request, up, *due)
        finally:
            up.release()

    @staticmethod
    def _call_chunk(base: dict, k: int, call: Call) -> bytes:
        fn = {"name": call.name, "arguments": json.dumps(call.input)}
        delta = {"role": "assistant",
                 "tool_calls": [{"index": 0, "id": f"call_{k}_{call.name}", "type": "function", "function": fn}]}
        return _sse({**base, "choices": [{"index": 0, "finish_reason": None, "delta": delta}]})

    async def _scripted(self, request: web.Request, up: aiohttp.ClientResponse, k: int, call: Call) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        sent = False
        decoder = SSEDecoder()
        async for raw in up.content.iter_any():
            for item in decoder.feed(raw):
                if item == "[DONE]":
                    await resp.write(b"data: [DONE]\n\n")
                    continue
                if not isinstance(item, dict):
                    continue
                base = {k2: item[k2] for k2 in ("id", "object", "created", "model") if k2 in item}
                choices = item.get("choices") or []
                if not sent and any((c.get("delta") or {}).get("content") for c in choices):
                    sent = True
                    self.scripted += 1
                    await resp.write(self._call_chunk(base, k, call))
                if any(c.get("finish_reason") for c in choices):
                    if not sent:
                        sent = True
                        self.scripted += 1
                        await resp.write(self._call_chunk(base, k, call))
                    await resp.write(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
                if item.get("usage"):
                    await resp.write(_sse({**base, "choices": [], "usage": item["usage"]}))
        try:
            await resp.write_eof()
        except ConnectionError:             # the gateway hung up once it saw [DONE]
            pass
        return resp
