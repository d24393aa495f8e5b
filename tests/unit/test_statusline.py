"""`turnroute statusline`: the session's last route, fallbacks, errors, and a fast start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson

from turnroute.gateway.observe.log import new_record
from turnroute.gateway.observe.statusline import main, statusline_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "sample_log.jsonl"
A = "a1b2c3d4-1111-4111-8111-111111111111"
B = "b2c3d4e5-2222-4222-8222-222222222222"
C = "c3d4e5f6-3333-4333-8333-333333333333"
D = "d4e5f6a7-4444-4444-8444-444444444444"


def test_last_request_of_the_session():
    # fixture line 13: mlx, analysis-on-mlx, 9.0 s, 11200 of 12000 prompt tokens cached
    assert statusline_text({"session_id": A}, FIXTURE) == "⇄ mlx · analysis-on-mlx · 9.0s · cache 93%"


def test_error_fallback_and_stripped_tools():
    assert statusline_text({"session_id": B}, FIXTURE) == (
        "⇄ lmstudio · action-on-lmstudio · 20ms · ✗ 400 invalid_request_error")
    assert statusline_text({"session_id": C}, FIXTURE) == (
        "⇄ mlx · analysis-on-mlx · 30ms · ✗ 529 overloaded_error")
    assert statusline_text({"session_id": D}, FIXTURE) == "⇄ lmstudio · default · 7.0s · tools stripped"


def test_fallback_shown(tmp_path):
    log = tmp_path / "r.jsonl"
    log.write_bytes(orjson.dumps(new_record(session="s", route="lmstudio", rule="r1", fallbacks=["mlx"],
                                            latency_ms=1234, status=200)) + b"\n")
    assert statusline_text({"session_id": "s"}, log) == "⇄ lmstudio (after mlx) · r1 · 1.2s"


def test_unknown_session_falls_back_to_last_overall_and_empty_log(tmp_path):
    assert statusline_text({"session_id": "new-session"}, FIXTURE).startswith("⇄ mlx · analysis-on-mlx")
    assert statusline_text(None, FIXTURE).startswith("⇄ mlx")
    assert statusline_text({"session_id": A}, tmp_path / "none.jsonl") == "turnroute: no requests yet"
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert statusline_text({}, tmp_path / "empty.jsonl") == "turnroute: no requests yet"


def test_main_reads_stdin_json(monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"session_id": B, "model": {"id": "x"}})))
    assert main(FIXTURE) == 0
    assert capsys.readouterr().out == "⇄ lmstudio · action-on-lmstudio · 20ms · ✗ 400 invalid_request_error\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    main(FIXTURE)
    assert capsys.readouterr().out.startswith("⇄ mlx")


def test_command_is_fast_as_claude_code_runs_it():
    """As Claude Code runs it: a fresh process, JSON on stdin, one line out; well under 50 ms of work."""
    env = dict(os.environ)
    payload = json.dumps({"session_id": A, "workspace": {"current_dir": "/tmp"}}).encode()
    cmd = [sys.executable, "-X", "importtime", "-m", "turnroute.gateway.cli", "statusline", "--log", str(FIXTURE)]
    out = subprocess.run(cmd, input=payload, capture_output=True, env=env, timeout=10)
    assert out.returncode == 0
    assert out.stdout.decode().strip() == "⇄ mlx · analysis-on-mlx · 9.0s · cache 93%"
    imported = out.stderr.decode()
    for heavy in ("typer", "fastapi", "yaml", "httpx", "prometheus_client", "asyncio"):
        assert f" {heavy}\n" not in imported and f" {heavy}." not in imported, heavy
