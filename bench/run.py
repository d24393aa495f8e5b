"""Gateway overhead benchmark: direct vs turnroute (mlx, lmstudio routes) vs claude-code-router vs
LiteLLM proxy, all in front of the same fake OpenAI-compatible backend, measured in one run.

    .venv/bin/python bench/run.py            # full run (~5-8 min), writes docs/benchmarks.md
    .venv/bin/python bench/run.py --quick    # ~1-2 min smoke run (does not write docs unless --write)

What one run does
1. starts bench/fake_backend.py, then each target one at a time (startup = spawn → first 200 from
   POST /v1/messages; the direct row's startup is the fake backend's own), RSS idle right after;
2. warms every target up, then runs ``--rounds`` rounds; each round visits every target (order
   rotated per round) and runs, against that target only:
     a) ``--seq`` sequential non-streaming requests (latency percentiles),
     b) 16 concurrent keep-alive clients for ``--conc-seconds`` (req/s),
     c) ``--streams`` sequential streaming requests (TTFB, first text token, last byte of 100 chunks);
   CPU of the target's process tree (/proc/<pid>/stat utime+stime, children included) is read
   before/after a)+b) and c);
3. RSS after load, then prints the table (and ratio matrices) and writes docs/benchmarks.md.

"Added" = target − direct, computed per round (same round, same machine state) and the median of
the rounds is reported; p99 added uses pooled samples.  Bodies cycle through 8 conversation lengths
(~65-95 KB, mean ~80 KB, see bench/request.py); every target gets the same sequence.  The load
generator is a raw-asyncio HTTP/1.1 keep-alive client with pre-serialised request bytes, so it
costs little CPU on the shared 2 cores.  All traffic is loopback; all loops are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import platform
import shlex
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docsections  # noqa: E402
import peers  # noqa: E402
import request as rq  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
REQ_TIMEOUT = 30.0
DOC = peers.REPO / "docs" / "benchmarks.md"


# ----------------------------------------------------------------------------- /proc helpers

def _stat_fields(pid: int | str) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            s = fh.read()
    except OSError:
        return None
    return s[s.rfind(b")") + 2:].split()


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (rest := _stat_fields(d)) is not None:
            kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def proc_tree(pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of the tree rooted at pid (+ reaped children's cutime/cstime)."""
    total = 0
    for p in proc_tree(pid):
        f = _stat_fields(p)
        if f is not None:
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK


def rss_mb(pid: int) -> float:
    total_kb = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/statm") as fh:
                total_kb += int(fh.read().split()[1]) * PAGE_KB
        except OSError:
            continue
    return total_kb / 1024


def wait_quiet(pid: int, max_s: float = 20.0, window: float = 0.5, busy: float = 0.05) -> float:
    """Block until the tree uses < busy CPU-s per CPU-s over a window (background imports done)."""
    t0 = time.perf_counter()
    for _ in range(int(max_s / window) + 1):
        c0 = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - c0) / window < busy or time.perf_counter() - t0 > max_s:
            break
    return time.perf_counter() - t0


def system_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK


