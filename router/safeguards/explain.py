"""`turnroute route --explain` on a captured request: who would decide each tool call it holds.

Walks the tool_use blocks of the conversation (the calls Claude Code already asked about, oldest
first) and runs the rules on each with the request's own `classifier_context`, saying which rule
decides or that the call would go to the judge. Pure, like the rules.
"""

from __future__ import annotations

from typing import Any, Mapping

from turnroute.router.safeguards.context import context_of
from turnroute.router.safeguards.settings import SafeguardSettings
from turnroute.router.safeguards.verdicts import DANGEROUS_TOOL_USE, requested

__all__ = ["safeguard_rows", "format_safeguard_rows"]


def safeguard_rows(settings: SafeguardSettings, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    entry = next((e for e in requested(body) if e["type"] == DANGEROUS_TOOL_USE), {})
    ctx = context_of(entry.get("classifier_context"))
    rows = []
    for m in body.get("messages") or []:
        if not isinstance(m, Mapping) or m.get("role") != "assistant" or not isinstance(m.get("content"), list):
            continue
        for b in m["content"]:
            if not isinstance(b, Mapping) or b.get("type") != "tool_use":
                continue
            v = settings.rules.check(str(b.get("name")), b.get("input") or {}, ctx)
            if settings.mode == "off":
                outcome, by = "unsupported", "off"
            elif v.outcome is not None:
                outcome, by = v.outcome, v.rule
            elif settings.mode == "rules+judge":
                outcome, by = "open", f"judge:{settings.model}"
            else:
                outcome, by = "unavailable", "rules-only"
            rows.append({"id": b.get("id"), "tool": b.get("name"), "outcome": outcome, "by": by,
                         "explanation": v.explanation})
    return rows


def format_safeguard_rows(rows: list[dict[str, Any]], settings: SafeguardSettings, *, has_context: bool) -> str:
    lines = [f"Safety check (safeguards.mode: {settings.mode}"
             + (f", judge: {settings.model})" if settings.mode == "rules+judge" else ")")]
    if not has_context:
        lines.append("  (no classifier_context in this request: no working or trusted directories known)")
    if not rows:
        lines.append("  no tool calls in this conversation")
    for r in rows:
        mark = {"flagged": "✗", "not_flagged": "✓", "open": "?"}.get(r["outcome"], "-")
        lines.append(f"  {mark} {r['tool']:<10} {r['outcome']:<12} {r['by']:<30} {r['explanation']}")
    return "\n".join(lines)
