"""What `turnroute route --explain` prints: the features a decision saw, and each rule's verdict.

Kept apart from rules.py (which decides) because this is presentation: wording and layout for a
person reading a terminal, changed for readability without touching a decision.
"""

from __future__ import annotations

from turnroute.router.features import Features
from turnroute.router.rules import Decision, RuleSet

__all__ = ["describe_features", "explain"]


def describe_features(f: Features) -> list[tuple[str, str]]:
    """(name, value) rows for `turnroute route --explain`."""
    prompt = f.prompt_text.replace("\n", " ")
    names = ", ".join(f.tool_names[:8]) + (", …" if f.tool_count > 8 else "")
    return [
        ("endpoint", f.endpoint), ("turn", f.turn.value), ("intent", f.intent or "none"),
        ("prompt", (prompt[:77] + "…") if len(prompt) > 78 else prompt or "—"),
        ("tools", f"{f.tool_count} ({names})" if f.tool_count else "0"),
        ("input_tokens", "unknown" if f.input_tokens is None else str(f.input_tokens)),
        ("thinking", str(f.thinking).lower()), ("images", str(f.images).lower()),
        ("model", f.model or "—"), ("session", f.session_id or "—"), ("stream", str(f.stream).lower()),
        ("json_schema", str(f.json_schema).lower()), ("origin", f.origin or "unknown"),
        ("user_turn", str(f.user_turn)),
        ("needs", f.needs_why or "—"), ("language", f.language or "—"),
        ("refs", "; ".join(x for x in (("seen " + ", ".join(f.seen_refs)) if f.seen_refs else "",
                                       ("unseen " + ", ".join(f.unseen_refs)) if f.unseen_refs else "") if x)
         or "—"), ("pasted", str(f.pasted).lower()),
        ("client", "; ".join(f"{k}={v}" for k, v in f.client.items()) or "—"),
    ]


def explain(decision: Decision, ruleset: RuleSet | None = None) -> str:
    """Multi-line text: each rule ✓/✗ with the failed condition, then the verdict."""
    lines = ["rules:"]
    if decision.rule.startswith("override:"):
        lines.append(f"  (not evaluated: {decision.rule})")
    width = max([len(t.name) for t in decision.trace] + [7])
    for t in decision.trace:
        lines.append(f"  {'✓' if t.matched else '✗'} {t.name:<{width}}  "
                     + ("matched" if t.matched else t.failed or ""))
    if ruleset is not None and not decision.rule.startswith("override:"):
        for r in ruleset.rules[len(decision.trace):]:
            lines.append(f"  · {r.name:<{width}}  not reached")
    if decision.rule == "default":
        lines.append(f"  ✓ {'default':<{width}}  no rule matched")
    extra = [f"tools stripped" if decision.strip_tools else "",
             f"model {decision.model}" if decision.model else "",
             f"max_tokens {decision.max_tokens}" if decision.max_tokens else "",
             f"fallback {', '.join(decision.fallback)}" if decision.fallback else ""]
    lines.append(f"verdict: {decision.backend} (rule {decision.rule})"
                 + "".join(f", {e}" for e in extra if e))
    lines.append(f"reason: {decision.reason}")
    return "\n".join(lines)
