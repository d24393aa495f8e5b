"""LM Studio's two paths side by side: LiteLLM `lm_studio/` (translated) vs native Messages API.

    .venv/bin/python bench/native_vs_litellm.py [--rounds 3] [--seq 30] [--streams 20]

Both turnroute processes sit in front of the same fake server (bench/fake_backend.py answers
`/v1/chat/completions` and `/v1/messages` with the same 100-chunk answer). The baseline of each
path is the fake reached directly in that path's own format, so "added" is what the gateway adds:

- added latency: non-streaming p50, gateway − direct (per round, median of rounds);
- added TTFT: first text token of a stream, gateway − direct;
- per-chunk cost: the added time from first to last byte of the stream, ÷ 100 chunks;
- CPU per request: the gateway process tree's utime+stime (/proc) per non-streaming request and
  per stream.

Ratios, not absolute numbers, are the result (the machine is shared). Loopback only; every loop
is bounded; the processes it starts are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
import request as rq  # noqa: E402
from run import Conn, build_request, cpu_seconds, free_port, wait_quiet  # noqa: E402

CHUNKS = 100
MARKER = b"word0"


def wait_http(url: str, timeout: float, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def config(workdir: Path, name: str, port: int, fake_port: int, native: bool) -> Path:
    backend = (f"type: anthropic\n    url: http://{peers.LOOPBACK}:{fake_port}\n    model: fake-model"
               if native else
               f"type: litellm\n    url: http://{peers.LOOPBACK}:{fake_port}/v1\n    model: lm_studio/fake-model")
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(f"""\
server: {{host: {peers.LOOPBACK}, port: {port}}}
log: {{path: {workdir / (name + '-requests.jsonl')}}}
backends:
  lmstudio:
    {backend}
    max_output_tokens: 8192
    supports: {{tools: true, json_schema: true}}
