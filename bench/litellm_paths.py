"""Which way through LiteLLM costs least per streamed chunk: measured, in one process, in one run.

Each path streams the same ~80 KB OpenAI body (bench/request.py) from two bench/fake_backend.py
servers, one answering with 1 content chunk and one with 100; the CPU time of this process
(all threads) per stream is taken for both, so

    per chunk = (CPU per 100-chunk stream - CPU per 1-chunk stream) / 99
    per request = CPU per 1-chunk stream (request building, connection, headers, first chunk)

Paths (every one but the last two keeps LM Studio reached "through LiteLLM"):

* ``acompletion``      ``litellm.acompletion(stream=True)``, chunks ``model_dump``-ed (the route
                       before this change)
* ``completion_stream`` the same call, iterating the openai SDK stream under LiteLLM's
                       CustomStreamWrapper (``resp.completion_stream``): no wrapper, SDK models kept
* ``litellm_httpx``    LiteLLM's provider config builds URL/headers/body, LiteLLM's own pooled
                       httpx client (``get_async_httpx_client``) streams, our SSE decoder parses
* ``resolved_aiohttp`` ``gateway.backends.LiteLLMBackend``: LiteLLM's provider config builds the
                       request, the gateway's pooled aiohttp session streams (the route now)
* ``direct_aiohttp``   ``gateway.backends.OpenAIHTTPBackend`` (the mlx route; no LiteLLM at all)

    .venv/bin/python bench/litellm_paths.py [--streams 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docsections  # noqa: E402
import peers  # noqa: E402
import request as rq  # noqa: E402
from run import free_port, rss_mb  # noqa: E402

from turnroute.gateway.backends import LiteLLMBackend, OpenAIHTTPBackend  # noqa: E402
from turnroute.gateway.backends.base import BackendConfig, Supports  # noqa: E402
from turnroute.gateway.backends.litellm_backend import load_litellm  # noqa: E402
from turnroute.gateway.protocol.sse import SSEDecoder  # noqa: E402

Path_ = Callable[[str, dict[str, Any]], AsyncIterator[dict[str, Any]]]


def _cfg(base: str, kind: str, model: str) -> BackendConfig:
    return BackendConfig(name="bench", type=kind, urls=(base,), model=model, supports=Supports(tools=True))


async def acompletion(base: str, body: dict) -> AsyncIterator[dict]:
    litellm = load_litellm()
    args = {k: v for k, v in body.items() if k != "model"}
    resp = await litellm.acompletion(model="lm_studio/fake-model", api_base=base, api_key="lm-studio",
                                     num_retries=0, **args)
    async for chunk in resp:
        yield chunk.model_dump(exclude_none=False)


async def completion_stream(base: str, body: dict) -> AsyncIterator[dict]:
    litellm = load_litellm()
    args = {k: v for k, v in body.items() if k != "model"}
    resp = await litellm.acompletion(model="lm_studio/fake-model", api_base=base, api_key="lm-studio",
                                     num_retries=0, **args)
    async for chunk in resp.completion_stream:
        yield chunk.model_dump(exclude_none=False)


_backends: dict[tuple[str, str], Any] = {}


def _backend(base: str, kind: str) -> Any:
    if (base, kind) not in _backends:
        cls = LiteLLMBackend if kind == "litellm" else OpenAIHTTPBackend
        _backends[(base, kind)] = cls(_cfg(base, kind, "lm_studio/fake-model" if kind == "litellm" else "fake-model"))
    return _backends[(base, kind)]


async def litellm_httpx(base: str, body: dict) -> AsyncIterator[dict]:
    litellm = load_litellm()
    from litellm.llms.custom_httpx.http_handler import get_async_httpx_client

    b = _backend(base, "litellm")
    _, endpoint, data, headers = await b.prepare(body, None, True)
    client = get_async_httpx_client(llm_provider=litellm.LlmProviders.LM_STUDIO)
    resp = await client.post(endpoint, data=data, headers=headers, stream=True)
    dec = SSEDecoder()
    try:
        async for raw in resp.aiter_bytes():
            for item in dec.feed(raw):
                if isinstance(item, dict):
                    yield item
    finally:
        await resp.aclose()


async def resolved_aiohttp(base: str, body: dict) -> AsyncIterator[dict]:
    async for c in _backend(base, "litellm").stream(body, session_id=None):
        yield c


async def direct_aiohttp(base: str, body: dict) -> AsyncIterator[dict]:
    async for c in _backend(base, "openai").stream(body, session_id=None):
        yield c


DESCRIBE = {
    "acompletion": "`litellm.acompletion(stream=True)`, the route before (stream wrapper + openai SDK models)",
    "completion_stream": "same call, the SDK stream under LiteLLM's wrapper",
    "litellm_httpx": "LiteLLM's provider config builds the request, LiteLLM's pooled httpx client streams it",
    "resolved_aiohttp": "LiteLLM's provider config builds the request, the gateway's aiohttp pool streams it (the route now)",
    "direct_aiohttp": "the mlx route: no LiteLLM",
}

PATHS: dict[str, Path_] = {f.__name__: f for f in (acompletion, completion_stream, litellm_httpx,
                                                    resolved_aiohttp, direct_aiohttp)}


async def cpu_per_stream(path: Path_, base: str, bodies: list[dict], n: int, chunks: int) -> float:
    """CPU ms of this process per stream; fails loudly if a stream is not complete."""
    async def one(i: int) -> None:
        got = 0
        async for c in path(base, bodies[i % len(bodies)]):
            got += sum(1 for ch in c.get("choices") or () if (ch.get("delta") or {}).get("content"))
        if got != chunks:
            raise SystemExit(f"{path.__name__}: {got} content chunks, expected {chunks}")

    for i in range(3):
        await one(i)
    c0 = time.process_time()
    for i in range(n):
        await one(i)
    return (time.process_time() - c0) / n * 1000


async def main_async(a, tmp: Path) -> list[tuple[str, float, float]]:
    ports = {1: free_port(), 100: free_port()}
    fakes = [peers.spawn(f"fake{n}", [sys.executable, str(peers.REPO / "bench" / "fake_backend.py"),
                                      "--port", str(p), "--chunks", str(n)], tmp) for n, p in ports.items()]
    bodies = [rq.openai_body(rq.anthropic_body(s, stream=True)) for s in rq.STEPS]
    out = []
    try:
        import httpx
        for _ in range(100):
            try:
                if all(httpx.get(f"http://127.0.0.1:{p}/health").status_code == 200 for p in ports.values()):
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        load_litellm()
        for name in a.paths:
            path = PATHS[name]
            one = await cpu_per_stream(path, f"http://127.0.0.1:{ports[1]}/v1", bodies, a.streams, 1)
            hundred = await cpu_per_stream(path, f"http://127.0.0.1:{ports[100]}/v1", bodies, a.streams, 100)
            out.append((name, one, (hundred - one) / 99))
            print(f"{name:<18} per request {one:7.2f} ms CPU   per chunk {(hundred - one) / 99 * 1000:7.1f} µs CPU"
                  f"   (+{hundred - one:6.2f} ms per 100 chunks)", flush=True)
        print(f"RSS of this process after all paths: {rss_mb(os.getpid()):.0f} MB")
    finally:
        for b in _backends.values():
            await b.aclose()
        for f in fakes:
            f.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=60, help="streams per path and chunk count")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    a.paths = [p for p in a.paths.split(",") if p]
    load0 = open("/proc/loadavg").read().split()[0]
    print(f"load average at start: {load0} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="litellm-paths-") as tmp:
        rows = asyncio.run(main_async(a, Path(tmp)))
    cmd = "python bench/litellm_paths.py" + "".join(f" {x}" for x in sys.argv[1:])
    text = "\n".join([
        "## The LiteLLM route's cost per request and per chunk", "",
        f"Generated by `bench/litellm_paths.py` — command `{cmd}`; load average {load0} at start, "
        f"{open('/proc/loadavg').read().split()[0]} at end. CPU of one process per stream of the same "
        f"~80 KB body from bench/fake_backend.py, {a.streams} streams of 1 chunk and of 100 chunks per path; "
        "per chunk = (100-chunk − 1-chunk) / 99. The fake's own CPU is not counted.", "",
        "| path | CPU ms per request | CPU µs per chunk | + ms per 100 chunks |", "|---|---|---|---|",
        *(f"| `{n}` — {DESCRIBE[n]} | {one:.2f} | {per * 1000:.1f} | {per * 100:.2f} |" for n, one, per in rows), ""])
    print(text)
    if not a.no_write:
        docsections.write(peers.REPO / "docs" / "benchmarks.md", "litellm-paths", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