def free_port() -> int:
    with socket.socket() as s:
        s.bind((peers.LOOPBACK, 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- HTTP client

class HTTPError(Exception):
    pass


@dataclass
class Result:
    status: int
    total: float            # request start → last byte
    ttfb: float             # request start → response headers
    first_token: float | None = None
    body_tail: bytes = b""


class Conn:
    """One keep-alive HTTP/1.1 connection; minimal, for trusted loopback servers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.r, self.w = await asyncio.open_connection(peers.LOOPBACK, self.port, limit=1 << 20)
        sock = self.w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.w is not None:
            self.w.close()
        self.r = self.w = None

    async def request(self, data: bytes, marker: bytes | None = None) -> Result:
        for attempt in (0, 1):
            fresh = self.w is None
            if fresh:
                await self._open()
            try:
                return await asyncio.wait_for(self._exchange(data, marker), REQ_TIMEOUT)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                self.close()
                if fresh or attempt:          # retry once only on a reused (maybe stale) conn
                    raise HTTPError(f"connection: {e!r}") from None
            except asyncio.TimeoutError:
                self.close()
                raise HTTPError("timeout") from None
            except (ValueError, IndexError, asyncio.LimitOverrunError) as e:
                self.close()
                raise HTTPError(f"bad response: {e!r}") from None
        raise HTTPError("unreachable")

    async def _exchange(self, data: bytes, marker: bytes | None) -> Result:
        r, w = self.r, self.w
        t0 = time.perf_counter()
        w.write(data)
        head = await r.readuntil(b"\r\n\r\n")
        ttfb = time.perf_counter() - t0
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        clen, chunked, close = None, False, False
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                clen = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        first = None
        tail = b""
        if chunked:
            for _ in range(1_000_000):
                size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await r.readuntil(b"\r\n")
                    break
                chunk = await r.readexactly(size + 2)
                window = tail[-64:] + chunk
                if first is None and marker is not None and marker in window:
                    first = time.perf_counter() - t0
                tail = window[-512:]
        elif clen is not None:
            body = await r.readexactly(clen)
            tail = body[-512:]
        else:
            body = await r.read(64 << 20)
            tail, close = body[-512:], True
        total = time.perf_counter() - t0
        if close:
            self.close()
        return Result(status, total, ttfb, first, tail)


def build_request(port: int, path: str, headers: dict, body: bytes) -> bytes:
    h = [f"POST {path} HTTP/1.1", f"host: {peers.LOOPBACK}:{port}"]
    h += [f"{k}: {v}" for k, v in headers.items()]
    h.append(f"content-length: {len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def litellm_route_headers(t: peers.Target) -> dict | None:
    """Headers that send this target's request over its LiteLLM route; None when it has none."""
    if t.name.startswith("turnroute"):
        return {**t.headers, "x-turnroute-route": "lmstudio"}
    return dict(t.headers) if t.name == "litellm_proxy" else None


# ----------------------------------------------------------------------------- targets

@dataclass
class Stats:
    lat: list[list[float]] = field(default_factory=list)      # per round, seconds
    rps: list[float] = field(default_factory=list)
    ttfb: list[list[float]] = field(default_factory=list)
    ttft: list[list[float]] = field(default_factory=list)
    ttlb: list[list[float]] = field(default_factory=list)
    cpu_ns: list[float] = field(default_factory=lambda: [0.0, 0])   # [CPU s, non-stream requests]
    cpu_st: list[float] = field(default_factory=lambda: [0.0, 0])   # [CPU s, streams]
    errors: int = 0
    last_error: str = ""
    requests: int = 0


class Bench:
    def __init__(self, args, workdir: Path) -> None:
        self.a = args
        self.workdir = workdir
        self.fake_port = free_port()
        self.fake: peers.Proc | None = None
        self.targets: list[peers.Target] = []
        self.stats: dict[str, Stats] = {}
        self.reqs: dict[tuple[str, bool], list[bytes]] = {}
        self.idle_rss: dict[str, float] = {}
        self.after_rss: dict[str, float] = {}
        self.warm_rss: dict[str, float] = {}
        self.warm_reqs: dict[str, list[bytes]] = {}
        self.startup: dict[str, float] = {}
        self.master_key = peers.new_master_key()
        self.foreign = float("nan")
        self.load0 = self.load1 = "?"

    # -- setup
    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def define_targets(self) -> None:
        a_headers = dict(rq.HEADERS)
        want = set(self.a.targets)
        T = peers.Target
        direct = T("direct", "direct (no gateway)", "openai", self.fake_port, "/v1/chat/completions",
                   {"content-type": "application/json", "authorization": "Bearer sk-fake"})
        direct.version = "bench/fake_backend.py"
        ts = [direct]
        ok, why = peers.turnroute_available()
        tv = peers.turnroute_version()
        for route, name, label in (("mlx", "turnroute_mlx", "turnroute mlx (direct HTTP)"),
                                   ("lmstudio", "turnroute_litellm", "turnroute lmstudio (LiteLLM)")):
            t = T(name, label, "anthropic", free_port(), headers={**a_headers, "x-turnroute-route": route},
                  version=tv)
            if ok:
                t.start = (lambda t=t, route=route: peers.start_turnroute(
                    self.workdir, t.name, t.port, self.fake_port, route))
            else:
                t.unavailable = f"not available: {why}"
            ts.append(t)
        t = T("ccr", "claude-code-router", "anthropic", free_port(), headers=dict(a_headers))
        ok, v = peers.ensure_ccr(install=not self.a.no_install)
        t.version = f"@musistudio/claude-code-router {v}" if ok else ""
        if ok:
            t.start = lambda t=t: peers.start_ccr(self.workdir, t.port, self.fake_port)
        else:
            t.unavailable = f"not available: {v}"
        ts.append(t)
        t = T("litellm_proxy", "LiteLLM proxy", "anthropic", free_port(),
              headers={**a_headers, "x-api-key": self.master_key})
        ok, v = peers.ensure_litellm_proxy(install=not self.a.no_install)
        t.version = f"litellm[proxy] {v}" if ok else ""
        if ok:
            t.start = lambda t=t: peers.start_litellm_proxy(self.workdir, t.port, self.fake_port,
                                                            self.master_key)
        else:
            t.unavailable = f"not available: {v}"
        ts.append(t)
        self.targets = [t for t in ts if t.name in want or t.name == "direct"]
        for t in self.targets:
            self.stats[t.name] = Stats()

    def build_bodies(self) -> None:
        for stream in (False, True):
            an = [rq.dumps(rq.anthropic_body(s, stream=stream)) for s in rq.STEPS]
            oa = [rq.dumps(rq.openai_body(rq.anthropic_body(s, stream=stream))) for s in rq.STEPS]
            for t in self.targets:
                bodies = oa if t.kind == "openai" else an
                self.reqs[(t.name, stream)] = [build_request(t.port, t.path, t.headers, b) for b in bodies]
                if (h := litellm_route_headers(t)) is not None:
                    self.warm_reqs.setdefault(t.name, []).extend(build_request(t.port, t.path, h, b) for b in an)

    def marker(self, t: peers.Target) -> bytes:
        return b'"content":"word0' if t.kind == "openai" else b"text_delta"

    def ok(self, t: peers.Target, res: Result, stream: bool) -> bool:
        if res.status != 200:
            return False
        if stream:
            return (b"[DONE]" if t.kind == "openai" else b"message_stop") in res.body_tail
        return b"word99" in res.body_tail or b"end_turn" in res.body_tail or b"stop" in res.body_tail

    async def wait_ready(self, t: peers.Target, proc: peers.Proc, timeout: float) -> float | str:
        data = self.reqs[(t.name, False)][0]
        deadline = time.perf_counter() + timeout
        last = ""
        for _ in range(int(timeout / 0.05) + 1):
            if not proc.alive():
                return f"exited rc={proc.popen.returncode}: {proc.log_tail()}"
            if time.perf_counter() > deadline:
                break
            c = Conn(t.port)
            try:
                res = await c.request(data)
                if self.ok(t, res, False):
                    return time.perf_counter() - proc.spawned_at
                last = f"HTTP {res.status}: {res.body_tail[-200:].decode(errors='replace')}"
            except (HTTPError, OSError) as e:
                last = str(e)
            finally:
                c.close()
            await asyncio.sleep(0.05)
        return f"no successful request in {timeout:.0f}s ({last})"

    async def start_all(self) -> None:
        self.fake = peers.start_fake_backend(self.workdir, self.fake_port)
        direct = self.targets[0]
        direct.proc = self.fake
        r = await self.wait_ready(direct, self.fake, 20)
        if isinstance(r, str):
            raise SystemExit(f"fake backend failed: {r}")
        self.startup["direct"] = r
        await asyncio.sleep(0.3)
        self.idle_rss["direct"] = rss_mb(self.fake.pid)
        self.log(f"fake backend up in {r * 1000:.0f} ms on :{self.fake_port}")
        for t in self.targets[1:]:
            if t.unavailable:
                self.log(f"{t.name}: {t.unavailable}")
                continue
            t.proc = t.start()
            r = await self.wait_ready(t, t.proc, self.a.startup_timeout)
            if isinstance(r, str):
                t.unavailable = f"failed to start: {r}"
                self.log(f"{t.name}: {t.unavailable}")
                t.proc.stop()
                continue
            self.startup[t.name] = r
            # settle: background work after the first answer (turnroute imports LiteLLM 3 s after
            # start-up in a thread) must not land in another target's measurements or in "idle"
            await asyncio.sleep(max(0.5, self.a.settle - (time.perf_counter() - t.proc.spawned_at)))
            wait_quiet(t.proc.pid)
            self.idle_rss[t.name] = rss_mb(t.proc.pid)
            self.log(f"{t.name} up in {r:.2f} s on :{t.port}, RSS {self.idle_rss[t.name]:.0f} MB")

    def stop_all(self) -> None:
        for t in self.targets[1:]:
            if t.proc is not None:
                t.proc.stop()
        if self.fake is not None:
            self.fake.stop()

    # -- phases
    def live(self) -> list[peers.Target]:
        return [t for t in self.targets if not t.unavailable]

    def _err(self, t: peers.Target, msg: str) -> None:
        st = self.stats[t.name]
        st.errors += 1
        st.last_error = msg[:300]

    async def sequential(self, t: peers.Target, n: int, stream: bool) -> tuple[list, list, list]:
        reqs = self.reqs[(t.name, stream)]
        mk = self.marker(t) if stream else None
        conn = Conn(t.port)
        lat, ttfb, ttft = [], [], []
        deadline = time.perf_counter() + self.a.phase_timeout
        try:
            for i in range(n):
                if time.perf_counter() > deadline:
                    self.log(f"  {t.name}: phase time limit after {i} requests")
                    break
                try:
                    res = await conn.request(reqs[i % len(reqs)], mk)
                except HTTPError as e:
                    self._err(t, str(e))
                    continue
                if not self.ok(t, res, stream):
                    self._err(t, f"HTTP {res.status}: {res.body_tail[-200:].decode(errors='replace')}")
                    continue
                lat.append(res.total)
                ttfb.append(res.ttfb)
                if res.first_token is not None:
                    ttft.append(res.first_token)
        finally:
            conn.close()
        self.stats[t.name].requests += n
        return lat, ttfb, ttft

    async def concurrent(self, t: peers.Target, workers: int, seconds: float) -> tuple[float, int]:
        reqs = self.reqs[(t.name, False)]
        done = 0
        stop_at = time.perf_counter() + seconds
        cap = self.a.conc_max

        async def worker(k: int) -> None:
            nonlocal done
            conn = Conn(t.port)
            i = k
            try:
                while time.perf_counter() < stop_at and done < cap:
                    try:
                        res = await conn.request(reqs[i % len(reqs)])
                    except HTTPError as e:
                        self._err(t, str(e))
                        await asyncio.sleep(0.01)
                        continue
                    finally:
                        i += 1
                    if self.ok(t, res, False):
                        done += 1
                    else:
                        self._err(t, f"HTTP {res.status}")
            finally:
                conn.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(workers)))
        el = time.perf_counter() - t0
        self.stats[t.name].requests += done
        return (done / el if el > 0 else 0.0), done

    async def round(self, rnd: int) -> None:
        live = self.live()
        k = rnd % len(live)
        order = live[k:] + live[:k]
        for t in order:
            st = self.stats[t.name]
            pid = t.proc.pid
            k0 = sum(os.times()[:2])
            s0, o0, w0 = system_busy(), cpu_seconds(os.getpid()), time.perf_counter()
            c0 = cpu_seconds(pid)
            lat, _, _ = await self.sequential(t, self.a.seq, False)
            rps, n_conc = await self.concurrent(t, self.a.concurrency, self.a.conc_seconds)
            c1 = cpu_seconds(pid)
            n_ns = len(lat) + n_conc
            slat, sttfb, sttft = await self.sequential(t, self.a.streams, True)
            c2 = cpu_seconds(pid)
            kcpu = sum(os.times()[:2]) - k0
            foreign = ((system_busy() - s0) - (cpu_seconds(os.getpid()) - o0)) / (time.perf_counter() - w0)
            st.lat.append(lat)
            st.rps.append(rps)
            st.ttfb.append(sttfb)
            st.ttft.append(sttft)
            st.ttlb.append(slat)
            # summed over rounds (not a median of per-round ratios): /proc ticks are 10 ms
            st.cpu_ns[0] += c1 - c0
            st.cpu_ns[1] += n_ns
            st.cpu_st[0] += c2 - c1
            st.cpu_st[1] += len(slat)
            p50 = statistics.median(lat) * 1000 if lat else float("nan")
            self.log(f"round {rnd + 1} {t.name:<18} p50 {p50:7.2f} ms  {rps:7.1f} req/s  "
                     f"TTLB p50 {statistics.median(slat) * 1000 if slat else float('nan'):7.2f} ms  "
                     f"gw CPU {(c1 - c0) / max(1, n_ns) * 1000:5.2f} ms/req  "
                     f"client CPU {kcpu / max(1, n_ns + len(slat)) * 1000:5.2f} ms/req  "
                     f"other procs {foreign:4.2f} CPUs  errors {st.errors}")
            if st.errors > max(20, st.requests // 2):
                t.unavailable = f"too many errors ({st.errors}): {st.last_error}"
                self.log(f"  {t.name} dropped: {t.unavailable}")

    async def litellm_warm(self) -> None:
        """RSS once the target's LiteLLM route has served requests (turnroute's lmstudio route)."""
        for t in self.live():
            reqs = self.warm_reqs.get(t.name)
            if not reqs:
                continue
            conn = Conn(t.port)
            try:
                for i in range(self.a.warm_requests):
                    stream = i % 2 == 1
                    r = reqs[(i // 2) % len(rq.STEPS) + (len(rq.STEPS) if stream else 0)]
                    try:
                        res = await conn.request(r, b"text_delta" if stream else None)
                    except HTTPError as e:
                        self._err(t, f"LiteLLM route: {e}")
                        continue
                    if not self.ok(t, res, stream):
                        self._err(t, f"LiteLLM route: HTTP {res.status}")
            finally:
                conn.close()
            self.warm_rss[t.name] = rss_mb(t.proc.pid)

    async def warmup(self) -> None:
        for t in self.live():
            await self.sequential(t, self.a.warmup, False)
            await self.sequential(t, max(2, self.a.warmup // 10), True)
            await self.concurrent(t, self.a.concurrency, 0.5)
            st = self.stats[t.name]
            if st.errors:
                self.log(f"{t.name}: {st.errors} errors in warm-up, last: {st.last_error}")
            st.errors = 0
            st.requests = 0

    async def main(self) -> None:
        self.sys0, self.own0, self.t0 = system_busy(), cpu_seconds(os.getpid()), time.perf_counter()
        self.load0 = open("/proc/loadavg").read().split()[0]
        self.define_targets()
        self.build_bodies()
        gc.collect()
        gc.freeze()
        try:
            await self.start_all()
            self.log("warming up")
            await self.warmup()
            for rnd in range(self.a.rounds):
                await self.round(rnd)
            for t in self.targets:
                if t.proc is not None and t.proc.alive():
                    self.after_rss[t.name] = rss_mb(t.proc.pid)
            await self.litellm_warm()
            el = time.perf_counter() - self.t0
            self.foreign = ((system_busy() - self.sys0) - (cpu_seconds(os.getpid()) - self.own0)) / el
            self.load1 = open("/proc/loadavg").read().split()[0]
        finally:
            self.stop_all()


# ----------------------------------------------------------------------------- report

def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt(x: float, nd: int = 2) -> str:
    return "n/a" if x != x else f"{x:.{nd}f}"


def fmt_ratio(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:.2f}×" if x >= 0.1 else f"{x:.2g}×"


def md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "/")


@dataclass
class Row:
    name: str
    label: str
    p50: float = float("nan")
    p99: float = float("nan")
    add50: float = float("nan")
    add99: float = float("nan")
    ttfb: float = float("nan")
    add_ttfb: float = float("nan")
    ttft: float = float("nan")
    add_ttft: float = float("nan")
    ttlb: float = float("nan")
    add_ttlb: float = float("nan")
    cpu_req: float = float("nan")
    cpu_stream: float = float("nan")
    rps: float = float("nan")
    rss_idle: float = float("nan")
    rss_after: float = float("nan")
    rss_warm: float = float("nan")
    startup: float = float("nan")
    note: str = ""


def compute(b: Bench) -> list[Row]:
    d = b.stats["direct"]
    rows = []
    for t in b.targets:
        s = b.stats[t.name]
        r = Row(t.name, t.label)
        r.rss_idle = b.idle_rss.get(t.name, float("nan"))
        r.rss_after = b.after_rss.get(t.name, float("nan"))
        r.rss_warm = b.warm_rss.get(t.name, float("nan"))
        r.startup = b.startup.get(t.name, float("nan"))
        if t.unavailable and not s.lat:
            r.note = t.unavailable
            rows.append(r)
            continue
        if t.unavailable:
            r.note = t.unavailable
        elif s.errors:
            r.note = f"{s.errors} errors (last: {s.last_error[:80]})"

        def per_round(xs, ds, q=50):
            diffs = [(pct(x, q) - pct(y, q)) * 1000 for x, y in zip(xs, ds) if x and y]
            return med(diffs) if diffs else float("nan")

        pooled = [x for xs in s.lat for x in xs]
        dpooled = [x for xs in d.lat for x in xs]
        r.p50, r.p99 = pct(pooled, 50) * 1000, pct(pooled, 99) * 1000
        r.add50 = per_round(s.lat, d.lat)
        r.add99 = (pct(pooled, 99) - pct(dpooled, 99)) * 1000
        for attr, xs, ds in (("ttfb", s.ttfb, d.ttfb), ("ttft", s.ttft, d.ttft), ("ttlb", s.ttlb, d.ttlb)):
            setattr(r, attr, pct([x for v in xs for x in v], 50) * 1000)
            setattr(r, "add_" + attr, per_round(xs, ds))
        r.cpu_req = s.cpu_ns[0] / s.cpu_ns[1] * 1000 if s.cpu_ns[1] else float("nan")
        r.cpu_stream = s.cpu_st[0] / s.cpu_st[1] * 1000 if s.cpu_st[1] else float("nan")
        r.rps = med(s.rps)
        rows.append(r)
    return rows


def table(rows: list[Row]) -> str:
    d = rows[0]
    hdr = ("| target | non-stream p50 ms: +added (abs) | p99 ms: +added (abs) | stream TTFB ms | "
           "stream first token ms | stream last byte ms | CPU ms/req | CPU ms/stream | req/s @16 (× direct) "
           "| RSS idle MB | RSS after load MB | RSS LiteLLM route warm MB | startup s |")
    out = [hdr, "|" + "|".join(["---"] * 13) + "|"]
    for r in rows:
        if r.p50 != r.p50:
            out.append(f"| {r.label} | _{md_cell(r.note)}_ | " + " | ".join(["—"] * 11) + " |")
            continue

        def cell(add, absv):
            if r is d:
                return f"{fmt(absv)}"
            return f"+{fmt(add)} ({fmt(absv)})" if add == add and add >= 0 else f"{fmt(add)} ({fmt(absv)})"

        rps = f"{fmt(r.rps, 0)} ({fmt_ratio(r.rps / d.rps if d.rps else float('nan'))})"
        out.append(f"| {r.label} | {cell(r.add50, r.p50)} | {cell(r.add99, r.p99)} | "
                   f"{cell(r.add_ttfb, r.ttfb)} | {cell(r.add_ttft, r.ttft)} | {cell(r.add_ttlb, r.ttlb)} | "
                   f"{fmt(r.cpu_req, 3 if r.cpu_req < 0.1 else 2)} | {fmt(r.cpu_stream, 3 if r.cpu_stream < 0.1 else 2)} | {rps} | {fmt(r.rss_idle, 0)} | "
                   f"{fmt(r.rss_after, 0)} | {fmt(r.rss_warm, 0) if r.rss_warm == r.rss_warm else '— (none)'} | "
                   f"{fmt(r.startup)} |")
    notes = [f"- {r.label}: {md_cell(r.note)}" for r in rows if r.note and r.p50 == r.p50]
    return "\n".join(out) + ("\n\n" + "\n".join(notes) if notes else "")


def ratio_tables(rows: list[Row]) -> str:
    live = [r for r in rows if r.p50 == r.p50]
    gw = [r for r in live if r.name != "direct"]
    if len(gw) < 2:
        return ""
    parts = []
    specs = (("Added p50 latency (row ÷ column; < 1 means the row adds less)", "add50"),
             ("CPU ms per non-streaming request (row ÷ column; < 1 means the row burns less)", "cpu_req"),
             ("req/s at 16 concurrent (row ÷ column; > 1 means the row serves more)", "rps"),
             ("Stream last byte, added (row ÷ column)", "add_ttlb"))
    for title, attr in specs:
        lines = [f"**{title}**", "", "| | " + " | ".join(r.label for r in gw) + " |",
                 "|" + "|".join(["---"] * (len(gw) + 1)) + "|"]
        for a in gw:
            cells = []
            for c in gw:
                x, y = getattr(a, attr), getattr(c, attr)
                cells.append("—" if a is c else (fmt_ratio(x / y) if y and y == y and x == x and y > 0 else "n/a"))
            lines.append(f"| {a.label} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def verdict(rows: list[Row]) -> str:
    r = next((x for x in rows if x.name == "turnroute_mlx"), None)
    if r is None or r.p50 != r.p50:
        return "Targets (turnroute mlx route): not measured — turnroute was not available."
    checks = [("added p50 ≤ 1.5 ms", r.add50 <= 1.5, f"{fmt(r.add50)} ms"),
              ("added p99 ≤ 5 ms", r.add99 <= 5, f"{fmt(r.add99)} ms"),
              ("TTFB added ≤ 2 ms", r.add_ttfb <= 2, f"{fmt(r.add_ttfb)} ms"),
              ("first token added ≤ 2 ms", r.add_ttft <= 2, f"{fmt(r.add_ttft)} ms"),
              ("≥ 500 req/s at 16 concurrent", r.rps >= 500, f"{fmt(r.rps, 0)} req/s")]
    return "Targets (turnroute mlx route):\n" + "\n".join(
        f"- {'PASS' if ok else 'FAIL'} {name}: {val}" for name, ok, val in checks)


def machine() -> dict:
    cpu = "?"
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for ln in open("/proc/meminfo"):
            if ln.startswith("MemTotal"):
                mem = f"{int(ln.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release()}


def _ver(pkg: str) -> str:
    import importlib.metadata as md
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "-"


def versions(b: Bench) -> list[str]:
    m = machine()
    tv = peers.turnroute_version()
    out = [f"- date: {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
           f"- other load on the machine during the run: {fmt(b.foreign)} CPUs busy with processes outside "
        f"the benchmark on average (load average {b.load0} at start, {b.load1} at end); the machine "
        "is shared with other work, so treat single-digit-percent differences as noise",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem']} RAM, Linux {m['kernel']}",
           f"- python: {platform.python_version()} (client, fake backend, turnroute)",
           f"- turnroute: {tv}; " + ", ".join(f"{p} {_ver(p)}" for p in
                                                ("fastapi", "starlette", "uvicorn", "httptools", "uvloop",
                                                 "aiohttp", "httpx", "orjson")),
           f"- litellm (turnroute's lmstudio route): {peers.project_litellm_version()}",
           f"- claude-code-router: {peers.ccr_version() or 'not installed'} on node {peers.node_version() or '-'}",
           f"- LiteLLM proxy: litellm {peers.litellm_proxy_version() or 'not installed'} "
           f"(separate venv .cache/bench/litellm-venv)"]
    return out


def report(b: Bench, cmd: str, elapsed: float) -> str:
    rows = compute(b)
    a = b.a
    txt = [
        "## Gateway overhead and peers",
        "",
        f"Generated by `bench/run.py` — command `{cmd}` ({elapsed:.0f} s wall).",
        "",
        "Every target fronts the same fake OpenAI-compatible backend (`bench/fake_backend.py`, raw "
        "asyncio, pre-rendered responses) and gets the same Claude Code-shaped request "
        "(`bench/request.py`: 3 system blocks incl. the billing header, 25 tools with schemas, a "
        "tool_use/tool_result conversation growing over 8 lengths, 65–95 KB, mean ~80 KB; "
        "`thinking: adaptive`, `max_tokens: 64000`). *direct* sends the equivalent OpenAI body "
        "straight to the backend. "
        f"{a.rounds} rounds, alternating targets (order rotated each round); per round and target: "
        f"{a.seq} sequential non-streaming requests, {a.concurrency} concurrent keep-alive clients for "
        f"{a.conc_seconds:g} s, {a.streams} sequential streams of 100 chunks. "
        "*+added* = target − direct in the same round (median over rounds; p99 pooled). "
        "TTFB = response headers received; first token = first text delta; last byte = end of the "
        "100-chunk stream. CPU = utime+stime of the gateway's process tree (/proc) per request; for "
        "*direct* it is the fake backend's own CPU. RSS = VmRSS of the process tree: idle (after start-up "
        "and turnroute's background LiteLLM import), after the load, and after "
        f"{a.warm_requests} more requests (half streaming) over the target's LiteLLM route (turnroute: "
        "`x-turnroute-route: lmstudio` on both instances; LiteLLM proxy: its only route; the others have "
        "none). Startup = spawn "
        "to first 200 from `POST /v1/messages`. The load generator (raw HTTP/1.1 keep-alive client on "
        f"{a.loop}, pre-serialised requests) runs on the same 2 cores as everything else.",
        "",
        table(rows),
        "",
        verdict(rows),
        "",
        "### Ratios between gateways",
        "",
        ratio_tables(rows) or "_fewer than two gateways measured_",
        "",
        "### Versions and machine",
        "",
        *versions(b),
        "",
        "### Configuration of each target",
        "",
        "- turnroute: `turnroute serve --config CFG --port P`, two instances (one per route, "
        "`default: {route: mlx|lmstudio}` plus header `x-turnroute-route`), `rules: []`, request "
        "log on (JSONL in the run directory).",
        "- claude-code-router: `ccr start` (`node dist/cli.js start`) with HOME pointed at a scratch "
        "dir holding `.claude-code-router/config.json`: one provider "
        "(`api_base_url: http://127.0.0.1:<fake>/v1/chat/completions`), `Router.default: "
        "fake,fake-model`, `LOG: false` (its default is on; off is the faster setting), no APIKEY.",
        "- LiteLLM proxy: `litellm --config cfg.yaml --port P` from its own venv; `model_name: \"*\"` → "
        "`openai/fake-model` with `api_base` the fake; a master key (the proxy refuses to start "
        "without one) sent as `x-api-key`; `LITELLM_LOCAL_MODEL_COST_MAP=True`; "
        "`use_chat_completions_url_for_anthropic_messages: true` (otherwise `/v1/messages` for "
        "`openai/*` goes to `/v1/responses`, which local OpenAI-compatible servers lack); default "
        "logging.",
        "- Between a target's phases the other targets sit idle (LiteLLM proxy keeps a few background "
        "tasks); every process stays up for the whole run so rounds can alternate.",
        "",
        "### Peer install notes",
        "",
        "- claude-code-router: `npm install --prefix .cache/bench/ccr @musistudio/claude-code-router@latest`, "
        f"then `@{peers.CCR_FALLBACK}` if that fails: {peers.ccr_install_note() or 'no install record'}. "
        "`ccr start` stays in the foreground and serves `/v1/messages` on `PORT`.",
        "- LiteLLM proxy: `pip install 'litellm[proxy]==<version>'` fails here because the `proxy` extra "
        "pins a `litellm-proxy==<version>` wheel the index does not carry (and "
        "`litellm-proxy-extras`/`litellm-enterprise` versions newer than the index has). The proxy "
        "server ships inside the `litellm` wheel, so `bench/peers.py` falls back to the extra's other "
        "requirements with those pins dropped. It then needs a master key (refuses to start without "
        "one) and `use_chat_completions_url_for_anthropic_messages` (see above).",
        "- Profiling: py-spy 0.4.3 cannot attach to this pyenv-built Python (\"Failed to find python "
        "version\"); use `bench/profile_gateway.py` (cProfile with a CPU-time clock, plus per-thread "
        "CPU from /proc).",
        "",
    ]
    return "\n".join(txt)


def main() -> int:
    ap = argparse.ArgumentParser(description="gateway overhead benchmark")
    ap.add_argument("--quick", action="store_true", help="~1-2 minute smoke run")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seq", type=int, help="sequential non-streaming requests per round")
    ap.add_argument("--conc-seconds", type=float)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--conc-max", type=int, default=50000, help="cap on requests per concurrent phase")
    ap.add_argument("--streams", type=int, help="streaming requests per round")
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--warm-requests", type=int, default=40,
                    help="requests (half streaming) over each target's LiteLLM route before 'RSS LiteLLM warm'")
    ap.add_argument("--phase-timeout", type=float, default=90.0)
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    ap.add_argument("--settle", type=float, default=5.0,
                    help="min seconds from a target's spawn before it is considered idle")
    ap.add_argument("--targets", default="direct,turnroute_mlx,turnroute_litellm,ccr,litellm_proxy")
    ap.add_argument("--no-install", action="store_true", help="do not install missing peers")
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md (default: full runs)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", type=Path, default=DOC)
    a = ap.parse_args()
    q = a.quick
    a.rounds = a.rounds or (2 if q else 3)
    a.seq = a.seq or (60 if q else 400)
    a.conc_seconds = a.conc_seconds or (2.0 if q else 6.0)
    a.streams = a.streams or (15 if q else 100)
    a.warmup = a.warmup or (20 if q else 50)
    a.targets = [x.strip() for x in a.targets.split(",") if x.strip()]
    cmd = "python " + " ".join(shlex.quote(x) for x in ["bench/run.py", *sys.argv[1:]])
    try:  # a cheaper event loop for the load generator, when installed
        import uvloop  # type: ignore
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        a.loop = "uvloop"
    except ImportError:
        a.loop = "asyncio"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="turnroute-bench-") as tmp:
        b = Bench(a, Path(tmp))
        try:
            asyncio.run(b.main())
        except KeyboardInterrupt:
            b.stop_all()
            raise
        elapsed = time.perf_counter() - t0
        doc = report(b, cmd, elapsed)
        if os.environ.get("BENCH_KEEP_LOGS"):
            import shutil
            shutil.copytree(tmp, os.environ["BENCH_KEEP_LOGS"], dirs_exist_ok=True)
    print()
    print(doc)
    if (a.write or not q) and not a.no_write:
        docsections.write(a.out, "overhead", doc)
        print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
