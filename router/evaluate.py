"""`turnroute eval`: build Claude Code-shaped turns from a labelled corpus and score the router.

Why the router itself is scored (not a stand-in): each corpus row becomes a full request body —
date system-reminder, the client's tools, earlier Read/Grep/Edit/Bash calls with line-numbered
tool results, the assistant's answers — and goes through `RuleSet.features` and `RuleSet.decide`
exactly as a live request would. A turn is *starved* when it needs tools (workspace or change)
but the decision sends it without them. Pure: the caller loads the corpus document.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from turnroute.router.language import LANGS

__all__ = ["Turn", "Outcome", "LANGS", "turns_of", "build_body", "numbered", "score", "report", "summary"]

LABELS = ("context", "workspace", "none", "change")
TOOL_NAMES = ("Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "WebFetch", "TodoWrite", "WebSearch")
_DATE = ("<system-reminder>\nAs you answer the user's questions, you can use the following context:\n"
         "# currentDate\nToday's date is 2026-11-24.\n</system-reminder>")
_TODO = "<system-reminder>\nThe TodoWrite tool hasn't been used recently.\n</system-reminder>"


@dataclass(frozen=True)
class Turn:
    id: str                 # "<row id>-<lang>"
    lang: str
    label: str
    act: str
    heldout: bool
    prompt: str
    body: dict


@dataclass(frozen=True)
class Outcome:
    turn: Turn
    needs: str | None
    backend: str
    rule: str
    tools: bool             # the decision leaves tools on (and the request has them)
    evidence: str

    @property
    def starved(self) -> bool:
        return self.turn.label in ("workspace", "change") and not self.tools

    @property
    def right(self) -> bool:
        return self.needs == self.turn.label


def numbered(text: str) -> str:
    """A file as Claude Code's Read tool returns it (line numbers, tab)."""
    return "\n".join(f"{i:>6}\t{line}" for i, line in enumerate(text.splitlines(), 1))


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"toolu_01eval{self.n:020d}"


def _tool(messages: list, ids: _Ids, name: str, tool_input: dict, result: str) -> None:
    tid = ids()
    messages.append({"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": name,
                                                        "input": tool_input}]})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": result},
                                                 {"type": "text", "text": _TODO}]})


def _steps(steps: Sequence[str], files: Mapping[str, str]) -> list[dict]:
    """Context steps (see the corpus header) → messages, shaped like the client's."""
    messages: list[dict] = []
    ids = _Ids()
    for step in steps:
        kind, _, arg = step.partition(": ")
        parts = [p.strip() for p in arg.split(" => ")]
        if kind == "user":
            content = [{"type": "text", "text": arg}]
            if not messages:
                content.insert(0, {"type": "text", "text": _DATE})
            messages.append({"role": "user", "content": content})
        elif kind == "say":
            messages.append({"role": "assistant", "content": [{"type": "text", "text": arg}]})
        elif kind == "read":
            path = arg if arg.startswith("/") else f"/repo/{arg}"
            _tool(messages, ids, "Read", {"file_path": path}, numbered(files[arg]))
        elif kind == "grep":
            _tool(messages, ids, "Grep", {"pattern": parts[0], "output_mode": "content", "-n": True}, parts[1])
        elif kind == "edit":
            path, old, new = parts
            _tool(messages, ids, "Edit", {"file_path": f"/repo/{path}", "old_string": old, "new_string": new},
                  f"The file /repo/{path} has been updated.")
        elif kind == "bash":
            _tool(messages, ids, "Bash", {"command": parts[0], "description": "Run a command"}, parts[1])
        else:
            raise ValueError(f"unknown context step {step!r}")
    return messages


def build_body(prompt: str, steps: Sequence[str], files: Mapping[str, str]) -> dict:
    """A main-turn request body: the context's messages, then the prompt as the newest user turn."""
    messages = _steps(steps, files)
    content = [{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]
    if not messages:
        content.insert(0, {"type": "text", "text": _DATE})
    messages.append({"role": "user", "content": content})
    return {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 64000, "stream": True,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.a3f; cc_entrypoint=cli;"},
                   {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}],
        "messages": messages,
        "tools": [{"name": n, "description": n, "input_schema": {"type": "object"}} for n in TOOL_NAMES],
        "thinking": {"type": "adaptive"},
    }