rules: []
default: {{route: lmstudio}}
""")
    return cfg


class Path_:
    """One way to the fake: `direct_*` (no gateway) or `turnroute_*` (a gateway process)."""

    def __init__(self, name: str, port: int, path: str, body_ns: bytes, body_st: bytes, pid: int | None):
        self.name, self.port, self.pid = name, port, pid
        headers = {"content-type": "application/json", "x-api-key": "bench"}
        self.req_ns = build_request(port, path, headers, body_ns)
        self.req_st = build_request(port, path, headers, body_st)
        self.lat: list[list[float]] = []
        self.ttft: list[list[float]] = []
        self.tail: list[list[float]] = []           # first text token → last byte
        self.cpu_ns: list[float] = []
        self.cpu_st: list[float] = []


async def measure(p: Path_, seq: int, streams: int) -> None:
    conn = Conn(p.port)
    try:
        c0 = cpu_seconds(p.pid) if p.pid else 0.0
        lat = []
        for _ in range(seq):
            r = await conn.request(p.req_ns)
            assert r.status == 200, (p.name, r.status, r.body_tail)
            lat.append(r.total)
        c1 = cpu_seconds(p.pid) if p.pid else 0.0
        ttft, tail = [], []
        for _ in range(streams):
            r = await conn.request(p.req_st, MARKER)
            assert r.status == 200 and r.first_token is not None, (p.name, r.status, r.body_tail)
            ttft.append(r.first_token)
            tail.append(r.total - r.first_token)
        c2 = cpu_seconds(p.pid) if p.pid else 0.0
    finally:
        conn.close()
    p.lat.append(lat)
    p.ttft.append(ttft)
    p.tail.append(tail)
    if p.pid:
        p.cpu_ns.append((c1 - c0) / seq)
        p.cpu_st.append((c2 - c1) / streams)


def med_of(rounds: list[list[float]]) -> float:
    return statistics.median(statistics.median(r) for r in rounds)


def report(paths: dict[str, Path_]) -> str:
    rows = []
    for kind, direct in (("litellm", "direct_openai"), ("native", "direct_messages")):
        g, d = paths[f"turnroute_{kind}"], paths[direct]
        added = [statistics.median(a) - statistics.median(b) for a, b in zip(g.lat, d.lat)]
        added_ttft = [statistics.median(a) - statistics.median(b) for a, b in zip(g.ttft, d.ttft)]
        per_chunk = [(statistics.median(a) - statistics.median(b)) / CHUNKS for a, b in zip(g.tail, d.tail)]
        rows.append((kind, statistics.median(added) * 1e3, statistics.median(added_ttft) * 1e3,
                     statistics.median(per_chunk) * 1e6, statistics.median(g.cpu_ns) * 1e3,
                     statistics.median(g.cpu_st) * 1e3))
    out = ["| LM Studio path | added latency p50 (ms) | added TTFT (ms) | added per chunk (µs) "
           "| CPU / request (ms) | CPU / 100-chunk stream (ms) |", "|---|---|---|---|---|---|"]
    out += [f"| {k} | {a:.2f} | {t:.2f} | {c:.1f} | {n:.2f} | {s:.2f} |" for k, a, t, c, n, s in rows]
    lit, nat = rows
    out.append("")
    out.append("native ÷ LiteLLM: added latency {:.2f}×, added TTFT {:.2f}×, CPU/request {:.2f}×, CPU/stream {:.2f}×"
               .format(*(n / l if l else float("nan") for n, l in
                         ((nat[1], lit[1]), (nat[2], lit[2]), (nat[4], lit[4]), (nat[5], lit[5])))))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seq", type=int, default=30)
    ap.add_argument("--streams", type=int, default=20)
    a = ap.parse_args()
    body = rq.anthropic_body()
    body_st = rq.dumps({**body, "stream": True})
    openai = rq.openai_body(body)
    with tempfile.TemporaryDirectory(prefix="tr-native-bench-") as tmp:
        work = Path(tmp)
        fake_port = free_port()
        procs = [peers.start_fake_backend(work, fake_port)]
        try:
            wait_http(f"http://{peers.LOOPBACK}:{fake_port}/health", timeout=30)
            paths = {"direct_openai": Path_("direct_openai", fake_port, "/v1/chat/completions", rq.dumps(openai),
                                            rq.dumps({**openai, "stream": True,
                                                      "stream_options": {"include_usage": True}}), None),
                     "direct_messages": Path_("direct_messages", fake_port, "/v1/messages", rq.dumps(body),
                                              body_st, None)}
            for kind in ("litellm", "native"):
                port = free_port()
                name = f"turnroute_{kind}"
                cfg = config(work, name, port, fake_port, native=kind == "native")
                proc = peers.spawn(name, [str(peers.TURNROUTE_BIN), "serve", "--config", str(cfg), "--no-reload"],
                                   work, cwd=peers.REPO, env_extra={"LITELLM_LOCAL_MODEL_COST_MAP": "True",
                                                                    "TURNROUTE_MODE": ""})
                procs.append(proc)
                wait_http(f"http://{peers.LOOPBACK}:{port}/api/hello", timeout=60, alive=proc.alive)
                paths[name] = Path_(name, port, "/v1/messages", rq.dumps(body), body_st, proc.pid)

            async def run_all() -> None:
                for p in paths.values():                      # warm-up (LiteLLM's import included)
                    await measure(p, 5, 3)
                    p.lat.clear(), p.ttft.clear(), p.tail.clear(), p.cpu_ns.clear(), p.cpu_st.clear()
                for p in paths.values():
                    if p.pid:
                        wait_quiet(p.pid)
                order = list(paths.values())
                for i in range(a.rounds):
                    for p in order[i % len(order):] + order[:i % len(order)]:
                        await measure(p, a.seq, a.streams)
            asyncio.run(run_all())
            print(report(paths))
        finally:
            for p in reversed(procs):
                p.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
