"""The request log as a table a person reads: `turnroute logs` and `logs -f`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from turnroute.gateway.observe.reader import Record, record_time

__all__ = ["format_table", "format_record_line", "short_id", "fmt_ms", "fmt_tokens", "align", "local_time"]


def short_id(value: Any, n: int = 8) -> str:
    """``msg_01AbCd…`` → ``01AbCd..`` (drop a type prefix, keep the first n characters)."""
    if not value:
        return "-"
    s = str(value)
    if "_" in s[:8]:
        s = s.split("_", 1)[1]
    return s[:n]


def fmt_tokens(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    if v >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return str(int(v))


def fmt_ms(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v:.0f}ms" if v < 1000 else f"{v / 1000:.1f}s"


def local_time(rec: Record) -> str:
    ts = record_time(rec)
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
        local_time(rec), short_id(rec.get("id"), 6), short_id(rec.get("session")),
        _TURN_SHORT.get(str(rec.get("turn")), str(rec.get("turn") or "-")), str(rec.get("intent") or "-"), str(rec.get("rule") or "-"),
        route, tools_s,
        f"{fmt_tokens(rec.get('prompt_tokens'))}/{fmt_tokens(rec.get('cached_tokens'))}/"
        f"{fmt_tokens(rec.get('output_tokens'))}",
        fmt_ms(rec.get("ttft_ms")), fmt_ms(rec.get("latency_ms")), status_s,
    ]


def _fit(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def align(columns: tuple[tuple[str, int, bool], ...], rows: list[list[str]], *, fixed: bool = False) -> str:
    """Header plus rows as aligned plain text; `columns` are (header, max width, right-aligned).
    Columns shrink to their content unless `fixed` (every column at its cap)."""
    widths = []
    for i, (head, cap, _) in enumerate(columns):
        widths.append(cap if fixed else min(cap, max(len(head), *(len(r[i]) for r in rows))))
    lines = []
    for cells in [[c[0] for c in columns], *rows]:
        out = []
        for (head, _, right), w, cell in zip(columns, widths, cells):
            cell = _fit(cell, w)
            out.append(cell.rjust(w) if right else cell.ljust(w))
        lines.append(" ".join(out).rstrip())
    return "\n".join(lines)


def format_table(records: Iterable[Record], *, fixed: bool = False) -> str:
    """Aligned plain-text table (fits 120 columns); columns shrink to their content unless
    `fixed` (every column at its cap, so rows printed one by one in `logs -f` line up)."""
    rows = [_row(r) for r in records]
    if not rows:
        return "no requests"
    return align(_COLUMNS, rows, fixed=fixed)


def format_record_line(rec: Record) -> str:
    """One table row without header (for ``logs -f``)."""
    return format_table([rec], fixed=True).split("\n", 1)[1]
