"""`type: anthropic`: a server that speaks the Messages API itself (LM Studio 0.4.1+, Ollama 0.14+,
llama.cpp's llama-server, vLLM, or api.anthropic.com).

No translation: the body goes out as `gateway.native` prepared it and the upstream SSE comes back
as whole events (name, raw bytes) for the relay in `gateway.protocol.passthrough` — the same
pooled aiohttp session and error mapping as `openai_http`, a different wire format.

Keys: only this backend's own (`api_key_env`) is sent, as `x-api-key`; the client's `x-api-key`
or `Authorization` is never forwarded. Of the client's headers only `anthropic-version` and
`anthropic-beta` travel (the cloud needs them to accept newer fields).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Mapping

import aiohttp
import httpx
import orjson

from turnroute.gateway.backends.base import BackendConfig
from turnroute.gateway.backends.openai_http import (
    JSON_HEADERS,
    TRANSPORT_ERRORS,
    open_stream,
    pooled_session,
    post_json,
    session_headers,
    settle,
    transport_error,
    upstream_message,
)
from turnroute.gateway.errors import BackendFailed, BackendUnavailable, GatewayError
from turnroute.gateway.protocol.passthrough import SSEEventSplitter, event_data

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
DEFAULT_VERSION = "2023-06-01"

# The error types a Messages server sends in an `event: error`, as the gateway's statuses.
_EVENT_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
                 "invalid_request_error": 400, "request_too_large": 413}


def messages_url(base: str) -> str:
    """`…/v1` or a bare host both work: LM Studio is configured with /v1, the cloud without."""
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


class AnthropicNativeBackend:
    """Forwards Messages requests; yields `(event name, raw event bytes)` when streaming."""

    def __init__(self, config: BackendConfig, *, api_key: str | None = None):
        self.name = config.name
        self.config = config
        self._headers = dict(JSON_HEADERS)
        if api_key:
            self._headers["x-api-key"] = api_key
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = pooled_session(self.config, self._headers)
        return self._session

    def _request_headers(self, client_headers: Mapping[str, str] | None, session_id: str | None) -> dict[str, str]:
        out = {"anthropic-version": DEFAULT_VERSION}
        for name in FORWARDED_HEADERS:
            value = client_headers.get(name) if client_headers is not None else None
            if value:
                out[name] = value
        out.update(session_headers(self.config, session_id) or {})
        return out

    async def complete(self, body: dict[str, Any], *, session_id: str | None,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        return await self._post_json(messages_url(self.config.url_for(session_id)), body, session_id, headers)

    async def count_tokens(self, body: dict[str, Any], *, session_id: str | None,
                           headers: Mapping[str, str] | None = None) -> int:
        url = messages_url(self.config.url_for(session_id)) + "/count_tokens"
        data = await self._post_json(url, body, session_id, headers)
        n = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(n, int):
            raise BackendFailed(f"backend '{self.name}' ({url}) answered count_tokens without input_tokens",
                                backend=self.name)
        return n

    async def _post_json(self, url: str, body: dict[str, Any], session_id: str | None,
                         headers: Mapping[str, str] | None) -> Any:
        return await post_json(self._client(), self.config, url, body, self._request_headers(headers, session_id))

    async def stream(self, body: dict[str, Any], *, session_id: str | None,
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[tuple[str, bytes]]:
        url = messages_url(self.config.url_for(session_id))
        resp = await open_stream(self._client(), self.config, url, body, self._request_headers(headers, session_id))
        clean = False
        try:
            splitter = SSEEventSplitter()
            stopped = False
            try:
                async for raw in resp.content.iter_any():
                    for name, block in splitter.feed(raw):
                        if name == "error":
                            raise self._event_error(url, block)
                        stopped = stopped or name == "message_stop"
                        yield name, block
                for name, block in splitter.flush():
                    stopped = stopped or name == "message_stop"
                    yield name, block
            except TRANSPORT_ERRORS as exc:
                raise transport_error(self.config, url, exc) from None
            except ValueError as exc:
                raise BackendFailed(f"backend '{self.name}' ({url}): {exc}", backend=self.name) from None
            if not stopped:
                raise BackendFailed(f"backend '{self.name}' ({url}) ended the stream without message_stop",
                                    backend=self.name)
            clean = True
        finally:
            settle(resp, clean)

    def _event_error(self, url: str, block: bytes) -> GatewayError:
        """An in-band `event: error` from upstream, with its type kept as the gateway's status."""
        data = event_data(block)
        err = data.get("error") if isinstance(data, dict) else None
        kind = err.get("type") if isinstance(err, dict) else None
        msg = upstream_message(orjson.dumps(data)) if data is not None else block.decode("utf-8", "replace")[:500]
        text = f"backend '{self.name}' ({url}) reported an error mid-stream: {msg}"
        status = _EVENT_STATUS.get(kind or "", 500)
        if status == 529:
            return BackendUnavailable(text, backend=self.name)
        return BackendFailed(text, status=status, backend=self.name)

    async def health(self) -> dict[str, Any]:
        """GET /v1/models answers without generating on every Messages server named above."""
        results = []
        async with httpx.AsyncClient(headers={k: v for k, v in self._headers.items() if k == "x-api-key"}) as client:
            for base in self.config.urls:
                url = messages_url(base).rsplit("/", 1)[0] + "/models"
                entry: dict[str, Any] = {"url": base}
                try:
                    resp = await client.get(url, timeout=self.config.connect_timeout + 1,
                                            headers={"anthropic-version": DEFAULT_VERSION})
                    entry.update(ok=resp.status_code == 200, status=resp.status_code)
                except httpx.HTTPError as exc:
                    entry.update(ok=False, error=type(exc).__name__)
                results.append(entry)
        return {"ok": all(r["ok"] for r in results), "servers": results}

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
