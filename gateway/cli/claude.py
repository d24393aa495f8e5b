"""`turnroute claude [claude args…]`: one command from nothing to a Claude Code session.

It reuses a gateway already listening on the configured port, or starts one in the background
(and stops it again when Claude Code exits), then runs `claude` with the environment that points
it at the gateway. Every argument after `claude` is Claude Code's, and its exit code is ours.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from turnroute.gateway.paths import state_file

START_TIMEOUT = 900.0     # a managed server loading a large model from disk can take minutes
INSTALL_HINT = ("Claude Code is not installed (no `claude` on PATH). Install it with\n"
                "    npm install -g @anthropic-ai/claude-code\n"
                "(needs Node.js 18+), or point $TURNROUTE_CLAUDE at the executable.")


def load_quietly(arg: str | None):
    """The config `serve` would use, or None after printing why it is invalid."""
    from turnroute.gateway.config import load_config
    from turnroute.gateway.paths import default_config_path
    from turnroute.router.rules import ConfigError

    path = Path(arg).expanduser() if arg else default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"turnroute: invalid config: {exc}", file=sys.stderr)
        return None


def gateway_url(config) -> str:
    host = config.host if config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{config.port}"


def routes_in_use(config) -> set[str]:
    """Backends the rules can send a request to (a route, a fallback or the default)."""
    rules = [*config.rules.rules, config.rules.default]
    used = {r.route for r in rules} | {b for r in rules for b in r.fallback}
    return {b for b in used if b in config.backends}


def compact_window(config, health: dict[str, Any] | None = None) -> int | None:
    """The smallest context window among the routes in use: Claude Code must compact before it.

    A running gateway's /health knows more than the YAML (what LM Studio reports it loaded)."""
    reported = (health or {}).get("backends") or {}
    windows = [(reported.get(b) or {}).get("context_window") or config.backends[b].context_window
               for b in routes_in_use(config)]
    known = [w for w in windows if w]
    return min(known) if known else None


def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """(status, parsed body) of a GET, (0, None) when nothing answers. Proxies are never used."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def is_turnroute(base: str) -> bool | None:
    """True: our gateway answers there; False: something else does; None: nothing listens."""
    status, body = get_json(base + "/api/hello")
    if status == 0:
        return None
    return isinstance(body, dict) and body.get("name") == "turnroute"


def describe_progress(health: dict[str, Any]) -> str:
    parts = []
    for name, b in (health.get("backends") or {}).items():
        for i, m in enumerate(b.get("managed") or ()):
            label = name if len(b["managed"]) == 1 else f"{name}[{i}]"
            parts.append(f"{label} {m['state']} {m['for_s']:.0f}s" + (
                f" (restarts {m['restarts']}: {m['last_exit']})" if m.get("restarts") else ""))
    return ", ".join(parts)


def managed_ready(health: dict[str, Any]) -> bool:
    return all(m.get("state") == "ready" for b in (health.get("backends") or {}).values()
               for m in b.get("managed") or ())


def start_gateway(config_arg: str | None, base: str) -> subprocess.Popen:
    """`turnroute serve` in its own process group, output to the state directory's gateway.log."""
    log_file = state_file("gateway.log")
    cmd = [sys.executable, "-m", "turnroute.gateway.cli", "serve"]
    if config_arg:
        cmd += ["--config", str(Path(config_arg).expanduser().resolve())]
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    print(f"turnroute: starting the gateway at {base} (log {log_file})", file=sys.stderr)
    deadline = time.monotonic() + START_TIMEOUT
    shown, shown_at = "", 0.0
    while True:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the gateway exited with code {proc.returncode}:\n{tail}")
        status, health = get_json(base + "/health", timeout=10)
        if status == 200 and isinstance(health, dict):
            progress = describe_progress(health)
            if managed_ready(health):
                if progress:
                    print(f"turnroute: ready ({progress})", file=sys.stderr)
                return proc
            failed = [m for b in health["backends"].values() for m in b.get("managed") or ()
                      if m.get("state") == "failed"]
            if failed:
                stop_gateway(proc)
                raise RuntimeError(f"a managed server cannot start: {failed[0]['last_exit']}")
            # a line when a state changes, and every 10 s while a large model loads
            states = re.sub(r" \d+s", "", progress)
            if progress and (states != shown or time.monotonic() - shown_at >= 10):
                shown, shown_at = states, time.monotonic()
                print(f"turnroute: waiting for {progress}", file=sys.stderr)
        if time.monotonic() > deadline:
            stop_gateway(proc)
            raise RuntimeError(f"the gateway was not ready after {START_TIMEOUT:.0f} s (log {log_file})")
        time.sleep(0.2)


def stop_gateway(proc: subprocess.Popen) -> None:
    """SIGTERM the gateway's group (it stops its managed servers itself); SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except OSError:
        pass


def claude_env(base: str, compact: int | None, environ: dict[str, str]) -> dict[str, str]:
    from turnroute.gateway.cli.setup import PLACEHOLDER_KEY, gateway_env

    env = dict(environ)
    env.update(gateway_env(base, compact))
    env["DISABLE_AUTOUPDATER"] = "1"   # else Claude Code may npm-install a newer self in the background
    if not env.get("ANTHROPIC_API_KEY") and not env.get("ANTHROPIC_AUTH_TOKEN"):
        env["ANTHROPIC_API_KEY"] = PLACEHOLDER_KEY
    return env


def split_own_args(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--config FILE` before Claude Code's arguments is ours; everything else is passed on."""
    if len(argv) >= 2 and argv[0] == "--config":
        return argv[1], argv[2:]
    if argv and argv[0].startswith("--config="):
        return argv[0].split("=", 1)[1], argv[1:]
    return None, argv


def main(argv: list[str]) -> int:
    config_arg, claude_args = split_own_args(argv)
    exe = os.environ.get("TURNROUTE_CLAUDE") or shutil.which("claude")
    if not exe:
        print(f"turnroute: {INSTALL_HINT}", file=sys.stderr)
        return 127
    config = load_quietly(config_arg)
    if config is None:
        return 2
    base = gateway_url(config)
    ours = is_turnroute(base)
    if ours is False:
        print(f"turnroute: {base} is taken by another program: stop it or change server.port", file=sys.stderr)
        return 1
    started = None
    if ours is None:
        try:
            started = start_gateway(config_arg, base)
        except RuntimeError as exc:
            print(f"turnroute: {exc}", file=sys.stderr)
            return 1
    else:
        print(f"turnroute: using the gateway already running at {base}", file=sys.stderr)
    env = claude_env(base, compact_window(config, get_json(base + "/health", timeout=15)[1]), dict(os.environ))
    try:
        code = run_until_exit([exe, *claude_args], env)
    finally:
        if started is not None:
            stop_gateway(started)
    return 128 - code if code < 0 else code


def run_until_exit(cmd: list[str], env: dict[str, str]) -> int:
    """Ctrl-C reaches Claude Code too (same terminal): it decides what it means; we keep waiting."""
    proc = subprocess.Popen(cmd, env=env)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue
