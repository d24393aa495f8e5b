"""Upstream failures become the status Claude Code reacts to correctly (400 shown, 429/5xx/529 retried)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
import pytest

from turnroute.gateway.backends.base import BackendConfig
from turnroute.gateway.backends.litellm_backend import map_exception
from turnroute.gateway.backends.openai_http import error_for_status, transport_error
from turnroute.gateway.errors import BackendFailed, BackendRejected, BackendUnavailable

CFG = BackendConfig(name="mlx", type="openai", urls=("http://127.0.0.1:8080/v1",), model="m")


@pytest.mark.parametrize("status, body, kind, client_status, needle", [
    (400, b'{"error": {"message": "context too long"}}', BackendRejected, 400, "context too long"),
    (400, b'{"error": "This model does not support tool calling"}', BackendRejected, 400, "tool calling"),
    (404, b'{"error": "Cannot find an appropriate cached snapshot folder"}', BackendRejected, 400, "snapshot"),
    (401, b'{"error": {"message": "bad key"}}', BackendRejected, 400, "bad key"),
    (429, b'{"error": {"message": "slow down"}}', BackendRejected, 429, "slow down"),
    (503, b'{"status": "unavailable"}', BackendUnavailable, 529, "not ready"),
    (500, b"Internal Server Error", BackendFailed, 500, "Internal Server Error"),
])
def test_upstream_status_mapping(status, body, kind, client_status, needle):
    err = error_for_status(CFG, CFG.url, status, body)
    assert isinstance(err, kind) and err.status == client_status
    assert needle in err.message and "mlx" in err.message and CFG.url in err.message
    assert err.envelope()["type"] == "error"


def test_tool_refusal_is_marked_so_the_router_can_fall_back():
    err = error_for_status(CFG, CFG.url, 400, b'{"error": "model does not support tool calling"}')
    assert err.capability == "tools"
    assert error_for_status(CFG, CFG.url, 400, b'{"error": "context too long"}').capability is None


@pytest.mark.parametrize("exc, kind", [
    (aiohttp.ClientConnectorError(SimpleNamespace(ssl=False, host="127.0.0.1", port=8080),
                                  OSError(111, "Connection refused")), BackendUnavailable),
    (asyncio.TimeoutError(), BackendUnavailable),
    (aiohttp.ServerTimeoutError("read timed out"), BackendUnavailable),
    (aiohttp.ServerDisconnectedError(), BackendFailed),
    (aiohttp.ClientPayloadError("Response payload is not completed"), BackendFailed),
])
def test_transport_errors(exc, kind):
    err = transport_error(CFG, CFG.url, exc)
    assert isinstance(err, kind) and "mlx" in err.message


class _LiteLLMError(Exception):
    def __init__(self, message, status_code=None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@pytest.mark.parametrize("name, message, status, kind, client_status", [
    ("InternalServerError", "litellm.InternalServerError: Lm_studioException - Connection error.", 500,
     BackendUnavailable, 529),
    ("BadRequestError", "Lm_studioException - model does not support tool calling", 400, BackendRejected, 400),
    ("RateLimitError", "too many", 429, BackendRejected, 429),
    ("APIError", "boom", 500, BackendFailed, 500),
])
def test_litellm_exception_mapping(name, message, status, kind, client_status):
    exc = type(name, (_LiteLLMError,), {})(message, status)
    err = map_exception(CFG, exc)
    assert isinstance(err, kind) and err.status == client_status
