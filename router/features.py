"""Reduce one Claude Code request to the `Features` the rules decide on.

Why this shape: the real client sends ~25 tools with ~90 % of requests, so the router must know
the *turn* (new prompt, tool-loop continuation, title, /compact, count_tokens, subagent,
background probe) and the *intent* of the latest human prompt, not just "has tools".

Runs on every request (bodies of ~80 KB, 24 tools), so it walks only what it needs: the last few
messages for turn/prompt, one cheap pass of type checks over all messages for `user_turn` and
`images`, and never serialises or lowercases the body. Pure: dicts in, a frozen dataclass out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

from turnroute.gateway.protocol.content import (BILLING_PREFIX, json_schema_of, parse_billing_header,
                                                strip_reminders, text_pieces)
from turnroute.router.ids import origin_of
from turnroute.router.intents import DEFAULT_INTENTS, DEFAULT_MARKERS, IntentSets, Markers
from turnroute.router.needs import DEFAULT_NEEDS_SETS, NeedsSets, assess

__all__ = ["TurnKind", "Features", "Markers", "DEFAULT_MARKERS", "extract_features", "is_title_schema",
           "session_from_user_id"]


class TurnKind(str, Enum):
    PROMPT = "prompt"            # last user message carries a new human prompt
    TOOL_RESULT = "tool_result"  # last user message carries tool_result blocks (mid tool loop)
    TITLE = "title"              # title generation: no tools, thinking off, a {"title": string} schema
    COMPACT = "compact"          # /compact: summary instruction appended to last user turn
    COUNT_TOKENS = "count_tokens"  # POST /v1/messages/count_tokens
    SUBAGENT = "subagent"        # billing header / system marks a subagent (Task tool)
    BACKGROUND = "background"    # other side calls (max_tokens 1 quota probes, haiku helpers)
    STRUCTURED = "structured"    # any other output_config.format json_schema (llm --schema, SDKs)


@dataclass(frozen=True)
class Features:
    endpoint: str                # "messages" | "count_tokens"
    turn: TurnKind
    intent: str | None           # "analysis" | "action" | None (from the latest human prompt)
    prompt_text: str             # latest human prompt, system-reminders removed (not logged by default)
    has_tools: bool
    tool_count: int
    tool_names: tuple[str, ...]
    input_tokens: int | None     # estimate, filled by the gateway (tiktoken)
    thinking: bool               # thinking requested and not disabled
    images: bool                 # any image block in messages
    model: str                   # client's model string, verbatim
    session_id: str | None       # X-Claude-Code-Session-Id, else metadata.user_id.session_id
    stream: bool
    json_schema: bool            # output_config.format is a json_schema
    origin: str | None           # backend that minted the last tool_use id (router.ids), if known
    user_turn: int               # number of human prompts so far (identifies the user turn)
    client: dict                 # parsed billing header fields (cc_version, cc_entrypoint, …)
    tool_errors: int = 0         # tool results with is_error since the latest human prompt
    # what the latest prompt needs (router.needs), for prompt turns only
    needs: str | None = None     # "context" | "workspace" | "none" | "change"
    needs_why: str = ""          # the evidence, one line (for route --explain)
    seen_refs: tuple[str, ...] = ()
    unseen_refs: tuple[str, ...] = ()
    pasted: bool = False
    language: str | None = None


_OLD_USER_ID = re.compile(r"_session_([0-9A-Za-z-]+)\s*$")


def is_title_schema(schema: dict) -> bool:
    """Claude Code's title schema: one string property, "title" (what only the title request
    asks for; any other schema is a structured-output request that must be honoured)."""
    props = schema.get("properties")
    return (isinstance(props, dict) and list(props) == ["title"] and isinstance(props["title"], dict)
            and props["title"].get("type") == "string")


def session_from_user_id(user_id: Any) -> str | None:
    """metadata.user_id is a JSON string {"session_id": …} (new) or "user_…_session_<uuid>" (old)."""
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        try:
            doc = json.loads(user_id)
        except ValueError:
            return None
        sid = doc.get("session_id") if isinstance(doc, dict) else None
        return sid if isinstance(sid, str) and sid else None
    m = _OLD_USER_ID.search(user_id)
    return m.group(1) if m else None


def client_marks_subagent(client: Mapping[str, str]) -> bool:
    """A billing-header field whose key or value mentions agent/subagent marks a subagent call."""
    for k, v in client.items():
        if "agent" in k.lower() or "agent" in str(v).lower():
            return True
    return False


def _has_tool_result(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _has_human(text: str) -> bool:
    """True when `text` has non-space characters outside <system-reminder> blocks (no copies of
    the reminders themselves, which can hold whole files)."""
    if "<system-reminder>" not in text:
        return not text.isspace() and bool(text)
    pos = 0
    while True:
        start = text.find("<system-reminder>", pos)
        seg = text[pos:] if start < 0 else text[pos:start]
        if seg and not seg.isspace():
            return True
        if start < 0:
            return False
        end = text.find("</system-reminder>", start)
        if end < 0:
            return False
        pos = end + len("</system-reminder>")


def _human_text(content: Any) -> str:
    """Human-written text of a user message: text blocks minus system-reminders."""
    parts = [strip_reminders(x) for x in text_pieces(content) if _has_human(x)]
    return "\n".join(parts)


def _scan(messages: Sequence[Any]) -> tuple[int, bool, list[str]]:
    """One backward pass over all messages → (user_turn, images, latest human run).

    Only type checks on most blocks; text is searched (never copied) to tell human text from bare
    system-reminders, and copied/stripped only for the latest run of human user messages (newest
    first: with haiku the agent lists arrive as a user message right before the prompt).
    """
    turns = 0
    images = False
    later_human = False
    run: list[str] = []
    run_done = False
    for m in reversed(messages):
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role == "system":
            continue
        human = False
        c = m.get("content")
        if role == "user":
            if isinstance(c, str):
                human = _has_human(c)
            elif isinstance(c, list):
                for b in c:
                    if not isinstance(b, dict):
                        continue
                    t = b.get("type")
                    if t == "text":
                        if not human:
                            human = _has_human(b.get("text") or "")
                    elif t == "image":
                        images = True
                    elif t == "tool_result" and not images:
                        inner = b.get("content")
                        if isinstance(inner, list):
                            images = any(isinstance(i, dict) and i.get("type") == "image" for i in inner)
        elif not images and isinstance(c, list):
            images = any(isinstance(b, dict) and b.get("type") == "image" for b in c)
        if human:
            if not later_human:
                turns += 1            # consecutive human user messages (haiku style) are one turn
            if not run_done:
                run.append(_human_text(c))
        elif run:
            run_done = True
        later_human = human
    return turns, images, run


def _contains(text: str, markers_lc: tuple[str, ...]) -> bool:
    if not markers_lc:
        return False
    low = text.lower()
    return any(m in low for m in markers_lc)


def _last_tool_use_id(messages: Sequence[Any], end: int) -> str | None:
    """id of the last tool_use in the last assistant message before index `end`."""
    for i in range(end - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "assistant":
            c = m.get("content")
            if isinstance(c, list):
                for b in reversed(c):
                    if isinstance(b, dict) and b.get("type") == "tool_use":
                        return b.get("id")
            return None
    return None


def _tool_errors(messages: Sequence[Any]) -> int:
    """Failed tool calls (tool_result is_error) in the current user turn: the model's own count of
    how often it got this turn wrong, read from the request itself — no memory needed."""
    n = 0
    for m in reversed(messages):
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        c = m.get("content")
        if not isinstance(c, list):
            break
        human = False
        for b in c:
            if isinstance(b, dict):
                if b.get("type") == "tool_result" and b.get("is_error") is True:
                    n += 1
                elif b.get("type") == "text" and _has_human(b.get("text") or ""):
                    human = True
        if human:
            break
    return n


def extract_features(body: dict, headers: Mapping[str, str], *, endpoint: str = "messages",
                     intents: IntentSets = DEFAULT_INTENTS, backends: Iterable[str] = (),
                     input_tokens: int | None = None, markers: Markers | None = None,
                     memory: Any = None, needs: NeedsSets = DEFAULT_NEEDS_SETS) -> Features:
    """Features of one request. Header names are looked up lower-case.

    `markers` default to the ones parsed with `intents` (parse_ruleset attaches the YAML's
    `markers:` section there), so `intents=ruleset.intents` carries the whole text vocabulary.
    `memory` (a router.sticky.TurnMemory) is the second line of stickiness: when the last tool_use
    id carries no backend tag, `origin` is taken from the backend remembered for this user turn.
    """
    markers = markers or intents.markers or DEFAULT_MARKERS
    lc = markers._lc
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = []
    tools = body.get("tools")
    tool_names = tuple(t.get("name") or "" for t in tools if isinstance(t, dict)) \
        if isinstance(tools, list) else ()
    system = text_pieces(body.get("system"))
    client: dict = {}
    rest = system
    if system and system[0].startswith(BILLING_PREFIX):
        client = parse_billing_header(system[0])
        rest = system[1:]
    schema = json_schema_of(body)
    json_schema = schema is not None
    th = body.get("thinking")
    thinking = isinstance(th, dict) and th.get("type") in ("enabled", "adaptive")

    # session id: header first, then metadata.user_id
    session_id = headers.get("x-claude-code-session-id") or None
    if session_id is None:
        md = body.get("metadata")
        if isinstance(md, dict):
            session_id = session_from_user_id(md.get("user_id"))

    # last non-system message, and the trailing run of user messages
    last = len(messages) - 1
    while last >= 0 and (not isinstance(messages[last], dict) or messages[last].get("role") == "system"):
        last -= 1
    last_msg = messages[last] if last >= 0 else {}
    last_is_user = last_msg.get("role") == "user"
    tool_result = last_is_user and _has_tool_result(last_msg.get("content"))

    # latest human prompt: the newest run of user messages with human text
    user_turn, images, run = _scan(messages)
    prompt = ""
    intent = intents.classify(run[0]) if run else None    # run[0] is the newest message
    if len(run) > 1:
        prompt = "\n".join(reversed(run))
        intent = intent or intents.classify(prompt)
    elif run:
        prompt = run[0]
    last_text = "\n".join(text_pieces(last_msg.get("content"))) if last_is_user else ""

    origin = None
    if tool_result:
        origin = origin_of(_last_tool_use_id(messages, last), backends)

    max_tokens = body.get("max_tokens")

    # turn kind, most specific first
    if endpoint == "count_tokens":
        turn = TurnKind.COUNT_TOKENS
    elif not tool_names and (is_title_schema(schema) and not thinking if schema is not None
                             else any(_contains(s, lc["title"]) for s in rest)):
        turn = TurnKind.TITLE
    elif max_tokens == 1:
        turn = TurnKind.BACKGROUND
    elif client_marks_subagent(client) or any(
            s.lstrip().startswith(p) for s in rest for p in markers.subagent):
        turn = TurnKind.SUBAGENT
    elif last_text and _contains(last_text, lc["compact"]):
        turn = TurnKind.COMPACT
    elif tool_result:
        turn = TurnKind.TOOL_RESULT
    elif json_schema:
        turn = TurnKind.STRUCTURED
    elif prompt.strip().lower() in lc["background"]:
        turn = TurnKind.BACKGROUND
    else:
        turn = TurnKind.PROMPT

    if turn is TurnKind.COMPACT:
        intent = None       # the summary instruction is the client's text, not the user's request
    extra: dict = {}
    if turn is TurnKind.PROMPT and prompt:
        v = assess(run[0] or prompt, messages, last, sets=needs)   # the newest message: what was asked
        extra = {"needs": v.verdict, "needs_why": v.evidence(), "seen_refs": v.seen,
                 "unseen_refs": v.unseen, "pasted": v.pasted, "language": v.language}
    f = Features(
        endpoint=endpoint, turn=turn, intent=intent, prompt_text=prompt,
        has_tools=bool(tool_names), tool_count=len(tool_names), tool_names=tool_names,
        input_tokens=input_tokens, thinking=thinking, images=images,
        model=body.get("model") if isinstance(body.get("model"), str) else "",
        session_id=session_id, stream=body.get("stream") is True, json_schema=json_schema,
        origin=origin, user_turn=user_turn, client=client,
        tool_errors=_tool_errors(messages) if tool_result else 0, **extra)
    if origin is None and tool_result and memory is not None:
        remembered = memory.recall_features(f)
        if remembered is not None:
            f = replace(f, origin=remembered)
    return f
