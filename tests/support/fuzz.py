"""Malformed request bodies: mutations of real Claude Code bodies and Messages-API-shaped junk.

Used by the property test (driven by Hypothesis through a ``random.Random``) and by the soak bench
(driven by a seeded ``random.Random``), so both send the same kinds of bad input.

A mutation returns ``(body, deep)``: ``deep`` > 0 asks the caller to splice an array nested that
many levels deep where the body holds the string ``DEEP`` (stdlib ``json`` cannot write one).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any, Callable

from tests.fixtures import cc_requests as cc

DEEP = "\u2063deep\u2063"

BUILDERS: tuple[Callable[[], dict], ...] = (
    lambda: cc.main_turn("explain the retry logic"),
    lambda: cc.v2_turn("fix the failing test"),
    lambda: cc.tool_result_turn(loops=2),
    cc.title_request,
    cc.compact_request,
    lambda: cc.haiku_turn("summarise this file"),
    cc.subagent_turn,
    cc.quota_probe,
    lambda: cc.main_turn("look at this", images=True, stream=False),
)

def _deep_schema(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


BAD_SCHEMAS: tuple[Any, ...] = (
    _deep_schema(120),                      # valid, but deep enough to crash a recursive checker
    {"type": "object", "required": True},
    {"type": "object", "properties": ["title"]},
    {"type": ["object", 3]},
    {"type": "objekt"},
    {"type": "object", "properties": {"title": "string"}},
    {"anyOf": []},
    {"items": 5},
    "not a schema",
    None,
    [],
    {"type": "object", "enum": "a"},
    {"type": "object", "maxLength": -1},
)


def junk(rng: random.Random) -> Any:
    """One value of a wrong or extreme kind."""
    choices: list[Callable[[], Any]] = [
        lambda: None, lambda: True, lambda: 0, lambda: -1, lambda: 2 ** 63 - 1, lambda: 1.5e308,
        lambda: "", lambda: "x" * rng.choice((1, 300, 70_000)), lambda: "\u0000\ud7ff\U0001f600",
        lambda: [], lambda: {}, lambda: [None], lambda: {"type": None}, lambda: [[[]]],
        lambda: {"type": rng.choice(("text", "tool_use", "tool_result", "image", "bogus", ["text"]))},
        lambda: [{"type": "text", "text": rng.choice((None, 1, [], "ok"))}],
        lambda: rng.choice(("user", "assistant", "system", ["user"], {"role": "user"}, 7)),
        lambda: rng.choice(BAD_SCHEMAS),
        lambda: DEEP,
    ]
    return rng.choice(choices)()


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``node`` (bounded: bodies hold thousands of values)."""
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*path, i)))
    return out


def _parent(body: Any, path: tuple) -> Any:
    for key in path[:-1]:
        body = body[key]
    return body


def mutate(body: dict, rng: random.Random, *, rounds: int = 1) -> dict:
    """Apply ``rounds`` random mutations to a copy of ``body``: replace, delete, wrap, add a field,
    break the output schema, or nest a deep value inside some object."""
    body = copy.deepcopy(body)
    for _ in range(rounds):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        # Bias towards the structural top: most bugs live in the fields the router reads.
        path = min(rng.sample(paths, min(3, len(paths))), key=len) if rng.random() < 0.5 \
            else rng.choice(paths)
        parent = _parent(body, path)
        op = rng.randrange(6)
        if op == 5:                     # a deep value inside some object (a tool schema, an input, …)
            objects = [p for p in _paths(body) if isinstance(_parent(body, (*p, None)), dict)]
            target = _parent(body, (*rng.choice(objects), None)) if objects else body
            target["nested"] = DEEP
        elif op == 0:
            parent[path[-1]] = junk(rng)
        elif op == 1:
            del parent[path[-1]]
        elif op == 2:
            parent[path[-1]] = rng.choice(([parent[path[-1]]], {"value": parent[path[-1]]}))
        elif op == 3 and isinstance(parent, dict):
            parent[rng.choice(("output_config", "thinking", "metadata", "tool_choice", "stream",
                               "stop_sequences", "temperature", "top_k", "system", "tools"))] = junk(rng)
        else:
            body["output_config"] = {"format": {"type": "json_schema", "schema": rng.choice(BAD_SCHEMAS)}}
    return body


def api_body(rng: random.Random) -> dict:
    """A Messages-API-shaped body whose every field is either plausible or junk."""
    def maybe(good: Any) -> Any:
        return good if rng.random() < 0.7 else junk(rng)
    block = maybe({"type": "text", "text": maybe("hi")})
    body = {"model": maybe("claude-sonnet-4-5"), "max_tokens": maybe(rng.choice((1, 64, 64000))),
            "messages": maybe([{"role": maybe("user"), "content": maybe([block])}])}
    for key, good in (("stream", rng.random() < 0.5), ("system", "be brief"),
                      ("tools", [{"name": "Read", "input_schema": {"type": "object"}}]),
                      ("tool_choice", {"type": "auto"}), ("thinking", {"type": "adaptive"}),
                      ("metadata", {"user_id": cc.user_id(cc.SESSION)}),
                      ("output_config", {"format": {"type": "json_schema", "schema": {"type": "object"}}})):
        if rng.random() < 0.4:
            body[key] = maybe(good)
    return body


def encode(body: Any, rng: random.Random) -> bytes:
    """JSON bytes of ``body``; each ``DEEP`` marker becomes an array nested 60–1,000 levels."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    marker = json.dumps(DEEP, ensure_ascii=False).encode()
    while marker in raw:
        n = rng.choice((60, 255, 300, 500, 990, 1000))
        raw = raw.replace(marker, b"[" * n + b"]" * n, 1)
    return raw


def cc_body(rng: random.Random) -> dict:
    """A recorded-shape Claude Code body with one to three mutations."""
    return mutate(rng.choice(BUILDERS)(), rng, rounds=rng.randint(1, 3))
