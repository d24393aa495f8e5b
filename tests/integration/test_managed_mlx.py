"""A managed pool of real mlx_lm.servers: started by the gateway, SIGKILLed mid-session, restarted,
the session goes on; nothing is left running when the gateway stops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import anthropic
import httpx
import pytest

from turnroute.gateway.backends.base import ServeSpec
from turnroute.gateway.backends.managed import ManagedServer

from tests.support.gateway import Gateway, gateway_config
from tests.support.net import free_port, wait_http
from tests.support.procs import processes_with


def managed(gw: Gateway) -> list[dict]:
    return httpx.get(gw.base + "/health", timeout=10, trust_env=False).json()["backends"]["mlx"]["managed"]


def all_ready(r: httpx.Response) -> bool:
    servers = r.json()["backends"]["mlx"]["managed"]
    return all(s["state"] == "ready" for s in servers)


@pytest.mark.slow
def test_a_killed_server_is_restarted_and_the_session_continues(tiny_model_dir, tmp_path):
    spec = {"model": str(tiny_model_dir), "prompt_cache_size": 2, "prompt_cache_bytes": 50_000_000}
    doc = gateway_config({"mlx": {"serve": [spec, spec], "model": "auto", "max_output_tokens": 4,
                                  "supports": {"tools": False}}},
                         rules=[], log_path=tmp_path / "requests.jsonl")
    # a HOME without a Hugging Face cache: the servers' model lists must still work (model: auto)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}
    with Gateway(doc, tmp_path, env=env) as gw:
        wait_http(gw.base + "/health", timeout=120, ok=all_ready, alive=lambda: gw.proc.poll() is None)
        servers = managed(gw)
        assert len({s["url"] for s in servers}) == 2 and all(s["pid"] for s in servers)

        session = "5e55-a11ce"
        mine = servers[zlib.crc32(session.encode()) % 2]      # the server this session hashes to
        other = next(s for s in servers if s is not mine)
        client = anthropic.Anthropic(base_url=gw.base, api_key="local", max_retries=10,
                                     default_headers={"x-claude-code-session-id": session})
        messages = [{"role": "user", "content": "first question of the session"}]
        first = client.messages.create(model="claude-sonnet-4", max_tokens=4, messages=messages)
        messages += [{"role": "assistant", "content": first.content[0].text},
                     {"role": "user", "content": "and a follow-up"}]

        os.kill(mine["pid"], signal.SIGKILL)
        # Sent at once: while the server restarts the gateway answers 529, which clients retry.
        second = client.messages.create(model="claude-sonnet-4", max_tokens=4, messages=messages)
        assert second.content and second.usage.output_tokens > 0

        after = {s["url"]: s for s in managed(gw)}
        assert after[mine["url"]]["restarts"] == 1 and after[mine["url"]]["pid"] != mine["pid"]
        assert "SIGKILL" in after[mine["url"]]["last_exit"]
        assert after[other["url"]]["restarts"] == 0 and after[other["url"]]["pid"] == other["pid"]
        assert "restarting" in gw.output() and "SIGKILL" in gw.output()
        served = [r for r in gw.records() if r["status"] == 200]
        assert len(served) == 2 and {r["session"] for r in served} == {session}
        assert {r["backend_model"] for r in served} == {str(tiny_model_dir.resolve())}
        log_file = tmp_path / "state" / "turnroute" / "servers" / f"mlx-{servers.index(mine)}.log"
        assert log_file.stat().st_size > 0

        # doctor, asked about this running gateway, shows the restart and where the log is
        gw.write_config({**doc, "server": {"port": gw.port}})
        r = subprocess.run([sys.executable, "-m", "turnroute.gateway.cli", "doctor", "--config", str(gw.config_path)],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
        assert "a turnroute gateway is running" in r.stdout
        restarted = next(x for x in r.stdout.splitlines() if x.startswith("! mlx server") and mine["url"] in x)
        assert "1 restarts" in restarted and "SIGKILL" in restarted
    ports = [s["url"].rsplit(":", 1)[1].split("/")[0] for s in servers]
    assert not any(processes_with(f"--port {p}") for p in ports)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_server_that_stops_answering_is_killed_and_restarted(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    server = ManagedServer("mlx", 0, ServeSpec(model=str(tiny_model_dir)), free_port())
    server.health_interval, server.health_timeout = 0.2, 0.5
    server.start()
    try:
        await until(lambda: server.state == "ready", 60)
        hung = server.status()["pid"]
        os.kill(hung, signal.SIGSTOP)          # the process lives on but answers nothing
        await until(lambda: server.restarts == 1 and server.state == "ready", 60)
        assert server.last_exit.startswith("stopped answering GET /health")
        assert server.status()["pid"] != hung and not alive(hung)
    finally:
        await server.stop()
    assert server.state == "stopped" and not processes_with(f"--port {server.port}")


def test_a_gateway_killed_outright_takes_its_server_with_it(tiny_model_dir, tmp_path):
    doc = gateway_config({"mlx": {"serve": {"model": str(tiny_model_dir)}}}, rules=[],
                         log_path=tmp_path / "requests.jsonl")
    with Gateway(doc, tmp_path, env={"XDG_STATE_HOME": str(tmp_path / "state")}) as gw:
        wait_http(gw.base + "/health", timeout=120, ok=all_ready, alive=lambda: gw.proc.poll() is None)
        pid = managed(gw)[0]["pid"]
        gw.proc.kill()                         # no shutdown code runs in the gateway
        gw.proc.wait()
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)
