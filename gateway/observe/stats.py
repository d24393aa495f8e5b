"""Summary figures of the request log: `turnroute logs --stats` and the /ui tiles."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from turnroute.gateway.observe.reader import Record, is_error
from turnroute.gateway.observe.table import fmt_ms, fmt_tokens

__all__ = ["compute_stats", "format_stats", "percentile"]


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
    out = [f"requests {stats['requests']}   reported tokens {fmt_tokens(stats['tokens'])}   "
           f"fallbacks {stats['fallbacks']}   errors {stats['errors']['total']}", ""]
    for title, key in (("route", "routes"), ("rule", "rules")):
        items = stats[key]
        w = max([len(title), *(len(k) for k in items)])
        out.append(f"{title:<{w}}  {'requests':>8}  {'share':>6}  {'tokens':>7}  {'tok share':>9}")
        for name, s in items.items():
            out.append(f"{name:<{w}}  {s['requests']:>8}  {_pct(s['share']):>6}  "
                       f"{fmt_tokens(s['tokens']):>7}  {_pct(s['token_share']):>9}")
        out.append("")
    if stats["backends"]:
        w = max(7, *(len(k) for k in stats["backends"]))
        out.append(f"{'backend':<{w}}  {'ok':>4}  {'p50 lat':>8}  {'p95 lat':>8}  "
                   f"{'p50 ttft':>8}  {'p95 ttft':>8}  {'cache':>6}")
        for name, b in stats["backends"].items():
            out.append(f"{name:<{w}}  {b['ok']:>4}  {fmt_ms(b['latency_p50_ms']):>8}  "
                       f"{fmt_ms(b['latency_p95_ms']):>8}  {fmt_ms(b['ttft_p50_ms']):>8}  "
                       f"{fmt_ms(b['ttft_p95_ms']):>8}  {_pct(b['cache_hit_rate']):>6}")
        out.append("")
    out.append(f"mlx cache hit rate (Σcached/Σprompt): {_pct(stats['mlx_cache_hit_rate'])}"
               f"  ({stats['mlx_cached_tokens']}/{stats['mlx_prompt_tokens']})")
    if stats["errors"]["total"]:
        types = ", ".join(f"{k} {v}" for k, v in stats["errors"]["by_type"].items())
        codes = ", ".join(f"{k} {v}" for k, v in stats["errors"]["by_status"].items())
        out.append(f"errors by type: {types}")
        out.append(f"errors by status: {codes}")
    return "\n".join(out)


