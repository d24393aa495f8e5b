"""Prometheus metrics for /metrics, fed from the same finished log record as the JSONL line.

Why a record-driven ``observe()``: the log line is the single source of truth for a request, so
metrics and ``turnroute logs --stats`` can never disagree about what happened. Each ``Metrics`` has
its own ``CollectorRegistry`` (not the global one) so tests and several apps in one process do not
collide on metric names. Unknown values (None) are not observed — no fake zeros in counters.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics", "LATENCY_BUCKETS", "TTFT_BUCKETS"]

#: Seconds. Local models: sub-second title calls up to multi-minute agentic answers.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
#: Seconds. Time to first token is dominated by prompt processing (cache misses are slow).
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60, 120)


def _label(v: Any, default: str = "none") -> str:
    if v is None or v == "":
        return default
    return str(getattr(v, "value", v))


class Metrics:
    """Counters and histograms over finished requests; ``render()`` serves /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("turnroute_requests_total", "Requests by route, HTTP status and turn kind",
                                ["route", "status", "turn"], registry=r)
        self.prompt_tokens = Counter("turnroute_prompt_tokens_total",
                                     "Prompt tokens reported by the backend", ["route"], registry=r)
        self.cached_tokens = Counter("turnroute_cached_tokens_total",
                                     "Prompt tokens served from the backend's prompt cache", ["route"],
                                     registry=r)
        self.output_tokens = Counter("turnroute_output_tokens_total",
                                     "Output tokens reported by the backend", ["route"], registry=r)
        self.fallbacks = Counter("turnroute_fallbacks_total",
                                 "Moves from a failed backend to the next one", ["from", "to"], registry=r)
        self.latency = Histogram("turnroute_request_latency_seconds", "Total request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("turnroute_ttft_seconds", "Time to first token", ["route"],
                              buckets=TTFT_BUCKETS, registry=r)

    def observe(self, record: dict[str, Any]) -> None:
        """Count one finished request (the record ``RequestLog.end`` wrote or returned).

        ``fallbacks`` is the list of backends tried and failed before ``route``, in order; each
        hop (a→b) counts once. Never raises: metrics must not fail a request.
        """
        try:
            self._observe(record)
        except Exception:  # pragma: no cover - defensive
            pass

    def _observe(self, record: dict[str, Any]) -> None:
        route = _label(record.get("route"))
        status = record.get("status")
        status_l = _label(status, "interrupted" if record.get("error") == "interrupted" else "none")
        self.requests.labels(route=route, status=status_l, turn=_label(record.get("turn"))).inc()
        for counter, key in ((self.prompt_tokens, "prompt_tokens"), (self.cached_tokens, "cached_tokens"),
                             (self.output_tokens, "output_tokens")):
            v = record.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                counter.labels(route=route).inc(v)
            elif v == 0 and isinstance(v, int):
                counter.labels(route=route)  # a known zero still creates the series
        chain = [str(b) for b in (record.get("fallbacks") or [])]
        if chain:
            hops = chain + [route]
            for a, b in zip(hops, hops[1:]):
                self.fallbacks.labels(**{"from": a, "to": b}).inc()
        lat = record.get("latency_ms")
        if isinstance(lat, (int, float)) and not isinstance(lat, bool):
            self.latency.labels(route=route).observe(lat / 1000)
        ttft = record.get("ttft_ms")
        if isinstance(ttft, (int, float)) and not isinstance(ttft, bool):
            self.ttft.labels(route=route).observe(ttft / 1000)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) for the /metrics response."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
