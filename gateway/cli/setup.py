"""`turnroute setup [--yes] [--undo]`: make the gateway Claude Code's permanent endpoint.

Only the `env` keys below and `statusLine` are written into Claude Code's settings.json; every
other key, and every other env entry, stays as it was. The bytes the first setup replaced are
kept in the state directory, so `--undo` gives the user back exactly the file they had.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from turnroute.gateway.paths import claude_settings_path, state_file

PLACEHOLDER_KEY = "local"     # the gateway never checks it; Claude Code wants some key


def gateway_env(base_url: str, compact_window: int | None) -> dict[str, str]:
    """What Claude Code needs to talk only to the gateway (shared with `turnroute claude`)."""
    env = {"ANTHROPIC_BASE_URL": base_url, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    if compact_window:
        env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] = str(compact_window)
    return env


def statusline_command() -> str:
    """The status line command by absolute path: Claude Code's PATH may not include our venv."""
    exe = shutil.which("turnroute") or str(Path(sys.executable).with_name("turnroute"))
    return f"{exe} statusline"


def merged(settings: dict[str, Any], env: dict[str, str], statusline: str) -> tuple[dict[str, Any], list[str]]:
    """The settings with the gateway set, and notes on what was deliberately left alone."""
    out = dict(settings)
    block = dict(out.get("env") or {})
    notes = []
    block.update(env)
    if not block.get("ANTHROPIC_API_KEY") and not block.get("ANTHROPIC_AUTH_TOKEN"):
        block["ANTHROPIC_API_KEY"] = PLACEHOLDER_KEY
    if block.get("ANTHROPIC_AUTH_TOKEN"):
        notes.append("env.ANTHROPIC_AUTH_TOKEN is set: the gateway ignores it, but remove it if it was "
                     "meant for another endpoint")
    out["env"] = block
    current = out.get("statusLine")
    if not current or "turnroute" in str(current.get("command", "") if isinstance(current, dict) else current):
        out["statusLine"] = {"type": "command", "command": statusline}
    else:
        notes.append("statusLine is already set to something else: left as it is")
    return out, notes


def render(settings: dict[str, Any]) -> bytes:
    return (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode()


def diff(old: bytes, new: bytes, path: Path) -> str:
    return "".join(difflib.unified_diff(old.decode("utf-8", "replace").splitlines(True),
                                        new.decode("utf-8", "replace").splitlines(True),
                                        fromfile=f"{path} (now)", tofile=f"{path} (after setup)"))


def _backup_paths() -> tuple[Path, Path]:
    return state_file("backups", "claude-settings.orig"), state_file("backups", "claude-settings.json")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".turnroute-tmp")
    tmp.write_bytes(data)
    if path.exists():
        shutil.copymode(path, tmp)
    os.replace(tmp, path)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def setup(path: Path, env: dict[str, str], statusline: str, *, confirm) -> int:
    old = path.read_bytes() if path.exists() else None
    try:
        settings = json.loads(old) if old and old.strip() else {}
    except ValueError as exc:
        print(f"turnroute setup: {path} is not valid JSON ({exc}); fix it first, nothing was changed",
              file=sys.stderr)
        return 1
    if not isinstance(settings, dict):
        print(f"turnroute setup: {path} is not a JSON object; nothing was changed", file=sys.stderr)
        return 1
    new_settings, notes = merged(settings, env, statusline)
    new = render(new_settings)
    if new_settings == settings:
        print(f"{path}: already set up, nothing to change")
        return 0
    print(diff(old or b"", new, path), end="")
    for note in notes:
        print(f"note: {note}")
    if not confirm(f"Write these changes to {path}?"):
        print("nothing was changed")
        return 1
    orig, meta = _backup_paths()
    if not meta.exists():          # keep the file as it was before the first setup
        if old is not None:
            orig.write_bytes(old)
        meta.write_text(json.dumps({"path": str(path), "existed": old is not None, "original_env": {k: (settings.get("env") or {}).get(k) for k in [*env, "ANTHROPIC_API_KEY"]},
            "original_statusLine": settings.get("statusLine"), "had_env": "env" in settings}))
    _write(path, new)
    record = json.loads(meta.read_text())
    record["written"] = _digest(new)
    meta.write_text(json.dumps(record))
    print(f"wrote {path} (undo with: turnroute setup --undo; original kept in {orig.parent})")
    return 0


def undo(path: Path) -> int:
    orig, meta = _backup_paths()
    if not meta.exists():
        print(f"turnroute setup --undo: no backup in {meta.parent}: setup was not run (or already undone)",
              file=sys.stderr)
        return 1
    record = json.loads(meta.read_text())
    path = Path(record.get("path") or path)
    current = path.read_bytes() if path.exists() else None
    if current is not None and _digest(current) != record.get("written"):
        # Changed since setup: restore only what setup set, keep the user's later edits.
        settings = json.loads(current)
        block = dict(settings.get("env") or {})
        for key, value in record["original_env"].items():
            if value is None:
                block.pop(key, None)
            else:
                block[key] = value
        settings["env"] = block
        if not block and not record.get("had_env"):
            settings.pop("env")
        if record["original_statusLine"] is None:
            settings.pop("statusLine", None)
        else:
            settings["statusLine"] = record["original_statusLine"]
        _write(path, render(settings))
        print(f"{path} changed since setup: removed only turnroute's settings, kept your other edits")
    elif record.get("existed"):
        _write(path, orig.read_bytes())
        print(f"restored {path} to the bytes it had before setup")
    elif current is not None:
        path.unlink()
        print(f"removed {path} (it did not exist before setup)")
    orig.unlink(missing_ok=True)
    meta.unlink()
    return 0


def ask(question: str) -> bool:
    if not sys.stdin.isatty():
        print(f"{question} (not a terminal: run again with --yes to write)")
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    path = claude_settings_path()
    if args.undo:
        return undo(path)
    from turnroute.gateway.cli.claude import compact_window, gateway_url, get_json, is_turnroute, load_quietly

    config = load_quietly(args.config)
    if config is None:
        return 2
    base = gateway_url(config)
    health = get_json(base + "/health", timeout=15)[1] if is_turnroute(base) else None
    return setup(path, gateway_env(base, compact_window(config, health)), statusline_command(),
                 confirm=(lambda q: True) if args.yes else ask)
