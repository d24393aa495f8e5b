"""`when:` condition trees: parsed and validated once, evaluated per request.

Why a separate module: rules.py stays about rule order, overrides and decisions; this file is the
vocabulary of conditions. Each condition is compiled to a closure that returns None when it holds
or a short human sentence saying why not ("turn is tool_result, wanted prompt") — that sentence is
what `turnroute route --explain` prints, so it must read well.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Callable

from turnroute.router.features import Features, TurnKind, client_marks_subagent
from turnroute.router.intents import INTENTS
from turnroute.router.schema import Ctx, suggest
from turnroute.router.needs import NEEDS
from turnroute.router.language import LANGS

__all__ = ["Condition", "Ctx", "parse_condition", "TURN_NAMES", "CONDITION_KEYS"]

TURN_NAMES = tuple(t.value for t in TurnKind)
ENDPOINTS = ("messages", "count_tokens")
CONDITION_KEYS = ("turn", "intent", "has_tools", "tool_count", "tool", "tokens", "thinking", "images",
                  "model", "session", "subagent", "origin", "json_schema", "endpoint", "stream",
                  "tool_errors", "needs", "unseen_refs", "pasted", "language", "all", "any", "not")

Check = Callable[[Features], "str | None"]


@dataclass(frozen=True)
class Condition:
    """A compiled condition: `check(f)` → None when it holds, else why it failed."""

    text: str
    check: Check


def _names(value: Any, ctx: Ctx, node: Any, key: str, path: str, allowed: tuple[str, ...] | None,
           what: str, nullable: bool = False) -> tuple:
    """A name or list of names; validated against `allowed` when given."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise ctx.error(node, key, path, "must not be an empty list")
    out = []
    for i, v in enumerate(items):
        where = value if isinstance(value, list) else node
        k = i if isinstance(value, list) else key
        if v is None and nullable:
            out.append(None)
            continue
        if not isinstance(v, str) or not v:
            raise ctx.error(where, k, path, f"{what} must be a string, got {v!r}")
        if allowed is not None and v not in allowed:
            raise ctx.error(where, k, path, f"unknown {what} {v!r} (expected one of "
                                            f"{', '.join(allowed)}){suggest(v, allowed)}")
        out.append(v)
    return tuple(out)


def _want(values: tuple) -> str:
    shown = ["none" if v is None else str(v) for v in values]
    return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)


def _bool_cond(key: str, value: Any, getter: Callable[[Features], bool], yes: str, no: str,
               ctx: Ctx, node: Any, path: str) -> Condition:
    if not isinstance(value, bool):
        raise ctx.error(node, key, path, f"must be true or false, got {value!r}")
    return Condition(f"{key}: {str(value).lower()}",
                     lambda f: None if getter(f) is value else (no if value else yes))


def _int(v: Any, ctx: Ctx, node: Any, key: str, path: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ctx.error(node, key, path, f"must be a non-negative integer, got {v!r}")
    return v


def _range(value: Any, ctx: Ctx, node: Any, key: str, path: str, lo: str, hi: str) -> tuple[int | None, int | None]:
    if isinstance(value, dict):
        for k in value:
            if k not in (lo, hi):
                raise ctx.error(value, k, f"{path}.{k}", f"unknown key (expected {lo} or {hi}){suggest(k, (lo, hi))}")
        if not value:
            raise ctx.error(node, key, path, f"needs {lo} and/or {hi}")
        a = _int(value[lo], ctx, value, lo, f"{path}.{lo}") if lo in value else None
        b = _int(value[hi], ctx, value, hi, f"{path}.{hi}") if hi in value else None
        return a, b
    raise ctx.error(node, key, path, f"must be a mapping {{{lo}: N, {hi}: N}}, got {value!r}")


def _count_cond(key: str, value: Any, ctx: Ctx, node: Any, path: str) -> Condition:
    """`tool_count: 3` (exactly) or `{min, max}`; `tool_errors: 2` means at least two failed tool
    calls in this user turn (a model that keeps failing a turn can be sent somewhere stronger)."""
    exact = isinstance(value, int) and not isinstance(value, bool)
    if exact:
        n = _int(value, ctx, node, key, path)
        lo, hi = (n, None) if key == "tool_errors" else (n, n)
    else:
        lo, hi = _range(value, ctx, node, key, path, "min", "max")
    want = f"{lo}" if lo == hi else " and ".join(
        x for x in (None if lo is None else f"≥ {lo}", None if hi is None else f"≤ {hi}") if x)
    text = f"{key}: {value}" if exact else f"{key} {want}"

    def check(f: Features) -> str | None:
        n = getattr(f, key)
        if (lo is None or n >= lo) and (hi is None or n <= hi):
            return None
        return f"{key} is {n}, wanted {want}"
    return Condition(text, check)


def _globs(values: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(v.lower()) for v in values))


