"""The request's prefix — system prompt and tools — translated once per distinct value.

A Claude Code session sends byte-identical system blocks and ~25 tool schemas (40–80 KB) on every
turn, so their translations are memoised on the bytes `RequestView` already serialised (bounded
LRU). Cached objects are shared between requests: callers must not mutate the returned tools.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from .content import BILLING_PREFIX, RequestView

__all__ = ["system_text", "translate_tools"]

_CACHE_SIZE = 128


# ---------------------------------------------------------------------------- system
@lru_cache(maxsize=_CACHE_SIZE)
def _system_from_str(system: str) -> str:
    if system.startswith(BILLING_PREFIX):
        system = system.split("\n", 1)[1] if "\n" in system else ""
    return system


@lru_cache(maxsize=_CACHE_SIZE)
def _system_from_json(raw: bytes) -> str:
    texts = []
    for block in orjson.loads(raw):
        if isinstance(block, dict) and block.get("type", "text") == "text":
            text = block.get("text")
            if isinstance(text, str) and text and not text.startswith(BILLING_PREFIX):
                texts.append(text)
    return "\n\n".join(texts)


def system_text(view: RequestView) -> str:
    """The leading system message text: text blocks joined, billing header dropped."""
    system = view.body.get("system")
    if not system:
        return ""
    if isinstance(system, str):
        return _system_from_str(system)
    return _system_from_json(view.system_bytes)


# ---------------------------------------------------------------------------- tools
@lru_cache(maxsize=_CACHE_SIZE)
def _tools_from_json(raw: bytes, only: str | None) -> tuple[dict, ...]:
    out = []
    for tool in orjson.loads(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        if tool.get("type") not in (None, "custom"):
            continue  # server tools (web_search_…) have no local implementation
        if only is not None and tool["name"] != only:
            continue
        schema = tool.get("input_schema")
        params = dict(schema) if isinstance(schema, dict) else {"type": "object"}
        params.setdefault("type", "object")
        params.setdefault("properties", {})  # LM Studio rejects schemas without it
        fn: dict[str, Any] = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        fn["parameters"] = params
        out.append({"type": "function", "function": fn})
    if only is not None and not out:  # named tool missing: offer them all rather than none
        return _tools_from_json(raw, None)
    return tuple(out)


def translate_tools(view: RequestView, only: str | None) -> list[dict]:
    """OpenAI function tools (narrowed to `only` when tool_choice names one)."""
    return list(_tools_from_json(view.tools_bytes, only))
