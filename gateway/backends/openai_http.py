"""Direct, pooled HTTP to an OpenAI-compatible server (mlx_lm.server, vLLM, llama.cpp…).

This is the hot path: one keep-alive connection pool per backend, bodies serialised once with
orjson, the upstream SSE parsed incrementally and chunks yielded as they arrive (no buffering).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import httpx
import orjson

from gateway.backends.base import BackendConfig, probe_servers
from gateway.errors import (
    BackendFailed,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    status_for_upstream,
    tool_refusal,
)
from gateway.protocol.sse import SSEDecoder

# identity: chunks are parsed as they arrive with aiter_raw, which does not undo compression.
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json", "accept-encoding": "identity"}


def upstream_message(raw: bytes) -> str:
    """The human message inside an upstream error body, whatever shape it has."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace").strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)[:500]
        return str(err)[:500]
    return str(data)[:500]


def error_for_status(cfg: BackendConfig, url: str, status: int, raw: bytes) -> GatewayError:
    msg = upstream_message(raw)
    where = f"backend '{cfg.name}' ({url})"
    if status in (502, 503, 504, 529):
        return BackendUnavailable(f"{where} is not ready (HTTP {status}): {msg}", backend=cfg.name)
    if 400 <= status < 500:
        return BackendRejected(f"{where} rejected the request (HTTP {status}): {msg}",
                               status=status_for_upstream(status), backend=cfg.name,
                               capability="tools" if tool_refusal(msg) else None,
                               upstream_status=status)
    return BackendFailed(f"{where} failed (HTTP {status}): {msg}", backend=cfg.name)


def transport_error(cfg: BackendConfig, url: str, exc: Exception) -> GatewayError:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return BackendUnavailable(
            f"backend '{cfg.name}' at {url} is unreachable ({type(exc).__name__}): is the server running?",
            backend=cfg.name)
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailable(f"backend '{cfg.name}' at {url} timed out ({type(exc).__name__})",
                                  backend=cfg.name)
    return BackendFailed(f"backend '{cfg.name}' at {url} broke the connection ({type(exc).__name__}: {exc})",
                         backend=cfg.name)


class OpenAIHTTPBackend:
    """An OpenAI-compatible server reached directly with httpx."""

    def __init__(self, config: BackendConfig, *, api_key: str | None = None):
        self.name = config.name
        self.config = config
        headers = dict(JSON_HEADERS)
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout, pool=config.connect_timeout),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=60),
            headers=headers,
        )

    async def complete(self, body: dict[str, Any], *, session_id: str | None) -> dict[str, Any]:
        url = self.config.url_for(session_id)
        try:
            resp = await self._client.post(url + "/chat/completions", content=orjson.dumps(body))
        except httpx.HTTPError as exc:
            raise transport_error(self.config, url, exc) from None
        if resp.status_code != 200:
            raise error_for_status(self.config, url, resp.status_code, resp.content)
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise BackendFailed(f"backend '{self.name}' ({url}) returned invalid JSON", backend=self.name) from None

    async def stream(self, body: dict[str, Any], *, session_id: str | None) -> AsyncIterator[dict[str, Any]]:
        url = self.config.url_for(session_id)
        request = self._client.build_request("POST", url + "/chat/completions", content=orjson.dumps(body))
        try:
            resp = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(self.config, url, exc) from None
        try:
            if resp.status_code != 200:
                raise error_for_status(self.config, url, resp.status_code, await resp.aread())
            decoder = SSEDecoder()
            finished = False
            try:
                async for raw in resp.aiter_raw():
                    for item in decoder.feed(raw):
                        if item == "[DONE]":
                            return
                        if isinstance(item, dict):
                            if "error" in item and "choices" not in item:
                                raise BackendFailed(
                                    f"backend '{self.name}' ({url}) reported an error mid-stream: "
                                    f"{upstream_message(orjson.dumps(item))}", backend=self.name)
                            finished = finished or any(c.get("finish_reason") for c in item.get("choices") or ())
                            yield item
                for item in decoder.flush():
                    if isinstance(item, dict):
                        finished = finished or any(c.get("finish_reason") for c in item.get("choices") or ())
                        yield item
            except httpx.HTTPError as exc:
                raise transport_error(self.config, url, exc) from None
            if not finished:
                # A stream that just stops (mlx-lm's generation thread died, a proxy cut it) is not a
                # finished answer: fail it so the client retries instead of keeping partial text.
                raise BackendFailed(f"backend '{self.name}' ({url}) ended the stream without finishing "
                                    "(no finish_reason, no [DONE])", backend=self.name)
        finally:
            # Closing aborts the upstream request when the client went away (cancellation).
            await asyncio.shield(resp.aclose())

    async def health(self) -> dict[str, Any]:
        return await probe_servers(self._client, self.config, health_path=True)

    async def aclose(self) -> None:
        await self._client.aclose()
