"""Property: whatever body a client sends, the answer is never a 5xx and the gateway never logs a
crash — only a 2xx, or a 4xx in Anthropic's envelope naming the field — and each request gets
exactly one log line.

Bodies come from real Claude Code request shapes with one to three random mutations (wrong
types, deleted fields, JSON nested up to 1,000 levels, malformed output schemas) and from
Messages-API-shaped bodies whose fields are randomly junk; both endpoints, both routes (the
direct HTTP backend and LiteLLM), streaming and not.
"""

from __future__ import annotations

import os
import random

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures import cc_requests as cc
from tests.support import fuzz
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import Gateway, gateway_config, openai_backend

# Per property in CI; TURNROUTE_FUZZ_EXAMPLES=2500 for a long run (docs/reliability.md).
EXAMPLES = int(os.environ.get("TURNROUTE_FUZZ_EXAMPLES", "120"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SENT: list[str] = []   # request ids of every fuzz request, checked against the log at the end


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    mlx, lms = FakeOpenAI(), FakeOpenAI()
    tmp = tmp_path_factory.mktemp("fuzz")
    # The direct backend takes tools here, so tool schemas (nested as the client sent them) reach
    # its serialiser too; the shipped profile strips them for it.
    cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=True),
                          "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model",
                                                     json_schema=True)},
                         log_path=tmp / "requests.jsonl")
    with Gateway(cfg, tmp) as g, httpx.Client(base_url=g.base, timeout=30, trust_env=False) as client:
        g.client = client
        yield g
    mlx.stop()
    lms.stop()


def send(gw, raw: bytes, *, endpoint: str, route: str | None) -> httpx.Response:
    headers = {**cc.cc_headers(), "content-type": "application/json"}
    if route:
        headers["x-turnroute-route"] = route
    path = "/v1/messages" if endpoint == "messages" else "/v1/messages/count_tokens"
    r = gw.client.post(path, content=raw, headers=headers)
    SENT.append(r.headers.get("x-turnroute-request-id", "?"))
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        err = r.json()
        assert err["type"] == "error" and err["error"]["message"]
        assert len(err["error"]["message"]) < 1200, "an error message echoes the client's value"
    elif r.headers["content-type"].startswith("text/event-stream"):
        # An in-band error may only be a 4xx kind (the scripted backend's plain "ok" is not the
        # JSON a json_schema request asked for); never api_error, the gateway's own failure.
        assert b'"type":"api_error"' not in r.content, r.text[-500:]
    return r


@pytest.mark.parametrize("source", ["claude code", "api shapes"])
@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), endpoint=st.sampled_from(["messages", "count_tokens"]),
       route=st.sampled_from([None, "mlx", "lmstudio"]))
def test_no_body_ever_gets_a_5xx(gw, source, seed, endpoint, route):
    rng = random.Random(seed)
    body = fuzz.cc_body(rng) if source == "claude code" else fuzz.api_body(rng)
    send(gw, fuzz.encode(body, rng), endpoint=endpoint, route=route)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a":' * 5000,
                                 b"[" * 2000 + b"]" * 2000, b'{"model": 1e999}'])
def test_unparseable_bodies_are_a_400(gw, raw):
    r = send(gw, raw, endpoint="messages", route=None)
    assert r.status_code == 400


DEEP_300 = b"[" * 300 + b"]" * 300
# Finds of long runs (TURNROUTE_FUZZ_EXAMPLES, bench/hardening.py soak), kept as fixed cases.
FOUND = {
    "tool schema 300 deep, direct route": b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],'
                                          b'"tools":[{"name":"T","input_schema":{"type":"object","x":%s}}]}' % DEEP_300,
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", list(FOUND))
def test_former_finds_are_served(gw, name, stream):
    raw = FOUND[name].replace(b'"max_tokens"', b'"stream":%s,"max_tokens"' % (b"true" if stream else b"false"))
    assert send(gw, raw, endpoint="messages", route="mlx").status_code == 200


def test_every_fuzz_request_has_one_log_line_and_no_crash(gw):
    assert len(SENT) >= 2 * EXAMPLES
    records = {r["id"]: r for r in gw.wait_records(len(SENT))}
    missing = [i for i in SENT if i not in records]
    assert not missing, f"{len(missing)} requests without a log line"
    assert max(records[i]["status"] for i in SENT) < 500
    assert max(len(orjson.dumps(records[i])) for i in SENT) <= 16 * 1024, "a log line is unbounded"
    assert "Traceback" not in gw.output()
