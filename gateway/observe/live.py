"""The live page (/ui) and its data endpoint (/api/recent).

Why this shape: the page is one static, self-contained HTML file (no build step, no CDN — the
gateway often runs offline) that polls ``/api/recent`` once a second. Polling an in-memory deque is
cheap, survives proxies and reconnects without any server-side connection state, and keeps this
module tiny. Records come from ``RequestLog.recent()``, i.e. already redacted log lines.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from turnroute.gateway.observe.log import RequestLog
from turnroute.gateway.observe.stats import compute_stats

__all__ = ["make_ui_router", "UI_HTML"]

UI_HTML = Path(__file__).resolve().parent / "static" / "ui.html"
_NO_STORE = {"Cache-Control": "no-store"}


#: Most bytes of records one /api/recent answer carries (the page polls it every second).
RECENT_MAX_BYTES = 1024 * 1024


def cap_bytes(records: list[dict], limit: int) -> tuple[list[dict], bool]:
    """The newest records that fit in ``limit`` bytes of JSON, oldest first; True when some were left out."""
    kept, size = [], 0
    for rec in reversed(records):
        size += len(orjson.dumps(rec)) + 1
        if size > limit:
            break
        kept.append(rec)
    kept.reverse()
    return kept, len(kept) < len(records)


@lru_cache(maxsize=1)
def _page() -> bytes:
    return UI_HTML.read_bytes()


def make_ui_router(log: RequestLog) -> APIRouter:
    """GET /ui (the page) and GET /api/recent?n=100 → {records: [...oldest first], stats: {...}}."""
    router = APIRouter()

    @router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    async def ui_page() -> Response:
        return HTMLResponse(_page(), headers=_NO_STORE)

    @router.get("/api/recent")
    async def api_recent(n: int = Query(100, ge=1, le=1000), skip: int = Query(0, ge=0, le=100_000)) -> Response:
        """A page of ``n`` records ending ``skip`` records before the newest, at most ~1 MB."""
        window = log.recent(n + skip + 1)          # one extra tells whether older records exist
        page = window[max(len(window) - skip - n, 0): max(len(window) - skip, 0)]
        records, cut = cap_bytes(page, RECENT_MAX_BYTES)
        body = orjson.dumps({"records": records, "stats": compute_stats(records), "in_flight": log.in_flight,
                             "more": cut or len(window) > n + skip})
        return Response(body, media_type="application/json", headers=_NO_STORE)

    return router
