"""Context windows: how many tokens a backend's model holds, and how much of it a prompt may use.

Why the gateway checks at all: a local server given a prompt longer than its window either fails
with a message Claude Code cannot act on or silently drops the start of the conversation. Checked
here, the request moves to a backend that holds it, or — when none does — Claude Code gets the
400 "prompt is too long: N tokens > M maximum" it recognises and compacts on.

Where the figure comes from: `backends.<name>.context_window` in the YAML, and the server itself
where it says — LM Studio's `GET /api/v0/models` reports each loaded model's
`loaded_context_length` (mlx_lm.server reports nothing). When both are known the smaller wins:
the server's figure is a hard limit, a smaller configured one is the user's choice.
"""

from __future__ import annotations

from typing import Any

import httpx

from turnroute.gateway.backends.base import BackendConfig

__all__ = ["reported_window", "read_window", "effective_window", "prompt_limit", "too_long_message"]


def _ids(model: str) -> tuple[str, ...]:
    """Names the server may list the model under: as configured, and without LiteLLM's provider."""
    head, sep, rest = model.partition("/")
    return (model, rest) if sep and head in ("lm_studio", "openai", "hosted_vllm") else (model,)


def reported_window(doc: Any, model: str) -> int | None:
    """The loaded context length of `model` in an LM Studio `/api/v0/models` answer, if it says.

    A model that is not loaded has no window yet (LM Studio picks one when it loads it), so only
    loaded models count; when the configured name is not listed and exactly one model is loaded,
    that is the one LM Studio will answer with.
    """
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return None
    loaded = [m for m in data if isinstance(m, dict) and m.get("state") == "loaded"
              and isinstance(m.get("loaded_context_length"), int) and m["loaded_context_length"] > 0]
    names = _ids(model)
    for m in loaded:
        if m.get("id") in names:
            return m["loaded_context_length"]
    return loaded[0]["loaded_context_length"] if len(loaded) == 1 else None


async def read_window(client: httpx.AsyncClient, config: BackendConfig) -> int | None:
    """Ask each of the backend's servers (the smallest window wins); None when none says."""
    found: list[int] = []
    if config.cloud:
        return None                 # Anthropic's API has no local model list to ask
    for url in config.urls:
        base = url[:-3] if url.endswith("/v1") else url
        try:
            resp = await client.get(base + "/api/v0/models", timeout=config.connect_timeout + 1)
            if resp.status_code != 200:
                continue
            n = reported_window(resp.json(), config.model)
        except (httpx.HTTPError, ValueError):
            continue
        if n is not None:
            found.append(n)
    return min(found) if found else None


def effective_window(configured: int | None, reported: int | None) -> int | None:
    known = [n for n in (configured, reported) if n]
    return min(known) if known else None


def prompt_limit(window: int, answer_limit: int | None) -> int:
    """Tokens a prompt may use: the window less room for the answer.

    The room is the most the backend may write (the clamped max_tokens), so a prompt that passes
    cannot be cut off mid-answer by the window — but never more than a quarter of the window, so
    a large `max_output_tokens` on a small-window model does not turn away every prompt.
    """
    return window - min(answer_limit or 0, window // 4)


def too_long_message(tokens: int, maximum: int) -> str:
    """Anthropic's wording, which Claude Code matches to start compacting the conversation."""
    return f"prompt is too long: {tokens} tokens > {maximum} maximum"
