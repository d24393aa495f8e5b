"""Messages API → Messages API: the few edits a native backend needs, and a watching SSE relay.

Why: LM Studio, Ollama, llama.cpp, vLLM and the cloud answer `POST /v1/messages` themselves, so
the request goes out nearly as the client sent it and the events come back as bytes, untouched
except where the gateway must change something: the model name the client sees, tool_use ids
(tagged with the backend for stateless stickiness) and a stop_reason the gateway's own output
clamp caused. Everything else (text deltas, the bulk of a stream) is passed on as the upstream's
own bytes, never parsed. Pure: dicts and bytes in, dicts and bytes out.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import orjson

from .content import BILLING_PREFIX
from .sse import encode_event
from .stream import THINKING_SIGNATURE

__all__ = ["native_request", "drop_path", "wrap_safeguard_ids", "SSEEventSplitter", "PassThrough", "rewrite_message",
           "usage_counts"]

IdMap = Callable[[str], "str | None"]
CLAMP_NOTE = "output cut at the backend's max_output_tokens; reported to the client as end_turn"


def drop_path(body: dict[str, Any], path: str) -> dict[str, Any]:
    """`body` without the dotted `path` (copy-on-write: the client's dicts are never mutated)."""
    head, _, rest = path.partition(".")
    if head not in body:
        return body
    if rest:
        inner = body[head]
        if not isinstance(inner, dict):
            return body
        new_inner = drop_path(inner, rest)
        if new_inner is inner:
            return body
        out = dict(body)
        out[head] = new_inner
        return out
    out = dict(body)
    del out[head]
    return out


def _unwrap_blocks(content: Any, unwrap: IdMap) -> Any:
    """Blocks with wrapped tool ids restored, and the gateway's own thinking blocks removed (their
    signature is ours, made for a translated backend's reasoning: no Messages server can verify it)."""
    if not isinstance(content, list):
        return content
    changed = None
    for i, b in enumerate(content):
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "thinking" and b.get("signature") == THINKING_SIGNATURE:
            if changed is None:
                changed = list(content)
            changed[i] = None
            continue
        key = "id" if kind == "tool_use" else "tool_use_id" if kind == "tool_result" else None
        original = unwrap(b.get(key)) if key else None
        if original is not None:
            if changed is None:
                changed = list(content)
            changed[i] = {**b, key: original}
    return content if changed is None else [b for b in changed if b is not None]


def native_request(body: dict[str, Any], *, model: str, drop: Iterable[str] = (), unwrap: IdMap,
                   max_tokens: int | None = None, no_tool_calls: bool = False) -> dict[str, Any]:
    """The body for a native backend: the client's, with exactly these changes.

    - `model` replaced by the backend's name for it;
    - the billing-header system block dropped (its hash differs per session, so it would defeat
      every prefix cache);
    - each dotted path in `drop` removed (fields that server rejects, declared in the YAML);
    - tool ids the gateway wrapped restored to the server's own (`unwrap` decides which: only
      this server's, so every server sees ids in the form it made or accepts);
    - thinking blocks the gateway signed itself removed (see `_unwrap_blocks`);
    - `max_tokens` lowered to the backend's limit, when given;
    - `no_tool_calls`: tool_choice none — keeps the tools (and so the cached prefix) but forbids
      calls, the native form of "strip tools".
    Key order is kept; the client's dicts are not mutated.
    """
    out = dict(body)
    out["model"] = model
    system = out.get("system")
    if isinstance(system, list) and system and isinstance(system[0], dict) \
            and str(system[0].get("text", "")).startswith(BILLING_PREFIX):
        rest = system[1:]
        if rest:
            out["system"] = rest
        else:
            del out["system"]
    messages = out.get("messages")
    if isinstance(messages, list):
        new = None
        for i, m in enumerate(messages):
            if isinstance(m, dict):
                c = _unwrap_blocks(m.get("content"), unwrap)
                if c is not m.get("content"):
                    if new is None:
                        new = list(messages)
                    new[i] = {**m, "content": c}
        if new is not None:
            out["messages"] = new
    for path in drop:
        out = drop_path(out, path)
    asked = out.get("max_tokens")
    if max_tokens and isinstance(asked, int) and asked > max_tokens:
        out["max_tokens"] = max_tokens
    if no_tool_calls and out.get("tools"):
        out["tool_choice"] = {"type": "none"}
    return out


def usage_counts(usage: Any) -> dict[str, int | None]:
    """Anthropic usage → the log's columns. prompt = uncached + cache read + cache write."""
    if not isinstance(usage, dict):
        return {}
    out: dict[str, int | None] = {}
    parts = [usage.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    if isinstance(parts[0], int):
        out["prompt_tokens"] = sum(p for p in parts if isinstance(p, int))
    if isinstance(parts[1], int):
        out["cached_tokens"] = parts[1]
    if isinstance(parts[2], int):
        out["cache_creation_tokens"] = parts[2]
    if isinstance(usage.get("output_tokens"), int):
        out["completion_tokens"] = usage["output_tokens"]
    return out


class SSEEventSplitter:
    """Upstream bytes → complete events as (name, raw bytes of the event incl. its blank line).

    The payload is not parsed here: most events are text deltas the relay passes on untouched.
    `max_event` bounds the buffer (a server that never ends an event cannot grow it forever).
    """

    __slots__ = ("_buf", "max_event")

    def __init__(self, max_event: int = 16 * 1024 * 1024):
        self._buf = b""
        self.max_event = max_event

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        out = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            block = buf[start:end + 2]
            start = end + 2
            name = _event_name(block)
            if name is not None:
                out.append((name, block))
        self._buf = buf[start:]
        if len(self._buf) > self.max_event:
            raise ValueError(f"an upstream event exceeded {self.max_event} bytes")
        return out

    def flush(self) -> list[tuple[str, bytes]]:
        """A last event without its blank line (a server that closes right after it)."""
        rest, self._buf = self._buf, b""
        name = _event_name(rest + b"\n\n") if rest.strip() else None
        return [(name, rest + b"\n\n")] if name is not None else []


def _event_name(block: bytes) -> str | None:
    """The event's name (`event:` line, else the data's "type"); None for comments-only blocks."""
    start = 0 if block.startswith(b"event:") else block.find(b"\nevent:") + 1   # after id:/comment lines
    if start or block.startswith(b"event:"):
        eol = block.find(b"\n", start)
        return block[start + 6:eol].strip().decode("utf-8", "replace")
    data = event_data(block)
    return data.get("type") if isinstance(data, dict) and isinstance(data.get("type"), str) else None


def event_data(block: bytes) -> Any:
    """The parsed `data:` of one event block (None when absent or not JSON)."""
    lines = [ln[5:].lstrip(b" ") for ln in block.split(b"\n") if ln.startswith(b"data:")]
    if not lines:
        return None
    try:
        return orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return None


def wrap_safeguard_ids(results: Any, wrap: Callable[[str], str]) -> Any:
    """The server's verdicts of Claude Code's safety check (`safeguard_results`, one per tool_use
    id) keyed by the ids the client is shown: the same wrap as the tool_use blocks, or the client
    finds no verdict for its calls."""
    if not isinstance(results, list):
        return results
    out = []
    for r in results:
        status = r.get("status") if isinstance(r, dict) else None
        uses = status.get("tool_uses") if isinstance(status, dict) else None
        if isinstance(uses, dict):
            r = {**r, "status": {**status, "tool_uses": {wrap(k) if isinstance(k, str) else k: v
                                                          for k, v in uses.items()}}}
        out.append(r)
    return out


class PassThrough:
    """Watches a native stream: usage, stop_reason, tool ids; edits only the events it must.

    feed(name, raw) → the bytes to send on. Deltas go out as received; message_start (model name,
    usage), tool_use starts (id wrapped) and message_delta (usage; max_tokens → end_turn when the
    gateway's clamp caused it, as for translated backends) are parsed and re-encoded when changed.
    """

    def __init__(self, *, model: str, wrap: Callable[[str], str], clamped: bool = False):
        self.model = model
        self.wrap = wrap
        self.clamped = clamped
        self.usage: dict[str, int | None] = {}
        self.stop_reason: str | None = None
        self.truncated = False
        self.got_content = False
        self.finished = False
        self.error: dict[str, Any] | None = None
        self.tool_ids: list[str] = []
        self.notes: list[str] = []

    def feed(self, name: str, raw: bytes) -> bytes:
        if name == "content_block_delta":
            self.got_content = True
            return raw
        if name == "message_start":
            data = event_data(raw)
            msg = data.get("message") if isinstance(data, dict) else None
            if isinstance(msg, dict):
                self.usage.update(usage_counts(msg.get("usage")))
                if msg.get("model") != self.model:
                    return encode_event(name, {**data, "message": {**msg, "model": self.model}})
            return raw
        if name == "content_block_start":
            data = event_data(raw)
            block = data.get("content_block") if isinstance(data, dict) else None
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                self.got_content = True
                new_id = self.wrap(block["id"])
                self.tool_ids.append(new_id)
                return encode_event(name, {**data, "content_block": {**block, "id": new_id}})
            return raw
        if name == "message_delta":
            data = event_data(raw)
            if not isinstance(data, dict):
                return raw
            self.usage.update(usage_counts(data.get("usage")))
            delta = data.get("delta")
            if isinstance(delta, dict):
                self.stop_reason = delta.get("stop_reason") or self.stop_reason
                self.truncated = self.stop_reason == "max_tokens"
                edits: dict[str, Any] = {}
                if self.truncated and self.clamped:
                    self.notes.append(CLAMP_NOTE)
                    edits["stop_reason"] = "end_turn"
                if "safeguard_results" in delta:
                    edits["safeguard_results"] = wrap_safeguard_ids(delta["safeguard_results"], self.wrap)
                if edits:
                    return encode_event(name, {**data, "delta": {**delta, **edits}})
            return raw
        if name == "message_stop":
            self.finished = True
            return raw
        if name == "error":
            data = event_data(raw)
            self.error = data.get("error") if isinstance(data, dict) else None
            return raw
        return raw


def rewrite_message(msg: dict[str, Any], *, model: str, wrap: Callable[[str], str],
                    clamped: bool = False) -> tuple[dict[str, Any], PassThrough]:
    """A non-streaming native answer with the same edits; the PassThrough carries what was seen."""
    seen = PassThrough(model=model, wrap=wrap, clamped=clamped)
    out = {**msg, "model": model}
    content = msg.get("content")
    if isinstance(content, list):
        new = []
        for b in content:
            if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                b = {**b, "id": wrap(b["id"])}
                seen.tool_ids.append(b["id"])
            new.append(b)
        out["content"] = new
        seen.got_content = bool(new)
    if "safeguard_results" in msg:
        out["safeguard_results"] = wrap_safeguard_ids(msg["safeguard_results"], wrap)
    seen.usage.update(usage_counts(msg.get("usage")))
    seen.stop_reason = msg.get("stop_reason")
    seen.truncated = seen.stop_reason == "max_tokens"
    if seen.truncated and clamped:
        seen.notes.append(CLAMP_NOTE)
        out["stop_reason"] = "end_turn"
    seen.finished = True
    return out, seen
