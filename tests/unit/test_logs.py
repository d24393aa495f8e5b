"""RequestLog: schema, nulls-not-zeros, rotation, no lost lines, redaction, torn lines."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from turnroute.gateway.observe.log import RequestLog
from turnroute.gateway.observe.record import SCHEMA_KEYS, new_record, redact
from turnroute.gateway.paths import default_log_path
from turnroute.gateway.observe.reader import last_for_session, read_records

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("sk-ant-api03-SECRETSECRETSECRET", "sk-proj-ABCDEF123456", "tok_live_bearer_123456",
           "hunter2hunter2")


def lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def test_new_record_has_every_key_with_none_defaults():
    rec = new_record(id="req_1", route="mlx")
    assert set(rec) == set(SCHEMA_KEYS)
    assert rec["fallbacks"] == []
    assert rec["prompt_tokens"] is None and rec["cached_tokens"] is None and rec["ttft_ms"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"])
    with pytest.raises(TypeError):
        new_record(prompt_tokenz=1)


def test_end_writes_one_line_nulls_not_zeros(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl")
    rec = log.begin(new_record(id="req_1", route="lmstudio", status=200, prompt_tokens=100))
    time.sleep(0.01)
    written = log.end(rec)
    (line,) = lines(tmp_path / "r.jsonl")
    assert list(line) == list(SCHEMA_KEYS)           # fixed key set, fixed order
    assert line["cached_tokens"] is None             # unknown stays null, never 0
    assert line["uncached_tokens"] is None
    assert line["output_tokens"] is None
    assert line["latency_ms"] >= 10                  # filled from begin()
    assert written == line
    assert log.recent(5) == [line]
    assert (tmp_path / "r.jsonl").stat().st_mode & 0o777 == 0o600


def test_uncached_derived_and_known_zero_kept(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl")
    log.end(new_record(id="a", prompt_tokens=1000, cached_tokens=0, output_tokens=0))
    (line,) = lines(tmp_path / "r.jsonl")
    assert line["cached_tokens"] == 0 and line["uncached_tokens"] == 1000 and line["output_tokens"] == 0


def test_prompt_only_when_opted_in(tmp_path):
    off = RequestLog(tmp_path / "off.jsonl")
    off.end(new_record(id="a", prompt="explain this code"))
    assert "prompt" not in lines(tmp_path / "off.jsonl")[0]
    assert b"explain this code" not in (tmp_path / "off.jsonl").read_bytes()
    on = RequestLog(tmp_path / "on.jsonl", log_prompts=True)
    on.end(new_record(id="b", prompt="explain this code, key sk-ant-api03-SECRETSECRETSECRET"))
    line = lines(tmp_path / "on.jsonl")[0]
    assert line["prompt"].startswith("explain this code")
    assert "SECRETSECRET" not in line["prompt"]


def test_redact_drops_unknown_keys_and_scrubs_secrets():
    rec = new_record(id="a", reason="Bearer tok_live_bearer_123456 was sent",
                     error_message='upstream said {"x-api-key": "hunter2hunter2"} and sk-proj-ABCDEF123456',
                     fallbacks=["mlx", "Authorization: Bearer tok_live_bearer_123456"])
    rec["headers"] = {"authorization": "Bearer tok_live_bearer_123456"}
    rec["api_key"] = "sk-ant-api03-SECRETSECRETSECRET"
    out = redact(rec)
    assert "headers" not in out and "api_key" not in out
    blob = orjson.dumps(out).decode()
    for s in SECRETS:
        assert s not in blob
    assert "[redacted]" in out["reason"] and out["fallbacks"][0] == "mlx"
    assert "upstream said" in out["error_message"]


def test_nothing_written_contains_a_key(tmp_path):
    """Grep everything the log writes (file, rotated files, recent()) for the secrets."""
    log = RequestLog(tmp_path / "r.jsonl", max_bytes=600, keep=10)
    for i in range(20):
        rec = log.begin(new_record(id=f"r{i}", model="sk-ant-api03-SECRETSECRETSECRET",
                                   error_message=f"authorization=Bearer tok_live_bearer_123456 #{i}"))
        rec["request_headers"] = {"x-api-key": "hunter2hunter2"}
        log.end(rec)
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    blob += orjson.dumps(log.recent(100))
    assert len(list(tmp_path.glob("r.jsonl*"))) > 2
    for s in SECRETS:
        assert s.encode() not in blob


def test_rotation_keeps_every_line_and_at_most_keep_files(tmp_path):
    path = tmp_path / "r.jsonl"
    log = RequestLog(path, max_bytes=2000, keep=50)
    for i in range(200):
        log.end(new_record(id=f"req_{i}", route="mlx"))
    files = sorted(tmp_path.glob("r.jsonl*"))
    assert len(files) > 3
    ids = [r["id"] for r in read_records(path)]
    assert ids == [f"req_{i}" for i in range(200)]   # oldest first, nothing lost
    for f in files:
        assert f.stat().st_size < 2000 + 1000

    small = RequestLog(tmp_path / "s.jsonl", max_bytes=500, keep=2)
    for i in range(100):
        small.end(new_record(id=f"s{i}"))
    names = {p.name for p in tmp_path.glob("s.jsonl*") if not p.name.endswith(".lock")}
    assert names <= {"s.jsonl", "s.jsonl.1", "s.jsonl.2"}


def test_two_writers_sharing_one_file_with_rotation(tmp_path):
    """Two RequestLog objects (as two processes would) race on rotation: no torn or lost line."""
    path = tmp_path / "r.jsonl"
    a, b = RequestLog(path, max_bytes=4000, keep=1000), RequestLog(path, max_bytes=4000, keep=1000)

    def work(log: RequestLog, tag: str) -> None:
        for i in range(300):
            log.end(new_record(id=f"{tag}{i}", reason="x" * 40))

    threads = [threading.Thread(target=work, args=(lg, t)) for lg, t in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("r.jsonl*") if not p.name.endswith(".lock"))
    parsed = [orjson.loads(x) for x in raw.splitlines() if x]   # every line is whole JSON
    assert sorted(r["id"] for r in parsed) == sorted([f"a{i}" for i in range(300)] + [f"b{i}" for i in range(300)])


def test_flush_in_flight_writes_interrupted_lines_once(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl")
    done = log.begin(new_record(id="done", status=200))
    log.end(done)
    streaming = log.begin(new_record(id="streaming", status=200, route="mlx"))
    waiting = log.begin(new_record(id="waiting", route="lmstudio"))
    assert log.in_flight == 2
    assert log.flush_in_flight() == 2
    assert log.end(streaming) is None                  # no duplicate when the request ends later
    by_id = {r["id"]: r for r in lines(tmp_path / "r.jsonl")}
    assert set(by_id) == {"done", "streaming", "waiting"}
    assert by_id["streaming"]["error"] == "interrupted" and by_id["streaming"]["status"] == 200
    assert by_id["waiting"]["status"] is None and by_id["waiting"]["latency_ms"] is not None
    log.begin(new_record(id="x"))
    assert log.flush_in_flight(status=503) == 1
    assert lines(tmp_path / "r.jsonl")[-1]["status"] == 503


_CHILD = """
import os, signal, sys, time
from turnroute.gateway.observe.log import RequestLog, new_record
log = RequestLog(sys.argv[1])
if sys.argv[2] == "term":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))   # what uvicorn/the app does
for i in range(50):
    log.end(log.begin(new_record(id=f"done{i}", status=200)))
