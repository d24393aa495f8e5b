"""The `turnroute` command line as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import cc_requests as cc

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "turnroute.yaml"
SAMPLE_LOG = REPO / "tests" / "fixtures" / "sample_log.jsonl"


def turnroute(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "turnroute.gateway.cli", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TURNROUTE_MODE": "auto", **(env or {})})


@pytest.mark.parametrize("config", ["turnroute.yaml", "mlx-tools.yaml"])
def test_check_accepts_the_shipped_configs(config):
    r = turnroute("check", "--config", str(REPO / "config" / config))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "mlx" in r.stdout


def test_check_names_file_and_line_of_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    lines = SHIPPED.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if "route: lmstudio" in line)
    lines[i] = lines[i].replace("lmstudio", "lmstuido")
    bad.write_text("\n".join(lines) + "\n")
    r = turnroute("check", "--config", str(bad))
    assert r.returncode == 2
    assert f"bad.yaml:{i + 1}:" in r.stderr and "lmstuido" in r.stderr


@pytest.mark.parametrize("body, backend, rule", [
    (cc.main_turn("what is the difference between TCP and UDP?"), "mlx", "from-context"),
    (cc.main_turn("explain how the retry policy in retry.py works"), "lmstudio", "needs-tools"),
    (cc.main_turn("fix the failing test in tests/test_app.py"), "lmstudio", "needs-tools"),
    (cc.title_request(), "mlx", "side-calls"),
    (cc.tool_result_turn(), "lmstudio", "tool-loop"),
])
def test_route_explain_prints_features_rules_and_verdict(tmp_path, body, backend, rule):
    req = tmp_path / "request.json"
    req.write_text(json.dumps({"headers": cc.cc_headers(), "body": body}))
    r = turnroute("route", "--explain", str(req), "--config", str(SHIPPED))
    assert r.returncode == 0, r.stderr
    assert "Features" in r.stdout and "turn" in r.stdout
    assert rule in r.stdout and backend in r.stdout
    j = json.loads(turnroute("route", str(req), "--json", "--config", str(SHIPPED)).stdout)
    assert (j["backend"], j["rule"]) == (backend, rule)


def test_replay_shows_which_decisions_a_rule_change_alters(tmp_path):
    captures = tmp_path / "captures"
    captures.mkdir()
    for i, body in enumerate([cc.main_turn("what is a mutex?"), cc.main_turn("add a retry to the client")]):
        (captures / f"{i}.json").write_text(json.dumps({"headers": cc.cc_headers(), "body": body}))
    candidate = tmp_path / "all-lmstudio.yaml"
    candidate.write_text(SHIPPED.read_text().replace(
        "  - name: from-context\n    when: {turn: prompt, needs: [context, none]}\n    route: mlx",
        "  - name: from-context\n    when: {turn: prompt, needs: [context, none]}\n    route: lmstudio"))
    assert candidate.read_text() != SHIPPED.read_text()
    r = turnroute("replay", str(captures), "--config", str(candidate), "--baseline", str(SHIPPED))
    assert r.returncode == 0, r.stderr
    assert "1 of 2 decisions would change" in r.stdout, r.stdout
    assert "CHANGED" in [line for line in r.stdout.splitlines() if "analysis" in line][0]


def test_logs_table_filters_and_stats(tmp_path):
    r = turnroute("logs", "--log", str(SAMPLE_LOG), "-n", "0")
    assert r.returncode == 0 and "mlx" in r.stdout and "lmstudio" in r.stdout
    only = turnroute("logs", "--log", str(SAMPLE_LOG), "--route", "lmstudio", "--json", "-n", "0")
    routes = {json.loads(line)["route"] for line in only.stdout.splitlines()}
    assert routes == {"lmstudio"}
    errs = turnroute("logs", "--log", str(SAMPLE_LOG), "--errors", "--json", "-n", "0")
    assert errs.stdout and all(json.loads(x)["status"] >= 400 or json.loads(x)["error"]
                               for x in errs.stdout.splitlines())
    stats = turnroute("logs", "--log", str(SAMPLE_LOG), "--stats")
    assert "71.9%" in stats.stdout            # Σcached/Σprompt for mlx in the fixture, by hand


def test_statusline_shows_the_sessions_last_route(tmp_path):
    log = tmp_path / "r.jsonl"
    lines = [json.loads(x) for x in SAMPLE_LOG.read_text().splitlines() if x.strip()]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    last = [x for x in lines if x.get("session")][-1]
    r = turnroute("statusline", "--log", str(log), stdin=json.dumps({"session_id": last["session"]}))
    assert r.returncode == 0 and last["route"] in r.stdout
