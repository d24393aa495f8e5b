"""The native (Messages API) path through the gateway: body, relay and count_tokens.

Why separate from `pipeline`: a `type: anthropic` backend needs no translation, so where the
OpenAI path runs `to_openai` and a `StreamConverter`, this one runs `native_request` and a
`PassThrough` — with the same duties towards the log line (usage, cache tokens, ttft, stop
reason) and the client (tagged tool ids, the gateway's clamp reported as end_turn).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from turnroute.gateway.errors import GatewayError
from turnroute.gateway.observe.record import note_first_token
from turnroute.gateway.protocol import TranslateOptions
from turnroute.gateway.protocol.passthrough import PassThrough, native_request, rewrite_message
from turnroute.router import Features
from turnroute.router.ids import origin_of, unwrap_tool_id, wrap_tool_id

log = logging.getLogger("turnroute")
NATIVE = "anthropic"


def is_native(backend: Any) -> bool:
    return backend.config.type == NATIVE


def own_ids(name: str):
    """Unwraps the tool ids `name` made; ids wrapped for other backends stay wrapped (the cloud
    accepts only [A-Za-z0-9_-] ids, and another server's raw id may not be that)."""
    def unwrap(tool_id: Any) -> str | None:
        return unwrap_tool_id(tool_id) if origin_of(tool_id, (name,)) == name else None
    return unwrap


def native_payload(body: dict[str, Any], opts: TranslateOptions, backend: Any) -> dict[str, Any]:
    """The client's body with only the declared changes (see `native_request`)."""
    return native_request(body, model=opts.model, drop=backend.config.drop, unwrap=own_ids(backend.name),
                          max_tokens=opts.max_output_tokens,
                          no_tool_calls=opts.strip_tools or not opts.tools)


class NativeRun:
    """Relays one native answer and fills the log record; the twin of `pipeline.Run`."""

    def __init__(self, body: dict[str, Any], features: Features, attempt: Any, record: dict[str, Any], t0: float):
        self.attempt = attempt
        self.record = record
        self.t0 = t0
        name = attempt.backend.name
        self.clamped = bool(attempt.options and attempt.options.clamps(body.get("max_tokens")))
        self.model = features.model
        self.wrap = lambda original: wrap_tool_id(name, original)
        self.relay = PassThrough(model=self.model, wrap=self.wrap, clamped=self.clamped)

    def _first_token(self) -> None:
        if self.relay.got_content:
            note_first_token(self.record, self.t0)

    def start_bytes(self) -> bytes:
        first = self.attempt.first
        return self.feed_bytes(first) if first is not None else b""

    def feed_bytes(self, event: tuple[str, bytes]) -> bytes:
        out = self.relay.feed(*event)
        self._first_token()
        return out

    def finish_bytes(self) -> bytes:
        self._note(self.relay)
        return b""

    def _note(self, seen: PassThrough) -> None:
        u = seen.usage
        self.record.update(prompt_tokens=u.get("prompt_tokens"), cached_tokens=u.get("cached_tokens"),
                           output_tokens=u.get("completion_tokens"), notes=seen.notes or None,
                           stop_reason=seen.stop_reason)

    def complete_message(self) -> dict[str, Any]:
        message, seen = rewrite_message(self.attempt.first or {}, model=self.model, wrap=self.wrap,
                                        clamped=self.clamped)
        self.relay = seen
        self._first_token()
        self._note(seen)
        return message


async def forward_count_tokens(backends: Mapping[str, Any], decide: Any, body: dict[str, Any],
                               features: Features, headers: Mapping[str, str],
                               record: dict[str, Any]) -> int | None:
    """Ask the decided backend to count, when it is native and declares `count_tokens: true`.

    None means "count locally" (no such backend, or it failed: a token count is an estimate the
    client asks for often, so a local one beats an error).
    """
    try:
        decision = decide(features)
    except Exception:
        return None
    backend = backends.get(decision.backend)
    if backend is None or not is_native(backend) or not backend.config.count_tokens \
            or not hasattr(backend, "count_tokens"):       # (a `model: auto` wrapper does not count)
        return None
    model = decision.model or backend.config.model
    payload = native_request(body, model=model, drop=backend.config.drop, unwrap=own_ids(backend.name))
    try:
        n = await backend.count_tokens(payload, session_id=features.session_id, headers=headers)
    except GatewayError as exc:
        log.warning("count_tokens on %s failed, counted locally: %s", backend.name, exc.message)
        record["notes"] = [f"count_tokens on {backend.name} failed, counted locally: {exc.message}"]
        return None
    record.update(route=backend.name, rule=decision.rule, backend_model=model,
                  reason=f"counted by {backend.name} (count_tokens: true)")
    return n
