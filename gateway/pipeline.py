"""One request's way through the gateway: decide, translate, call (with fallback), convert, log.

Everything protocol-shaped is delegated to the pure modules (`router`, `gateway.protocol`);
this module only sequences them and owns the I/O: backends, the log line, the metrics.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from turnroute.gateway.backends.base import Backend
from turnroute.gateway.backends.window import prompt_limit, too_long_message
from turnroute.gateway.errors import (AllBackendsFailed, BackendRejected, BackendUnavailable, GatewayError,
                                      InvalidRequestError, SchemaMismatch)
from turnroute.gateway.native import NativeRun, is_native, native_payload
from turnroute.gateway.observe.record import note_first_token
from turnroute.gateway.prefill import PrefillGate
from turnroute.gateway.protocol import (RequestView, StreamConverter, TranslateOptions, assemble, encode_event,
                                        json_schema_of,
                                        openai_response_to_chunk, to_openai)
from turnroute.router import Decision, Features, TurnKind
from turnroute.router.ids import mint_tool_id

OVERRIDE_HEADER = "x-turnroute-route"


def new_request_id() -> str:
    return "req_" + secrets.token_hex(8)


def override_for(headers: Any) -> tuple[str, str] | None:
    """Manual pin: header first, then TURNROUTE_MODE; "auto" (or empty) means the rules decide."""
    value = headers.get(OVERRIDE_HEADER)
    if value and value.strip().lower() != "auto":
        return ("header", value.strip())
    env = os.environ.get("TURNROUTE_MODE", "").strip()
    if env and env.lower() != "auto":
        return ("env", env)
    return None


def options_for(backend: Backend, decision: Decision, stream: bool) -> TranslateOptions:
    cfg = backend.config
    sup = cfg.supports
    limits = [x for x in (cfg.max_output_tokens, decision.max_tokens) if x]
    return TranslateOptions(
        model=decision.model or cfg.model,
        max_output_tokens=min(limits) if limits else None,
        tools=sup.tools, images=sup.images, thinking=sup.thinking, json_schema=sup.json_schema,
        parallel_tool_calls=sup.parallel_tool_calls, strip_tools=decision.strip_tools, stream=stream)


@dataclass
class Attempt:
    """The outcome of trying the decided backend and its fallbacks, up to the first answer."""

    backend: Backend
    first: dict[str, Any] | None = None            # first upstream chunk (stream) or full response
    chunks: AsyncIterator[dict[str, Any]] | None = None
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    tools_stripped: bool = False
    options: TranslateOptions | None = None


async def call_with_fallback(view: RequestView, features: Features, decision: Decision,
                             backends: Mapping[str, Backend], *, stream: bool,
                             record: dict[str, Any], gate: PrefillGate,
                             windows: Mapping[str, int] | None = None, tool_tokens: int = 0,
                             headers: Mapping[str, str] | None = None) -> Attempt:
    """Try the decided backend, then each fallback, until one accepts the request.

    A backend "accepts" once it returned its first chunk (stream) or its answer: only failures
    before that point can move to the next backend without the client seeing anything. A backend
    whose context window (`windows`, by name) cannot hold the prompt is skipped without a call;
    when none can, the answer is the 400 "prompt is too long" that makes Claude Code compact.
    """
    # The client's schema was checked with the body (protocol.validate), before any backend call.
    order = [decision.backend, *[b for b in decision.fallback if b != decision.backend]]
    fallbacks: list[dict[str, str]] = []
    last: GatewayError | None = None
    too_long: list[tuple[int, int]] = []          # (prompt tokens, maximum) of each skipped backend
    for i, name in enumerate(order):
        backend = backends.get(name)
        if backend is None:
            fallbacks.append({"backend": name, "error": "not configured",
                              "message": f"backend '{name}' is not configured"})
            continue
        opts = options_for(backend, decision, stream)
        stripped = features.has_tools and (opts.strip_tools or not opts.tools)
        window = (windows or {}).get(name)
        if window is not None and features.input_tokens is not None:
            # the tool definitions are not sent to a backend that gets no tools
            tokens = features.input_tokens - (tool_tokens if stripped else 0)
            maximum = prompt_limit(window, answer_limit(view.body, opts))
            if tokens > maximum:
                too_long.append((tokens, maximum))
                note(record, f"context_window: {name} holds {window} tokens, {maximum} of them for the "
                             f"prompt; this one is ~{tokens}")
                fallbacks.append({"backend": name, "error": too_long_message(tokens, maximum),
                                  "message": f"backend '{name}': {too_long_message(tokens, maximum)}"})
                continue
        native = is_native(backend)
        payload = native_payload(view.body, opts, backend) if native else to_openai(view, opts)
        # Only native backends see the client's anthropic-version/-beta headers (never its key).
        extra = {"headers": headers} if native else {}
        record["backend_model"] = opts.model
        session = features.session_id
        try:
            # Only streams are gated: their lock is released at the first token (end of prefill);
            # a non-streaming call would hold it for its whole generation.
            async with gate.hold(backend.config.url_for(session), session,
                                 stream and backend.config.one_prefill_per_session):
                if stream:
                    chunks = backend.stream(payload, session_id=session, **extra)
                    first = await anext(chunks, None)
                    record["backend_model"] = decision.model or backend.config.model   # `model: auto` picked by now
                    return Attempt(backend, first, chunks, fallbacks, stripped, opts)
                resp = await backend.complete(payload, session_id=session, **extra)
                record["backend_model"] = decision.model or backend.config.model
                return Attempt(backend, resp, None, fallbacks, stripped, opts)
        except (BackendUnavailable, BackendRejected) as exc:
            retryable = isinstance(exc, BackendUnavailable) or getattr(exc, "capability", None) == "tools"
            if not retryable or i == len(order) - 1:
                record["route"] = name
                raise AllBackendsFailed(exc, fallbacks) from exc
            fallbacks.append({"backend": name, "error": type(exc).__name__, "message": exc.message})
            last = exc
    if last is None and too_long:
        # no backend holds it: report against the roomiest one, the gap compaction must close
        tokens, maximum = max(too_long, key=lambda t: t[1] - t[0])
        record.update(route=decision.backend, fallbacks=[f["backend"] for f in fallbacks])
        raise AllBackendsFailed(InvalidRequestError(too_long_message(tokens, maximum)), [])
    # Only unconfigured names came after the last real failure: that failure ends the search.
    if last is None:
        raise AllBackendsFailed(BackendUnavailable("no backend of this route is configured"), fallbacks)
    raise AllBackendsFailed(last, [f for f in fallbacks if f["message"] != last.message])


def answer_limit(body: dict[str, Any], opts: TranslateOptions) -> int | None:
    """The most the backend may write for this request: the client's max_tokens, clamped."""
    asked = body.get("max_tokens")
    limits = [x for x in (asked if isinstance(asked, int) else None, opts.max_output_tokens) if x]
    return min(limits) if limits else None