def _leaf(key: str, value: Any, ctx: Ctx, node: Any, path: str) -> Condition:
    if key == "turn":
        want = _names(value, ctx, node, key, path, TURN_NAMES, "turn kind")
        s = frozenset(want)
        return Condition(f"turn: {_want(want)}", lambda f: None if f.turn.value in s
                         else f"turn is {f.turn.value}, wanted {_want(want)}")
    if key == "intent":
        want = _names(value, ctx, node, key, path, INTENTS, "intent", nullable=True)
        s = frozenset(want)
        return Condition(f"intent: {_want(want)}", lambda f: None if f.intent in s
                         else f"intent is {f.intent or 'none'}, wanted {_want(want)}")
    if key == "needs":
        want = _names(value, ctx, node, key, path, NEEDS, "needs verdict", nullable=True)
        s = frozenset(want)
        return Condition(f"needs: {_want(want)}", lambda f: None if f.needs in s else
                         f"needs {f.needs or 'none (not a prompt)'}, wanted {_want(want)}"
                         + (f" — {f.needs_why}" if f.needs_why else ""))
    if key == "language":
        want = _names(value, ctx, node, key, path, LANGS, "language")
        s = frozenset(want)
        return Condition(f"language: {_want(want)}", lambda f: None if f.language in s
                         else f"language is {f.language or 'unknown'}, wanted {_want(want)}")
    if key == "unseen_refs":
        return _bool_cond(key, value, lambda f: bool(f.unseen_refs),
                          "the prompt refers to something not in the conversation",
                          "everything the prompt refers to is in the conversation", ctx, node, path)
    if key == "pasted":
        return _bool_cond(key, value, lambda f: f.pasted, "the prompt has pasted material",
                          "the prompt has no pasted material", ctx, node, path)
    if key == "endpoint":
        want = _names(value, ctx, node, key, path, ENDPOINTS, "endpoint")
        return Condition(f"endpoint: {_want(want)}", lambda f: None if f.endpoint in want
                         else f"endpoint is {f.endpoint}, wanted {_want(want)}")
    if key == "has_tools":
        return _bool_cond(key, value, lambda f: f.has_tools, "request has tools", "request has no tools",
                          ctx, node, path)
    if key == "thinking":
        return _bool_cond(key, value, lambda f: f.thinking, "thinking is on", "thinking is off", ctx, node, path)
    if key == "images":
        return _bool_cond(key, value, lambda f: f.images, "request has images", "request has no images",
                          ctx, node, path)
    if key == "json_schema":
        return _bool_cond(key, value, lambda f: f.json_schema, "output format is a json_schema",
                          "output format is not a json_schema", ctx, node, path)
    if key == "stream":
        return _bool_cond(key, value, lambda f: f.stream, "request streams", "request does not stream",
                          ctx, node, path)
    if key == "subagent":
        return _bool_cond(key, value, lambda f: f.turn is TurnKind.SUBAGENT or client_marks_subagent(f.client),
                          "request is a subagent call", "request is not a subagent call", ctx, node, path)
    if key in ("tool_count", "tool_errors"):
        return _count_cond(key, value, ctx, node, path)
    if key == "tool":
        want = _names(value, ctx, node, key, path, None, "tool name")
        s = frozenset(want)
        return Condition(f"tool: {_want(want)}", lambda f: None if s.intersection(f.tool_names)
                         else f"no tool named {_want(want)}")
    if key == "tokens":
        above, below = _range(value, ctx, node, key, path, "above", "below")

        def tokens(f: Features) -> str | None:
            n = f.input_tokens
            if n is None:
                return "input tokens unknown"
            if above is not None and n <= above:
                return f"input tokens {n} not above {above}"
            if below is not None and n >= below:
                return f"input tokens {n} not below {below}"
            return None
        return Condition(f"tokens: {value!r}", tokens)
    if key in ("model", "session"):
        want = _names(value, ctx, node, key, path, None, key)
        rx = _globs(want)
        attr = "model" if key == "model" else "session_id"
        return Condition(f"{key}: {_want(want)}", lambda f: None if rx.match((getattr(f, attr) or "").lower())
                         else f"{key} {getattr(f, attr) or 'none'!r} does not match {_want(want)}")
    if key == "origin":
        allowed = ("known", "unknown") + tuple(sorted(ctx.backends))
        want = _names(value, ctx, node, key, path, allowed, "origin")
        s = frozenset(want)

        def origin(f: Features) -> str | None:
            o = f.origin
            if o in s or ("known" in s and o is not None) or ("unknown" in s and o is None):
                return None
            return f"origin is {o or 'unknown'}, wanted {_want(want)}"
        return Condition(f"origin: {_want(want)}", origin)
    raise ctx.error(node, key, f"{path}", f"unknown condition (expected one of {', '.join(CONDITION_KEYS)})"
                                          f"{suggest(key, CONDITION_KEYS)}")


