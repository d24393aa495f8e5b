"""`turnroute logs --safeguards`: the calls auto mode's safety check did not approve, one per row.

Each log line of a request that carried Claude Code's `safeguards` holds one verdict per tool call
(tool, outcome, who decided, reason, time); this lists the flagged and unavailable ones — what a
user reviews when they wonder why Claude Code stopped or asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from turnroute.gateway.observe.reader import Record
from turnroute.gateway.observe.table import align, local_time, short_id

__all__ = ["verdict_rows", "format_verdicts"]

_COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("time", 8, False), ("id", 6, False), ("session", 8, False), ("tool", 14, False), ("outcome", 11, False),
    ("decided by", 28, False), ("reason", 14, False), ("took", 7, True),
)


def verdict_rows(records: Iterable[Record], *, everything: bool = False) -> Iterator[dict[str, Any]]:
    """One dict per verdict (request time, id and session added); only those not approved unless
    `everything`."""
    for rec in records:
        for v in rec.get("safeguards") or []:
            if isinstance(v, dict) and (everything or v.get("outcome") != "not_flagged"):
                yield {"ts": rec.get("ts"), "request": rec.get("id"), "session": rec.get("session"), **v}


def _ms(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v:.2f}ms" if v < 10 else f"{v:.0f}ms"


def format_verdicts(rows: Iterable[dict[str, Any]], *, fixed: bool = False) -> str:
    cells = [[local_time(r), short_id(r.get("request"), 6), short_id(r.get("session")), str(r.get("tool") or "-"),
              str(r.get("outcome") or "-") + ("?" if r.get("asked") else ""), str(r.get("by") or "-"),
              str(r.get("reason") or "-"), _ms(r.get("ms"))] for r in rows]
    if not cells:
        return "no flagged or unavailable tool calls"
    return align(_COLUMNS, cells, fixed=fixed)
