"""What every backend is: its settings and the small async interface the app drives."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

import httpx
from urllib.parse import urlsplit

CLOUD_HOST = "api.anthropic.com"


@dataclass(frozen=True)
class Supports:
    """Capabilities a backend declares; translation and routing adapt to them."""

    tools: bool = False
    images: bool = False
    thinking: bool = False
    json_schema: bool = False
    parallel_tool_calls: bool = True


@dataclass(frozen=True)
class ServeSpec:
    """One mlx_lm.server the gateway runs itself (`backends.<name>.serve`)."""

    model: str                      # a local model directory (never a hub download)
    prompt_cache_size: int | None = None
    prompt_cache_bytes: int | None = None
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackendConfig:
    name: str
    type: str                       # "openai" (direct HTTP) | "litellm" | "anthropic" (native)
    urls: tuple[str, ...]           # one or more base URLs ending in /v1
    model: str
    max_output_tokens: int | None = 8192
    # Tokens the model can attend to (prompt + answer). None: unknown, no check. The server's
    # own figure, where it reports one (LM Studio), is read at run time and the smaller wins.
    context_window: int | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 600.0
    supports: Supports = field(default_factory=Supports)
    api_key_env: str | None = None  # name of an env var holding the backend key (never the key)
    one_prefill_per_session: bool = False  # serialise a session's prefills on one server (MLX)
    session_header: str | None = None  # send the session id in this header (fleet affinity)
    drop: tuple[str, ...] = ()      # type anthropic: dotted fields the server rejects
    count_tokens: bool = False      # type anthropic: the server answers /v1/messages/count_tokens
    line: int | None = None         # where it is declared, for messages
    serve: tuple[ServeSpec, ...] = ()  # managed servers; their urls are filled in when they are given ports

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def cloud(self) -> bool:
        """A backend on Anthropic's API: the gateway's own key, and no local-server probes."""
        return any(urlsplit(u).hostname == CLOUD_HOST for u in self.urls)

    def url_for(self, session_id: str | None) -> str:
        """A session always hashes to the same server, so its prompt cache stays warm there."""
        if len(self.urls) == 1 or not session_id:
            return self.urls[0]
        return self.urls[zlib.crc32(session_id.encode()) % len(self.urls)]


class Backend(Protocol):
    name: str
    config: BackendConfig

    def stream(self, body: dict[str, Any], *, session_id: str | None) -> AsyncIterator[dict[str, Any]]:
        """OpenAI chat.completion.chunk dicts; raises a GatewayError subclass on failure."""
        ...

    async def complete(self, body: dict[str, Any], *, session_id: str | None) -> dict[str, Any]:
        """An OpenAI chat.completion dict."""
        ...

    async def health(self) -> dict[str, Any]:
        """Reachability without generating anything."""
        ...

    async def aclose(self) -> None: ...


async def probe_servers(client: httpx.AsyncClient, config: BackendConfig, *, health_path: bool) -> dict[str, Any]:
    """Reachability of each server without generating: GET /health (mlx_lm.server), else /v1/models."""
    results = []
    timeout = config.connect_timeout + 1
    for url in config.urls:
        entry: dict[str, Any] = {"url": url}
        try:
            resp = None
            if health_path:
                base = url[:-3] if url.endswith("/v1") else url
                resp = await client.get(base + "/health", timeout=timeout)
            if resp is None or resp.status_code == 404:
                resp = await client.get(url + "/models", timeout=timeout)
            entry["ok"] = resp.status_code == 200
            entry["status"] = resp.status_code
        except httpx.HTTPError as exc:
            entry["ok"] = False
            entry["error"] = type(exc).__name__
        results.append(entry)
    return {"ok": all(r["ok"] for r in results), "servers": results}
