"""Where turnroute's files live — the one place that says so.

    config     $TURNROUTE_CONFIG, else $XDG_CONFIG_HOME/turnroute/turnroute.yaml (~/.config/…)
               when it exists, else the config shipped inside the package
    log        --log, else $TURNROUTE_LOG, else the config's `log.path`, else
               $XDG_STATE_HOME/turnroute/requests.jsonl (~/.local/state/…)
    servers    the state directory's servers/<backend>-<n>.log (managed mlx_lm.server output) and
               gateway.log (a gateway `turnroute claude` started in the background)
    backups    the state directory's backups/ (what `turnroute setup` replaced, for --undo)
    claude     $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json

The serving gateway, `turnroute logs` and `turnroute statusline` all resolve the log through
`log_path()`, so they always agree on which file they write and read. Light imports only: the
status line calls this on every redraw.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "state_dir", "shipped_config", "default_config_path", "default_log_path",
           "log_path", "state_file", "claude_settings_path"]


def config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config").expanduser() / "turnroute"


def state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state").expanduser() / "turnroute"


def shipped_config(name: str = "turnroute.yaml") -> Path:
    """A config shipped with the package (the repository's config/ folder, installed as package data)."""
    import turnroute.config

    return Path(turnroute.config.__file__).resolve().parent / name


def default_config_path() -> Path:
    env = os.environ.get("TURNROUTE_CONFIG")
    if env:
        return Path(env).expanduser()
    user = config_dir() / "turnroute.yaml"
    return user if user.exists() else shipped_config()


def default_log_path() -> Path:
    """$TURNROUTE_LOG, else the state directory's requests.jsonl (its folder created, mode 0700:
    the log holds session ids and, if the user opted in, prompts)."""
    env = os.environ.get("TURNROUTE_LOG")
    path = Path(env).expanduser() if env else state_dir() / "requests.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path(flag: str | None = None, configured: str | None = None) -> Path:
    """The request log: an explicit flag, else $TURNROUTE_LOG, else the config's `log.path`,
    else the default in the state directory."""
    if flag:
        return Path(flag).expanduser()
    if configured and not os.environ.get("TURNROUTE_LOG"):
        return Path(configured).expanduser()
    return default_log_path()


def state_file(*parts: str) -> Path:
    """A file under the state directory (its folder created, private): server logs, backups."""
    path = state_dir().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def claude_settings_path() -> Path:
    """Claude Code's user settings file (it honours $CLAUDE_CONFIG_DIR instead of ~/.claude)."""
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".claude") / "settings.json"
