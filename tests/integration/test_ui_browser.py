"""The /ui page in a real (headless Chromium) browser: it renders live decisions from /api/recent.

Chromium comes from tests.support.browser (installed from Debian's packages when running as root
without one; otherwise skipped locally and a failure when $CI is set).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from turnroute.gateway.observe.log import RequestLog, new_record
from turnroute.gateway.observe.reader import read_records
from turnroute.gateway.observe.live import make_ui_router
from tests.support.browser import ensure_chromium

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_log.jsonl"
SECRET = "sk-ant-api03-UIUIUISECRETSECRET"


def _chromium() -> str:
    return ensure_chromium()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, RequestLog]]:
    log = RequestLog(tmp_path / "requests.jsonl")
    for rec in read_records(FIXTURE):
        log.end(log.begin(rec))
    # a secret smuggled into a record must not reach the page
    smuggled = new_record(id="req_secret", route="lmstudio", rule="secret-test", status=200,
                          reason=f"key {SECRET}", latency_ms=10)
    smuggled["headers"] = {"x-api-key": SECRET}
    log.end(smuggled)
    log.end(log.begin(new_record(id="req_guarded", route="lmstudio", rule="tool-loop", status=200, latency_ms=12,
                                 safeguards=[{"tool": "Write", "id": "toolu_1", "outcome": "not_flagged",
                                              "by": "builtin:project-edit", "ms": 0.02},
                                             {"tool": "Bash", "id": "toolu_2", "outcome": "flagged",
                                              "by": "builtin:download-and-run", "ms": 0.05}])))
    app = FastAPI()
    app.include_router(make_ui_router(log))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        srv.should_exit = True
        thread.join(timeout=5)


def _run_chromium(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp}", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, timeout=90)


def test_api_recent_json(server):
    base, log = server
    data = httpx.get(f"{base}/api/recent?n=5").json()
    assert [r["id"] for r in data["records"]] == [r["id"] for r in log.recent(5)]
    assert data["stats"]["requests"] == 5 and "routes" in data["stats"]
    assert httpx.get(f"{base}/api/recent?n=0").status_code == 422
    page = httpx.get(f"{base}/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<script" in page.text
    assert "http://" not in page.text and "https://" not in page.text   # no CDN: works offline


def test_page_renders_decisions_in_a_real_browser(server, tmp_path):
    binary = _chromium()
    base, _ = server
    profile = tmp_path / "profile"
    dom = _run_chromium(binary, profile, "--dump-dom", f"{base}/ui")
    html = dom.stdout.decode("utf-8", "replace")
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    # rows came from /api/recent through the page's JavaScript, not from the static HTML
    body = html.split('<tbody id="rows">', 1)[1].split("</tbody>", 1)[0]
    assert "waiting for requests" not in body
    assert body.count("<tr") == 15
    assert "✗ Bash builtin:download-and-run" in body and "✓ Write" in body   # auto mode's verdicts
    for text in ("analysis-on-mlx", "action-on-lmstudio", "title-on-mlx", "lmstudio", "mlx",
                 "overloaded_error", "client_disconnect", "after mlx", "tool_result",
                 "intent is analysis: explain/review prompts go to MLX"):
        assert text in body, text
    assert body.count('<tr class="error') == 3                       # error rows highlighted
    assert "71.9%" in html                              # MLX cache hit tile (32000/44500, fixture)
    assert SECRET not in html and "UIUIUI" not in html

    shot = tmp_path / "ui.png"
    res = _run_chromium(binary, profile, f"--screenshot={shot}", "--window-size=1400,900",
                        "--hide-scrollbars", f"{base}/ui")
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("TURNROUTE_UI_SCREENSHOT"):       # docs: TURNROUTE_UI_SCREENSHOT=docs/ui.png
        shutil.copy(shot, os.environ["TURNROUTE_UI_SCREENSHOT"])
