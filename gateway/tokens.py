"""Input-token estimates with tiktoken, offline and memoised.

Claude Code's `system` and `tools` are byte-identical on every turn of a session and `messages`
only grows, so tokenising the whole 40–80 KB body per request (what claude-code-router does) is
wasted work: system+tools are counted once per distinct value and each message once per distinct
message; a follow-up turn only tokenises what is new.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from turnroute.gateway.protocol.jsonfast import dumps

ENCODING = "cl100k_base"
# Per-message framing overhead, roughly what chat formats add around each message.
PER_MESSAGE = 4


def _offline_encodings() -> None:
    """Point tiktoken at the encoding files LiteLLM ships, so nothing is fetched at run time."""
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("litellm")   # locates the package without importing it
    if spec and spec.submodule_search_locations:
        d = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        if d.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(d)


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[bytes, int] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: bytes) -> int | None:
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key: bytes, value: int) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


class TokenCounter:
    """Counts Anthropic request bodies; safe to share across requests and threads."""

    def __init__(self, *, prefix_cache: int = 64, message_cache: int = 8192):
        _offline_encodings()
        import tiktoken

        self._enc = tiktoken.get_encoding(ENCODING)
        self._prefix = _LRU(prefix_cache)
        self._messages = _LRU(message_cache)

    def count_text(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))

    def _memo(self, cache: _LRU, raw: bytes, render: Any) -> int:
        key = hashlib.blake2b(raw, digest_size=16).digest()
        n = cache.get(key)
        if n is None:
            n = self.count_text(render())
            cache.put(key, n)
        return n

    def count(self, body: dict[str, Any]) -> int:
        system = body.get("system")
        tools = body.get("tools")
        total = 0
        if system or tools:
            raw = dumps([system, tools])
            total += self._memo(self._prefix, raw, lambda: _render_prefix(system, tools))
        for message in body.get("messages") or ():
            raw = dumps(message)
            total += PER_MESSAGE + self._memo(self._messages, raw, lambda m=message: _render(m.get("content")))
        return max(total, 1)


def _render_prefix(system: Any, tools: Any) -> str:
    parts = [_render(system)] if system else []
    for tool in tools or ():
        if isinstance(tool, dict):
            parts.append(f"{tool.get('name', '')}\n{tool.get('description', '')}\n"
                         + dumps(tool.get("input_schema") or {}).decode())
    return "\n".join(parts)


def _render(content: Any) -> str:
    """The text a model would see of a content value (images count as a fixed estimate)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for block in content:
            if not isinstance(block, dict):
                out.append(str(block))
                continue
            kind = block.get("type")
            if kind == "text":
                out.append(block.get("text", ""))
            elif kind == "tool_use":
                out.append(block.get("name", "") + dumps(block.get("input", {})).decode())
            elif kind == "tool_result":
                out.append(_render(block.get("content")))
            elif kind == "thinking":
                out.append(block.get("thinking", ""))
            elif kind == "image":
                out.append("image " * 400)   # a rough figure for a screenshot-sized image
            else:
                out.append(dumps(block).decode())
        return "\n".join(out)
    return str(content)
