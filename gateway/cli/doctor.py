"""`turnroute doctor`: every way the set-up can be wrong, one line each, with the fix.

Nothing here generates a token: servers are asked only for their health and model lists, and
LiteLLM is imported in a child process. The exit code is 1 when any check failed (warnings
alone leave it 0), so scripts can gate on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnroute.gateway.cli.claude import INSTALL_HINT, gateway_url, get_json, is_turnroute

PREFIX_TOKENS = 16_000      # a Claude Code system prompt + tools is ~10-16k tokens
CACHE_ENTRIES = 2           # the conversation and its latest extension are both kept
MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}


@dataclass
class Check:
    status: str         # ok | warn | fail
    name: str
    detail: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{MARKS[self.status]} {self.name}: {self.detail}"
        return text + (f"\n    fix: {self.fix}" if self.fix and self.status != "ok" else "")


def kv_bytes_per_token(model_dir: Path) -> int | None:
    """Prompt-cache bytes per token for a plain-attention model, from its config.json."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
        cfg = cfg.get("text_config", cfg)
        layers, heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        kv = cfg.get("num_key_value_heads") or heads
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    return 2 * layers * kv * head_dim * 2     # keys and values, float16


def model_window(model_dir: Path) -> int | None:
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
        return int(cfg.get("text_config", cfg)["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cache_check(name: str, size: int | None, limit: int | None, model_dir: Path | None, where: str) -> Check:
    per_token = kv_bytes_per_token(model_dir) if model_dir else None
    need = per_token * PREFIX_TOKENS * CACHE_ENTRIES if per_token else None
    shown = f"prompt_cache_size {size if size is not None else '10 (default)'}, prompt_cache_bytes " + (
        f"{limit:,}" if limit is not None else "unlimited")
    if size is not None and size < 2:
        return Check("warn", f"{name} prompt cache", f"{shown}: one slot is evicted by every side call",
                     f"{where} prompt_cache_size: 4 (at least 2)")
    if limit is not None and need and limit < need:
        return Check("warn", f"{name} prompt cache",
                     f"{shown}: too small to hold a Claude Code prefix (~{need // 1_000_000} MB for "
                     f"{PREFIX_TOKENS:,} tokens of this model, twice)",
                     f"{where} prompt_cache_bytes: {need * 2}")
    return Check("ok", f"{name} prompt cache", shown + (f" (a Claude Code prefix needs ~{need // 1_000_000} MB)"
                                                       if need else ""))


def server_flags(port: int) -> dict[str, str] | None:
    """The command-line flags of the mlx_lm.server listening on `port`, from the process list."""
    try:
        out = subprocess.run(["ps", "-A", "-o", "args="], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if "mlx_lm.server" in line or "mlx_lm server" in line:
            flags = dict(re.findall(r"--([\w-]+)[ =](\S+)", line))
            if flags.get("port", "8080") == str(port):
                return flags
    return None


def port_of(url: str) -> int:
    m = re.match(r"https?://[^/:]+:(\d+)", url)
    return int(m.group(1)) if m else (443 if url.startswith("https") else 80)


def backend_checks(name: str, cfg, running: dict[str, Any] | None) -> list[Check]:
    from turnroute.gateway.backends.automodel import can_call_tools, is_auto, list_models, pick
    from turnroute.gateway.backends.window import reported_window

    checks: list[Check] = []
    where = f"backends.{name}"
    for i, spec in enumerate(cfg.serve):
        label = f"{where}.serve" + (f"[{i}]" if len(cfg.serve) > 1 else "")
        if not Path(spec.model).is_dir():
            checks.append(Check("fail", f"{name} model", f"{spec.model} is not a directory",
                                f"download the model (e.g. `hf download mlx-community/Qwen2.5-Coder-7B-Instruct-4bit "
                                f"--local-dir DIR`) and set {label}.model to DIR; the gateway never downloads"))
        checks.append(cache_check(name, spec.prompt_cache_size, spec.prompt_cache_bytes, Path(spec.model), label))
    managed = (running or {}).get("managed")
    if cfg.serve and not managed:
        checks.append(Check("ok", f"{name} server", f"{len(cfg.serve)} managed mlx_lm.server, started by the gateway"))
        checks.append(window_check(name, where, cfg.context_window, model_window(Path(cfg.serve[0].model))))
        return checks
    for m in managed or ():
        state = "ok" if m["state"] == "ready" and not m["restarts"] else "warn" if m["state"] != "failed" else "fail"
        checks.append(Check(state, f"{name} server", f"{m['url']} {m['state']}, {m['restarts']} restarts"
                            + (f" (last: {m['last_exit']})" if m.get("last_exit") else ""), f"see {m['log']}"))
    urls = [m["url"] for m in managed] if managed else list(cfg.urls)
    for url in urls:
        try:
            source, entries = asyncio.run(_list(list_models, url, cfg.connect_timeout + 1))
        except Exception as exc:
            checks.append(Check("fail", f"{name} reachable", f"{url} does not answer ({type(exc).__name__})",
                                "start LM Studio's server (Developer tab → Start server)" if cfg.type == "litellm"
                                else f"start the server, or let the gateway run it with {where}.serve"))
            continue
        lmstudio = source.endswith("/api/v0/models")
        wanted = cfg.model.split("/", 1)[1] if cfg.type == "litellm" and "/" in cfg.model else cfg.model
        if is_auto(cfg.model):
            choice = pick(entries, want_tools=cfg.supports.tools)
            entry = next((e for e in entries if choice and e.get("id") == choice[0]), None)
            model = choice[0] if choice else None
        else:
            entry = next((e for e in entries if e.get("id") == wanted), None)
            model = wanted
        if model is None or (entry is None and not (wanted == "default_model" and not lmstudio)):
            ids = ", ".join(e.get("id", "?") for e in entries[:6]) or "none"
            checks.append(Check("fail", f"{name} model", f"{url} does not serve {model or 'any chat model'} "
                                f"(it lists: {ids})", f"load it, or set {where}.model: auto"))
            continue
        if lmstudio and entry and entry.get("state") not in (None, "loaded"):
            checks.append(Check("fail", f"{name} model", f"{model} is downloaded but not loaded",
                                f"load it in LM Studio (or `lms load {model}`)"))
            continue
        checks.append(Check("ok", f"{name} reachable", f"{url} serves {model}"))
        if cfg.supports.tools and entry is not None:
            tools = can_call_tools(entry)
            if tools is False:
                checks.append(Check("fail", f"{name} tool calling", f"{model} was not trained for tool use",
                                    "load a tool-capable model (e.g. Qwen2.5-Coder-14B-Instruct), "
                                    f"or set {where}.supports.tools: false"))
            elif tools:
                checks.append(Check("ok", f"{name} tool calling", f"{model} was trained for tool use"))
        served = reported_window({"data": entries}, model) if lmstudio else None
        checks.append(window_check(name, where, cfg.context_window, served))
        if not cfg.serve and not lmstudio and (flags := server_flags(port_of(url))) is not None:
            checks.append(cache_check(name, _int(flags.get("prompt-cache-size")), _int(flags.get("prompt-cache-bytes")),
                                      Path(flags["model"]) if "model" in flags else None, "mlx_lm.server --"))
    return checks


async def _list(list_models, url: str, timeout: float):
    import httpx

    async with httpx.AsyncClient(trust_env=False) as client:
        return await list_models(client, url, timeout)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def window_check(name: str, where: str, configured: int | None, served: int | None) -> Check:
    if configured and served and configured > served:
        return Check("fail", f"{name} context window", f"the config says {configured:,} but the server loaded "
                     f"{served:,}", f"set {where}.context_window: {served} (or load the model with more context)")
    if configured:
        return Check("ok", f"{name} context window", f"{configured:,} tokens")
    return Check("warn", f"{name} context window", "unknown" + (f" (the server holds {served:,})" if served else ""),
                 f"set {where}.context_window: {served or 32768} so Claude Code compacts before it overflows")


def litellm_check() -> Check:
    t0 = time.monotonic()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", "import litellm"], capture_output=True, text=True, env=env, timeout=120)
    if r.returncode:
        return Check("fail", "LiteLLM", f"does not import: {r.stderr.strip().splitlines()[-1:]}",
                     "pip install --force-reinstall 'litellm==1.110.2'")
    return Check("ok", "LiteLLM", f"imports offline ({time.monotonic() - t0:.1f} s)")


def claude_checks(base: str) -> list[Check]:
    from turnroute.gateway.paths import claude_settings_path

    checks = []
    exe = os.environ.get("TURNROUTE_CLAUDE") or shutil.which("claude")
    checks.append(Check("ok", "Claude Code", f"installed ({exe})") if exe else
                  Check("warn", "Claude Code", "not installed", INSTALL_HINT.split("\n")[1].strip()))
    path = claude_settings_path()
    try:
        settings_env = (json.loads(path.read_text()) or {}).get("env") or {} if path.exists() else {}
    except ValueError:
        return checks + [Check("fail", "Claude Code settings", f"{path} is not valid JSON", f"fix {path}")]
    sources = {f"{path} env": settings_env, "the environment": os.environ}
    pointed = []
    for where, env in sources.items():
        url = env.get("ANTHROPIC_BASE_URL")
        if url and url.rstrip("/") != base:
            checks.append(Check("fail", "Claude Code endpoint", f"ANTHROPIC_BASE_URL={url} in {where}",
                                f"set it to {base} (turnroute setup does it), or unset it"))
        elif url:
            pointed.append(where)
        for key in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"):
            if env.get(key) not in (None, "", "0"):
                checks.append(Check("fail", "Claude Code endpoint", f"{key} in {where} bypasses the gateway",
                                    f"unset {key}"))
        if env.get("ANTHROPIC_AUTH_TOKEN"):
            checks.append(Check("warn", "Claude Code key", f"ANTHROPIC_AUTH_TOKEN in {where} is sent to the gateway "
                                "as a bearer token", "remove it if it was meant for another endpoint"))
    if pointed and not any(c.status == "fail" and c.name == "Claude Code endpoint" for c in checks):
        checks.append(Check("ok", "Claude Code endpoint", f"{base} (from {' and '.join(pointed)})"))
    elif not pointed:
        checks.append(Check("warn", "Claude Code endpoint", "nothing points Claude Code at the gateway",
                            "run `turnroute setup`, or start sessions with `turnroute claude`"))
    return checks


def run(args: argparse.Namespace) -> int:
    from turnroute.gateway.config import load_config
    from turnroute.gateway.paths import default_config_path
    from turnroute.router.rules import ConfigError

    path = Path(args.config).expanduser() if args.config else default_config_path()
    checks: list[Check] = []
    base = "http://127.0.0.1:8400"
    try:
        config = load_config(path)
    except ConfigError as exc:
        config = None
        checks.append(Check("fail", "config", str(exc), f"edit {path}; `turnroute check --config {path}` re-checks it"))
    if config is not None:
        checks.append(Check("ok", "config", f"{path}: {len(config.backends)} backends, {len(config.rules.rules)} rules"))
        base = gateway_url(config)
        ours = is_turnroute(base)
        health = get_json(base + "/health", timeout=15)[1] if ours else None
        checks.append(Check("fail", "port", f"{base} is taken by another program",
                            "stop it, or set server.port to a free port") if ours is False else
                      Check("ok", "port", f"{base}: " + ("a turnroute gateway is running" if ours else "free")))
        for name, cfg in config.backends.items():
            running = ((health or {}).get("backends") or {}).get(name)
            checks += backend_checks(name, cfg, running)
        if any(b.type == "litellm" for b in config.backends.values()):
            checks.append(litellm_check())
    checks += claude_checks(base)
    for c in checks:
        print(c.line())
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    print(f"\n{failed} failed, {warned} warnings, {len(checks) - failed - warned} ok")
    return 1 if failed else 0
