"""`turnroute logs`: reading, filters, --since, the table, and --stats figures checked by hand.

The fixture (tests/fixtures/sample_log.jsonl, 13 lines, 10:00–10:12 UTC on 2025-06-01, one a
minute) holds: mlx and lmstudio answers, cached tokens on mlx only, a title call, a count_tokens,
a fallback mlx→lmstudio, a 529, a 499 client disconnect, a 400, and a tools-stripped subagent.
"""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from turnroute.gateway.observe.log import RequestLog, new_record
from turnroute.gateway.observe.reader import filter_records, follow, last_for_session, parse_since, read_records
from turnroute.gateway.observe.table import format_table
from turnroute.gateway.observe.stats import compute_stats, format_stats, percentile

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_log.jsonl"
A = "a1b2c3d4-1111-4111-8111-111111111111"
B = "b2c3d4e5-2222-4222-8222-222222222222"


@pytest.fixture
def recs() -> list[dict]:
    return list(read_records(FIXTURE))


def idx(records) -> list[int]:
    """Fixture line numbers (1-based) from the minute in ts."""
    return [int(r["ts"][14:16]) + 1 for r in records]


def test_read_fixture(recs):
    assert len(recs) == 13 and idx(recs) == list(range(1, 14))


def test_read_includes_rotated_oldest_first(tmp_path):
    path = tmp_path / "r.jsonl"
    (tmp_path / "r.jsonl.2").write_bytes(b'{"id":"oldest"}\n')
    (tmp_path / "r.jsonl.1").write_bytes(b'{"id":"older"}\nnot json\n')
    path.write_bytes(b'{"id":"new"}\n{"id":"torn"')
    assert [r["id"] for r in read_records(path)] == ["oldest", "older", "new"]
    assert [r["id"] for r in read_records(path, include_rotated=False)] == ["new"]
    assert list(read_records(tmp_path / "missing.jsonl")) == []


def test_filters(recs):
    assert idx(filter_records(recs, route="mlx")) == [1, 2, 3, 6, 9, 10, 13]
    assert idx(filter_records(recs, route="lmstudio")) == [4, 5, 8, 11, 12]
    assert idx(filter_records(recs, session="a1b2c3d4")) == [1, 2, 3, 6, 10, 13]   # 8-char prefix
    assert idx(filter_records(recs, session=B)) == [4, 5, 7, 12]
    assert idx(filter_records(recs, errors=True)) == [9, 10, 12]
    since = datetime(2025, 6, 1, 10, 7, 30, tzinfo=timezone.utc)
    assert idx(filter_records(recs, since=since)) == [9, 10, 11, 12, 13]
    assert idx(filter_records(recs, since="2025-06-01T10:10:00Z")) == [11, 12, 13]
    assert idx(filter_records(recs, route="mlx", errors=True, session="a1b2")) == [10]


def test_parse_since():
    now = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("10m", now=now) == now - timedelta(minutes=10)
    assert parse_since("2h", now=now) == now - timedelta(hours=2)
    assert parse_since("1d", now=now) == now - timedelta(days=1)
    assert parse_since("30s", now=now) == now - timedelta(seconds=30)
    assert parse_since(" 1.5H ", now=now) == now - timedelta(minutes=90)
    assert parse_since("2025-06-01T10:00:00Z") == datetime(2025, 6, 1, 10, tzinfo=timezone.utc)
    assert parse_since("2025-06-01T10:00:00+02:00") == datetime(2025, 6, 1, 8, tzinfo=timezone.utc)
    naive = parse_since("2025-06-01 10:00")          # naive = local time
    assert naive.tzinfo is not None and naive.replace(tzinfo=None) == datetime(2025, 6, 1, 10)
    assert parse_since(datetime(2025, 1, 1, tzinfo=timezone.utc)).year == 2025
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


