"""Profile one turnroute route under the benchmark load (cProfile, CPU time; py-spy 0.4.3 cannot read
this pyenv Python: "Failed to find python version from target process").

    .venv/bin/python bench/profile_gateway.py --route mlx [--seconds 8] [--stream] [--top 40]

Starts the fake backend and ``turnroute serve`` (the real CLI, run under cProfile), drives it with
16 concurrent keep-alive clients sending the Claude Code-shaped request for ``--seconds``, stops it
(SIGINT → uvicorn's graceful shutdown → the profile is written) and prints the top functions by
own time and by cumulative time.  cProfile slows Python code ~1.5-2×; read relative shares.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
import request as rq  # noqa: E402
from run import Conn, HTTPError, build_request, free_port  # noqa: E402


async def drive(port: int, reqs: list[bytes], seconds: float, workers: int, stream: bool) -> int:
    done = 0
    statuses: dict = {}
    stop_at = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        c = Conn(port)
        i = k
        try:
            while time.perf_counter() < stop_at and done < 200000:
                try:
                    res = await c.request(reqs[i % len(reqs)], b"text_delta" if stream else None)
                    done += res.status == 200
                    statuses[res.status] = statuses.get(res.status, 0) + 1
                    if res.status != 200 and statuses[res.status] == 1:
                        print("non-200:", res.status, res.body_tail[-300:])
                except HTTPError:
                    await asyncio.sleep(0.01)
                i += 1
        finally:
            c.close()

    await asyncio.gather(*(worker(k) for k in range(workers)))
    print("statuses:", statuses)
    return done


async def wait_ready(port: int, data: bytes, timeout: float = 60) -> bool:
    for _ in range(int(timeout / 0.1)):
        c = Conn(port)
        try:
            if (await c.request(data)).status == 200:
                return True
        except (HTTPError, OSError):
            pass
        finally:
            c.close()
        await asyncio.sleep(0.1)
    return False


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (comm, utime+stime seconds) for every thread of every process in pid's tree."""
    from run import CLK, proc_tree
    out = {}
    for p in proc_tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/stat", "rb") as fh:
                    st = fh.read()
            except OSError:
                continue
            comm = st[st.find(b"(") + 1:st.rfind(b")")].decode(errors="replace")
            f = st[st.rfind(b")") + 2:].split()
            out[int(tid)] = (f"{p}/{comm}", (int(f[11]) + int(f[12])) / CLK)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--route", default="mlx", choices=["mlx", "lmstudio"])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--save", type=Path, help="also keep the .prof file here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="turnroute-prof-") as tmp:
        wd = Path(tmp)
        fport, gport = free_port(), free_port()
        fake = peers.start_fake_backend(wd, fport)
        cfg = peers.turnroute_config(wd, "turnroute_prof", gport, fport, a.route)
        prof = wd / "gw.prof"
        # CPU-time timer: wall-clock attribution on a shared 2-core box charges preemption to
        # whatever syscall happened to be running (write, poll).
        code = ("import cProfile, sys, time; sys.argv = ['turnroute', 'serve', '--config', %r, '--port', "
                "'%d', '--no-reload']; from turnroute.gateway.cli import main; p = cProfile.Profile(time.process_time)"
                "; p.runcall(main); p.dump_stats(%r)" % (str(cfg), gport, str(prof)))
        gw = peers.spawn("gw", [sys.executable, "-c", code], wd, cwd=peers.REPO,
                         env_extra={"PYTHONPATH": str(peers.REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        try:
            hdr = {**rq.HEADERS, "x-turnroute-route": a.route}
            reqs = [build_request(gport, "/v1/messages", hdr, rq.dumps(rq.anthropic_body(s, stream=a.stream)))
                    for s in rq.STEPS]
            plain = build_request(gport, "/v1/messages", hdr, rq.dumps(rq.anthropic_body(4)))
            if not asyncio.run(wait_ready(gport, plain)):
                print("gateway did not come up:", gw.log_tail(800))
                return 1
            from run import wait_quiet
            time.sleep(max(0.0, 5.0 - (time.perf_counter() - gw.spawned_at)))  # LiteLLM warm import at 3 s
            print(f"gateway quiet after {wait_quiet(gw.pid):.1f} s (background imports)")
            before = thread_cpu(gw.pid)
            t0 = time.perf_counter()
            n = asyncio.run(drive(gport, reqs, a.seconds, a.workers, a.stream))
            el = time.perf_counter() - t0
            after = thread_cpu(gw.pid)
            print(f"{n} requests in {el:.1f} s = {n / el:.0f} req/s under cProfile")
            print("CPU by thread during load (ms per request; cProfile only sees the thread it runs in):")
            for tid, (name, c) in sorted(after.items(), key=lambda kv: -(kv[1][1] - before.get(kv[0], ("", 0))[1])):
                d = c - before.get(tid, ("", 0.0))[1]
                if d > 0:
                    print(f"  tid {tid:>7} {name:<28} {d * 1000 / max(n, 1):7.3f} ms/req")
        finally:
            if gw.alive():
                os.killpg(gw.pid, signal.SIGINT)
                try:
                    gw.popen.wait(timeout=20)
                except Exception:
                    gw.stop()
            fake.stop()
        if not prof.exists():
            print("no profile written:", gw.log_tail(800))
            return 1
        if a.save:
            a.save.write_bytes(prof.read_bytes())
        st = pstats.Stats(str(prof))
        st.strip_dirs().sort_stats("tottime").print_stats(a.top)
        st.sort_stats("cumulative").print_stats(a.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