def note(record: dict[str, Any], text: str) -> None:
    """Add a note to the request's log line (notes gathered before and after the answer)."""
    record["notes"] = [*(record.get("notes") or ()), text]


class Run:
    """Drives the converter for one answered request and fills the log record as it goes."""

    def __init__(self, body: dict[str, Any], features: Features, attempt: Attempt,
                 record: dict[str, Any], t0: float):
        self.attempt = attempt
        self.record = record
        self.t0 = t0
        backend = attempt.backend.name
        thinking = bool(features.thinking and attempt.backend.config.supports.thinking)
        schema = json_schema_of(body)
        self.converter = StreamConverter(
            model=features.model, input_tokens=features.input_tokens or 0,
            mint_id=lambda: mint_tool_id(backend), thinking=thinking, json_schema=schema,
            clamped=bool(attempt.options and attempt.options.clamps(body.get("max_tokens"))),
            stop_sequences=tuple(s for s in body.get("stop_sequences") or () if isinstance(s, str)),
            strict_schema=schema is not None and features.turn is not TurnKind.TITLE)

    def start_events(self) -> list[tuple[str, dict]]:
        events = self.converter.start()
        if self.attempt.first is not None:
            events += self.feed(self.attempt.first)
        return events

    def start_bytes(self) -> bytes:
        return b"".join(encode_event(n, d) for n, d in self.start_events())

    def feed_bytes(self, chunk: dict[str, Any]) -> bytes:
        return b"".join(encode_event(n, d) for n, d in self.feed(chunk))

    def finish_bytes(self) -> bytes:
        return b"".join(encode_event(n, d) for n, d in self.finish())

    def mark_first_token(self) -> None:
        if self.converter.got_content:
            note_first_token(self.record, self.t0)

    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict]]:
        events = self.converter.feed(chunk)
        self.check_schema()
        if events:
            self.mark_first_token()
        return events

    def check_schema(self) -> None:
        """Fail a structured-output answer that does not match its schema (see schemacheck)."""
        problem = self.converter.schema_problem
        if problem is None:
            return
        cfg = self.attempt.backend.config
        cut = " (the answer was cut at max_tokens)" if self.converter.finish_reason == "length" else ""
        hint = "" if cfg.supports.json_schema else (
            f"; backend '{cfg.name}' cannot enforce JSON schemas (supports.json_schema: false): "
            "route structured-output requests to one that can")
        self._take_notes()
        raise SchemaMismatch(f"backend '{cfg.name}' answered a JSON-schema request, but {problem}{cut}{hint}",
                             backend=cfg.name)

    def finish(self) -> list[tuple[str, dict]]:
        events = self.converter.finish()
        self.mark_first_token()
        usage = self.converter.usage
        prompt, cached = usage.get("prompt_tokens"), usage.get("cached_tokens")
        self._take_notes()
        self.record.update(prompt_tokens=prompt, cached_tokens=cached, output_tokens=usage.get("completion_tokens"),
                           stop_reason="max_tokens" if self.converter.truncated else self.converter.stop_reason)
        self.check_schema()
        return events

    def _take_notes(self) -> None:
        """Move the converter's notes (tool-argument repairs, schema problems) to the log line, once."""
        for text in self.converter.notes:
            note(self.record, text)
        self.converter.notes = []

    def complete_message(self) -> dict[str, Any]:
        """Non-streaming: the whole upstream response through the same state machine."""
        events = self.converter.start()
        for chunk in openai_response_to_chunk(self.attempt.first or {}):
            events += self.feed(chunk)
        events += self.finish()
        return assemble(events)



def make_run(body: dict[str, Any], features: Features, attempt: Attempt, record: dict[str, Any],
             t0: float) -> "Run | NativeRun":
    """The relay for whichever backend answered: translated (`Run`) or native (`NativeRun`)."""
    return (NativeRun if is_native(attempt.backend) else Run)(body, features, attempt, record, t0)
