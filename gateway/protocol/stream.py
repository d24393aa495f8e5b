"""OpenAI ``chat.completion.chunk`` dicts → Anthropic Messages stream events.

A pure state machine: the caller feeds chunks and writes out the returned
``(event_name, data)`` tuples. Streaming and non-streaming responses both go through it
(see ``response.py``), so both share one set of rules:

* text → one text block per run of text; never an empty block;
* reasoning → a thinking block (closed with a ``signature_delta``) only when thinking is on;
* tool calls are assembled by ``index`` (fragments of two calls may interleave) and emitted
  whole at the end, each as start → ``input_json_delta`` → stop, with gateway-minted ids;
* any tool_use ⇒ ``stop_reason: tool_use``, whatever ``finish_reason`` said.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import orjson

from .schemacheck import check_answer, coerce_json_text
from .toolargs import parse_tool_args
from .toolcalls import ToolCallAssembler

Event = tuple[str, dict]

# Claude Code keeps thinking blocks in history and sends them back; it never verifies the
# signature, but it must be a non-empty string. The request side drops thinking blocks.
THINKING_SIGNATURE = "turnroute-local-reasoning"

_STOP_REASONS = {"length": "max_tokens", "content_filter": "refusal"}


def _new_message_id() -> str:
    return "msg_01" + secrets.token_hex(11)


class StreamConverter:
    """Converts one upstream response; create a new one per request."""

    def __init__(self, *, model: str, input_tokens: int, mint_id: Callable[[], str],
                 thinking: bool = False, json_schema: dict | None = None,
                 message_id: str | None = None, clamped: bool = False,
                 stop_sequences: tuple[str, ...] = (), strict_schema: bool = False) -> None:
        self.model = model
        self.stop_sequences = stop_sequences
        self.stop_sequence: str | None = None
        # The gateway lowered the client's max_tokens to the backend's limit. A reply cut there is
        # reported as end_turn: Claude Code treats max_tokens as "exceeded the 32k–128k maximum it
        # asked for" and fails the turn, losing an answer the user could simply ask to continue.
        self.clamped = clamped
        self.truncated = False
        self.input_tokens = input_tokens
        self.thinking = thinking
        self.json_schema = json_schema
        # strict: a structured-output request other than Claude Code's title. Its answer is
        # checked against the schema instead of coerced; `schema_problem` says why it failed
        # (the text is then withheld, and the caller answers with an error).
        self.strict_schema = strict_schema
        self.schema_problem: str | None = None
        self.message_id = message_id or _new_message_id()
        self._mint_id = mint_id
        # As reported by the upstream; None when unknown (never a fake 0).
        self.usage: dict[str, int | None] = {
            "prompt_tokens": None, "cached_tokens": None, "completion_tokens": None}
        self.stop_reason: str | None = None
        self.finish_reason: str | None = None  # upstream's, verbatim
        self.tool_calls_emitted = 0
        self.got_content = False           # any content block emitted so far
        self.notes: list[str] = []         # tool-argument repairs/failures, for the log
        self._index = 0
        self._open: str | None = None      # "text" | "thinking" | None
        self._calls = ToolCallAssembler()
        self._json_parts: list[str] = []
        self._json_done = False
        self._out_chars = 0
        self._out_deltas = 0
        self._started = False
        self._finished = False

    # ------------------------------------------------------------------ public API
    def start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        return [("message_start", {"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0}}})]

    def feed(self, chunk: dict) -> list[Event]:
        if self._finished:
            return []
        events: list[Event] = [] if self._started else self.start()
        usage = chunk.get("usage")
        if usage:
            self._take_usage(usage)
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or choice.get("message") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._reasoning(reasoning, events)
            content = delta.get("content")
            if content:
                if isinstance(content, list):  # rare: content parts in a delta
                    content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
                if content:
                    self._text(content, events)
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                self._tool_fragments(tool_calls)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish_reason = finish_reason
                # vLLM reports the matched stop string as choice.stop_reason, SGLang as matched_stop:
                # only then can the gateway say which of the client's stop_sequences fired.
                matched = choice.get("stop_reason", choice.get("matched_stop"))
                if isinstance(matched, str) and matched in self.stop_sequences:
                    self.stop_sequence = matched
                self._end_content(events)
        return events

    def finish(self) -> list[Event]:
        """Close everything; safe to call twice (the second call returns [])."""
        if self._finished:
            return []
        events: list[Event] = [] if self._started else self.start()
        self._end_content(events)
        self._finished = True
        if self.tool_calls_emitted:
            self.stop_reason = "tool_use"
        else:
            self.stop_reason = _STOP_REASONS.get(self.finish_reason or "", "end_turn")
            if self.stop_reason == "end_turn" and self.stop_sequence is not None:
                self.stop_reason = "stop_sequence"
            if self.stop_reason == "max_tokens":
                self.truncated = True
                if self.clamped:
                    self.stop_reason = "end_turn"
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason,
                      "stop_sequence": self.stop_sequence if self.stop_reason == "stop_sequence" else None},
            "usage": self._final_usage()}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    # ------------------------------------------------------------------ blocks
    def _start_block(self, block: dict, events: list[Event]) -> int:
        idx = self._index
        self._index += 1
        self.got_content = True
        events.append(("content_block_start",
                       {"type": "content_block_start", "index": idx, "content_block": block}))
        return idx

    def _delta(self, delta: dict, events: list[Event]) -> None:
        events.append(("content_block_delta",
                       {"type": "content_block_delta", "index": self._index - 1, "delta": delta}))

    def _stop(self, events: list[Event]) -> None:
        events.append(("content_block_stop",
                       {"type": "content_block_stop", "index": self._index - 1}))

    def _close_open(self, events: list[Event]) -> None:
        if self._open == "thinking":
            self._delta({"type": "signature_delta", "signature": THINKING_SIGNATURE}, events)
        if self._open is not None:
            self._stop(events)
            self._open = None

    def _text(self, text: str, events: list[Event]) -> None:
        self._out_chars += len(text)
        self._out_deltas += 1
        if self.json_schema is not None:
            if not self._json_done:
                self._json_parts.append(text)
            return
        if self._open != "text":
            self._close_open(events)
            self._start_block({"type": "text", "text": ""}, events)
            self._open = "text"
        self._delta({"type": "text_delta", "text": text}, events)

    def _reasoning(self, text: str, events: list[Event]) -> None:
        self._out_chars += len(text)
        self._out_deltas += 1
        if not self.thinking or self.json_schema is not None:
            return
        if self._open != "thinking":
            self._close_open(events)
            self._start_block({"type": "thinking", "thinking": "", "signature": ""}, events)
            self._open = "thinking"
        self._delta({"type": "thinking_delta", "thinking": text}, events)

    def _emit_text_block(self, text: str, events: list[Event]) -> None:
        if text:
            self._start_block({"type": "text", "text": ""}, events)
            self._delta({"type": "text_delta", "text": text}, events)
            self._stop(events)

    # ------------------------------------------------------------------ tool calls
    def _tool_fragments(self, fragments: list) -> None:
        chars, deltas = self._calls.feed(fragments)
        self._out_chars += chars
        self._out_deltas += deltas

    def _flush_calls(self, events: list[Event]) -> None:
        for call in self._calls.take_pending():
            raw = "".join(call.parts)
            if not call.name:
                if raw.strip():
                    note = f"a tool call without a name was dropped (arguments: {raw[:200]})"
                    self.notes.append(note)
                    self._emit_text_block(f"[turnroute: {note}]", events)
                continue
            tool_input, note = parse_tool_args(raw)
            if note:
                self.notes.append(f"{call.name}: {note}")
                self._emit_text_block(f"[turnroute: tool call {call.name}: {note}]", events)
            self._start_block({"type": "tool_use", "id": self._mint_id(), "name": call.name,
                               "input": {}}, events)
            self._delta({"type": "input_json_delta",
                         "partial_json": orjson.dumps(tool_input).decode()}, events)
            self._stop(events)
            self.tool_calls_emitted += 1

    def _end_content(self, events: list[Event]) -> None:
        self._close_open(events)
        if self.json_schema is not None and not self._json_done:
            self._json_done = True
            raw = "".join(self._json_parts)
            if not self.strict_schema:
                self._emit_text_block(coerce_json_text(raw, self.json_schema), events)
            elif self._calls.any:      # a tool turn: the structured answer comes after the tools ran
                self._emit_text_block(raw.strip(), events)
            else:
                text, self.schema_problem = check_answer(raw, self.json_schema)
                if self.schema_problem is None:
                    self._emit_text_block(text, events)
                else:
                    self.notes.append(f"json_schema: {self.schema_problem}")
        self._flush_calls(events)

    # ------------------------------------------------------------------ usage
    def _take_usage(self, usage: dict) -> None:
        prompt = usage.get("prompt_tokens")
        if isinstance(prompt, int):
            self.usage["prompt_tokens"] = prompt
        completion = usage.get("completion_tokens")
        if isinstance(completion, int):
            self.usage["completion_tokens"] = completion
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            self.usage["cached_tokens"] = details["cached_tokens"]

    def _final_usage(self) -> dict:
        completion = self.usage["completion_tokens"]
        if completion is None:  # estimate: ~one token per delta, at least chars/4
            completion = max(self._out_deltas, -(-self._out_chars // 4))
        out: dict[str, int] = {"output_tokens": completion}
        prompt = self.usage["prompt_tokens"]
        if prompt is not None:
            cached = self.usage["cached_tokens"]
            out["input_tokens"] = max(prompt - (cached or 0), 0)
            if cached is not None:
                out["cache_read_input_tokens"] = cached
        return out


def error_event(envelope: dict) -> Event:
    """An SSE ``error`` event from an Anthropic error envelope (or its inner error object)."""
    err = envelope.get("error") if isinstance(envelope.get("error"), dict) else envelope
    return ("error", {"type": "error", "error": {
        "type": str(err.get("type") or "api_error"), "message": str(err.get("message") or "")}})
