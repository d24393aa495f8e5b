"""LM Studio (or any LiteLLM provider) through LiteLLM's provider resolution.

LiteLLM is used only to *reach* the provider; the Anthropic protocol is translated by
`gateway.protocol`: LiteLLM's own Anthropic adapter mixes up interleaved streamed tool calls,
answers invalid tool JSON with a 500 and reports `end_turn` for streamed tool calls.
Importing LiteLLM costs seconds and ~160 MiB, so it happens off the startup path: `warm_import`
runs it in a thread once the server is up, and the first request waits for it only if needed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx

from turnroute.gateway.backends.base import BackendConfig, probe_servers
from turnroute.gateway.backends.openai_http import OpenAIHTTPBackend, session_headers
from turnroute.gateway.errors import (
    BackendFailed,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    status_for_upstream,
    tool_refusal,
)

_lock = threading.Lock()
_litellm: Any = None


def load_litellm() -> Any:
    """Import LiteLLM once, offline (no price-list download), quietly."""
    global _litellm
    if _litellm is None:
        with _lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                os.environ.setdefault("LITELLM_LOG", "ERROR")
                import litellm

                litellm.telemetry = False
                litellm.drop_params = True
                litellm.suppress_debug_info = True
                _litellm = litellm
    return _litellm


async def litellm_module() -> Any:
    """The LiteLLM module, imported in a thread so the event loop (other streams) never stalls."""
    return _litellm if _litellm is not None else await asyncio.to_thread(load_litellm)


def warm_import() -> threading.Thread:
    t = threading.Thread(target=load_litellm, name="litellm-import", daemon=True)
    t.start()
    return t


# Fields of our OpenAI body that LiteLLM takes as keyword arguments; anything else goes in extra_body.
_KWARGS = {"messages", "max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice",
           "parallel_tool_calls", "response_format", "stream_options", "user"}


def map_exception(cfg: BackendConfig, exc: Exception) -> GatewayError:
    """Turn a LiteLLM exception into the gateway's error with the right status."""
    name = type(exc).__name__
    msg = str(getattr(exc, "message", None) or exc)
    msg = msg.replace("litellm.", "")
    while msg.startswith(name + ": "):            # LiteLLM repeats the class name as a prefix
        msg = msg[len(name) + 2:]
    msg = msg[:600]
    where = f"backend '{cfg.name}' ({cfg.url})"
    status = getattr(exc, "status_code", None)
    # LiteLLM reports a refused connection as InternalServerError/APIConnectionError "Connection error."
    unreachable = "connection error" in msg.lower() or "connect" in name.lower() or "cannot connect" in msg.lower()
    if unreachable or name in ("Timeout", "ServiceUnavailableError") or status in (502, 503, 504):
        return BackendUnavailable(f"{where} is unreachable or not ready ({name}): {msg}", backend=cfg.name)
    if isinstance(status, int) and 400 <= status < 500:
        return BackendRejected(f"{where} rejected the request (HTTP {status}): {msg}",
                               status=status_for_upstream(status), backend=cfg.name,
                               capability="tools" if tool_refusal(msg) else None, upstream_status=status)
    if tool_refusal(msg):
        return BackendRejected(f"{where} rejected the request: {msg}", backend=cfg.name, capability="tools")
    return BackendFailed(f"{where} failed ({name}): {msg}", backend=cfg.name)


def as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(exclude_none=False)


@dataclass(frozen=True)
class Route:
    """What LiteLLM resolved for one server: provider, model id on the wire, endpoint, headers."""

    provider: str
    model: str
    endpoint: str
    headers: dict[str, str]
    chat: Any                      # LiteLLM's provider chat config (maps params, builds the body)
    openai_wire: bool              # the provider speaks OpenAI chat completions (SSE chunks)