def test_table_rows(recs):
    table = format_table(recs)
    rows = table.splitlines()
    assert len(rows) == 14
    assert rows[0].split()[:4] == ["time", "id", "session", "turn"]
    assert all(len(r) <= 120 for r in rows)
    local = datetime(2025, 6, 1, 10, 0, tzinfo=timezone.utc).astimezone().strftime("%H:%M:%S")
    first = rows[1].split()
    assert first[0] == local and first[2] == "a1b2c3d4" and first[5:7] == ["analysis-on-mlx", "mlx"]
    assert "10k/0/500" in rows[1] and "2.0s" in rows[1] and "8.0s" in rows[1]
    assert "lmstudio*" in rows[8]                    # reached after a fallback
    assert "12✂" in rows[11]                         # tools stripped
    assert rows[9].endswith("529 overloaded") and rows[10].endswith("499 disconnect")
    assert rows[7].split()[3] == "count" and "-/-/-" in rows[7]
    assert format_table([]) == "no requests"


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5], 95) == 5
    assert percentile([400, 2500, 3000, 8000, 9000], 50) == 3000
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 95) == 4
    assert percentile(list(range(1, 101)), 95) == 95


def test_stats_against_hand_computed_figures(recs):
    s = compute_stats(recs)
    assert s["requests"] == 13
    # tokens = reported prompt + output; lines 7, 9, 10, 12 report none
    assert s["tokens"] == 77270
    r = s["routes"]
    assert list(r) == ["mlx", "lmstudio", "(none)"]
    assert (r["mlx"]["requests"], r["lmstudio"]["requests"], r["(none)"]["requests"]) == (7, 5, 1)
    assert r["mlx"]["share"] == pytest.approx(7 / 13)
    assert r["lmstudio"]["share"] == pytest.approx(5 / 13)
    assert (r["mlx"]["tokens"], r["lmstudio"]["tokens"], r["(none)"]["tokens"]) == (46320, 30950, 0)
    assert r["mlx"]["token_share"] == pytest.approx(46320 / 77270)
    ru = s["rules"]
    assert {k: v["requests"] for k, v in ru.items()} == {
        "analysis-on-mlx": 7, "action-on-lmstudio": 3, "(none)": 1, "default": 1, "title-on-mlx": 1}
    assert {k: v["tokens"] for k, v in ru.items()} == {
        "analysis-on-mlx": 54900, "action-on-lmstudio": 17250, "(none)": 0, "default": 4600,
        "title-on-mlx": 520}
    assert ru["action-on-lmstudio"]["share"] == pytest.approx(3 / 13)
    mlx, lms = s["backends"]["mlx"], s["backends"]["lmstudio"]
    assert set(s["backends"]) == {"mlx", "lmstudio"}          # count_tokens has no backend
    # mlx ok latencies 400, 2500, 3000, 8000, 9000; ttft 250, 300, 600, 2000 (title: null)
    assert (mlx["requests"], mlx["ok"]) == (7, 5)
    assert (mlx["latency_p50_ms"], mlx["latency_p95_ms"]) == (3000, 9000)
    assert (mlx["ttft_p50_ms"], mlx["ttft_p95_ms"]) == (300, 2000)
    # lmstudio ok latencies 4000, 5000, 6000, 7000; ttft 700, 900, 1100, 1500
    assert (lms["requests"], lms["ok"]) == (5, 4)
    assert (lms["latency_p50_ms"], lms["latency_p95_ms"]) == (5000, 7000)
    assert (lms["ttft_p50_ms"], lms["ttft_p95_ms"]) == (900, 1500)
    assert lms["cache_hit_rate"] is None                      # LM Studio reports no cached tokens
    # Σcached / Σprompt over mlx lines with both known: (0+10000+10800+0+11200)/(10000+10800+11200+500+12000)
    assert (s["mlx_cached_tokens"], s["mlx_prompt_tokens"]) == (32000, 44500)
    assert s["mlx_cache_hit_rate"] == pytest.approx(32000 / 44500)
    assert mlx["cache_hit_rate"] == pytest.approx(32000 / 44500)
    assert s["fallbacks"] == 1
    assert s["errors"] == {"total": 3,
                           "by_type": {"overloaded_error": 1, "client_disconnect": 1, "invalid_request_error": 1},
                           "by_status": {"529": 1, "499": 1, "400": 1}}


def test_stats_empty_and_unknowns():
    s = compute_stats([])
    assert s["requests"] == 0 and s["mlx_cache_hit_rate"] is None and s["backends"] == {}
    s = compute_stats([new_record(route="mlx", status=200, latency_ms=None)])
    assert s["backends"]["mlx"]["latency_p50_ms"] is None and s["routes"]["mlx"]["token_share"] is None
    assert "mlx cache hit rate" in format_stats(s)


