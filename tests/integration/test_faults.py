"""The fault matrix: each backend, client and operator fault, on the direct route (``mlx``, plain
HTTP) and the LiteLLM route (``lmstudio``), asserting what the client receives and the log line.

The rule everywhere: a fault is told truthfully — a retryable failure is a 529 (or, once a stream
began, an ``overloaded_error`` event), a refusal is a 4xx carrying the backend's message, and
nothing ever looks like a successful but empty answer. Every request leaves one log line.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import httpx
import orjson
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

ROUTES = ["mlx", "lmstudio"]
READ_TIMEOUT = 1.5
Q = [{"role": "user", "content": "explain the design"}]


def backends(mlx_url: str, lms_url: str) -> dict:
    return {"mlx": openai_backend(mlx_url, tools=False, timeout={"connect": 1, "read": READ_TIMEOUT}),
            "lmstudio": openai_backend(lms_url, type="litellm", model="lm_studio/fake-model",
                                       timeout={"connect": 1, "read": READ_TIMEOUT})}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    mlx, lms = FakeOpenAI(), FakeOpenAI()
    tmp = tmp_path_factory.mktemp("faults")
    cfg = gateway_config(backends(mlx.url, lms.url), rules=[{"name": "all-to-mlx", "route": "mlx"}],
                         log_path=tmp / "requests.jsonl")
    with Gateway(cfg, tmp) as gw:
        yield gw, {"mlx": mlx, "lmstudio": lms}
    mlx.stop()
    lms.stop()


@pytest.fixture(autouse=True)
def _clean(request):
    if "rig" in request.fixturenames:
        for fake in request.getfixturevalue("rig")[1].values():
            fake.clear()
    yield


class Outcome:
    """What the client saw: status, the error type (from JSON or the SSE ``error`` event), text."""

    def __init__(self, r: httpx.Response):
        self.status = r.status_code
        self.request_id = r.headers.get("x-turnroute-request-id")
        self.events: list[tuple[str, dict]] = []
        self.error: str | None = None
        self.message = ""
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            for block in r.text.split("\n\n"):
                lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if "event" in lines:
                    self.events.append((lines["event"], orjson.loads(lines["data"])))
            for name, data in self.events:
                if name == "error":
                    self.error, self.message = data["error"]["type"], data["error"]["message"]
        elif r.content:
            data = r.json()
            if data.get("type") == "error":
                self.error, self.message = data["error"]["type"], data["error"]["message"]
        self.text = "".join(d["delta"].get("text", "") for n, d in self.events if n == "content_block_delta")


def call(gw, route: str, *, stream: bool, timeout: float = 30) -> Outcome:
    r = httpx.post(gw.base + "/v1/messages", timeout=timeout,
                   headers={"x-turnroute-route": route},
                   json={"model": "m", "max_tokens": 50, "stream": stream, "messages": Q})
    return Outcome(r)


def record(gw, request_id: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for rec in gw.records():
            if rec["id"] == request_id:
                return rec
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


# Backend faults: (name, reply, what a non-streaming and a streaming client see).
# OK: a 200 with the whole answer. RETRY: a retryable error — a 5xx/529 in the JSON envelope
# before anything was sent, an in-band ``overloaded_error`` once a stream began (LiteLLM reports
# some breaks as connection errors, 529, where the direct route says 500: both are retried).
# REFUSED: a 400 carrying the backend's message (not retried).
OK, RETRY, REFUSED = "ok", "retry", "refused"
RETRY_BEFORE = {(500, "api_error"), (529, "overloaded_error")}
RETRY_STARTED = {(200, "overloaded_error")}
BACKEND_FAULTS = [
    ("hanging before headers", Reply(text="late", delay=READ_TIMEOUT + 2), RETRY, RETRY),
    ("hanging mid-stream", Reply(text="a b c d", chunks=4, chunk_delay=READ_TIMEOUT + 2), RETRY, RETRY),
    ("trickling", Reply(text="one two three four five six", chunks=12, chunk_delay=0.05), OK, OK),
    ("garbage bytes", Reply(raw_bytes=b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n", done=False), RETRY, RETRY),
    ("non-JSON frames", Reply(raw_lines=["data: not json\n\n", "data: {oops\n\n"]), RETRY, RETRY),
    ("4xx", Reply.error(400, "context length 9000 exceeds 8192"), REFUSED, REFUSED),
    ("5xx", Reply.error(500, "CUDA out of memory"), RETRY, RETRY),
    ("503 loading", Reply.error(503, "model loading"), RETRY, RETRY),
    ("closed mid-stream", Reply(text="partial answer that never ends", chunks=6, cut_after=3), RETRY, RETRY),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("name, reply, plain, streamed", BACKEND_FAULTS, ids=[f[0] for f in BACKEND_FAULTS])
def test_backend_fault(rig, route, stream, name, reply, plain, streamed):
    gw, fakes = rig
    fakes[route].script(reply)
    expected = streamed if stream else plain
    out = call(gw, route, stream=stream)
    rec = record(gw, out.request_id)
    seen = (out.status, out.error)
    assert rec["route"] == route
    if expected == OK:
        assert seen == (200, None) and rec["status"] == 200 and rec["error"] is None
        assert out.text == "one two three four five six" or not stream
        return
    if expected == REFUSED:
        assert seen == (400, "invalid_request_error") and rec["status"] == 400
        assert "context length 9000 exceeds 8192" in out.message
    else:
        assert seen in RETRY_BEFORE | RETRY_STARTED, (seen, out.message)
        assert rec["status"] >= 500                    # logged as a failure, never as a 200
    assert route in out.message                        # names the backend that failed
    assert rec["error"] and rec["error_message"]


@pytest.mark.parametrize("route", ROUTES)
def test_backend_refused_then_killed_and_restarted(tmp_path, route):
    """Nothing listening → 529 (Claude Code retries); once the backend is back, served again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    cfg = gateway_config(backends(url, url), rules=[{"name": "r", "route": route}], log_path=tmp_path / "r.jsonl")
    with Gateway(cfg, tmp_path) as gw:
        down = call(gw, route, stream=True)
        assert (down.status, down.error) == (529, "overloaded_error") and route in down.message
        assert record(gw, down.request_id)["status"] == 529
        with FakeOpenAI(port=port) as back:
            back.script(Reply(text="back again"))
            up = call(gw, route, stream=True)
            assert (up.status, up.error, up.text) == (200, None, "back again")
        gone = call(gw, route, stream=False)          # killed again
        assert (gone.status, gone.error) == (529, "overloaded_error")
        assert [r["status"] for r in gw.wait_records(3)] == [529, 200, 529]