def turns_of(doc: Mapping[str, Any], *, langs: Iterable[str] = LANGS) -> list[Turn]:
    """Every (row, language) of a corpus document as a Turn with its request body."""
    files = doc.get("files") or {}
    contexts = doc.get("contexts") or {}
    out = []
    for row in doc.get("rows") or []:
        steps = contexts[row["ctx"]]
        for lang in langs:
            if lang in row:
                prompt = str(row[lang])
                out.append(Turn(f"{row['id']}-{lang}", lang, row["label"], row["act"], bool(row.get("heldout")),
                                prompt, build_body(prompt, steps, files)))
    return out


def score(turns: Iterable[Turn], ruleset: Any) -> list[Outcome]:
    """Route each turn with `ruleset` (a router.rules.RuleSet)."""
    out = []
    for t in turns:
        f = ruleset.features(t.body, {})
        d = ruleset.decide(f)
        tools = f.has_tools and not d.strip_tools
        out.append(Outcome(t, f.needs, d.backend, d.rule, tools, f.needs_why))
    return out


def _pct(right: int, n: int) -> str:
    return f"{100.0 * right / n:5.1f} % ({right}/{n})" if n else "   —"


def summary(outcomes: Sequence[Outcome]) -> dict:
    """Accuracy overall, per label, per language; the confusion matrix; starved turns."""
    by_label: dict = defaultdict(lambda: [0, 0])
    by_lang: dict = defaultdict(lambda: [0, 0])
    confusion: Counter = Counter()
    for o in outcomes:
        for d, k in ((by_label, o.turn.label), (by_lang, o.turn.lang)):
            d[k][0] += o.right
            d[k][1] += 1
        confusion[(o.turn.label, o.needs or "—")] += 1
    right = sum(o.right for o in outcomes)
    return {"n": len(outcomes), "right": right, "accuracy": right / len(outcomes) if outcomes else 0.0,
            "by_label": {k: tuple(v) for k, v in by_label.items()},
            "by_lang": {k: tuple(v) for k, v in by_lang.items()},
            "confusion": dict(confusion), "starved": [o for o in outcomes if o.starved],
            "wrong": [o for o in outcomes if not o.right]}


def report(outcomes: Sequence[Outcome], *, title: str, show_wrong: bool = False) -> str:
    """The printed table: per label, per language, confusion matrix, every starved turn."""
    s = summary(outcomes)
    lines = [f"{title}: {_pct(s['right'], s['n'])}", "  per label:"]
    lines += [f"    {k:<10} {_pct(*s['by_label'][k])}" for k in LABELS if k in s["by_label"]]
    lines.append("  per language:")
    lines += [f"    {k:<10} {_pct(*s['by_lang'][k])}" for k in LANGS if k in s["by_lang"]]
    cols = LABELS + ("—",)
    lines.append("  confusion (rows: label, columns: verdict):")
    lines.append("    " + " " * 10 + "".join(f"{c:>10}" for c in cols))
    for k in LABELS:
        lines.append(f"    {k:<10}" + "".join(f"{s['confusion'].get((k, c), 0):>10}" for c in cols))
    lines.append(f"  starved (needs tools, routed without): {len(s['starved'])}")
    for o in s["starved"]:
        lines.append(f"    {o.turn.id} [{o.turn.label} → {o.needs}, {o.backend}, rule {o.rule}] "
                     f"{o.turn.prompt.splitlines()[0][:70]}")
    if show_wrong:
        lines.append(f"  wrong verdicts: {len(s['wrong'])}")
        for o in s["wrong"]:
            lines.append(f"    {o.turn.id} [{o.turn.label} → {o.needs}] {o.turn.prompt.splitlines()[0][:60]}"
                         f" | {o.evidence}")
    return "\n".join(lines)