def parse_condition(node: Any, ctx: Ctx, path: str) -> Condition:
    """A `when:` mapping → Condition. Several keys in one mapping must all hold."""
    if not isinstance(node, dict):
        raise ctx.error(node, None, path, f"must be a mapping of conditions, got {node!r}")
    parts: list[Condition] = []
    for key, value in node.items():
        sub = f"{path}.{key}"
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ctx.error(node, key, sub, "must be a non-empty list of condition mappings")
            kids = [parse_condition(v, ctx, f"{sub}[{i}]") if isinstance(v, dict) else
                    _raise(ctx.error(value, i, f"{sub}[{i}]", f"must be a mapping, got {v!r}"))
                    for i, v in enumerate(value)]
            parts.append(_all(kids) if key == "all" else _any(kids))
        elif key == "not":
            parts.append(_not(parse_condition(value, ctx, sub)))
        else:
            parts.append(_leaf(str(key), value, ctx, node, sub))
    return _all(parts)


def _raise(exc: Exception) -> Any:
    raise exc


def _all(kids: list[Condition]) -> Condition:
    if len(kids) == 1:
        return kids[0]

    def check(f: Features) -> str | None:
        for k in kids:
            why = k.check(f)
            if why is not None:
                return why
        return None
    return Condition("all of (" + "; ".join(k.text for k in kids) + ")" if kids else "always", check)


def _any(kids: list[Condition]) -> Condition:
    def check(f: Features) -> str | None:
        whys = []
        for k in kids:
            why = k.check(f)
            if why is None:
                return None
            whys.append(why)
        return "none of: " + "; ".join(whys)
    return Condition("any of (" + "; ".join(k.text for k in kids) + ")", check)


def _not(kid: Condition) -> Condition:
    return Condition(f"not ({kid.text})",
                     lambda f: f"not ({kid.text}) — but it holds" if kid.check(f) is None else None)
