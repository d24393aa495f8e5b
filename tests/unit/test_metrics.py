"""Metrics: fed from log records, own registry per instance, Prometheus text out."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from turnroute.gateway.observe.reader import read_records
from turnroute.gateway.observe.metrics import Metrics

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_log.jsonl"


def samples(m: Metrics) -> dict[tuple, float]:
    body, ctype = m.render()
    assert ctype.startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_fixture_figures():
    m = Metrics()
    for rec in read_records(FIXTURE):
        m.observe(rec)
    s = samples(m)

    def req(route, status, turn):
        return s.get(("turnroute_requests_total", (("route", route), ("status", status), ("turn", turn))))

    assert req("mlx", "200", "prompt") == 2            # lines 1 and 13
    assert req("mlx", "200", "tool_result") == 2
    assert req("mlx", "529", "prompt") == 1
    assert req("mlx", "499", "prompt") == 1
    assert req("lmstudio", "400", "prompt") == 1
    assert req("none", "200", "count_tokens") == 1
    assert sum(v for (n, _), v in s.items() if n == "turnroute_requests_total") == 13
    assert s[("turnroute_prompt_tokens_total", (("route", "mlx"),))] == 44500
    assert s[("turnroute_cached_tokens_total", (("route", "mlx"),))] == 32000
    assert s[("turnroute_output_tokens_total", (("route", "mlx"),))] == 1820
    assert s[("turnroute_prompt_tokens_total", (("route", "lmstudio"),))] == 8000 + 8600 + 9000 + 4000
    assert ("turnroute_cached_tokens_total", (("route", "lmstudio"),)) not in s   # unknown ≠ 0
    assert s[("turnroute_fallbacks_total", (("from", "mlx"), ("to", "lmstudio")))] == 1
    assert s[("turnroute_request_latency_seconds_count", (("route", "mlx"),))] == 7
    assert s[("turnroute_request_latency_seconds_sum", (("route", "mlx"),))] == pytest.approx(24.43)
    assert s[("turnroute_ttft_seconds_count", (("route", "mlx"),))] == 5      # title has no TTFT
    assert s[("turnroute_ttft_seconds_count", (("route", "lmstudio"),))] == 4
    assert s[("turnroute_ttft_seconds_bucket", (("le", "0.25"), ("route", "mlx")))] == 1


def test_registries_are_independent_and_interrupted_label():
    a, b = Metrics(), Metrics()
    a.observe({"route": "mlx", "status": 200, "turn": "prompt"})
    b.observe({"route": None, "status": None, "error": "interrupted", "turn": None, "fallbacks": None})
    sa, sb = samples(a), samples(b)
    assert sa[("turnroute_requests_total", (("route", "mlx"), ("status", "200"), ("turn", "prompt")))] == 1
    assert sb[("turnroute_requests_total", (("route", "none"), ("status", "interrupted"), ("turn", "none")))] == 1
    assert not any(k[0] == "turnroute_requests_total" and ("route", "mlx") in k[1] for k in sb)


def test_observe_never_raises_and_leaks_nothing():
    m = Metrics()
    m.observe({"route": "mlx", "latency_ms": "oops", "prompt_tokens": "x", "fallbacks": ["a", "b"],
               "reason": "Bearer sk-ant-api03-SECRET", "status": 200})
    body, _ = m.render()
    assert b"sk-ant" not in body and b"Bearer" not in body
    s = samples(m)
    assert s[("turnroute_fallbacks_total", (("from", "a"), ("to", "b")))] == 1
    assert s[("turnroute_fallbacks_total", (("from", "b"), ("to", "mlx")))] == 1
