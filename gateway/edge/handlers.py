"""The request handlers: `POST /v1/messages` and `/v1/messages/count_tokens`, health, models.

Handlers take the raw `Request` and return raw responses (no pydantic models on the hot path):
the body is parsed once with orjson and validated by hand, which keeps per-request CPU low.
Every request, whatever happens to it, ends in `finish()`: one log line and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote

import orjson
from fastapi import Request
from fastapi.responses import Response

from turnroute.gateway.backends.managed import ManagedServers
from turnroute.gateway.backends.pool import BackendPool
from turnroute.gateway.config import Config, ConfigWatcher
from turnroute.gateway.errors import AllBackendsFailed, BackendFailed, GatewayError, InvalidRequestError, envelope
from turnroute.gateway.observe.log import RequestLog, new_record
from turnroute.gateway.paths import log_path
from turnroute.gateway.observe.metrics import Metrics
from turnroute.gateway.native import forward_count_tokens
from turnroute.gateway.pipeline import Attempt, Run, call_with_fallback, make_run, new_request_id, override_for
from turnroute.gateway.prefill import PrefillGate
from turnroute.gateway.safeguards import SafeguardCheck
from turnroute.gateway.protocol import InvalidRequest, RequestView, encode_event, validate_count_tokens_request, validate_messages_request
from turnroute.gateway.protocol.stream import error_event
from turnroute.gateway.edge.drain import Drain, ShuttingDown
from turnroute.gateway.edge.intake import Admission, maybe_off_loop, read_limited
from turnroute.gateway.edge.sse import ClientGone, SSEResponse, close_quietly, until_disconnect
from turnroute.gateway.tokens import TokenCounter
from turnroute.router import Features, UnknownRoute
from turnroute.router.sticky import TurnMemory

log = logging.getLogger("turnroute")


def header_value(text: str) -> str:
    """HTTP header values are Latin-1: a rule named outside ASCII is sent percent-encoded."""
    return text if text.isascii() else quote(text, safe=" -_.:/()")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")


class Gateway:
    """Live state shared by all requests; `apply` swaps in a reloaded config atomically."""

    def __init__(self, config: Config, *, config_path: str | Path | None = None):
        self.config = config
        self.config_path = config_path
        self.managed = ManagedServers()
        self.backends = BackendPool(self.managed.prepare(config.backends))
        self.tokens = TokenCounter()
        self.log = RequestLog(log_path(configured=config.log.path), max_bytes=config.log.max_bytes, keep=config.log.keep,
                              log_prompts=config.log.prompts)
        self.metrics = Metrics()
        self.memory = TurnMemory()
        self.gate = PrefillGate()
        self.watcher: ConfigWatcher | None = None
        self.admission = Admission(config.edge.max_concurrent)
        self.drain = Drain(config.edge.shutdown_grace)

    def apply(self, config: Config) -> None:
        """Use a new config: keep backend clients whose settings did not change (warm pools)."""
        self.backends.swap(self.managed.prepare(config.backends))
        self.backends.refresh_windows_soon()
        for section in ("host", "port", "log"):
            if getattr(config, section) != getattr(self.config, section):
                log.warning("config: a change to %s takes effect after a restart", section)
        self.config = config

    async def aclose(self) -> None:
        await self.backends.aclose()
        await self.managed.aclose()
        self.log.flush_in_flight()

    # -- request pipeline ---------------------------------------------------------------------

    @staticmethod
    def load_json(raw: bytes, record: dict[str, Any]) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"request body is not valid JSON: {str(exc)[:200]}") from None
        if not isinstance(body, dict):
            raise InvalidRequestError("request body must be a JSON object")
        model = body.get("model")
        record["model"] = model[:256] if isinstance(model, str) else None
        record["stream"] = body.get("stream") is True
        return body

    def features(self, view: RequestView, request: Request, endpoint: str) -> Features:
        return self.config.rules.features(view.body, request.headers, endpoint=endpoint,
                                          input_tokens=self.tokens.count(view), memory=self.memory)

    def describe(self, record: dict[str, Any], f: Features) -> None:
        record.update(session=f.session_id, turn=f.turn.value, intent=f.intent, tools=f.tool_count,
                      est_tokens=f.input_tokens, model=f.model)
        if f.needs:                     # new prompts: what the turn needs (replay reads it back)
            record["needs"] = f.needs
        if self.log.log_prompts and f.prompt_text:
            record["prompt"] = f.prompt_text[:2000]

    def finish(self, record: dict[str, Any], t0: float, status: int, error: GatewayError | Exception | None = None) -> None:
        self.admission.leave(record["id"])
        record["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        record["status"] = status
        if error is not None:
            record["error"] = error.error_type if isinstance(error, GatewayError) else type(error).__name__
            record["error_message"] = getattr(error, "message", None) or str(error)
        try:
            self.log.end(record)
            self.metrics.observe(record)
        except Exception:
            log.exception("could not write the log line for %s", record.get("id"))

    async def parse(self, request: Request, record: dict[str, Any], endpoint: str) -> tuple[RequestView, Features]:
        """Body → validated dict → features, recorded in the log line as soon as they are known."""
        raw = await read_limited(request.receive, self.config.max_body_bytes, request.headers.get("content-length"))
        view, f = await maybe_off_loop(len(raw), self.understand, raw, request, record, endpoint)
        self.describe(record, f)
        return view, f

    def understand(self, raw: bytes, request: Request, record: dict[str, Any], endpoint: str) -> tuple[RequestView, Features]:
        """The CPU part of `parse` (JSON, validation, token count), in a thread for big bodies."""
        body = self.load_json(raw, record)
        try:
            (validate_messages_request if endpoint == "messages" else validate_count_tokens_request)(body)
        except InvalidRequest as exc:
            raise InvalidRequestError(str(exc)) from None
        view = RequestView.of(body)
        return view, self.features(view, request, endpoint)

    async def messages(self, request: Request) -> Response:
        t0 = time.perf_counter()
        record = self.log.begin(new_record(id=new_request_id(), endpoint="messages"))
        headers = {"x-turnroute-request-id": record["id"]}
        attempt: Attempt | None = None
        try:
            self.admit(record)
            view, f = await self.parse(request, record, "messages")
            try:
                decision = self.config.rules.decide(f, override=override_for(request.headers))
            except UnknownRoute as exc:
                raise InvalidRequestError(str(exc)) from None
            record.update(rule=decision.rule, reason=decision.reason, route=decision.backend)
            headers["x-turnroute-rule"] = header_value(decision.rule)
            windows = self.backends.windows()
            attempt = await self.answer(request, record, call_with_fallback(
                view, f, decision, self.backends, stream=f.stream, record=record, gate=self.gate,
                windows=windows, tool_tokens=self.tokens.count_tools(view) if windows else 0,
                headers=request.headers))
            self.served(record, headers, f, attempt)
            run = make_run(view.body, f, attempt, record, t0)
            # A native backend (the Messages API) answers the safety check itself.
            check = SafeguardCheck.for_request(self.config.safeguards, view.body) if isinstance(run, Run) else None
            if f.stream:
                return SSEResponse(self.sse(run, check), headers=headers)
            message = run.complete_message()
            if check is not None:
                message = await check.finish_message(message, self.backends, record)
        except Exception as exc:
            if attempt is not None and attempt.chunks is not None:
                await close_quietly(attempt.chunks)
            return self.failed(record, t0, headers, exc)
        self.finish(record, t0, 200)
        return json_response(message, 200, headers)

    def failed(self, record: dict[str, Any], t0: float, headers: dict[str, str], exc: Exception) -> Response:
        """The one error path of every handler: a log line, then the envelope with its status."""
        if isinstance(exc, ClientGone):
            record["error"] = "client_disconnect"
            self.finish(record, t0, 499)
            return Response(status_code=499)
        if isinstance(exc, AllBackendsFailed) and exc.attempts:
            record["fallbacks"] = [x["backend"] for x in exc.attempts]
        if isinstance(exc, GatewayError):
            if exc.status == 413:          # the rest of the upload is not wanted: close, do not drain it
                headers = {**headers, "connection": "close"}
            self.finish(record, t0, exc.status, exc)
            return json_response(exc.envelope(), exc.status, headers)
        # The gateway never crashes on a request: anything unexpected is a logged 500.
        log.error("request %s failed", record["id"], exc_info=exc)
        self.finish(record, t0, 500, exc)
        return json_response(envelope("api_error", f"turnroute internal error: {type(exc).__name__}: {exc}"),
                             500, headers)

    def admit(self, record: dict[str, Any]) -> None:
        """A new request is served unless the gateway is shutting down or already at its limit."""
        self.drain.admit()
        self.admission.enter(record["id"])

    async def answer(self, request: Request, record: dict[str, Any], work: Any) -> Attempt:
        """The backend's first answer; a shutdown that ends the wait turns it into `ShuttingDown`."""
        self.drain.track(record["id"])
        try:
            return await until_disconnect(request, work)
        except asyncio.CancelledError:
            if not self.drain.was_ended(record["id"]):
                raise
            raise ShuttingDown() from None
        finally:
            self.drain.untrack(record["id"])

    def refused(self, scope: dict[str, Any], status: int, kind: str, message: str) -> None:
        """A request the doors turned away: API calls still get their log line."""
        path = scope.get("path", "")
        if path.startswith("/v1/messages"):
            record = new_record(id=new_request_id(), endpoint="count_tokens" if path.endswith("count_tokens") else "messages")
            record.update(status=status, error=kind, error_message=message, latency_ms=0.0)
            try:
                self.log.end(self.log.begin(record))
            except Exception:
                log.exception("could not write the log line for %s", record["id"])

    def served(self, record: dict[str, Any], headers: dict[str, str], f: Features, attempt: Attempt) -> None:
        """Record which backend answered (after any fallback) and remember it for the turn."""
        used = attempt.backend.name
        record.update(route=used, fallbacks=[x["backend"] for x in attempt.fallbacks],
                      tools_stripped=attempt.tools_stripped)
        if attempt.fallbacks:
            record["reason"] = f"{record['reason']}; fell back to {used} after " + ", ".join(
                f"{x['backend']} ({x['error']})" for x in attempt.fallbacks)
        headers["x-turnroute-route"] = used
        self.memory.remember_features(f, used)

    async def sse(self, run: Run, check: SafeguardCheck | None = None) -> AsyncIterator[bytes]:
        record, t0 = run.record, run.t0
        status, error = 200, None
        self.drain.track(record["id"])
        try:
            yield check.start_bytes(run) if check else run.start_bytes()
            seen = run.attempt.first is not None
            assert run.attempt.chunks is not None
            async for chunk in run.attempt.chunks:
                seen = True
                data = check.feed_bytes(run, chunk) if check else run.feed_bytes(chunk)
                if data:
                    yield data
            if not seen:
                name = run.attempt.backend.name
                raise BackendFailed(f"backend '{name}' sent no valid chunk", backend=name)
            # with a check, message_delta waits for the verdicts on the reply's tool calls
            tail = await check.finish_bytes(run, self.backends, record) if check else run.finish_bytes()
            if tail:
                yield tail
        except GatewayError as exc:
            # The stream already began, so the error goes in-band. A backend that broke off (5xx,
            # cut connection) is transient: as overloaded_error Claude Code retries the request.
            status, error = exc.status, exc
            env = envelope("overloaded_error", exc.message) if exc.status >= 500 else exc.envelope()
            yield encode_event(*error_event(env))
        except asyncio.CancelledError:
            if not self.drain.was_ended(record["id"]):
                status, record["error"] = 499, "client_disconnect"
                raise
            status, error = 529, ShuttingDown()
            yield encode_event(*error_event(error.envelope()))
        except GeneratorExit:
            status = 529 if self.drain.was_ended(record["id"]) else 499
            record["error"] = "shutdown" if status == 529 else "client_disconnect"
            raise
        except Exception as exc:
            log.exception("request %s failed mid-stream", record["id"])
            status, error = 500, exc
            yield encode_event(*error_event(envelope("api_error", f"turnroute internal error: {exc}")))
        finally:
            self.drain.untrack(record["id"])
            if run.attempt.chunks is not None:
                await close_quietly(run.attempt.chunks)
            self.finish(record, t0, status, error)

    async def count_tokens(self, request: Request) -> Response:
        t0 = time.perf_counter()
        record = self.log.begin(new_record(id=new_request_id(), endpoint="count_tokens"))
        headers = {"x-turnroute-request-id": record["id"], "x-turnroute-route": "gateway"}
        try:
            self.admit(record)
            view, f = await self.parse(request, record, "count_tokens")
            record.update(route="gateway", rule="count_tokens", reason="counted locally with tiktoken")
            pinned = override_for(request.headers)
            counted = await forward_count_tokens(self.backends, lambda x: self.config.rules.decide(x, override=pinned),
                                                 view.body, f, request.headers, record)
            if counted is not None:
                headers["x-turnroute-route"] = record["route"]
        except Exception as exc:
            return self.failed(record, t0, headers, exc)
        self.finish(record, t0, 200)
        return json_response({"input_tokens": f.input_tokens if counted is None else counted}, 200, headers)
