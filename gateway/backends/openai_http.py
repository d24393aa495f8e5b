"""Direct, pooled HTTP (aiohttp) to an OpenAI-compatible server (mlx_lm.server, vLLM, llama.cpp…).

This is the hot path: one keep-alive connection pool per backend, bodies serialised once with
orjson, the upstream SSE parsed incrementally and chunks yielded as they arrive (no buffering).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import aiohttp
import httpx
import orjson

from turnroute.gateway.backends.base import BackendConfig, probe_servers
from turnroute.gateway.errors import (
    BackendFailed,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    status_for_upstream,
    tool_refusal,
)
from turnroute.gateway.protocol.jsonfast import dumps
from turnroute.gateway.protocol.sse import SSEDecoder

# identity: SSE chunks are parsed as they arrive, undecoded (auto_decompress is off).
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


def no_valid_chunk(name: str, url: str, junk: str | None) -> BackendFailed:
    """A stream of nothing usable is a failure, never an empty ``end_turn`` answer."""
    seen = f"; it sent {junk[:100]!r}" if junk else ""
    return BackendFailed(f"backend '{name}' ({url}) sent no valid chunk{seen}", backend=name)


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


def transport_error(cfg: BackendConfig, url: str, exc: BaseException) -> GatewayError:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return BackendUnavailable(
            f"backend '{cfg.name}' at {url} is unreachable ({type(exc).__name__}): is the server running?",
            backend=cfg.name)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return BackendUnavailable(f"backend '{cfg.name}' at {url} timed out ({type(exc).__name__})",
                                  backend=cfg.name)
    return BackendFailed(f"backend '{cfg.name}' at {url} broke the connection ({type(exc).__name__}: {exc})",
                         backend=cfg.name)


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def pooled_session(config: BackendConfig, headers: dict[str, str]) -> aiohttp.ClientSession:
    """One keep-alive pool per backend, made inside the running event loop."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None, connect=config.connect_timeout, sock_read=config.read_timeout),
        headers=headers, auto_decompress=False)


async def post_json(client: aiohttp.ClientSession, cfg: BackendConfig, url: str, body: dict[str, Any],
                    headers: dict[str, str] | None) -> Any:
    """POST a JSON body, return the parsed 200 answer; every failure as the gateway's error."""
    try:
        async with client.post(url, data=dumps(body), headers=headers) as resp:
            raw = await resp.read()
            status = resp.status
    except TRANSPORT_ERRORS as exc:
        raise transport_error(cfg, url, exc) from None
    if status != 200:
        raise error_for_status(cfg, url, status, raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BackendFailed(f"backend '{cfg.name}' ({url}) returned invalid JSON", backend=cfg.name) from None


async def open_stream(client: aiohttp.ClientSession, cfg: BackendConfig, url: str, body: dict[str, Any],
                      headers: dict[str, str] | None) -> aiohttp.ClientResponse:
    """POST a streaming request; the response once it answered 200 (the caller releases it)."""
    try:
        resp = await client.post(url, data=dumps(body), headers=headers)
    except TRANSPORT_ERRORS as exc:
        raise transport_error(cfg, url, exc) from None
    if resp.status != 200:
        try:
            raw = await resp.read()
        except TRANSPORT_ERRORS:
            raw = b""
        finally:
            resp.close()
        raise error_for_status(cfg, url, resp.status, raw)
    return resp


def settle(resp: aiohttp.ClientResponse, clean: bool) -> None:
    """A finished stream's connection goes back to the pool; anything else (the client went away,
    an error) closes it, which aborts the upstream generation."""
    if clean:
        resp.release()
    else:
        resp.close()


def session_headers(config: BackendConfig, session_id: str | None) -> dict[str, str] | None:
    """The session id in the header a serving fleet's router uses for affinity, when configured."""
    return {config.session_header: session_id} if config.session_header and session_id else None


class OpenAIHTTPBackend:
    """An OpenAI-compatible server reached directly with aiohttp.

    aiohttp rather than httpx: measured here with 16 concurrent 80 KB requests, httpx's pool and
    HTTP/1.1 machinery cost ~0.9 ms of CPU per request against ~0.07 ms for aiohttp — most of what
    the gateway would otherwise add.
    """

    def __init__(self, config: BackendConfig, *, api_key: str | None = None):
        self.name = config.name
        self.config = config
        self._headers = dict(JSON_HEADERS)
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use inside the running event loop."""
        if self._session is None or self._session.closed:
            self._session = pooled_session(self.config, self._headers)
        return self._session

    async def prepare(self, body: dict[str, Any], session_id: str | None,
                      stream: bool) -> tuple[str, str, dict[str, Any], dict[str, str] | None]:
        """Server base URL (for messages), endpoint, body and extra headers of one call.

        The one place a subclass changes what goes on the wire (LiteLLMBackend lets LiteLLM's
        provider config build it); the transport, errors and stream handling stay shared.
        """
        url = self.config.url_for(session_id)
        return url, url + "/chat/completions", body, session_headers(self.config, session_id)

    async def complete(self, body: dict[str, Any], *, session_id: str | None) -> dict[str, Any]:
        _, endpoint, data, headers = await self.prepare(body, session_id, False)
        return await post_json(self._client(), self.config, endpoint, data, headers)

    async def stream(self, body: dict[str, Any], *, session_id: str | None) -> AsyncIterator[dict[str, Any]]:
        url, endpoint, data, headers = await self.prepare(body, session_id, True)
        resp = await open_stream(self._client(), self.config, endpoint, data, headers)
        clean = False
        try:
            decoder = SSEDecoder()
            finished = False
            valid, junk = 0, None
            try:
                async for raw in resp.content.iter_any():
                    for item in decoder.feed(raw):
                        if item == "[DONE]":
                            if not valid:
                                raise no_valid_chunk(self.name, url, junk)
                            clean = True
                            return
                        if not isinstance(item, dict):
                            junk = junk or item
                            continue
                        valid += 1
                        if "error" in item and "choices" not in item:
                            raise BackendFailed(
                                f"backend '{self.name}' ({url}) reported an error mid-stream: "
                                f"{upstream_message(orjson.dumps(item))}", backend=self.name)
                        finished = finished or any(c.get("finish_reason") for c in item.get("choices") or ())
                        yield item
                for item in decoder.flush():
                    if isinstance(item, dict):
                        valid += 1
                        finished = finished or any(c.get("finish_reason") for c in item.get("choices") or ())
                        yield item
            except TRANSPORT_ERRORS as exc:
                raise transport_error(self.config, url, exc) from None
            if not valid:
                raise no_valid_chunk(self.name, url, junk)
            if not finished:
                # A stream that just stops (mlx-lm's generation thread died, a proxy cut it) is not a
                # finished answer: fail it so the client retries instead of keeping partial text.
                raise BackendFailed(f"backend '{self.name}' ({url}) ended the stream without finishing "
                                    "(no finish_reason, no [DONE])", backend=self.name)
            clean = True
        finally:
            settle(resp, clean)

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            return await probe_servers(client, self.config, health_path=True)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