log.begin(new_record(id="in_flight", route="mlx"))
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("how", ["term", "kill"])
def test_no_line_lost_on_sigterm_or_kill(tmp_path, how):
    path = tmp_path / "r.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), how], stdout=subprocess.PIPE,
                             env=env)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    child.send_signal(signal.SIGTERM if how == "term" else signal.SIGKILL)
    child.wait(timeout=10)
    ids = [r["id"] for r in lines(path)]
    assert ids[:50] == [f"done{i}" for i in range(50)]   # completed lines: never buffered, never lost
    if how == "term":                                    # graceful exit: atexit flushes in-flight
        assert ids[50:] == ["in_flight"]
        assert lines(path)[-1]["error"] == "interrupted"


def test_torn_last_line_is_tolerated(tmp_path):
    path = tmp_path / "r.jsonl"
    log = RequestLog(path)
    log.end(new_record(id="a", session="s1"))
    log.end(new_record(id="b", session="s1"))
    with open(path, "ab") as fh:
        fh.write(b'{"ts":"2025-01-01T00:00:00.000Z","id":"torn","sess')
    assert [r["id"] for r in read_records(path)] == ["a", "b"]
    assert last_for_session(path, "s1")["id"] == "b"
    RequestLog(path).end(new_record(id="c", session="s1"))  # a new writer starts a fresh line
    assert [r["id"] for r in read_records(path)] == ["a", "b", "c"]


def test_recent_is_bounded(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl", recent_size=5)
    for i in range(8):
        log.end(new_record(id=str(i)))
    assert [r["id"] for r in log.recent(100)] == ["3", "4", "5", "6", "7"]
    assert [r["id"] for r in log.recent(2)] == ["6", "7"]


def test_default_log_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TURNROUTE_LOG", str(tmp_path / "x" / "custom.jsonl"))
    assert default_log_path() == tmp_path / "x" / "custom.jsonl"
    assert (tmp_path / "x").is_dir()
    monkeypatch.delenv("TURNROUTE_LOG")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_log_path() == tmp_path / "state" / "turnroute" / "requests.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_log_path() == tmp_path / "home" / ".local" / "state" / "turnroute" / "requests.jsonl"


def test_write_error_does_not_raise(tmp_path):
    target = tmp_path / "dir-not-file"
    target.mkdir()
    log = RequestLog(target)
    assert log.end(new_record(id="a"))["id"] == "a"  # still returned and kept for /ui
    assert log.write_errors == 1 and log.recent(1)[0]["id"] == "a"
