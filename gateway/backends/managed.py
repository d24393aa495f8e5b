"""mlx_lm.server processes the gateway runs itself (`backends.<name>.serve`).

Why the gateway supervises them: a hand-started server is one more step to get wrong (cache flags,
port, model name), and a server whose generation thread died keeps its port open while answering
nothing. Each managed server gets a free loopback port chosen before the backend is built (so the
backend's `urls` — and the session hashing over them — never change), is health-checked with
`GET /health` (no generation), restarted with backoff when it exits or stops answering, and
stopped with its whole process group when the gateway exits.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import httpx

from turnroute.gateway.backends.base import BackendConfig, ServeSpec
from turnroute.gateway.paths import state_file

log = logging.getLogger("turnroute")

HEALTH_INTERVAL = 2.0       # seconds between health checks of a ready server
HEALTH_TIMEOUT = 5.0        # a busy mlx_lm.server still answers /health from its HTTP thread
UNANSWERED_LIMIT = 3        # consecutive failed checks before a live process counts as hung
START_TIMEOUT = 900.0       # loading a large model from a slow disk can take minutes
MAX_BACKOFF = 30.0
LOG_MAX_BYTES = 2 * 1024 * 1024   # each server log is capped (one older copy kept)

_live_groups: set[int] = set()    # process groups to kill if the interpreter exits without stop()


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_live_groups):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL if the gateway dies without cleaning up (no orphan server)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        except Exception:
            pass


class BoundedLog:
    """The child's output in a file that never grows past `max_bytes` (rotated once to .1)."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        self.tail: deque[str] = deque(maxlen=40)
        self._fh = open(path, "ab")

    def write(self, line: bytes) -> None:
        self.tail.append(line.decode("utf-8", "replace").rstrip())
        if self._fh.tell() + len(line) > self.max_bytes:
            self._fh.close()
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._fh = open(self.path, "ab")
        self._fh.write(line)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class ManagedServer:
    """One supervised `mlx_lm.server`; `status()` is what /health and `doctor` show."""

    health_interval = HEALTH_INTERVAL
    health_timeout = HEALTH_TIMEOUT

    def __init__(self, backend: str, index: int, spec: ServeSpec, port: int):
        self.backend = backend
        self.spec = spec
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.log_path = state_file("servers", f"{backend}-{index}.log")
        self.state = "stopped"        # starting | ready | restarting | failed | stopped
        self.restarts = 0
        self.last_exit: str | None = None
        self.ready_after_s: float | None = None
        self._since = time.monotonic()
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._log: BoundedLog | None = None

    def command(self) -> list[str]:
        s = self.spec
        cmd = [sys.executable, "-m", "mlx_lm.server", "--model", s.model, "--host", "127.0.0.1",
               "--port", str(self.port)]
        if s.prompt_cache_size is not None:
            cmd += ["--prompt-cache-size", str(s.prompt_cache_size)]
        if s.prompt_cache_bytes is not None:
            cmd += ["--prompt-cache-bytes", str(s.prompt_cache_bytes)]
        return cmd + list(s.extra_args)

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "model": self.spec.model, "state": self.state,
                "pid": self._proc.pid if self._proc and self._proc.returncode is None else None,
                "for_s": round(time.monotonic() - self._since, 1), "ready_after_s": self.ready_after_s,
                "restarts": self.restarts, "last_exit": self.last_exit, "log": str(self.log_path)}

    def _set(self, state: str) -> None:
        self.state, self._since = state, time.monotonic()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"managed-{self.port}")

    async def _supervise(self) -> None:
        backoff = 1.0
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                if not Path(self.spec.model).is_dir():
                    self._set("failed")
                    self.last_exit = (f"model directory {self.spec.model} does not exist (serve.model must be "
                                      "a local directory; the gateway never downloads a model)")
                    log.error("backend %s: %s", self.backend, self.last_exit)
                    return
                reason = await self._run_once(client)
                if self.state == "ready":      # it served for a while: a fresh failure, short wait
                    backoff = 1.0
                # a hung server would not act on SIGTERM: it gets SIGKILL straight away
                await self._kill(graceful=not reason.startswith("stopped answering"))
                self.restarts += 1
                self.last_exit = reason
                self._set("restarting")
                log.warning("backend %s: mlx_lm.server on port %d %s; restarting in %.0f s (restart %d, log %s)",
                            self.backend, self.port, reason, backoff, self.restarts, self.log_path)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _run_once(self, client: httpx.AsyncClient) -> str:
        """Start the server and watch it; returns why it has to be restarted."""
        self._set("starting")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        hub = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
        if "HF_HUB_CACHE" not in env and not hub.is_dir():
            # mlx_lm.server's GET /v1/models breaks (an empty 200) when the hub cache folder is missing
            env["HF_HUB_CACHE"] = str(state_file("hf-hub-empty", ".keep").parent)
        self._log = self._log or BoundedLog(self.log_path)
        self._log.write(f"--- turnroute: {' '.join(self.command())}\n".encode())
        log.info("backend %s: starting mlx_lm.server on port %d (model %s)", self.backend, self.port, self.spec.model)
        t0 = time.monotonic()
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        _live_groups.add(self._proc.pid)
        pump = asyncio.create_task(self._pump(self._proc))
        try:
            return await self._watch(client, t0)
        finally:
            pump.cancel()

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and self._log is not None
        async for line in proc.stdout:
            self._log.write(line)

    async def _watch(self, client: httpx.AsyncClient, t0: float) -> str:
        proc = self._proc
        assert proc is not None
        base = f"http://127.0.0.1:{self.port}/health"
        unanswered = 0
        last_note = t0
        while True:
            if proc.returncode is not None:
                return self._exit_reason(proc.returncode)
            try:
                ok = (await client.get(base, timeout=self.health_timeout)).status_code == 200
            except httpx.HTTPError:
                ok = False
            now = time.monotonic()
            if self.state == "starting":
                if ok:
                    self.ready_after_s = round(now - t0, 2)
                    self._set("ready")
                    log.info("backend %s: mlx_lm.server on port %d ready after %.1f s",
                             self.backend, self.port, self.ready_after_s)
                elif now - t0 > START_TIMEOUT:
                    return f"did not become healthy within {START_TIMEOUT:.0f} s"
                elif now - last_note >= 10:
                    last_note = now
                    log.info("backend %s: mlx_lm.server still loading (%.0f s)", self.backend, now - t0)
            else:
                unanswered = 0 if ok else unanswered + 1
                if unanswered >= UNANSWERED_LIMIT:
                    return f"stopped answering GET /health ({unanswered} checks in a row)"
            try:
                await asyncio.wait_for(proc.wait(), timeout=0.25 if self.state == "starting" else self.health_interval)
            except asyncio.TimeoutError:
                pass

    def _exit_reason(self, code: int) -> str:
        how = f"was killed ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}"
        # The last line that is not an access-log line usually names the cause (a traceback's end).
        said = next((t for t in reversed(self._log.tail if self._log else ()) if t and '" 200 -' not in t), None)
        return f"{how}: {said[-300:]}" if said and code > 0 else how

    async def _kill(self, graceful: bool = True) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
                await asyncio.wait_for(proc.wait(), timeout=5)
            except (OSError, asyncio.TimeoutError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                await proc.wait()
        else:   # the leader is gone; anything it left in its group goes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        _live_groups.discard(proc.pid)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        await self._kill()
        self._set("stopped")
        if self._log is not None:
            self._log.close()
            self._log = None


class ManagedServers:
    """Every managed server of the gateway, keyed by backend; gives `serve` backends their urls."""

    def __init__(self) -> None:
        self._servers: dict[str, list[ManagedServer]] = {}
        self._started = False

    def prepare(self, configs: Mapping[str, BackendConfig]) -> dict[str, BackendConfig]:
        """The configs with each `serve` backend's urls filled in (same ports across reloads)."""
        out: dict[str, BackendConfig] = {}
        for name, cfg in configs.items():
            if not cfg.serve:
                out[name] = cfg
                continue
            servers = self._servers.get(name)
            if servers is not None and tuple(s.spec for s in servers) != cfg.serve:
                log.warning("config: a change to backends.%s.serve takes effect after a restart", name)
            if servers is None:
                servers = [ManagedServer(name, i, spec, free_port()) for i, spec in enumerate(cfg.serve)]
                self._servers[name] = servers
                if self._started:
                    for s in servers:
                        s.start()
            out[name] = replace(cfg, serve=tuple(s.spec for s in servers), urls=tuple(s.url for s in servers))
        return out

    def start(self) -> None:
        self._started = True
        for servers in self._servers.values():
            for s in servers:
                s.start()

    def status(self, backend: str) -> list[dict[str, Any]] | None:
        servers = self._servers.get(backend)
        return [s.status() for s in servers] if servers else None

    async def aclose(self) -> None:
        await asyncio.gather(*(s.stop() for servers in self._servers.values() for s in servers))
