"""Each door, tried from outside against the real gateway: DNS rebinding (a foreign Host), a web
page's cross-origin request, a ``text/plain`` post, a missing or wrong API key, a bind beyond
loopback without keys, and what ``/health`` tells a caller without the key.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
import yaml

from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import REPO, Gateway, gateway_config, openai_backend
from tests.support.net import free_port

BODY = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
KEY = "tr-key-0123456789abcdef"


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI() as f:
        yield f


def start(fake, tmp, **server) -> Gateway:
    cfg = gateway_config({"mlx": openai_backend(fake.url, tools=False)}, rules=[{"name": "r", "route": "mlx"}],
                         log_path=tmp / "r.jsonl", extra={"server": server} if server else None)
    return Gateway(cfg, tmp)


@pytest.fixture(scope="module")
def open_gw(fake, tmp_path_factory):
    with start(fake, tmp_path_factory.mktemp("open"), allowed_hosts=["turnroute.lan"],
               allowed_origins=["http://dashboard.lan:3000"]) as gw:
        yield gw


@pytest.fixture(scope="module")
def keyed_gw(fake, tmp_path_factory):
    with start(fake, tmp_path_factory.mktemp("keyed"), api_keys=[KEY]) as gw:
        yield gw


def post(gw, path="/v1/messages", **kw):
    return httpx.post(gw.base + path, timeout=20, **kw)


@pytest.mark.parametrize("path, method", [("/v1/messages", "POST"), ("/api/recent", "GET"), ("/health", "GET"),
                                          ("/ui", "GET"), ("/v1/messages/count_tokens", "POST")])
def test_dns_rebinding_is_refused_by_the_host_check(open_gw, path, method):
    r = httpx.request(method, open_gw.base + path, json=BODY, headers={"host": f"evil.example:{open_gw.port}"})
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "permission_error" and "evil.example" in r.json()["error"]["message"]


def test_loopback_names_and_allowed_hosts_get_in(open_gw):
    for host in ("localhost", "127.0.0.1", f"localhost:{open_gw.port}", "turnroute.lan:8400"):
        assert post(open_gw, json=BODY, headers={"host": host}).status_code == 200, host


def test_a_refused_api_call_still_gets_its_log_line(open_gw):
    post(open_gw, json=BODY, headers={"host": "rebound.example"})
    rec = open_gw.wait_records(1)
    assert any(r["status"] == 403 and r["error"] == "permission_error" for r in rec)


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:1"])
def test_a_web_page_cannot_start_a_generation(open_gw, origin):
    r = post(open_gw, content=b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
             headers={"origin": origin, "content-type": "text/plain"})
    assert r.status_code == 403 and "Origin" in r.json()["error"]["message"]
    # Reads are refused too: a rebinding page must not read /api/recent either.
    assert httpx.get(open_gw.base + "/api/recent", headers={"origin": origin}).status_code == 403


def test_the_gateways_own_page_and_allowed_origins_get_in(open_gw):
    own = f"http://127.0.0.1:{open_gw.port}"
    assert httpx.get(open_gw.base + "/api/recent", headers={"origin": own}).status_code == 200
    assert post(open_gw, json=BODY, headers={"origin": "http://dashboard.lan:3000"}).status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"])
def test_non_json_content_types_are_415(open_gw, ctype):
    r = post(open_gw, content=b'{"model":"m"}', headers={"content-type": ctype})
    assert r.status_code == 415 and r.json()["error"]["type"] == "invalid_request_error"
    assert post(open_gw, json=BODY, headers={"content-type": "application/json; charset=utf-8"}).status_code == 200


def test_keys_are_required_when_configured(keyed_gw):
    assert post(keyed_gw, json=BODY).status_code == 401
    assert post(keyed_gw, json=BODY, headers={"x-api-key": "wrong"}).status_code == 401
    assert post(keyed_gw, json=BODY, headers={"x-api-key": KEY}).status_code == 200          # Claude Code
    assert post(keyed_gw, json=BODY, headers={"authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.get(keyed_gw.base + "/api/recent").status_code == 401
    assert httpx.get(keyed_gw.base + "/ui").status_code == 401
    assert httpx.get(keyed_gw.base + "/metrics").status_code == 401
    assert httpx.get(keyed_gw.base + "/api/recent", params={"key": "wrong"}).status_code == 401


def test_the_live_page_opened_with_its_key_keeps_polling(keyed_gw):
    with httpx.Client(base_url=keyed_gw.base) as browser:
        page = browser.get("/ui", params={"key": KEY})
        assert page.status_code == 200 and "samesite=strict" in page.headers["set-cookie"].lower()
        assert browser.get("/api/recent").status_code == 200           # the cookie, no key in the URL


def test_health_without_the_key_says_only_up_or_down(keyed_gw, fake):
    bare = httpx.get(keyed_gw.base + "/health")
    assert bare.status_code == 200 and bare.json() == {"ok": True}
    full = httpx.get(keyed_gw.base + "/health", headers={"x-api-key": KEY}).json()
    assert full["backends"]["mlx"]["ok"] is True and full["config"]
    assert KEY not in httpx.get(keyed_gw.base + "/health", headers={"x-api-key": KEY}).text
    assert KEY not in keyed_gw.log_path.read_text()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_binding_beyond_loopback_without_a_key_refuses_to_start(fake, tmp_path, host):
    cfg = gateway_config({"mlx": openai_backend(fake.url)}, rules=[{"name": "r", "route": "mlx"}],
                         log_path=tmp_path / "r.jsonl")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "turnroute.gateway.cli", "serve", "--config", str(path),
                           "--host", host, "--port", str(free_port())], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "server.api_keys" in proc.stderr and "TURNROUTE_API_KEYS" in proc.stderr


def test_keys_from_the_environment_are_required_too(fake, tmp_path):
    cfg = gateway_config({"mlx": openai_backend(fake.url, tools=False)}, rules=[{"name": "r", "route": "mlx"}],
                         log_path=tmp_path / "r.jsonl")
    with Gateway(cfg, tmp_path, env={"TURNROUTE_API_KEYS": f"other, {KEY}"}) as gw:
        assert post(gw, json=BODY).status_code == 401
        assert post(gw, json=BODY, headers={"x-api-key": KEY}).status_code == 200
