"""The wire shapes of Claude Code's server-side safety check, and who asked for it.

In (request): `safeguards: [{"type": "dangerous_tool_use", "classifier_context": {…}}]`.
Out: `safeguard_results: [{"type": "dangerous_tool_use", "status": {"type": "available",
"tool_uses": {<tool_use id>: {"type": "evaluated", "outcome": "flagged"|"not_flagged",
"explanation": …} | {"type": "unavailable", "reason": …}}}}]`, or `{"status": {"type":
"unsupported"}}` — inside `delta` of `message_delta` when streaming, on the message when not.

What Claude Code 2.1.331 does with each answer: `not_flagged` runs the call; `flagged` blocks it
and shows the explanation; `unavailable` does not run it ("auto mode's check had no usable
answer"); an id missing from `tool_uses` makes it ask the user; `unsupported` (or no results)
stops the turn with "Auto mode can't check actions in this session".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = ["DANGEROUS_TOOL_USE", "UNAVAILABLE_REASONS", "OUTCOMES", "Verdict", "requested", "results",
           "unsupported", "ToolUseCollector", "PendingCall"]

DANGEROUS_TOOL_USE = "dangerous_tool_use"
OUTCOMES = ("flagged", "not_flagged")
UNAVAILABLE_REASONS = ("timeout", "error", "refused", "input_too_long", "truncated")
MAX_EXPLANATION = 400


@dataclass(frozen=True)
class PendingCall:
    id: str
    name: str
    input: Any


@dataclass(frozen=True)
class Verdict:
    """One call's verdict and who gave it (for the log line; `by` never goes on the wire)."""

    id: str
    tool: str
    outcome: str                 # "flagged" | "not_flagged" | "unavailable"
    by: str                      # "builtin:…", "user:…", "claude:…", "judge", "off"
    explanation: str = ""
    reason: str | None = None    # for "unavailable": one of UNAVAILABLE_REASONS
    ms: float = 0.0
    ask: bool = False            # unavailable and answered by leaving the id out: Claude Code asks

    def wire(self) -> dict[str, Any]:
        if self.outcome == "unavailable":
            return {"type": "unavailable", "reason": self.reason or "error"}
        return {"type": "evaluated", "outcome": self.outcome, "explanation": self.explanation[:MAX_EXPLANATION]}

    def log(self) -> dict[str, Any]:
        """What the log line keeps: no tool input and no model text (either may hold secrets)."""
        out = {"tool": self.tool, "id": self.id, "outcome": self.outcome, "by": self.by, "ms": round(self.ms, 3)}
        if self.reason:
            out["reason"] = self.reason
        if self.ask:
            out["asked"] = True
        return out


def requested(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The safeguard entries of a request (empty when it carries none: answer nothing)."""
    sg = body.get("safeguards")
    if not isinstance(sg, list):
        return []
    return [s for s in sg if isinstance(s, Mapping) and isinstance(s.get("type"), str)]


def unsupported(kind: str = DANGEROUS_TOOL_USE) -> dict[str, Any]:
    return {"type": kind, "status": {"type": "unsupported"}}


def results(entries: Iterable[Mapping[str, Any]], verdicts: Iterable[Verdict] | None) -> list[dict[str, Any]]:
    """`safeguard_results` for the requested entries: `dangerous_tool_use` gets the verdicts
    (None: unsupported, e.g. `mode: off`); any other kind is answered unsupported."""
    out: list[dict[str, Any]] = []
    for e in entries:
        kind = e["type"]
        if kind != DANGEROUS_TOOL_USE or verdicts is None:
            out.append(unsupported(kind))
            continue
        tool_uses = {v.id: v.wire() for v in verdicts if not v.ask}
        out.append({"type": kind, "status": {"type": "available", "tool_uses": tool_uses}})
    return out


class ToolUseCollector:
    """Watches Anthropic stream events and keeps each tool_use block's id, name and input."""

    def __init__(self) -> None:
        self._blocks: dict[int, dict[str, Any]] = {}

    def watch(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        for name, data in events:
            if name == "content_block_start":
                block = data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    self._blocks[data.get("index", len(self._blocks))] = {
                        "id": block.get("id"), "name": block.get("name"), "json": [], "input": block.get("input")}
            elif name == "content_block_delta":
                delta = data.get("delta") or {}
                b = self._blocks.get(data.get("index"))
                if b is not None and delta.get("type") == "input_json_delta":
                    b["json"].append(delta.get("partial_json") or "")

    def calls(self) -> list[PendingCall]:
        out = []
        for b in self._blocks.values():
            raw = "".join(b["json"])
            try:
                data = json.loads(raw) if raw else (b["input"] or {})
            except ValueError:
                data = {"_unparsed": raw}
            out.append(PendingCall(str(b["id"]), str(b["name"]), data))
        return out

    @staticmethod
    def from_message(message: Mapping[str, Any]) -> list[PendingCall]:
        return [PendingCall(str(b.get("id")), str(b.get("name")), b.get("input") or {})
                for b in message.get("content") or [] if isinstance(b, Mapping) and b.get("type") == "tool_use"]
