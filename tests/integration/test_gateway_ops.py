"""Operating the gateway: hot reload, client disconnects, fallback when down, env pin, shutdown."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

Q = [{"role": "user", "content": "explain the design"}]


def post(gw, body=None, **kw):
    return httpx.post(gw.base + "/v1/messages", json=body or {"model": "m", "max_tokens": 50, "messages": Q},
                      timeout=30, **kw)


@pytest.fixture
def two(tmp_path):
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = gateway_config({"mlx": openai_backend(a.url, tools=False), "lmstudio": openai_backend(b.url)},
                             rules=[{"name": "all-to-mlx", "route": "mlx"}], log_path=tmp_path / "r.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            yield gw, cfg, a, b


def wait_until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_hot_reload_applies_good_edits_and_keeps_the_last_good_config(two):
    gw, cfg, a, b = two
    assert post(gw).headers["x-turnroute-route"] == "mlx"
    cfg["rules"] = [{"name": "all-to-lmstudio", "route": "lmstudio"}]
    gw.write_config(cfg)
    assert wait_until(lambda: post(gw).headers["x-turnroute-route"] == "lmstudio"), gw.output()
    # A broken edit (unknown backend on a known line) is rejected with file:line; rules stay.
    gw.config_path.write_text(gw.config_path.read_text().replace("route: lmstudio", "route: lmstuido"))
    assert wait_until(lambda: "lmstuido" in gw.output())
    out = gw.output()
    assert "config reload rejected" in out and "turnroute.yaml:" in out
    r = post(gw)
    assert r.status_code == 200 and r.headers["x-turnroute-route"] == "lmstudio"
    assert httpx.get(gw.base + "/health").json()["config_error"]


def test_client_disconnect_cancels_upstream_and_is_logged_499(two):
    gw, _, a, _ = two
    a.script(Reply(text="slow " * 50, chunks=50, chunk_delay=0.2))     # 10 s if nobody hangs up
    with httpx.Client(timeout=30) as c:
        with c.stream("POST", gw.base + "/v1/messages",
                      json={"model": "m", "max_tokens": 50, "stream": True, "messages": Q}) as r:
            for _ in r.iter_bytes():
                break          # read the first bytes, then hang up
    assert wait_until(lambda: any(rec["status"] == 499 for rec in gw.records()))
    rec = [r for r in gw.records() if r["status"] == 499][0]
    assert rec["error"] == "client_disconnect" and rec["route"] == "mlx" and rec["latency_ms"] < 6000


def test_fallback_when_the_first_backend_is_down(tmp_path):
    with FakeOpenAI() as up:
        cfg = gateway_config({"lmstudio": openai_backend("http://127.0.0.1:9/v1"),
                              "mlx": openai_backend(up.url, tools=False)},
                             rules=[{"name": "tools", "route": "lmstudio", "fallback": ["mlx"]}],
                             log_path=tmp_path / "r.jsonl")
        up.script(Reply(text="from mlx"))
        with Gateway(cfg, tmp_path) as gw:
            client = anthropic.Anthropic(base_url=gw.base, api_key="x", max_retries=0)
            msg = client.messages.create(model="m", max_tokens=100, messages=Q)
            assert msg.content[0].text == "from mlx"
            rec = gw.wait_records(1)[-1]
            assert rec["route"] == "mlx" and rec["fallbacks"] == ["lmstudio"] and rec["rule"] == "tools"


def test_turnroute_mode_env_pins_every_request(tmp_path):
    with FakeOpenAI() as a, FakeOpenAI() as b:
        cfg = gateway_config({"mlx": openai_backend(a.url, tools=False), "lmstudio": openai_backend(b.url)},
                             log_path=tmp_path / "r.jsonl")
        with Gateway(cfg, tmp_path, env={"TURNROUTE_MODE": "lmstudio"}) as gw:
            r = post(gw)
            assert r.status_code == 200 and r.headers["x-turnroute-route"] == "lmstudio"
            assert r.headers["x-turnroute-rule"] == "override:env"
            bad = post(gw, headers={"x-turnroute-route": "nowhere"})
            assert bad.status_code == 400 and "nowhere" in bad.json()["error"]["message"]


def test_sigterm_mid_request_still_leaves_a_log_line(two):
    gw, _, a, _ = two
    a.script(Reply(text="never finished", delay=20))
    import threading
    t = threading.Thread(target=lambda: post(gw), daemon=True)
    t.start()
    assert wait_until(lambda: len(a.requests) == 1)
    gw.stop()
    recs = gw.records()
    assert recs and recs[-1]["route"] == "mlx" and recs[-1]["error"] is not None


def test_metrics_and_ui_of_a_live_gateway(two):
    gw, _, a, _ = two
    a.script(Reply(text="x", usage={"prompt_tokens": 50, "completion_tokens": 1, "cached_tokens": 40}))
    assert post(gw).status_code == 200
    text = httpx.get(gw.base + "/metrics").text
    assert 'turnroute_requests_total{route="mlx"' in text and "turnroute_cached_tokens_total" in text
    recent = httpx.get(gw.base + "/api/recent").json()
    assert recent["records"][-1]["rule"] == "all-to-mlx"
    assert httpx.get(gw.base + "/ui").status_code == 200


@pytest.mark.parametrize("same_session", [True, False])
def test_one_prefill_at_a_time_per_session_on_a_direct_server(two, same_session):
    """mlx_lm.server slows every prefill it runs concurrently; a session's second request waits
    for the first one's first token, while other sessions are never held back."""
    import threading

    gw, _, a, _ = two
    a.script(Reply(text="first", delay=1.0), Reply(text="second", delay=1.0))
    results = []

    def send(session):
        r = post(gw, {"model": "m", "max_tokens": 50, "stream": True, "messages": Q},
                 headers={"x-claude-code-session-id": session})
        results.append(r.status_code)

    threads = [threading.Thread(target=send, args=("s1" if same_session else f"s{i}",)) for i in range(2)]
    threads[0].start()
    assert wait_until(lambda: len(a.requests) >= 1)    # the first is at the backend, prefilling
    threads[1].start()
    for t in threads:
        t.join(30)
    assert results == [200, 200]
    gap = a.requests[1].at - a.requests[0].at
    assert (gap >= 0.9) if same_session else (gap < 0.8), gap


