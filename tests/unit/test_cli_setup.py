"""`turnroute setup` / `--undo` against a temporary HOME: merge, diff, backup, byte-identical undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from turnroute.gateway.cli.main import main

CONFIG = {
    "server": {"port": 8471},
    "backends": {
        "mlx": {"url": "http://127.0.0.1:9/v1", "model": "m", "context_window": 32768},
        "lmstudio": {"type": "litellm", "url": "http://127.0.0.1:9/v1", "model": "lm_studio/x",
                     "context_window": 65536},
        "unused": {"url": "http://127.0.0.1:9/v1", "model": "u", "context_window": 1024},
    },
    "rules": [{"name": "tools", "when": {"has_tools": True}, "route": "lmstudio", "fallback": ["mlx"]}],
    "default": {"route": "mlx"},
}
# Deliberately not what json.dumps would write: undo must give back these exact bytes.
ORIGINAL = (b'{"model":  "opus",\n    "env": {"FOO": "bar", "ANTHROPIC_BASE_URL": "https://elsewhere.example"},\n'
            b'  "permissions": {"allow": ["Bash(git *)"]}}')


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    (tmp_path / "home").mkdir()
    cfg = tmp_path / "turnroute.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    return tmp_path / "home", str(cfg)


def settings_file(home_dir: Path, content: bytes | None = None) -> Path:
    """Claude Code's settings file in the test HOME, written with `content` when given."""
    path = home_dir / ".claude" / "settings.json"
    if content is not None:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
    return path


def test_setup_merges_shows_the_diff_and_undo_restores_the_exact_bytes(home, capsys):
    home_dir, cfg = home
    path = settings_file(home_dir, ORIGINAL)

    assert main(["setup", "--yes", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert '+    "ANTHROPIC_BASE_URL": "http://127.0.0.1:8471"' in out
    assert '-    "env": {"FOO": "bar", "ANTHROPIC_BASE_URL": "https://elsewhere.example"},' in out

    after = json.loads(path.read_bytes())
    assert after["model"] == "opus" and after["permissions"] == {"allow": ["Bash(git *)"]}
    assert after["env"]["FOO"] == "bar"
    assert after["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8471"
    assert after["env"]["ANTHROPIC_API_KEY"] == "local"
    assert after["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    # the smallest window among backends the rules use (the unused 1024 one does not count)
    assert after["env"]["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "32768"
    assert after["statusLine"]["command"].endswith("turnroute statusline")

    assert main(["setup", "--yes", "--config", cfg]) == 0
    assert "already set up" in capsys.readouterr().out

    assert main(["setup", "--undo"]) == 0
    assert path.read_bytes() == ORIGINAL
    assert main(["setup", "--undo"]) == 1          # nothing left to undo


def test_undo_removes_a_file_setup_created(home):
    home_dir, cfg = home
    assert main(["setup", "--yes", "--config", cfg]) == 0
    assert settings_file(home_dir).exists()
    assert main(["setup", "--undo"]) == 0
    assert not settings_file(home_dir).exists()


def test_undo_after_later_edits_keeps_them_and_removes_only_ours(home, capsys):
    home_dir, cfg = home
    path = settings_file(home_dir, ORIGINAL)
    assert main(["setup", "--yes", "--config", cfg]) == 0
    edited = json.loads(path.read_bytes())
    edited["theme"] = "dark"
    edited["env"]["BAR"] = "baz"
    path.write_text(json.dumps(edited))

    assert main(["setup", "--undo"]) == 0
    assert "kept your other edits" in capsys.readouterr().out
    now = json.loads(path.read_bytes())
    assert now["theme"] == "dark" and now["model"] == "opus"
    assert now["env"] == {"FOO": "bar", "BAR": "baz", "ANTHROPIC_BASE_URL": "https://elsewhere.example"}
    assert "statusLine" not in now


def test_nothing_is_written_without_consent_or_over_broken_json(home, capsys):
    home_dir, cfg = home
    path = settings_file(home_dir, ORIGINAL)
    assert main(["setup", "--config", cfg]) == 1        # stdin is not a terminal and no --yes
    assert "--yes" in capsys.readouterr().out
    assert path.read_bytes() == ORIGINAL

    path.write_bytes(b'{"env": {')
    assert main(["setup", "--yes", "--config", cfg]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert path.read_bytes() == b'{"env": {'


def test_an_existing_key_and_statusline_are_kept(home, capsys):
    home_dir, cfg = home
    mine = {"env": {"ANTHROPIC_API_KEY": "sk-mine"}, "statusLine": {"type": "command", "command": "my-line"}}
    path = settings_file(home_dir, json.dumps(mine).encode())
    assert main(["setup", "--yes", "--config", cfg]) == 0
    assert "statusLine is already set" in capsys.readouterr().out
    after = json.loads(path.read_bytes())
    assert after["env"]["ANTHROPIC_API_KEY"] == "sk-mine"
    assert after["statusLine"] == mine["statusLine"]
