"""Parse and repair the JSON arguments of an OpenAI tool call.

Local models often stop mid-call (``max_tokens`` hit) or emit junk. A bad argument string must
never become an HTTP 500: we repair what can be repaired (close open strings/arrays/objects,
drop a dangling key or comma) and otherwise return ``{}`` with a note the caller shows the user.
"""

from __future__ import annotations

import re

import orjson

REPAIRED_NOTE = "repaired truncated arguments"
_MAX_RAW_IN_NOTE = 200

# A key with no value yet, right after "{" or "," (only meaningful inside an object).
_DANGLING_KEY = re.compile(r'(?<=[{,])\s*"(?:[^"\\]|\\.)*"\s*:?\s*$', re.S)
# A literal cut short after ":", "[" or ",": complete it rather than drop it.
_PARTIAL_LITERAL = re.compile(r"(?<=[:\[,])\s*(t|tr|tru|f|fa|fal|fals|n|nu|nul)$")
_LITERALS = {"t": "true", "f": "false", "n": "null"}
_PARTIAL_UNICODE = re.compile(r"\\u[0-9a-fA-F]{0,3}$")


def _invalid_note(raw: str, why: str) -> str:
    shown = raw if len(raw) <= _MAX_RAW_IN_NOTE else raw[:_MAX_RAW_IN_NOTE] + "…"
    return f"invalid tool arguments ({why}); raw arguments were: {shown}"


def _scan(s: str) -> tuple[list[str], bool, bool] | None:
    """Return (closers stack, inside string, dangling backslash), or None on mismatched brackets."""
    stack: list[str] = []
    in_str = esc = False
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == "{":
            stack.append("}")
        elif ch == "[":
            stack.append("]")
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                return None
            stack.pop()
        elif ch == '"':
            in_str = True
    return stack, in_str, esc


def _close(s: str) -> str | None:
    """Close a truncated JSON text; None when the text is not a truncated object."""
    scanned = _scan(s)
    if scanned is None:
        return None
    stack, in_str, esc = scanned
    if not stack:
        return None  # nothing open: not a truncation problem
    if in_str:
        if esc:
            s = s[:-1]
        s = _PARTIAL_UNICODE.sub("", s) + '"'
    for _ in range(16):  # each step removes or completes one trailing fragment
        s = s.rstrip()
        if s.endswith(","):
            s = s[:-1]
            continue
        if stack[-1] == "}":
            m = _DANGLING_KEY.search(s)
            if m:
                s = s[: m.start()]
                continue
        m = _PARTIAL_LITERAL.search(s)
        if m:
            s = s[: m.start(1)] + _LITERALS[m.group(1)[0]]
            continue
        if s and s[-1] in "-+.eE" and len(s) > 1 and (s[-2].isdigit() or s[-2] in "-+.eE"):
            s = s[:-1]
            continue
        if s and s[-1] in "-+" and s[:-1].rstrip()[-1:] in (":", "[", ","):
            s = s[:-1]  # a lone sign: the number never started
            continue
        if s and s[-1] in "{[" and len(stack) > 1 and s[:-1].rstrip().endswith(","):
            s = s[:-1]  # an element that had just begun: drop it rather than invent {}
            stack.pop()
            continue
        if s.endswith(":"):
            s = s[:-1]
            continue
        break
    return s + "".join(reversed(stack))


def _truncate_to_last_comma(s: str) -> str | None:
    """Cut at the last comma outside strings (fallback when the tail is unrecoverable)."""
    in_str = esc = False
    last = -1
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == ",":
            last = i
    return s[:last] if last > 0 else None


def _repair(raw: str) -> dict | None:
    s: str | None = raw
    for _ in range(8):
        if s is None:
            return None
        closed = _close(s)
        if closed is not None:
            try:
                val = orjson.loads(closed)
            except orjson.JSONDecodeError:
                pass
            else:
                return val if isinstance(val, dict) else None
        s = _truncate_to_last_comma(s)
    return None


def parse_tool_args(raw: str | None) -> tuple[dict, str | None]:
    """Return (input object, note). The note is None when the arguments were fine.

    Never raises: invalid input yields ``({}, note)`` so the caller can show the note.
    """
    if raw is None:
        return {}, None
    if not isinstance(raw, str):
        if isinstance(raw, dict):  # some servers send an object instead of a string
            return raw, None
        return {}, _invalid_note(repr(raw), "not a string")
    text = raw.strip()
    if not text:
        return {}, None
    try:
        val = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(val, dict):
            return val, None
        return {}, _invalid_note(text, "not a JSON object")
    if text.startswith("{"):
        repaired = _repair(text)
        if repaired is not None:
            return repaired, REPAIRED_NOTE
    return {}, _invalid_note(text, "not valid JSON")
