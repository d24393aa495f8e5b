"""Replay captured requests or log lines through two rule sets: which decisions would change?

Why: before editing rules a user wants to see, turn by turn, what a change would do to real
traffic. Pure helpers: the CLI (gateway/cli.py) reads the file and prints the rows.

Two kinds of input, mixed freely:
- captured requests: a raw Messages body (has "messages"), or {"body": …, "headers": …,
  "endpoint": …}. Features are extracted with each rule set's own intents/markers.
- log lines (JSONL written by gateway/logs.py): only features are there — turn, intent, tools,
  model, session, est_tokens, endpoint, stream — so a Features is rebuilt from those.
Tool-loop stickiness is simulated per rule set: a continuation follows the backend that *that*
rule set chose for the turn's prompt (so moving prompts to another backend shows up on the whole
loop), falling back to the origin recorded in the ids / log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Collection, Iterable, Mapping

from turnroute.router.features import Features, TurnKind
from turnroute.router.rules import Decision, RuleSet
from turnroute.router.sticky import TurnMemory

__all__ = ["ReplayRow", "parse_capture", "features_from_log", "replay", "replay_inputs", "format_replay",
           "summary_of"]


@dataclass(frozen=True)
class ReplayRow:
    index: int
    summary: str            # short features summary for a table
    features: Features
    old: Decision
    new: Decision
    changed: bool           # backend, tool stripping, model or max_tokens differ


def parse_capture(text: str) -> list[dict]:
    """A JSON array, a single JSON object, or JSON lines → list of dicts (blank lines skipped)."""
    s = text.strip()
    if not s:
        return []
    if s[0] in "[{":
        try:
            doc = json.loads(s)
        except ValueError:
            doc = None
        if isinstance(doc, list):
            return [d for d in doc if isinstance(d, dict)]
        if isinstance(doc, dict):
            return [doc]
    out = []
    for n, line in enumerate(s.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except ValueError as exc:
            hint = " — pass the file's text, not its path" if "\n" not in s and s[0] not in "[{" else ""
            raise ValueError(f"line {n}: not JSON ({exc.msg}){hint}") from None
        if isinstance(d, dict):
            out.append(d)
    return out


def _tool_count(v: Any) -> int:
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, int):
        return max(v, 0)
    if isinstance(v, (list, tuple)):
        return len(v)
    return 0


def features_from_log(rec: Mapping[str, Any], *, user_turn: int = 0, origin: str | None = None) -> Features:
    """Rebuild Features from one log line (fields the log does not keep are neutral)."""
    try:
        turn = TurnKind(rec.get("turn") or "prompt")
    except ValueError:
        turn = TurnKind.PROMPT
    n = _tool_count(rec.get("tools"))
    names = tuple(rec["tools"]) if isinstance(rec.get("tools"), list) else ()
    tokens = rec.get("est_tokens")
    endpoint = rec.get("endpoint") or ("count_tokens" if turn is TurnKind.COUNT_TOKENS else "messages")
    return Features(
        endpoint=endpoint, turn=turn, intent=rec.get("intent"), needs=rec.get("needs"), prompt_text="",
        has_tools=n > 0,
        tool_count=n, tool_names=names, input_tokens=tokens if isinstance(tokens, int) else None,
        thinking=bool(rec.get("thinking")), images=bool(rec.get("images")), model=rec.get("model") or "",
        session_id=rec.get("session"), stream=bool(rec.get("stream")),
        json_schema=turn in (TurnKind.TITLE, TurnKind.STRUCTURED), origin=origin, user_turn=user_turn, client={})


def summary_of(f: Features) -> str:
    kind = f.turn.value + (f"/{f.intent}" if f.intent else "")
    sid = (f.session_id or "-")[:8]
    return f"{kind} tools={f.tool_count} model={f.model or '-'} session={sid} turn#{f.user_turn}"


def _is_log(item: Mapping[str, Any]) -> bool:
    return "messages" not in item and "body" not in item and "turn" in item


class _Lane:
    """One rule set's simulated routing state during a replay."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.memory = TurnMemory(max_sessions=1 << 16)

    def decide(self, f: Features, override: tuple[str, str] | None, *, prefer_memory: bool) -> Decision:
        if f.turn in (TurnKind.TOOL_RESULT, TurnKind.SUBAGENT):
            remembered = self.memory.recall_features(f)
            if remembered is not None and (prefer_memory or f.origin is None):
                f = replace(f, origin=remembered)
        d = self.rules.decide(f, override=override)
        self.memory.remember_features(f, d.backend)
        return d


