"""Hardening figures for docs/reliability.md: idle RSS, event-loop stall, and a soak's RSS curve.

    .venv/bin/python bench/hardening.py rss                 # idle RSS: LiteLLM lazy vs preloaded
    .venv/bin/python bench/hardening.py stall               # small-request p99, idle vs during 5 MB prompts
    .venv/bin/python bench/hardening.py soak --minutes 30   # mixed good/bad traffic, RSS every 15 s
    ... --turnroute /other/checkout/.venv/bin/turnroute     # the same against another build

Each prints a JSON object (the figures) and a Markdown table. The gateway runs as `turnroute serve`
against bench/fake_backend.py on loopback; every process is stopped at the end. Speed figures are
ratios of this run's own idle values, so a busy shared machine shifts both sides.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import peers  # noqa: E402
import request as rq  # noqa: E402
from run import free_port, rss_mb, wait_quiet  # noqa: E402

SMALL = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}


class Rig:
    """fake backend + one turnroute on free loopback ports, in a temp dir; a context manager."""

    def __init__(self, workdir: Path, binary: Path, *, route: str = "mlx", server_extra: str = "") -> None:
        self.fake_port, self.port = free_port(), free_port()
        self.fake = peers.start_fake_backend(workdir, self.fake_port)
        cfg = peers.turnroute_config(workdir, "turnroute", self.port, self.fake_port, route)
        if server_extra:
            text = cfg.read_text().replace(f"port: {self.port}}}", f"port: {self.port}, {server_extra}}}")
            cfg.write_text(text)
        self.proc = peers.spawn("turnroute", [str(binary), "serve", "--config", str(cfg), "--port", str(self.port)],
                                workdir, cwd=peers.REPO,
                                env_extra={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "TURNROUTE_MODE": ""})
        self.base = f"http://{peers.LOOPBACK}:{self.port}"
        self.client = httpx.Client(base_url=self.base, timeout=120, trust_env=False)
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.client.get("/api/hello").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not self.proc.alive():
                raise RuntimeError(f"turnroute did not start:\n{self.proc.log_tail()}")
            time.sleep(0.1)

    def rss(self) -> float:
        return round(rss_mb(self.proc.pid), 1)

    def close(self) -> None:
        self.client.close()
        self.proc.stop()
        self.fake.stop()

    def __enter__(self) -> "Rig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def idle_rss(binary: Path) -> dict:
    out = {}
    for mode, extra in (("lazy", ""), ("preload", "preload_litellm: true")):
        with tempfile.TemporaryDirectory() as tmp, Rig(Path(tmp), binary, server_extra=extra) as rig:
            time.sleep(4)                          # past the preload's start-up delay
            wait_quiet(rig.proc.pid, max_s=60)
            out[f"{mode}_idle_mb"] = rig.rss()
            for _ in range(20):
                rig.client.post("/v1/messages", json=SMALL)
            wait_quiet(rig.proc.pid)
            out[f"{mode}_after_direct_mb"] = rig.rss()
            r = rig.client.post("/v1/messages", json=SMALL, headers={"x-turnroute-route": "lmstudio"})
            assert r.status_code == 200, r.text
            wait_quiet(rig.proc.pid)
            out[f"{mode}_after_litellm_mb"] = rig.rss()
    return out


def latencies(client: httpx.Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post("/v1/messages", json=SMALL)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    return out


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q) - 1], 2)


def post_forever(base: str, raw: bytes, stop: Any, done: Any) -> None:
    with httpx.Client(base_url=base, timeout=120, trust_env=False) as c:
        while not stop.is_set():
            c.post("/v1/messages/count_tokens", content=raw, headers={"content-type": "application/json"})
            done.value += 1


def stall(binary: Path, samples: int) -> dict:
    big = rq.anthropic_body()
    big["messages"][-1] = {"role": "user", "content": "x " * (5 * 1024 * 1024 // 2)}   # a 5 MB prompt
    raw = json.dumps(big).encode()
    with tempfile.TemporaryDirectory() as tmp, Rig(Path(tmp), binary) as rig:
        latencies(rig.client, 20)                          # warm the pools
        idle = latencies(rig.client, samples)
        # The big prompts come from another process, so its GIL does not slow the measuring client.
        stop, big_done = multiprocessing.Event(), multiprocessing.Value("i", 0)
        hammer = multiprocessing.Process(target=post_forever, args=(rig.base, raw, stop, big_done), daemon=True)
        hammer.start()
        while not big_done.value:
            time.sleep(0.05)
        loaded = latencies(rig.client, samples)
        stop.set()
        hammer.join(120)
    return {"samples": samples, "body_mb": round(len(raw) / 2**20, 1), "big_requests": big_done.value,
            "idle_p50_ms": pct(idle, 50), "idle_p99_ms": pct(idle, 99),
            "loaded_p50_ms": pct(loaded, 50), "loaded_p99_ms": pct(loaded, 99),
            "p99_ratio": round(pct(loaded, 99) / pct(idle, 99), 2)}


def soak(binary: Path, minutes: float, interval: float) -> dict:
    from tests.support import fuzz

    rng = random.Random(12)
    good = [(SMALL, {}), ({**SMALL, "stream": True}, {}), (SMALL, {"x-turnroute-route": "lmstudio"}),
            (rq.anthropic_body(), {})]
    counts = {"good": 0, "bad": 0, "5xx": 0}
    curve: list[tuple[float, float]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, Rig(Path(tmp), binary) as rig:
        curve.append((0.0, rig.rss()))
        t0 = time.monotonic()
        next_sample = t0 + interval
        while time.monotonic() - t0 < minutes * 60:
            if rng.random() < 0.5:
                body, headers = rng.choice(good)
                r = rig.client.post("/v1/messages", json=body, headers=headers)
                counts["good"] += 1
            else:
                raw = fuzz.encode(fuzz.cc_body(rng) if rng.random() < 0.7 else fuzz.api_body(rng), rng)
                r = rig.client.post("/v1/messages", content=raw, headers={"content-type": "application/json"})
                counts["bad"] += 1
            if r.status_code >= 500 and r.status_code != 529:
                counts["5xx"] += 1
                if len(failures) < 5:
                    failures.append(f"{r.status_code} {r.text[:300]}")
            if time.monotonic() >= next_sample:
                curve.append((round(time.monotonic() - t0, 1), rig.rss()))
                next_sample += interval
        wait_quiet(rig.proc.pid)
        curve.append((round(time.monotonic() - t0, 1), rig.rss()))
        time.sleep(5)
        idle_after = rig.rss()
    return {"minutes": minutes, **counts, "failures": failures, "curve": curve, "idle_after_mb": idle_after}


def table(rows: dict) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows.items() if k != "curve"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["rss", "stall", "soak"])
    ap.add_argument("--turnroute", type=Path, default=peers.TURNROUTE_BIN)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=15.0)
    args = ap.parse_args()
    if args.what == "rss":
        res = idle_rss(args.turnroute)
    elif args.what == "stall":
        res = stall(args.turnroute, args.samples)
    else:
        res = soak(args.turnroute, args.minutes, args.interval)
    print(json.dumps(res))
    print(table(res))
    if "curve" in res:
        print("\n| t (s) | RSS (MB) |\n| --- | --- |\n" + "\n".join(f"| {t} | {m} |" for t, m in res["curve"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