def test_every_backend_down_names_each_one_and_is_retryable(tmp_path):
    cfg = gateway_config({"lmstudio": openai_backend("http://127.0.0.1:9/v1"),
                          "mlx": openai_backend("http://127.0.0.1:7/v1", tools=False)},
                         rules=[{"name": "tools", "route": "lmstudio", "fallback": ["mlx"]}],
                         log_path=tmp_path / "r.jsonl")
    with Gateway(cfg, tmp_path) as gw:
        r = post(gw)
        assert r.status_code == 529
        msg = r.json()["error"]["message"]
        assert "127.0.0.1:9" in msg and "127.0.0.1:7" in msg
        rec = gw.wait_records(1)[-1]
        assert (rec["route"], rec["fallbacks"], rec["status"]) == ("mlx", ["lmstudio"], 529)


def test_hanging_up_during_prefill_frees_the_session_at_once(two):
    """Esc during a long prefill: the upstream request is dropped, a 499 is logged right away and
    the session's next request does not wait behind the abandoned prefill."""
    import socket

    gw, _, a, _ = two
    a.script(Reply(text="late", delay=8.0), Reply(text="next"))
    body = b'{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"explain"}]}'
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
              b"x-claude-code-session-id: s-esc\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    assert wait_until(lambda: len(a.requests) == 1)
    t0 = time.monotonic()
    s.close()
    assert wait_until(lambda: any(r["status"] == 499 for r in gw.records()), timeout=5)
    assert time.monotonic() - t0 < 5
    r = post(gw, {"model": "m", "max_tokens": 50, "stream": True, "messages": Q},
             headers={"x-claude-code-session-id": "s-esc"})
    assert r.status_code == 200 and "next" in r.text
    assert time.monotonic() - t0 < 6.5          # not held behind the 8 s prefill


def test_a_stream_that_just_stops_is_retried_not_taken_as_the_answer(two):
    gw, _, a, _ = two
    a.script(Reply(text="partial words", chunks=3, finish_reason=None, done=False, usage=None))
    client = anthropic.Anthropic(base_url=gw.base, api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as err:
        with client.messages.stream(model="m", max_tokens=50, messages=Q) as s:
            s.get_final_message()
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert "without finishing" in err.value.body["error"]["message"]


def test_odd_but_valid_inputs_never_crash(tmp_path):
    with FakeOpenAI() as a:
        cfg = gateway_config({"mlx": openai_backend(a.url, tools=False)},
                             rules=[{"name": "анализ", "route": "mlx"}], log_path=tmp_path / "r.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            r = post(gw, {"model": "m", "max_tokens": 50, "messages": Q, "output_config": "weird"})
            assert r.status_code == 200, r.text
            assert r.headers["x-turnroute-rule"] == "%D0%B0%D0%BD%D0%B0%D0%BB%D0%B8%D0%B7"
            deep: dict = {"x": 1}
            for _ in range(300):
                deep = {"d": deep}
            history = [{"role": "user", "content": "go"},
                       {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "W", "input": deep}]},
                       {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]
            ct = httpx.post(gw.base + "/v1/messages/count_tokens", json={"model": "m", "messages": history})
            assert ct.status_code == 200 and ct.json()["input_tokens"] > 300
            assert post(gw, {"model": "m", "max_tokens": 50, "messages": history}).status_code == 200
            assert [r["status"] for r in gw.wait_records(3)] == [200, 200, 200]
