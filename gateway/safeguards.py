"""Answering Claude Code's auto-mode safety check: rules first, then one judge call per turn.

A request that carries `safeguards` gets a `SafeguardCheck`. It watches the reply's events for
tool_use blocks; when the reply is complete, `answer()` decides every call — the pure rules in
microseconds, and whatever they leave open in one call to the configured judge backend — and puts
`safeguard_results` where Claude Code reads it (the `delta` of `message_delta` when streaming, the
message when not). The verdicts go on the log line. Requests without `safeguards` never get here.

Failure is never silent approval: a judge that is down, slow (past `safeguards.timeout`) or
answers something invalid yields `unavailable` with its reason (and, with `unavailable: ask`, the
id is left out so that Claude Code asks the user).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Mapping, Sequence

from turnroute.gateway.backends import Backend
from turnroute.gateway.errors import BackendRejected, GatewayError
from turnroute.gateway.pipeline import Run
from turnroute.gateway.protocol import encode_event
from turnroute.router.safeguards import (DANGEROUS_TOOL_USE, Context, JudgeError, PendingCall, SafeguardSettings,
                                         ToolUseCollector, Verdict, context_of, judge_messages, judged,
                                         parse_judgement, requested, results, rules_pass, unavailable)
from turnroute.router.safeguards.judge import VERDICT_SCHEMA

__all__ = ["SafeguardCheck", "judge"]

log = logging.getLogger("turnroute")

# A verdict is ~40 tokens of JSON plus a one-sentence explanation: the cap bounds how long a
# rambling judge can hold the turn (it is cut off and counted as `truncated`).
TOKENS_PER_CALL = 96
TOKENS_BASE = 32


def _judge_body(backend: Backend, body: Mapping[str, Any], calls: Sequence[PendingCall], ctx: Context) -> dict:
    cap = TOKENS_BASE + TOKENS_PER_CALL * len(calls)
    if backend.config.max_output_tokens:
        cap = min(cap, backend.config.max_output_tokens)
    payload: dict[str, Any] = {"model": backend.config.model, "messages": judge_messages(body, calls, ctx),
                               "max_tokens": cap, "temperature": 0, "stream": False}
    if backend.config.supports.json_schema:
        payload["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "verdicts", "schema": VERDICT_SCHEMA, "strict": True}}
    return payload


async def judge(settings: SafeguardSettings, backends: Mapping[str, Backend], body: Mapping[str, Any],
                calls: Sequence[PendingCall], ctx: Context) -> list[Verdict]:
    """One model call for the calls the rules left open; any failure → unavailable (with reason)."""
    ask = settings.unavailable == "ask"
    if settings.mode != "rules+judge" or not settings.model:
        return unavailable(calls, "refused", "rules-only", 0.0, ask=ask)
    backend = backends.get(settings.model)
    by = f"judge:{settings.model}"
    t0 = time.perf_counter()
    if backend is None:
        return unavailable(calls, "error", by, 0.0, ask=ask)
    try:
        resp = await asyncio.wait_for(backend.complete(_judge_body(backend, body, calls, ctx), session_id=None),
                                      timeout=settings.timeout)
        choice = (resp.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        answer = parse_judgement(text, calls, finish_reason=choice.get("finish_reason"))
    except asyncio.TimeoutError:
        return unavailable(calls, "timeout", by, (time.perf_counter() - t0) * 1000, ask=ask)
    except JudgeError as exc:
        return unavailable(calls, exc.reason, by, (time.perf_counter() - t0) * 1000, ask=ask)
    except BackendRejected as exc:
        too_long = any(w in exc.message.lower() for w in ("context length", "too long", "maximum context"))
        return unavailable(calls, "input_too_long" if too_long else "error", by,
                           (time.perf_counter() - t0) * 1000, ask=ask)
    except Exception as exc:          # whatever went wrong, the turn goes on without an approval
        if not isinstance(exc, GatewayError):
            log.warning("safeguards judge %s failed: %s: %s", settings.model, type(exc).__name__, exc)
        return unavailable(calls, "error", by, (time.perf_counter() - t0) * 1000, ask=ask)
    return [Verdict(v.id, v.tool, v.outcome, by, v.explanation, ms=v.ms)
            for v in judged(calls, answer, (time.perf_counter() - t0) * 1000)]


class SafeguardCheck:
    """The safety check of one request (build with `for_request`; None when none was asked)."""

    def __init__(self, settings: SafeguardSettings, entries: list[dict[str, Any]], body: Mapping[str, Any]):
        self.settings = settings
        self.entries = entries
        self.body = body
        ours = next((e for e in entries if e["type"] == DANGEROUS_TOOL_USE), {})
        self.ctx = context_of(ours.get("classifier_context"))
        self.collector = ToolUseCollector()

    @classmethod
    def for_request(cls, settings: SafeguardSettings, body: Mapping[str, Any]) -> "SafeguardCheck | None":
        entries = requested(body)
        return cls(settings, entries, body) if entries else None

    # The translated stream (`pipeline.Run`), watched for tool calls; the closing events wait.
    def start_bytes(self, run: Run) -> bytes:
        return self._seen(run.start_events())

    def feed_bytes(self, run: Run, chunk: dict[str, Any]) -> bytes:
        return self._seen(run.feed(chunk))

    async def finish_bytes(self, run: Run, backends: Mapping[str, Backend], record: dict[str, Any]) -> bytes:
        return b"".join(encode_event(n, d) for n, d in await self.finish_stream(run.finish(), backends, record))

    def _seen(self, events: list[tuple[str, dict]]) -> bytes:
        self.collector.watch(events)
        return b"".join(encode_event(n, d) for n, d in events)

    async def verdicts(self, calls: list[PendingCall], backends: Mapping[str, Backend]) -> list[Verdict] | None:
        if self.settings.mode == "off":
            return None
        decided, open_calls = rules_pass(self.settings, calls, self.ctx)
        if open_calls:
            decided += await judge(self.settings, backends, self.body, open_calls, self.ctx)
        order = {c.id: i for i, c in enumerate(calls)}
        return sorted(decided, key=lambda v: order[v.id])

    async def answer(self, calls: list[PendingCall], backends: Mapping[str, Backend],
                     record: dict[str, Any]) -> list[dict[str, Any]] | None:
        """`safeguard_results` for these calls (None when the reply has no tool_use: nothing to
        answer); the verdicts go on the log record."""
        if not calls:
            return None
        verdicts = await self.verdicts(calls, backends)
        record["safeguards"] = [v.log() for v in verdicts] if verdicts is not None else \
            [{"tool": c.name, "id": c.id, "outcome": "unsupported", "by": "off", "ms": 0.0} for c in calls]
        return results(self.entries, verdicts)

    async def finish_stream(self, events: list[tuple[str, dict]], backends: Mapping[str, Backend],
                            record: dict[str, Any]) -> list[tuple[str, dict]]:
        """The closing events with `safeguard_results` inside `message_delta.delta`."""
        self.collector.watch(events)
        answer = await self.answer(self.collector.calls(), backends, record)
        if answer is not None:
            for name, data in events:
                if name == "message_delta":
                    data["delta"]["safeguard_results"] = answer
        return events

    async def finish_message(self, message: dict[str, Any], backends: Mapping[str, Backend],
                             record: dict[str, Any]) -> dict[str, Any]:
        answer = await self.answer(ToolUseCollector.from_message(message), backends, record)
        if answer is not None:
            message["safeguard_results"] = answer
        return message