@pytest.mark.parametrize("route", ROUTES)
def test_client_gone_mid_stream_is_logged_499_and_frees_the_backend(rig, route):
    gw, fakes = rig
    fakes[route].script(Reply(text="slow " * 40, chunks=40, chunk_delay=0.2))
    with httpx.Client(timeout=30) as c:
        with c.stream("POST", gw.base + "/v1/messages", headers={"x-turnroute-route": route},
                      json={"model": "m", "max_tokens": 50, "stream": True, "messages": Q}) as r:
            rid = r.headers["x-turnroute-request-id"]
            next(r.iter_bytes())
    rec = record(gw, rid)
    assert rec["status"] == 499 and rec["error"] == "client_disconnect" and rec["latency_ms"] < 6000


def stream_in_thread(gw, route: str, out: list) -> threading.Thread:
    t = threading.Thread(target=lambda: out.append(call(gw, route, stream=True)), daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("route", ROUTES)
def test_sigterm_mid_stream_ends_it_with_overloaded_error_logged_as_shutdown(tmp_path, route):
    with FakeOpenAI() as mlx, FakeOpenAI() as lms:
        fakes = {"mlx": mlx, "lmstudio": lms}
        cfg = gateway_config(backends(mlx.url, lms.url), rules=[{"name": "r", "route": route}],
                             log_path=tmp_path / "r.jsonl", extra={"server": {"shutdown_grace": 1}})
        cfg["backends"][route]["timeout"]["read"] = 30
        fakes[route].script(Reply(text="word " * 60, chunks=60, chunk_delay=0.25),   # 15 s
                            Reply(text="quick", chunks=2, chunk_delay=0.1))
        gw = Gateway(cfg, tmp_path)
        try:
            slow, quick = [], []
            t1 = stream_in_thread(gw, route, slow)
            assert fakes[route].wait_for_requests(1, timeout=60)     # LiteLLM is imported on first use
            t2 = stream_in_thread(gw, route, quick)
            fakes[route].wait_for_requests(2)
            gw.proc.send_signal(signal.SIGTERM)
            t1.join(15)
            t2.join(15)
            assert gw.proc.wait(15) in (0, -signal.SIGTERM)   # uvicorn re-raises the signal
        finally:
            gw.stop()
        assert (quick[0].status, quick[0].error, quick[0].text) == (200, None, "quick"), [(r["id"], r["status"], r["error"], r["latency_ms"]) for r in gw.records()] + [slow[0].request_id, quick[0].request_id, slow[0].text[:30]]
        out = slow[0]
        assert out.status == 200 and out.error == "overloaded_error" and "shutting down" in out.message
        assert out.text.startswith("word")                     # what came before is kept
        with pytest.raises(httpx.ConnectError):                # no longer accepting
            httpx.get(gw.base + "/api/hello", timeout=2)
        recs = {r["id"]: r for r in gw.records()}
        assert recs[out.request_id]["error"] == "shutdown" and recs[out.request_id]["status"] == 529
        assert recs[quick[0].request_id]["status"] == 200


def test_bad_yaml_reload_keeps_serving_and_says_where(rig):
    gw, fakes = rig
    good = gw.config_path.read_text()
    try:
        gw.config_path.write_text(good + "\nrules: [unclosed\n")
        deadline = time.monotonic() + 10
        while "config reload rejected" not in gw.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "turnroute.yaml:" in gw.output()
        out = call(gw, "mlx", stream=True)
        assert (out.status, out.error, out.text) == (200, None, "ok")
        health = httpx.get(gw.base + "/health").json()
        assert "turnroute.yaml" in health["config_error"]
    finally:
        gw.config_path.write_text(good)


@pytest.mark.parametrize("where", ["full disk", "unwritable directory"])
def test_a_log_that_cannot_be_written_never_fails_a_request(tmp_path, where):
    if where == "full disk":
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full on this system")
        log_path = "/dev/full"
    else:
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where the log directory should be")
        log_path = str(blocker / "requests.jsonl")
    with FakeOpenAI() as mlx:
        cfg = gateway_config(backends(mlx.url, mlx.url), rules=[{"name": "r", "route": "mlx"}],
                             log_path=tmp_path / "unused.jsonl")
        cfg["log"]["path"] = log_path
        with Gateway(cfg, tmp_path) as gw:
            for stream in (False, True):
                out = call(gw, "mlx", stream=stream)
                assert (out.status, out.error) == (200, None)
            recent = httpx.get(gw.base + "/api/recent").json()["records"]
            assert [r["status"] for r in recent] == [200, 200]     # the line lives on in memory
            assert "Traceback" not in gw.output()


def test_health_is_503_when_no_backend_can_serve(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with FakeOpenAI() as up:
        cfg = gateway_config(backends(dead, up.url), log_path=tmp_path / "r.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            half = httpx.get(gw.base + "/health")
            assert half.status_code == 200 and half.json()["ok"] is True
            assert half.json()["backends"]["mlx"]["ok"] is False
            up.stop()
            down = httpx.get(gw.base + "/health")
            assert down.status_code == 503 and down.json()["ok"] is False
