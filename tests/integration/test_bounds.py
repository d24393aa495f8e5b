"""Bounded everything, tried against the real gateway: a chunked upload far over the limit, more
concurrent requests than allowed, a header big enough to bloat a log line, /api/recent paging."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

LIMIT = 1024 * 1024
BODY = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with FakeOpenAI() as fake:
        tmp = tmp_path_factory.mktemp("bounds")
        cfg = gateway_config({"mlx": openai_backend(fake.url, tools=False)}, rules=[{"name": "r", "route": "mlx"}],
                             log_path=tmp / "r.jsonl",
                             extra={"limits": {"max_body_bytes": LIMIT, "max_concurrent": 2}})
        with Gateway(cfg, tmp) as gw:
            yield gw, fake


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_chunked_upload_far_over_the_limit_is_refused_while_reading(rig):
    gw, _ = rig
    before = peak_rss_kb(gw.proc.pid)
    piece = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent = 0
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                  b"transfer-encoding: chunked\r\n\r\n")
        try:
            while sent < 64 * LIMIT:          # 64 MiB offered; the server stops taking it at ~1 MiB
                s.sendall(frame)
                sent += len(piece)
        except OSError:
            pass                              # the server answered and closed: expected
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                data = s.recv(65536)
                if not data:
                    break
                reply += data
        except OSError:
            pass
    assert sent < 64 * LIMIT, "the server read the whole upload"
    rec = gw.wait_records(1)
    assert any(r["status"] == 413 and r["error"] == "request_too_large" for r in rec)
    if reply:
        assert reply.startswith(b"HTTP/1.1 413")
    assert peak_rss_kb(gw.proc.pid) - before < 32 * 1024     # never held the 64 MiB


def test_more_concurrent_requests_than_allowed_get_a_529_at_once(rig):
    gw, fake = rig
    fake.script(Reply(text="slow", delay=3.0), Reply(text="slow", delay=3.0))
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        httpx.post(gw.base + "/v1/messages", json=BODY, timeout=30).status_code)) for _ in range(2)]
    for t in threads:
        t.start()
    fake.wait_for_requests(2)
    third = httpx.post(gw.base + "/v1/messages", json=BODY, timeout=30)
    assert third.status_code == 529
    assert third.json()["error"]["type"] == "overloaded_error"
    assert "limits.max_concurrent" in third.json()["error"]["message"]
    for t in threads:
        t.join(30)
    assert results == [200, 200]
    assert httpx.post(gw.base + "/v1/messages", json=BODY, timeout=30).status_code == 200   # slots freed


def test_a_huge_header_value_cannot_bloat_the_log_line(rig):
    gw, _ = rig
    r = httpx.post(gw.base + "/v1/messages", json={**BODY, "messages": [{"role": ["x" * 200_000]}]},
                   headers={"x-claude-code-session-id": "s" * 30_000}, timeout=30)
    assert r.status_code == 400 and len(r.content) < 1000
    line = max(gw.log_path.read_bytes().splitlines(), key=len)
    assert len(line) < 8 * 1024
    assert orjson.loads(line)["id"]


def test_recent_is_paged_and_says_when_there_is_more(rig):
    gw, _ = rig
    for _ in range(5):
        assert httpx.post(gw.base + "/v1/messages", json=BODY, timeout=30).status_code == 200
    total = len(gw.wait_records(5))
    page = httpx.get(gw.base + "/api/recent", params={"n": 2}).json()
    older = httpx.get(gw.base + "/api/recent", params={"n": 2, "skip": 2}).json()
    assert len(page["records"]) == 2 and page["more"] is True
    assert older["records"][-1]["ts"] <= page["records"][0]["ts"]
    assert {r["id"] for r in older["records"]}.isdisjoint(r["id"] for r in page["records"])
    everything = httpx.get(gw.base + "/api/recent", params={"n": 1000}).json()
    assert len(everything["records"]) == total and everything["more"] is False
