"""Upstream tool-call fragments → whole tool calls, whatever order the server sends them in.

OpenAI-style streams send each tool call in pieces; the pieces of two calls may interleave (legal,
and a bug magnet: LiteLLM's adapter mixes up their arguments), some servers omit `index`, send
`id: null` after the first piece, reuse index 0 for every call, or send arguments as an object.
This assembler keys pieces by index, else by id, else by order, and hands back each call once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson

__all__ = ["ToolCall", "ToolCallAssembler"]


@dataclass
class ToolCall:
    """One upstream tool call being assembled from fragments."""

    upstream_id: str | None
    name: str = ""
    parts: list[str] = field(default_factory=list)
    emitted: bool = False

    @property
    def arguments(self) -> str:
        return "".join(self.parts)


class ToolCallAssembler:
    def __init__(self) -> None:
        self._calls: list[ToolCall] = []
        self._by_index: dict[Any, ToolCall] = {}
        self._by_id: dict[str, ToolCall] = {}

    @property
    def any(self) -> bool:
        """Whether the answer has had any tool call at all."""
        return bool(self._calls)

    def feed(self, fragments: list) -> tuple[int, int]:
        """Add one chunk's `tool_calls` fragments; returns (argument characters, pieces) added."""
        chars = pieces = 0
        count = len(fragments)
        for pos, frag in enumerate(fragments):
            if not isinstance(frag, dict):
                continue
            call = self._call_for(frag, pos, count)
            if call.emitted:
                continue  # a fragment after its block was written: cannot be amended
            fn = frag.get("function") or {}
            name = fn.get("name")
            if name and not call.name:
                call.name = name
            args = fn.get("arguments")
            if args:
                if not isinstance(args, str):  # some servers send the object itself
                    args = orjson.dumps(args).decode()
                call.parts.append(args)
                chars += len(args)
                pieces += 1
        return chars, pieces

    def take_pending(self) -> Iterator[ToolCall]:
        """The calls not handed out yet, in order; each is marked emitted as it is taken."""
        for call in self._calls:
            if not call.emitted:
                call.emitted = True
                yield call

    def _call_for(self, frag: dict, pos: int, count: int) -> ToolCall:
        """Key by index; else by id; else by order: some servers omit `index` or send `id: null` later."""
        index = frag.get("index")
        cid = frag.get("id") or None
        if index is not None:
            call = self._by_index.get(index)
            # Some servers reuse index 0 for every call: a new id means a new call.
            if call is not None and not (cid and call.upstream_id and cid != call.upstream_id):
                if cid and not call.upstream_id:
                    call.upstream_id = cid
                return call
            call = self._new_call(cid)
            self._by_index[index] = call
            return call
        if cid:
            return self._by_id.get(cid) or self._new_call(cid)
        pending = [c for c in self._calls if not c.emitted]
        if count == 1 and pending:
            return pending[-1]
        if pos < len(pending):
            return pending[pos]
        return self._new_call(None)

    def _new_call(self, cid: str | None) -> ToolCall:
        call = ToolCall(upstream_id=cid)
        self._calls.append(call)
        if cid:
            self._by_id[cid] = call
        return call