def _changed(f: Features, a: Decision, b: Decision) -> bool:
    """Differences that change what is sent: stripping tools from a tool-free request is no change."""
    def key(d: Decision) -> tuple:
        return d.backend, d.strip_tools and f.has_tools, d.model, d.max_tokens
    return key(a) != key(b)


def replay(items: Iterable[Mapping[str, Any]], old: RuleSet, new: RuleSet) -> list[ReplayRow]:
    """Per item: features summary, old decision, new decision, changed?"""
    lanes = (_Lane(old), _Lane(new))
    turns: dict[str | None, int] = {}          # log lines: user_turn counter per session
    rows: list[ReplayRow] = []
    for index, item in enumerate(items):
        if _is_log(item):
            sid = item.get("session")
            if item.get("turn") == TurnKind.PROMPT.value:
                turns[sid] = turns.get(sid, 0) + 1
            f_old = f_new = features_from_log(item, user_turn=turns.get(sid, 0))
            override = None
        else:
            body = item.get("body") if isinstance(item.get("body"), dict) else item
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()} \
                if "body" in item else {}
            endpoint = item.get("endpoint") or "messages" if "body" in item else "messages"
            f_old = old.features(body, headers, endpoint=endpoint)
            f_new = new.features(body, headers, endpoint=endpoint)
            hdr = headers.get("x-turnroute-route")
            override = ("header", hdr) if hdr else None
        d_old = lanes[0].decide(f_old, override, prefer_memory=False)
        d_new = lanes[1].decide(f_new, override, prefer_memory=True)
        rows.append(ReplayRow(index=index, summary=summary_of(f_new), features=f_new, old=d_old,
                              new=d_new, changed=_changed(f_new, d_old, d_new)))
    return rows


def replay_inputs(source: str | Iterable[Mapping[str, Any]], old: RuleSet, new: RuleSet, *,
                  backends: Collection[str] | None = None) -> list[ReplayRow]:
    """Replay the *text* of a log or capture file (JSON object, JSON array or JSON lines), or
    already-parsed items (e.g. one per captured file). The caller reads files: router does no I/O.
    `backends` is accepted for symmetry with the CLI; each RuleSet knows its own."""
    items = parse_capture(source) if isinstance(source, str) else list(source)
    return replay(items, old, new)


def _verdict(d: Decision) -> str:
    extra = " [no tools]" if d.strip_tools else ""
    return f"{d.backend}{extra} ({d.rule})"


def format_replay(rows: Iterable[ReplayRow], *, changed_only: bool = False) -> str:
    """A plain-text table: one line per turn, then a count of changed decisions."""
    rows = list(rows)
    shown = [r for r in rows if r.changed or not changed_only]
    w = max([len(r.summary) for r in shown] + [8])
    v = max([len(_verdict(d)) for r in shown for d in (r.old, r.new)] + [3])
    out = [f"{'#':>4}  {'request':<{w}}  {'old':<{v}}  {'new':<{v}}"]
    for r in shown:
        out.append(f"{r.index:>4}  {r.summary:<{w}}  {_verdict(r.old):<{v}}  {_verdict(r.new):<{v}}"
                   + ("  CHANGED" if r.changed else ""))
    n = sum(r.changed for r in rows)
    out.append(f"{n} of {len(rows)} decisions would change")
    return "\n".join(out)
