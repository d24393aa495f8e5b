"""Small networking helpers for tests: free ports and waiting for an HTTP endpoint."""

from __future__ import annotations

import socket
import time
from typing import Callable

import httpx

__all__ = ["free_port", "wait_http"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str,
    timeout: float = 30.0,
    *,
    alive: Callable[[], bool] | None = None,
    ok: Callable[[httpx.Response], bool] | None = None,
    interval: float = 0.1,
) -> httpx.Response:
    """GET ``url`` until it answers 200 (or ``ok(response)`` is true); return that response.

    ``alive()`` is checked between attempts: when it returns False (e.g. the server process
    exited) this raises ``RuntimeError`` at once.  Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if alive is not None and not alive():
                raise RuntimeError(f"gave up on {url}: the server died (last: {last})")
            try:
                r = client.get(url)
                if (ok(r) if ok is not None else r.status_code == 200):
                    return r
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} not ready after {timeout:.0f}s (last: {last})")
            time.sleep(interval)
