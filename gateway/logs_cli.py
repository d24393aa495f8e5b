"""Reading the request log: what `turnroute logs` and `turnroute statusline` call.

Pure-ish functions (records in, text/dicts out) so the CLI stays a thin shell and every figure is
testable against a fixture file. Readers are tolerant: a torn last line (a writer killed mid-write,
or a line being appended right now) is skipped, never an error. Light imports only: the status
line uses ``last_for_session`` and must start fast (``rich`` is imported lazily, if installed).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "read_records", "parse_since", "filter_records", "format_table", "compute_stats",
    "format_stats", "follow", "last_for_session", "percentile", "short_id", "is_error",
    "format_record_line",
]

Record = dict[str, Any]


# --------------------------------------------------------------------------- reading
def _rotated(path: Path) -> list[Path]:
    """Rotated siblings path.N, oldest (highest N) first."""
    found: list[tuple[int, Path]] = []
    try:
        for p in path.parent.glob(path.name + ".*"):
            suffix = p.name[len(path.name) + 1:]
            if suffix.isdigit():
                found.append((int(suffix), p))
    except OSError:
        return []
    return [p for _, p in sorted(found, reverse=True)]


def _parse_line(line: bytes) -> Record | None:
    line = line.strip()
    if not line:
        return None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # torn or foreign line
    return rec if isinstance(rec, dict) else None


def read_records(path: str | os.PathLike[str], *, include_rotated: bool = True) -> Iterator[Record]:
    """Yield records oldest first (rotated files first when ``include_rotated``)."""
    path = Path(path)
    files = (_rotated(path) if include_rotated else []) + [path]
    for f in files:
        try:
            with open(f, "rb") as fh:
                for line in fh:
                    rec = _parse_line(line)
                    if rec is not None:
                        yield rec
        except FileNotFoundError:
            continue


# --------------------------------------------------------------------------- filtering
_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(since: datetime | str, *, now: datetime | None = None) -> datetime:
    """``"10m"``/``"2h"``/``"1d"``/``"30s"``/``"1w"`` ago, or an ISO date/time (naive = local)."""
    if isinstance(since, datetime):
        return since if since.tzinfo else since.astimezone()
    m = _REL.match(since)
    if m:
        now = now or datetime.now(timezone.utc)
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        dt = datetime.fromisoformat(since.strip())
    except ValueError:
        raise ValueError(f"--since: expected e.g. 10m, 2h, 1d or an ISO time, got {since!r}") from None
    return dt if dt.tzinfo else dt.astimezone()


def _ts(rec: Record) -> datetime | None:
    ts = rec.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def is_error(rec: Record) -> bool:
    """An error is an error type, or an HTTP status ≥ 400 (499 = client disconnect included)."""
    status = rec.get("status")
    return rec.get("error") is not None or (isinstance(status, int) and status >= 400)


def filter_records(records: Iterable[Record], route: str | None = None, session: str | None = None,
                   since: datetime | str | None = None, errors: bool = False) -> Iterator[Record]:
    """Lazily filter. ``session`` matches a prefix (the table shows 8 characters)."""
    cutoff = parse_since(since) if since is not None else None
    for rec in records:
        if route is not None and rec.get("route") != route:
            continue
        if session is not None and not str(rec.get("session") or "").startswith(session):
            continue
        if cutoff is not None:
            ts = _ts(rec)
            if ts is None or ts < cutoff:
                continue
        if errors and not is_error(rec):
            continue
        yield rec


# --------------------------------------------------------------------------- table
def short_id(value: Any, n: int = 8) -> str:
    """``msg_01AbCd…`` → ``01AbCd..`` (drop a type prefix, keep the first n characters)."""
    if not value:
        return "-"
    s = str(value)
    if "_" in s[:8]:
        s = s.split("_", 1)[1]
    return s[:n]


def _num(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    if v >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return str(int(v))


def _ms(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v:.0f}ms" if v < 1000 else f"{v / 1000:.1f}s"


def _local_time(rec: Record) -> str:
    ts = _ts(rec)
    return ts.astimezone().strftime("%H:%M:%S") if ts else "-"


_COLUMNS: tuple[tuple[str, int, bool], ...] = (  # header, max width, right-aligned
    ("time", 8, False), ("id", 6, False), ("session", 8, False), ("turn", 11, False),
    ("intent", 8, False), ("rule", 18, False), ("route", 9, False), ("tools", 5, True),
    ("tokens p/c/o", 13, True), ("ttft", 5, True), ("total", 6, True), ("status", 14, False),
)
_TURN_SHORT = {"count_tokens": "count"}
_ERROR_SHORT = {"invalid_request_error": "invalid", "authentication_error": "auth"}


def _short_error(error: Any) -> str:
    """``overloaded_error`` → ``overloaded``, ``client_disconnect`` → ``disconnect`` (table only)."""
    s = str(error)
    if s in _ERROR_SHORT:
        return _ERROR_SHORT[s]
    s = s[:-6] if s.endswith("_error") else s
    return s[7:] if s.startswith("client_") else s


def _row(rec: Record) -> list[str]:
    tools = rec.get("tools")
    tools_s = "-" if tools is None else str(tools)
    if rec.get("tools_stripped"):
        tools_s += "✂"
    status = rec.get("status")
    status_s = "-" if status is None else str(status)
    if rec.get("error"):
        status_s += f" {_short_error(rec['error'])}"
    route = rec.get("route") or "-"
    if rec.get("fallbacks"):
        route = f"{route}*"  # * = reached after a fallback
    return [
        _local_time(rec), short_id(rec.get("id"), 6), short_id(rec.get("session")),
        _TURN_SHORT.get(str(rec.get("turn")), str(rec.get("turn") or "-")), str(rec.get("intent") or "-"), str(rec.get("rule") or "-"),
        route, tools_s,
        f"{_num(rec.get('prompt_tokens'))}/{_num(rec.get('cached_tokens'))}/"
        f"{_num(rec.get('output_tokens'))}",
        _ms(rec.get("ttft_ms")), _ms(rec.get("latency_ms")), status_s,
    ]


def _fit(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def format_table(records: Iterable[Record]) -> str:
    """Aligned plain-text table (fits 120 columns); columns shrink to their content."""
    rows = [_row(r) for r in records]
    if not rows:
        return "no requests"
    widths = []
    for i, (head, cap, _) in enumerate(_COLUMNS):
        widths.append(min(cap, max(len(head), *(len(r[i]) for r in rows))))
    lines = []
    for cells in [[c[0] for c in _COLUMNS], *rows]:
        out = []
        for (head, _, right), w, cell in zip(_COLUMNS, widths, cells):
            cell = _fit(cell, w)
            out.append(cell.rjust(w) if right else cell.ljust(w))
        lines.append(" ".join(out).rstrip())
    return "\n".join(lines)


def format_record_line(rec: Record) -> str:
    """One table row without header (for ``logs -f``)."""
    return format_table([rec]).split("\n", 1)[1]


# --------------------------------------------------------------------------- stats
def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (the value at rank ⌈p/100·n⌉ of the sorted list); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _tokens(rec: Record) -> int:
    """Tokens the backend reported processing (prompt + output); unknown counts add nothing."""
    return sum(v for v in (rec.get("prompt_tokens"), rec.get("output_tokens")) if isinstance(v, int))


def _shares(records: list[Record], key: str) -> dict[str, dict[str, Any]]:
    total_n = len(records)
    total_t = sum(_tokens(r) for r in records)
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        name = str(rec.get(key) or "(none)")
        slot = out.setdefault(name, {"requests": 0, "tokens": 0})
        slot["requests"] += 1
        slot["tokens"] += _tokens(rec)
    for slot in out.values():
        slot["share"] = slot["requests"] / total_n if total_n else 0.0
        slot["token_share"] = slot["tokens"] / total_t if total_t else None
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["requests"], kv[0])))


def _cache(records: Iterable[Record]) -> tuple[int, int, float | None]:
    prompt = cached = 0
    for r in records:
        p, c = r.get("prompt_tokens"), r.get("cached_tokens")
        if isinstance(p, int) and isinstance(c, int):
            prompt += p
            cached += c
    return cached, prompt, (cached / prompt if prompt else None)


def compute_stats(records: Iterable[Record]) -> dict[str, Any]:
    """Aggregate figures for ``logs --stats`` and /ui.

    * ``routes`` / ``rules``: requests, share of requests, reported tokens (prompt + output) and
      share of tokens (None when no tokens reported at all).
    * ``backends``: per route, nearest-rank p50/p95 of latency and TTFT over *successful backend
      calls* (no error, status < 400, not count_tokens), nulls ignored; plus the cache hit rate.
    * ``mlx_cache_hit_rate``: Σcached / Σprompt over mlx records where both are known.
    * ``errors``: total, by error type, by status.
    """
    recs = list(records)
    backends: dict[str, dict[str, Any]] = {}
    by_route: dict[str, list[Record]] = {}
    for r in recs:
        if r.get("route") and r.get("endpoint") != "count_tokens":
            by_route.setdefault(str(r["route"]), []).append(r)
    for route, rs in sorted(by_route.items()):
        ok = [r for r in rs if not is_error(r)]
        lat = [float(r["latency_ms"]) for r in ok if isinstance(r.get("latency_ms"), (int, float))]
        ttft = [float(r["ttft_ms"]) for r in ok if isinstance(r.get("ttft_ms"), (int, float))]
        cached, prompt, rate = _cache(rs)
        backends[route] = {
            "requests": len(rs), "ok": len(ok),
            "latency_p50_ms": percentile(lat, 50), "latency_p95_ms": percentile(lat, 95),
            "ttft_p50_ms": percentile(ttft, 50), "ttft_p95_ms": percentile(ttft, 95),
            "cached_tokens": cached, "prompt_tokens": prompt, "cache_hit_rate": rate,
        }
    mlx_cached, mlx_prompt, mlx_rate = _cache(r for r in recs if r.get("route") == "mlx")
    errs = [r for r in recs if is_error(r)]
    return {
        "requests": len(recs),
        "tokens": sum(_tokens(r) for r in recs),
        "routes": _shares(recs, "route"),
        "rules": _shares(recs, "rule"),
        "backends": backends,
        "mlx_cache_hit_rate": mlx_rate,
        "mlx_cached_tokens": mlx_cached,
        "mlx_prompt_tokens": mlx_prompt,
        "fallbacks": sum(1 for r in recs if r.get("fallbacks")),
        "errors": {
            "total": len(errs),
            "by_type": dict(Counter(str(r.get("error") or "(none)") for r in errs).most_common()),
            "by_status": dict(Counter(str(r.get("status")) for r in errs).most_common()),
        },
    }


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def format_stats(stats: dict[str, Any]) -> str:
    """Human-readable rendering of ``compute_stats``."""
    out = [f"requests {stats['requests']}   reported tokens {_num(stats['tokens'])}   "
           f"fallbacks {stats['fallbacks']}   errors {stats['errors']['total']}", ""]
    for title, key in (("route", "routes"), ("rule", "rules")):
        items = stats[key]
        w = max([len(title), *(len(k) for k in items)])
        out.append(f"{title:<{w}}  {'requests':>8}  {'share':>6}  {'tokens':>7}  {'tok share':>9}")
        for name, s in items.items():
            out.append(f"{name:<{w}}  {s['requests']:>8}  {_pct(s['share']):>6}  "
                       f"{_num(s['tokens']):>7}  {_pct(s['token_share']):>9}")
        out.append("")
    if stats["backends"]:
        w = max(7, *(len(k) for k in stats["backends"]))
        out.append(f"{'backend':<{w}}  {'ok':>4}  {'p50 lat':>8}  {'p95 lat':>8}  "
                   f"{'p50 ttft':>8}  {'p95 ttft':>8}  {'cache':>6}")
        for name, b in stats["backends"].items():
            out.append(f"{name:<{w}}  {b['ok']:>4}  {_ms(b['latency_p50_ms']):>8}  "
                       f"{_ms(b['latency_p95_ms']):>8}  {_ms(b['ttft_p50_ms']):>8}  "
                       f"{_ms(b['ttft_p95_ms']):>8}  {_pct(b['cache_hit_rate']):>6}")
        out.append("")
    out.append(f"mlx cache hit rate (Σcached/Σprompt): {_pct(stats['mlx_cache_hit_rate'])}"
               f"  ({stats['mlx_cached_tokens']}/{stats['mlx_prompt_tokens']})")
    if stats["errors"]["total"]:
        types = ", ".join(f"{k} {v}" for k, v in stats["errors"]["by_type"].items())
        codes = ", ".join(f"{k} {v}" for k, v in stats["errors"]["by_status"].items())
        out.append(f"errors by type: {types}")
        out.append(f"errors by status: {codes}")
    return "\n".join(out)


# --------------------------------------------------------------------------- follow / tail
def follow(path: str | os.PathLike[str], poll: float = 0.25, *, from_start: bool = False,
           stop: Callable[[], bool] | None = None) -> Iterator[Record]:
    """Yield records as lines are appended (``tail -F``): waits for the file, survives rotation.

    A partial line is held until its newline arrives. On rotation (the inode at ``path`` changed,
    or the file shrank) the old descriptor is drained first, then the new file is read from 0.
    ``stop`` (checked every poll) ends the generator — for tests and Ctrl-C-free shutdown.
    """
    path = Path(path)
    fh = None
    buf = b""
    first = True
    while True:
        if fh is None:
            try:
                fh = open(path, "rb")
                if first and not from_start:
                    fh.seek(0, os.SEEK_END)
                first = False
                buf = b""
            except FileNotFoundError:
                first = False  # a file created later is read from its start
        if fh is not None:
            chunk = fh.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    rec = _parse_line(line)
                    if rec is not None:
                        yield rec
                continue
            try:
                st = os.stat(path)
                rotated = st.st_ino != os.fstat(fh.fileno()).st_ino or st.st_size < fh.tell()
            except FileNotFoundError:
                rotated = False  # between rename and re-create: keep the old one for now
            if rotated:
                rest = fh.read()  # drain anything written to the old file before rotation
                fh.close()
                fh = None
                for line in (buf + rest).split(b"\n"):
                    rec = _parse_line(line)
                    if rec is not None:
                        yield rec
                buf = b""
                continue
        if stop is not None and stop():
            if fh is not None:
                fh.close()
            return
        time.sleep(poll)


def _scan_backwards(path: Path, session: str | None, block: int = 65536) -> Record | None:
    # cheap byte pre-filter: the writer emits compact orjson, so the pair appears verbatim
    needle = None if session is None else orjson.dumps({"session": session})[1:-1]
    try:
        fh = open(path, "rb")
    except (FileNotFoundError, IsADirectoryError):
        return None
    with fh:
        pos = fh.seek(0, os.SEEK_END)
        tail = b""  # bytes after the current block that do not yet form a full line start
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            data = fh.read(pos - start) + tail
            pos = start
            lines = data.split(b"\n")
            tail = lines[0] if pos > 0 else b""  # may be cut: finish it with the next block
            candidates = lines[1:] if pos > 0 else lines
            for line in reversed(candidates):
                if needle is not None and needle not in line:
                    continue
                rec = _parse_line(line)
                if rec is not None and (needle is None or rec.get("session") == session):
                    return rec
    return None


def last_for_session(path: str | os.PathLike[str], session: str | None) -> Record | None:
    """The newest record of ``session`` (newest overall when None), reading backwards in blocks.

    Only the blocks needed are read, so this stays fast on a 10 MiB log; a torn last line is
    skipped. Looks in ``path`` then ``path.1`` (right after a rotation the live file is short).
    """
    path = Path(path)
    for f in (path, path.with_name(path.name + ".1")):
        rec = _scan_backwards(f, session)
        if rec is not None:
            return rec
    return None
