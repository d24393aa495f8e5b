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
from pathlib import Path
from typing import Any

from turnroute.gateway.protocol.content import RequestView
from turnroute.gateway.protocol.jsonfast import dumps
from turnroute.router.lru import LRU

ENCODING = "cl100k_base"
# Per-message framing overhead, roughly what chat formats add around each message.
PER_MESSAGE = 4
COUNT_PIECE = 64 * 1024


def _offline_encodings() -> None:
    """Point tiktoken at the encoding files LiteLLM ships, so nothing is fetched at run time."""
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("litellm")   # locates the package without importing it
    if spec and spec.submodule_search_locations:
        d = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        if d.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(d)


class TokenCounter:
    """Counts Anthropic request bodies; safe to share across requests and threads."""

    def __init__(self, *, prefix_cache: int = 64, message_cache: int = 8192):
        _offline_encodings()
        import tiktoken

        self._enc = tiktoken.get_encoding(ENCODING)
        self._prefix: LRU[bytes, int] = LRU(prefix_cache)
        self._messages: LRU[bytes, int] = LRU(message_cache)

    def count_text(self, text: str) -> int:
        # tiktoken encodes without the GIL but returns a Python list of every token: for a 5 MB
        # prompt, 2.5 M ints built while holding the GIL (tens of ms no other request runs). Counted
        # in pieces, each list is small; a cut inside a word costs at most one token per piece.
        if len(text) <= COUNT_PIECE:
            return len(self._enc.encode(text, disallowed_special=()))
        return sum(len(self._enc.encode(text[i:i + COUNT_PIECE], disallowed_special=()))
                   for i in range(0, len(text), COUNT_PIECE))

    def _memo(self, cache: LRU[bytes, int], key: bytes, render: Any) -> int:
        n = cache.get(key)
        if n is None:
            n = self.count_text(render())
            cache.put(key, n)
        return n

    def count(self, request: RequestView | dict[str, Any]) -> int:
        """Estimated input tokens; the system+tools prefix is counted once per distinct digest."""
        view = request if isinstance(request, RequestView) else RequestView.of(request)
        body = view.body
        system = body.get("system")
        tools = body.get("tools")
        total = 0
        if system or tools:
            total += self._memo(self._prefix, view.prefix_digest, lambda: _render_prefix(system, tools))
        for message in body.get("messages") or ():
            key = hashlib.blake2b(dumps(message), digest_size=16).digest()
            total += PER_MESSAGE + self._memo(self._messages, key, lambda m=message: _render(m.get("content")))
        return max(total, 1)


    def count_tools(self, view: RequestView) -> int:
        """Tokens of the tool definitions alone: what a backend that gets no tools is spared."""
        tools = view.body.get("tools")
        if not tools:
            return 0
        key = b"tools" + view.prefix_digest          # the prefix digest covers the tools: no rehash
        return self._memo(self._prefix, key, lambda: _render_prefix(None, tools))


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
