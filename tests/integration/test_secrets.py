"""A backend key the gateway holds never reaches a log line or a response, even when a backend
echoes it back — the path on which a key could actually leak (the client's own key is never read).

The key has no recognisable format ("sk-…", "Bearer …"), so only scrubbing the gateway's known
secret values catches it; both routes are covered, the direct one and LiteLLM's.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

BACKEND_KEY = "lmstudio-local-7f3a9c0e2b4d6f81"


@pytest.mark.parametrize("kind", ["openai", "litellm"])
def test_a_backend_echoing_its_key_leaks_it_nowhere(tmp_path, kind):
    fake = FakeOpenAI()
    try:
        model = "lm_studio/fake-model" if kind == "litellm" else "fake-model"
        cfg = gateway_config({"only": openai_backend(fake.url, type=kind, model=model,
                                                     api_key_env="TR_TEST_BACKEND_KEY")},
                             rules=[], log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path, env={"TR_TEST_BACKEND_KEY": BACKEND_KEY}) as gw:
            echo = f"Incorrect API key provided: {BACKEND_KEY}. You sent Authorization: Bearer {BACKEND_KEY}"
            fake.script(Reply.error(401, echo), Reply.error(401, echo))
            body = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
            plain = httpx.post(gw.base + "/v1/messages", json=body, timeout=30)
            streamed = httpx.post(gw.base + "/v1/messages", json={**body, "stream": True}, timeout=30)
            # The key really travelled to the backend, so this path could leak it.
            assert any(BACKEND_KEY in r.headers.get("authorization", "") for r in fake.requests)
            assert plain.status_code == 400 and "Incorrect API key provided" in plain.text
            recs = gw.wait_records(2)
            assert [r["status"] for r in recs[-2:]] == [400, 400]
            everything = (plain.text + streamed.text + gw.log_path.read_text() + gw.output()
                          + httpx.get(gw.base + "/api/recent").text + httpx.get(gw.base + "/health").text)
            assert BACKEND_KEY not in everything
            assert "[redacted]" in plain.text
    finally:
        fake.stop()
