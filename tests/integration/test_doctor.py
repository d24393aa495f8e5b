"""`turnroute doctor`: backends up (real mlx_lm.server, LM Studio's model list) and every kind of
misconfiguration, each its own line with its fix, and the exit code a script can gate on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import gateway_config, openai_backend
from tests.support.net import free_port

TOOL_MODEL = {"id": "qwen-coder", "type": "llm", "state": "loaded", "capabilities": ["tool_use"],
              "loaded_context_length": 32768}
CHAT_MODEL = {"id": "gemma-chat", "type": "llm", "state": "loaded", "capabilities": [],
              "loaded_context_length": 8192}


def doctor(tmp_path: Path, doc: dict, *, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    config = tmp_path / "doctor.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    full = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_STATE_HOME": str(tmp_path / "state"),
            "TURNROUTE_CLAUDE": sys.executable, **(env or {})}
    r = subprocess.run([sys.executable, "-m", "turnroute.gateway.cli", "doctor", "--config", str(config)],
                       env=full, capture_output=True, text=True, timeout=180)
    assert not r.stderr.strip(), r.stderr
    return r.returncode, r.stdout.splitlines()


def line(lines: list[str], start: str) -> str:
    """The check line starting with `start`, with its fix line if it has one."""
    for i, text in enumerate(lines):
        if text.startswith(start):
            nxt = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("    fix:") else ""
            return f"{text}\n{nxt}".strip()
    raise AssertionError(f"no line starting {start!r} in:\n" + "\n".join(lines))


def test_all_good_with_real_mlx_and_lm_studio_exits_zero(mlx_server, fake_openai, tmp_path):
    fake_openai.lmstudio_models = [TOOL_MODEL]
    port = free_port()
    doc = gateway_config({"mlx": openai_backend(mlx_server.url, model="default_model", tools=False,
                                                context_window=32768),
                          "lmstudio": openai_backend(fake_openai.url, model="qwen-coder", context_window=32768)},
                         rules=[], log_path=tmp_path / "r.jsonl", extra={"server": {"port": port}})
    settings = tmp_path / "home" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}}))
    rc, lines = doctor(tmp_path, doc)
    assert rc == 0, "\n".join(lines)
    assert line(lines, "✓ mlx reachable").endswith("serves default_model")
    assert line(lines, "✓ mlx prompt cache").startswith("✓ mlx prompt cache: prompt_cache_size 10")
    assert line(lines, "✓ lmstudio tool calling") == "✓ lmstudio tool calling: qwen-coder was trained for tool use"
    assert line(lines, "✓ lmstudio context window")
    assert line(lines, "✓ port").endswith("free")
    assert line(lines, "✓ Claude Code endpoint")
    assert lines[-1].startswith("0 failed")


def test_each_misconfiguration_is_its_own_line_with_a_fix(tiny_model_dir, tmp_path):
    dead = free_port()
    with FakeOpenAI() as lms:
        lms.lmstudio_models = [CHAT_MODEL, TOOL_MODEL | {"id": "coder-on-disk", "state": "not-loaded"}]
        doc = gateway_config(
            {"mlx": {"serve": {"model": str(tiny_model_dir), "prompt_cache_bytes": 8_000_000},
                     "context_window": 32768},
             "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/gemma-chat",
                                        context_window=32768),
             "ollama": openai_backend(f"http://127.0.0.1:{dead}/v1", model="qwen")},
            rules=[], log_path=tmp_path / "r.jsonl",
            extra={"server": {"port": lms.port}})        # a port another program already uses
        rc, lines = doctor(tmp_path, doc, env={"ANTHROPIC_BASE_URL": "https://api.example.com",
                                                "ANTHROPIC_AUTH_TOKEN": "sk-secret-value"})
    out = "\n".join(lines)
    assert rc == 1, out
    assert "sk-secret-value" not in out
    assert "is taken by another program" in line(lines, "✗ port")
    assert "too small to hold a Claude Code prefix" in line(lines, "! mlx prompt cache")
    assert "prompt_cache_bytes: " in line(lines, "! mlx prompt cache")
    tools = line(lines, "✗ lmstudio tool calling")
    assert "gemma-chat was not trained for tool use" in tools and "fix: load a tool-capable model" in tools
    window = line(lines, "✗ lmstudio context window")
    assert "32,768 but the server loaded 8,192" in window and "context_window: 8192" in window
    down = line(lines, "✗ ollama reachable")
    assert f"127.0.0.1:{dead}" in down and "fix: start the server" in down
    assert "https://api.example.com" in line(lines, "✗ Claude Code endpoint")
    assert "fix: remove it" in line(lines, "! Claude Code key")
    assert line(lines, "✓ LiteLLM").startswith("✓ LiteLLM: imports offline")
