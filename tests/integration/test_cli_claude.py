"""`turnroute claude`: the real Claude Code through a gateway it started (and one already running)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.claude_code import claude_env
from tests.support.gateway import Gateway, gateway_config, openai_backend
from tests.support.net import free_port
from tests.support.procs import processes_with


def launcher_env(tmp_path: Path, claude: Path | str | None) -> dict[str, str]:
    """Claude Code's offline test environment, minus what `turnroute claude` must set itself."""
    env = claude_env("unused", home=tmp_path / "home")
    for key in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
        env.pop(key)
    env.update({"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
                "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"})
    if claude is not None:
        env["TURNROUTE_CLAUDE"] = str(claude)
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def turnroute_claude(config: Path, args: list[str], env: dict[str, str], cwd: Path,
                     timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "turnroute.gateway.cli", "claude", "--config", str(config), *args],
                          env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def answers(base: str) -> bool:
    try:
        return httpx.get(base + "/api/hello", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def write_config(tmp_path: Path, doc: dict, port: int) -> Path:
    doc = {**doc, "server": {"host": "127.0.0.1", "port": port}}
    path = tmp_path / "launch.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.slow
def test_claude_starts_a_gateway_with_a_managed_mlx_server_and_stops_both(claude_code, tiny_model_dir, tmp_path):
    """From nothing running to a Claude Code answer from a managed mlx_lm.server, and back to nothing."""
    port = free_port()
    doc = gateway_config({"mlx": {"serve": {"model": str(tiny_model_dir), "prompt_cache_bytes": 50_000_000},
                                  "max_output_tokens": 8, "context_window": 32768,
                                  "supports": {"tools": False}}},
                         rules=[], log_path=tmp_path / "requests.jsonl")
    config = write_config(tmp_path, doc, port)
    cwd = tmp_path / "project"
    cwd.mkdir()
    r = turnroute_claude(config, ["-p", "Explain what a build system is, briefly.", "--output-format", "json"],
                         launcher_env(tmp_path, claude_code), cwd)
    gateway_log = tmp_path / "state" / "turnroute" / "gateway.log"
    assert r.returncode == 0, f"{r.stderr}\n{r.stdout}\n{gateway_log.read_text(errors='replace')[-3000:]}"
    result = json.loads(r.stdout)
    assert not result["is_error"], result
    assert "starting the gateway" in r.stderr and "ready (mlx ready" in r.stderr
    records = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    prompts = [x for x in records if x["turn"] == "prompt"]
    assert prompts and all(x["route"] == "mlx" and x["status"] == 200 for x in prompts), records
    # The gateway it started is gone, and so is the mlx_lm.server that gateway ran.
    assert not answers(f"http://127.0.0.1:{port}")
    server_port = gateway_log.read_text().split("starting mlx_lm.server on port ")[1].split()[0]
    assert not processes_with(f"--port {server_port}")


def test_claude_reuses_a_running_gateway_and_passes_the_exit_code_through(claude_code, fake_openai, tmp_path):
    fake_openai.default = "pong from the backend"
    doc = gateway_config({"mlx": openai_backend(fake_openai.url, tools=False)}, rules=[],
                         log_path=tmp_path / "requests.jsonl")
    cwd = tmp_path / "project"
    cwd.mkdir()
    with Gateway(doc, tmp_path) as gw:
        config = write_config(tmp_path, doc, gw.port)
        env = launcher_env(tmp_path, claude_code)
        r = turnroute_claude(config, ["-p", "say something", "--output-format", "json"], env, cwd)
        assert r.returncode == 0, r.stderr
        assert "using the gateway already running" in r.stderr
        assert "pong from the backend" in json.loads(r.stdout)["result"]
        assert gw.proc.poll() is None and answers(gw.base)      # left running

        direct = subprocess.run([str(claude_code), "--no-such-option"], env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        r = turnroute_claude(config, ["--no-such-option"], env, cwd)
        assert direct.returncode != 0 and r.returncode == direct.returncode


def test_claude_gets_the_gateway_environment_and_a_clear_message_when_missing(fake_openai, tmp_path):
    fake_claude = tmp_path / "claude"
    fake_claude.write_text("#!/bin/sh\nenv > \"$(dirname \"$0\")/seen-env\"\necho \"$@\" > \"$(dirname \"$0\")/seen-args\"\n"
                           "exit 7\n")
    fake_claude.chmod(0o755)
    doc = gateway_config({"mlx": openai_backend(fake_openai.url, tools=False, context_window=16384),
                          "spare": openai_backend(fake_openai.url, context_window=4096)},
                         rules=[], log_path=tmp_path / "requests.jsonl")
    port = free_port()
    config = write_config(tmp_path, doc, port)
    r = turnroute_claude(config, ["-p", "hi there", "--model", "mlx"], launcher_env(tmp_path, fake_claude), tmp_path)
    assert r.returncode == 7, r.stderr
    seen = dict(line.split("=", 1) for line in (tmp_path / "seen-env").read_text().splitlines() if "=" in line)
    assert seen["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
    assert seen["ANTHROPIC_API_KEY"] == "local"
    assert seen["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and seen["DISABLE_AUTOUPDATER"] == "1"
    assert seen["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "16384"     # "spare" is not a route in use
    assert (tmp_path / "seen-args").read_text().split() == ["-p", "hi", "there", "--model", "mlx"]
    assert not answers(f"http://127.0.0.1:{port}")

    env = launcher_env(tmp_path, None)
    env["PATH"] = str(tmp_path / "empty-bin")
    r = turnroute_claude(config, ["-p", "hi"], env, tmp_path)
    assert r.returncode == 127
    assert "npm install -g @anthropic-ai/claude-code" in r.stderr
