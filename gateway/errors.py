"""Errors in Anthropic's envelope, with the status Claude Code reacts to correctly.

Claude Code retries 429/500/529 (and SSE `overloaded_error`) but shows a 400 to the user at once,
so the status is a decision: permanent problems are 400 with a message a person can act on,
transient ones (backend starting, unreachable, busy) are 529 so the client retries by itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnroute.gateway.observe.record import scrub

# Anthropic error types by HTTP status (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


class GatewayError(Exception):
    """An error that becomes an Anthropic error envelope with a definite HTTP status."""

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None, backend: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.backend = backend

    @property
    def error_type(self) -> str:
        return ERROR_TYPES.get(self.status, "api_error" if self.status >= 500 else "invalid_request_error")

    def envelope(self) -> dict[str, Any]:
        return envelope(self.error_type, self.message)


class InvalidRequestError(GatewayError):
    status = 400


class RequestTooLarge(GatewayError):
    status = 413


class BackendUnavailable(GatewayError):
    """Connect refused, timeout, 503 while loading: Claude Code should retry (529)."""

    status = 529


class BackendRejected(GatewayError):
    """The backend refused the request (4xx): a 400 carrying the backend's own message.

    `capability` is set when the refusal is about a missing capability ("tools"), which the
    router may fall back from instead of failing the turn.
    """

    status = 400

    def __init__(self, message: str, *, status: int | None = None, backend: str | None = None,
                 capability: str | None = None, upstream_status: int | None = None):
        super().__init__(message, status=status, backend=backend)
        self.capability = capability
        self.upstream_status = upstream_status


class BackendFailed(GatewayError):
    """The backend failed with a 5xx or broke its protocol: a retryable api_error."""

    status = 500


class AllBackendsFailed(GatewayError):
    """No backend in the decision's order answered: the last failure decides the status.

    `attempts` lists every backend tried before the last one ({backend, error, message}), so the
    log line and the message name each of them; `last` is the failure that ended the search.
    """

    def __init__(self, last: GatewayError, attempts: list[dict[str, str]]):
        message = last.message
        if attempts:
            message += "; tried before: " + "; ".join(a["message"] for a in attempts)
        super().__init__(message, status=last.status, backend=last.backend)
        self.last = last
        self.attempts = attempts

    @property
    def error_type(self) -> str:
        return self.last.error_type


class SchemaMismatch(GatewayError):
    """A structured-output answer that does not match the requested JSON schema.

    400, not a retryable 5xx: the usual cause is permanent (the answering backend cannot enforce
    schemas), so the message says so at once instead of after the client's retries.
    """

    status = 400


def envelope(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope. The message often quotes a backend's own error text, which can
    echo the key the gateway sent it: it is scrubbed like a log line before it leaves."""
    return {"type": "error", "error": {"type": error_type, "message": scrub(message)}}


def envelope_bytes(error_type: str, message: str) -> bytes:
    return orjson.dumps(envelope(error_type, message))


def status_for_upstream(status: int) -> int:
    """Map an upstream HTTP status onto the status the gateway answers with.

    A backend's 401/403/404 is the *gateway's* configuration problem (wrong key or model name),
    not the client's: passing it through would make Claude Code think its own key is bad, so it
    becomes a 400 carrying the backend's message. 413 and 429 keep their meaning (429 is retried).
    """
    if status in (413, 429):
        return status
    if status == 503 or status == 529:
        return 529
    if 400 <= status < 500:
        return 400
    return 500


def tool_refusal(message: str) -> bool:
    """True when an upstream message says the model cannot do tool calling."""
    m = message.lower()
    return ("tool" in m and ("not support" in m or "unsupported" in m or "does not support" in m))
