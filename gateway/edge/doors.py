"""The gateway's doors: which callers may reach it at all, as pure ASGI middleware.

A loopback server is still reachable from any web page the user opens: a cross-origin
``text/plain`` POST needs no preflight, and DNS rebinding turns an attacker's host name into
127.0.0.1 so even reads succeed. So, before any handler runs:

* the ``Host`` header must be a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``, any port)
  or one listed in ``server.allowed_hosts`` — rebinding sends the attacker's name, refused (403);
* a request carrying a browser ``Origin`` must come from the gateway's own origin or one in
  ``server.allowed_origins`` (403 otherwise; Claude Code and the SDKs send no ``Origin``);
* the JSON endpoints refuse a non-JSON content type (415): ``text/plain`` and form posts are
  exactly what a page can send without a preflight (a body with no content type at all is
  accepted, for curl; a browser sending one cross-origin is stopped by the ``Origin`` check);
* when API keys are configured (required to bind beyond loopback), every endpoint but ``/`` and
  the up/down answer of ``/health`` needs one (``x-api-key`` or ``Authorization: Bearer``; the
  live page may also use ``?key=`` once, which sets a ``SameSite=Strict`` cookie for its polling).

Handlers learn whether the caller presented a valid key from ``scope["state"]["authorized"]``.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

import orjson

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]
Reject = Callable[[Scope, int, str, str], None]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
JSON_ENDPOINTS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
OPEN_PATHS = frozenset({"/", "/api/hello", "/health"})     # /health: up/down only without a key
COOKIE_PATHS = frozenset({"/ui", "/api/recent"})
COOKIE = "turnroute_key"


def is_loopback(host: str) -> bool:
    """True for a loopback bind address or Host name (``127.x.y.z``, ``::1``, ``localhost``)."""
    h = host.strip().lower().rstrip(".")
    return h in LOOPBACK_HOSTS or h.startswith("127.") or h.endswith(".localhost")


def host_name(value: str) -> str:
    """``example.org:8400`` → ``example.org``; ``[::1]:8400`` → ``[::1]``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or ():
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def _json_type(ctype: str) -> bool:
    media = ctype.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Doors:
    """ASGI middleware: Host, Origin, content type and API key checks in front of ``app``."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = (), api_keys: Iterable[str] = (),
                 on_reject: Reject | None = None) -> None:
        self.app = app
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        self.api_keys = tuple(k.encode() for k in api_keys if k)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        verdict = self.check(scope, headers)
        if verdict is None:
            cookie = key_cookie(scope) if self.api_keys and scope.get("path") == "/ui" else None
            await self.app(scope, receive, send if cookie is None else _with_cookie(send, cookie))
            return
        status, kind, message = verdict
        if self.on_reject is not None:
            self.on_reject(scope, status, kind, message)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def check(self, scope: Scope, headers: Mapping[str, str]) -> tuple[int, str, str] | None:
        """``None`` to let the request in, else ``(status, error type, message)``."""
        host = headers.get("host", "")
        if not (is_loopback(host_name(host)) or host_name(host) in self.allowed_hosts):
            return 403, "permission_error", (
                f"Host {host[:100]!r} is not allowed: turnroute answers loopback names and "
                "server.allowed_hosts only")
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, host):
            return 403, "permission_error", (
                f"Origin {origin[:100]!r} is not allowed (server.allowed_origins)")
        path = scope.get("path", "")
        authorized = self._authorized(scope, headers, path)
        scope.setdefault("state", {})["authorized"] = authorized
        if self.api_keys and not authorized and path not in OPEN_PATHS:
            return 401, "authentication_error", (
                "an API key is required (x-api-key or Authorization: Bearer; server.api_keys)")
        ctype = headers.get("content-type")
        if scope.get("method") == "POST" and path in JSON_ENDPOINTS and ctype is not None \
                and not _json_type(ctype):
            return 415, "invalid_request_error", (
                f"content type {ctype[:100]!r} is not JSON; "
                "send Content-Type: application/json")
        return None

    def _origin_ok(self, origin: str, host: str) -> bool:
        o = origin.strip().rstrip("/").lower()
        if o in self.allowed_origins:
            return True
        parts = urlsplit(o)
        return parts.scheme in ("http", "https") and parts.netloc == host.strip().lower()

    def _authorized(self, scope: Scope, headers: Mapping[str, str], path: str) -> bool:
        """No keys configured: everyone. Otherwise a presented key must match one (constant time)."""
        if not self.api_keys:
            return True
        candidates = [headers.get("x-api-key", "")]
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            candidates.append(auth[7:].strip())
        if path in COOKIE_PATHS:
            candidates.append(_cookie(headers.get("cookie", ""), COOKIE) or "")
            query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
            candidates.extend(query.get("key", [])[:1])
        return any(hmac.compare_digest(c.encode(), k) for c in candidates if c for k in self.api_keys)


def _with_cookie(send: Callable, cookie: str) -> Callable:
    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"set-cookie", cookie.encode())]}
        await send(message)
    return sending


def key_cookie(scope: Scope) -> str | None:
    """The ``Set-Cookie`` value that lets the live page poll after it was opened with ``?key=``."""
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    key = query.get("key", [None])[0]
    if not key:
        return None
    return f"{COOKIE}={key}; HttpOnly; SameSite=Strict; Path=/"


def api_keys(config: Any) -> tuple[str, ...]:
    """Keys from ``server.api_keys`` plus ``TURNROUTE_API_KEYS`` (comma-separated)."""
    env = [k.strip() for k in os.environ.get("TURNROUTE_API_KEYS", "").split(",") if k.strip()]
    return (*config.edge.api_keys, *env)