def test_format_stats(recs):
    text = format_stats(compute_stats(recs))
    assert "requests 13" in text
    assert "53.8%" in text and "38.5%" in text                # route shares
    assert "71.9%  (32000/44500)" in text
    assert "3.0s" in text and "9.0s" in text and "300ms" in text
    assert "overloaded_error 1" in text and "499 1" in text


def test_follow_yields_appended_lines_across_rotation(tmp_path):
    """Synchronised on what the reader did, never on time: follow() calls `stop` each time it has
    read everything there is, so "two more idle polls" proves a half line was seen and held back."""
    path = tmp_path / "r.jsonl"
    log = RequestLog(path, max_bytes=1500, keep=20)
    log.end(new_record(id="before"))                          # existing content is not replayed
    got: list[str] = []
    polls = [0]
    idle = threading.Condition()
    done = threading.Event()

    def stop() -> bool:
        with idle:
            polls[0] += 1
            idle.notify_all()
        return done.is_set()

    def reader() -> None:
        for rec in follow(path, poll=0.01, stop=stop):
            got.append(rec["id"])

    def wait_idle_polls(n: int) -> None:
        """Return once follow() has been idle `n` more times from now (it read all there was)."""
        with idle:
            target = polls[0] + n
            assert idle.wait_for(lambda: polls[0] >= target, timeout=5), "follow() stopped polling"

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    wait_idle_polls(1)                                        # opened, seeked to the end, idle
    for i in range(20):                                       # ~400 B each: rotates several times
        log.end(new_record(id=f"n{i}", reason="x" * 50))
    with open(path, "ab") as fh:                              # a half-written line is held back
        fh.write(b'{"id":"half"')
    wait_idle_polls(2)
    assert got == [f"n{i}" for i in range(20)]
    with open(path, "ab") as fh:
        fh.write(b"}\n")
    wait_idle_polls(2)
    done.set()
    t.join(timeout=5)
    assert len(list(tmp_path.glob("r.jsonl.*"))) >= 2
    assert got == [f"n{i}" for i in range(20)] + ["half"]


def test_last_for_session(tmp_path, recs):
    assert last_for_session(FIXTURE, A)["ts"] == "2025-06-01T10:12:00.000Z"
    assert last_for_session(FIXTURE, B)["status"] == 400
    assert last_for_session(FIXTURE, "nope") is None
    assert last_for_session(FIXTURE, None)["ts"] == "2025-06-01T10:12:00.000Z"
    assert last_for_session(tmp_path / "missing", A) is None
    # just rotated: the live file has other sessions only → look in path.1
    path = tmp_path / "r.jsonl"
    shutil.copy(FIXTURE, tmp_path / "r.jsonl.1")
    path.write_bytes(orjson.dumps(new_record(id="other", session="zzz")) + b"\n")
    assert last_for_session(path, A)["ts"] == "2025-06-01T10:12:00.000Z"


def test_last_for_session_reads_only_the_end_of_a_large_file(tmp_path, monkeypatch):
    """The status line runs on every redraw: the newest session's line costs one block, not 10 MiB."""
    from turnroute.gateway.observe import reader

    read_bytes = [0]

    class Counting:
        def __init__(self, fh):
            self._fh = fh

        def read(self, n=-1):
            data = self._fh.read(n)
            read_bytes[0] += len(data)
            return data

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._fh.__exit__(*exc)

    monkeypatch.setattr(reader, "open", lambda *a, **kw: Counting(open(*a, **kw)), raising=False)
    path = tmp_path / "big.jsonl"
    line = orjson.dumps(new_record(id="filler", session="other", reason="y" * 300)) + b"\n"
    with open(path, "wb") as fh:
        fh.write(orjson.dumps(new_record(id="early", session="s-early")) + b"\n")
        fh.write(line * (10 * 1024 * 1024 // len(line)))
        fh.write(orjson.dumps(new_record(id="late", session="s-late")) + b"\n")
    assert last_for_session(path, "s-late")["id"] == "late"
    assert read_bytes[0] <= 2 * 65536                          # one block, not 10 MiB
    assert last_for_session(path, "s-early")["id"] == "early"  # worst case still works
    # a line longer than the block size is reassembled across blocks
    path2 = tmp_path / "long.jsonl"
    path2.write_bytes(orjson.dumps(new_record(id="long", session="s", reason="z" * 200_000)) + b"\n")
    assert last_for_session(path2, "s")["id"] == "long"
