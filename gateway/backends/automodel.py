"""`model: auto`: use whatever model the server has loaded, instead of copying its id into the YAML.

The id is picked from the server's own list — LM Studio's `GET /api/v0/models` (which says which
model is loaded and whether it was trained for tool use), else the OpenAI `GET /v1/models` — on
first use, and picked again when a request fails with "model not found" (the user loaded another
model). The pick is logged and shown in /health.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any, AsyncIterator

import httpx

from turnroute.gateway.backends.base import Backend, BackendConfig
from turnroute.gateway.errors import BackendRejected, BackendUnavailable

log = logging.getLogger("turnroute")

_MISSING = re.compile(r"model\W.*not (?:found|loaded|exist)|no (?:model|models) (?:loaded|found)|"
                      r"cannot find|not a valid model|unknown model|does not exist", re.I)


def is_auto(model: str) -> bool:
    return model == "auto" or model.endswith("/auto")


def provider_prefix(config: BackendConfig) -> str:
    """LiteLLM needs the provider in front of the id; `auto` alone on LiteLLM means LM Studio."""
    if "/" in config.model:
        return config.model.rsplit("/", 1)[0] + "/"
    return "lm_studio/" if config.type == "litellm" else ""


def model_missing(exc: BackendRejected) -> bool:
    return getattr(exc, "upstream_status", None) == 404 or bool(_MISSING.search(exc.message))


def can_call_tools(entry: dict[str, Any]) -> bool | None:
    """LM Studio lists `capabilities: ["tool_use"]` for models trained for it; None: not said."""
    caps = entry.get("capabilities")
    return None if caps is None else "tool_use" in caps


def pick(entries: list[dict[str, Any]], *, want_tools: bool) -> tuple[str, str] | None:
    """(id, why) of the model to use, or None when the list offers none."""
    chat = [m for m in entries if isinstance(m.get("id"), str) and m.get("type", "llm") in ("llm", "vlm", "model")]   # "model": the Messages API's list
    if any("state" in m for m in chat):             # LM Studio: only a loaded model answers at once
        chat = [m for m in chat if m.get("state") == "loaded"]
    if not chat:
        return None
    if want_tools:
        for m in chat:
            if can_call_tools(m):
                return m["id"], "loaded, trained for tool use"
        for m in chat:
            if can_call_tools(m) is None:
                return m["id"], "loaded (tool use not stated)"
        return chat[0]["id"], "loaded, but not trained for tool use"
    # mlx_lm.server lists cached hub models first and the model it runs (a local path) last.
    local = [m for m in chat if m["id"].startswith("/")]
    return (local[-1] if local else chat[0])["id"], "served"


async def list_models(client: httpx.AsyncClient, url: str, timeout: float = 3.0) -> tuple[str, list[dict]]:
    """(which list, entries): LM Studio's rich list when the server has it, else /v1/models."""
    root = url[:-3] if url.endswith("/v1") else url
    # a Messages-API server is configured without /v1 (type: anthropic): its list is still /v1/models
    for source in (root + "/api/v0/models", root + "/v1/models"):
        resp = await client.get(source, timeout=timeout)
        if resp.status_code == 200:
            try:
                data = resp.json().get("data")
            except (ValueError, AttributeError):
                continue
            if isinstance(data, list):
                return source, [m for m in data if isinstance(m, dict)]
    return "", []


class AutoModelBackend:
    """Wraps a backend whose model is `auto`; its `config.model` becomes the picked id."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.declared = inner.config          # what the YAML said (the pool compares this)
        self.picked: str | None = None
        self.why: str | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def config(self) -> BackendConfig:
        return self.inner.config

    async def resolve(self) -> str:
        """Pick (again) from the server's list; raises BackendUnavailable when there is none."""
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            cfg = self.declared
            try:
                async with httpx.AsyncClient(trust_env=False) as client:
                    source, entries = await list_models(client, cfg.url, cfg.connect_timeout + 1)
            except httpx.HTTPError as exc:
                raise BackendUnavailable(f"backend '{self.name}' ({cfg.url}) is unreachable while picking "
                                         f"its model ({type(exc).__name__})", backend=self.name) from None
            choice = pick(entries, want_tools=cfg.supports.tools)
            if choice is None:
                raise BackendUnavailable(f"backend '{self.name}' ({cfg.url}) has no model loaded "
                                         "(model: auto): load one", backend=self.name)
            model = provider_prefix(cfg) + choice[0]
            if model != self.picked:
                log.info("backend %s: model auto → %s (%s, from %s)", self.name, model, choice[1], source)
            self.picked, self.why = model, choice[1]
            self.inner.config = replace(cfg, model=model)
            return model

    def _body(self, body: dict[str, Any], stale: str | None) -> dict[str, Any]:
        """The body with the picked model, unless a rule chose a model of its own."""
        if body.get("model") in (self.declared.model, stale):
            return {**body, "model": self.config.model}
        return body

    async def complete(self, body: dict[str, Any], *, session_id: str | None, **kw: Any) -> dict[str, Any]:
        stale = self.picked or await self.resolve()
        try:
            return await self.inner.complete(self._body(body, stale), session_id=session_id, **kw)
        except BackendRejected as exc:
            if not model_missing(exc) or await self.resolve() == stale:
                raise
            return await self.inner.complete(self._body(body, stale), session_id=session_id, **kw)

    async def stream(self, body: dict[str, Any], *, session_id: str | None, **kw: Any) -> AsyncIterator[Any]:
        # **kw: what the inner backend takes besides (a native one: the client's anthropic-* headers)
        stale = self.picked or await self.resolve()
        started = False
        try:
            async for chunk in self.inner.stream(self._body(body, stale), session_id=session_id, **kw):
                started = True
                yield chunk
            return
        except BackendRejected as exc:
            if started or not model_missing(exc) or await self.resolve() == stale:
                raise
        async for chunk in self.inner.stream(self._body(body, stale), session_id=session_id, **kw):
            yield chunk

    async def health(self) -> dict[str, Any]:
        result = await self.inner.health()
        try:
            await self.resolve()
        except BackendUnavailable as exc:
            result["model_error"] = exc.message
        result["model_picked"] = self.picked
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()