class LiteLLMBackend(OpenAIHTTPBackend):
    """LiteLLM decides provider, URL, auth headers and body; the gateway's pooled aiohttp sends it.

    `litellm.acompletion(stream=True)` wraps every chunk in LiteLLM's stream wrapper and the openai
    SDK's models: ~0.3 ms of CPU per chunk (bench/litellm_paths.py), more than the rest of the
    gateway; its unwrapped SDK stream still costs ~0.1 ms. For providers on the OpenAI wire format
    (lm_studio, hosted_vllm, openai…) the request LiteLLM would send is built with its own provider
    config and the server's own SSE is parsed like the direct route (~0.005 ms per chunk); any
    other provider (ollama_chat…) goes through `litellm.acompletion` as before.
    """

    def __init__(self, config: BackendConfig, *, api_key: str | None = None):
        super().__init__(config)           # no bearer here: LiteLLM's provider config sets auth
        self._api_key = api_key or "lm-studio"   # LM Studio ignores it; LiteLLM wants one
        self._routes: dict[tuple[str, str, bool], Route] = {}

    def _route(self, litellm: Any, base: str, stream: bool) -> Route:
        key = (self.config.model, base, stream)    # `model: auto` may swap config.model at run time
        if key not in self._routes:
            from litellm.llms.openai.chat.gpt_transformation import OpenAIGPTConfig

            model, provider, api_key, api_base = litellm.get_llm_provider(
                self.config.model, api_base=base, api_key=self._api_key)
            chat = litellm.utils.ProviderConfigManager.get_provider_chat_config(
                model, litellm.LlmProviders(provider))
            wire = isinstance(chat, OpenAIGPTConfig)
            endpoint = chat.get_complete_url(api_base, api_key, model, {}, {}, stream) if wire else ""
            headers = chat.validate_environment({}, model, [], {}, {}, api_key, api_base) if wire else {}
            self._routes[key] = Route(provider, model, endpoint, headers, chat, wire)
        return self._routes[key]

    async def prepare(self, body: dict[str, Any], session_id: str | None,
                      stream: bool) -> tuple[str, str, dict[str, Any], dict[str, str] | None]:
        litellm = await litellm_module()
        base = self.config.url_for(session_id)
        try:
            route = self._route(litellm, base, stream)
            params = {k: v for k, v in body.items() if k in _KWARGS and k != "messages"}
            if not stream:
                params.pop("stream_options", None)
            optional = route.chat.map_openai_params(params, {}, route.model, True)
            optional.update((k, v) for k, v in body.items() if k not in _KWARGS and k not in ("model", "stream"))
            optional["stream"] = stream
            out = route.chat.transform_request(route.model, body["messages"], optional,
                                               {"custom_llm_provider": route.provider, "api_base": base},
                                               dict(route.headers))
        except Exception as exc:  # LiteLLM raises its own hierarchy; map all of it
            raise map_exception(self.config, exc) from None
        return base, route.endpoint, out, {**route.headers, **(session_headers(self.config, session_id) or {})}

    async def _openai_wire(self, session_id: str | None) -> bool:
        litellm = await litellm_module()
        try:
            return self._route(litellm, self.config.url_for(session_id), True).openai_wire
        except Exception as exc:
            raise map_exception(self.config, exc) from None

    async def complete(self, body: dict[str, Any], *, session_id: str | None) -> dict[str, Any]:
        if await self._openai_wire(session_id):
            return await super().complete(body, session_id=session_id)
        litellm = await litellm_module()
        try:
            resp = await litellm.acompletion(**self._call_args(body, session_id, False))
        except Exception as exc:
            raise map_exception(self.config, exc) from None
        return as_dict(resp)

    async def stream(self, body: dict[str, Any], *, session_id: str | None) -> AsyncIterator[dict[str, Any]]:
        if await self._openai_wire(session_id):
            async for chunk in super().stream(body, session_id=session_id):
                yield chunk
            return
        litellm = await litellm_module()
        try:
            resp = await litellm.acompletion(**self._call_args(body, session_id, True))
        except Exception as exc:
            raise map_exception(self.config, exc) from None
        try:
            async for chunk in resp:
                yield as_dict(chunk)
        except GatewayError:
            raise
        except Exception as exc:
            raise map_exception(self.config, exc) from None

    def _call_args(self, body: dict[str, Any], session_id: str | None, stream: bool) -> dict[str, Any]:
        """Keyword arguments of `litellm.acompletion` for providers off the OpenAI wire format."""
        args: dict[str, Any] = {"model": self.config.model, "api_base": self.config.url_for(session_id),
                                "api_key": self._api_key, "stream": stream,
                                "timeout": httpx.Timeout(self.config.read_timeout,
                                                         connect=self.config.connect_timeout),
                                "drop_params": True,
                                "num_retries": 0}
        extra: dict[str, Any] = {}
        for key, value in body.items():
            if key in ("model", "stream"):
                continue
            if key in _KWARGS:
                args[key] = value
            else:
                extra[key] = value
        affinity = session_headers(self.config, session_id)
        if affinity:
            args["extra_headers"] = affinity
        if not stream:
            args.pop("stream_options", None)
        if extra:
            args["extra_body"] = extra
        return args

    async def health(self) -> dict[str, Any]:
        """LM Studio answers GET /v1/models without loading or generating anything."""
        async with httpx.AsyncClient() as client:
            return await probe_servers(client, self.config, health_path=False)
