"""Shipped profiles: each one loads; the default contacts nothing but loopback; the cloud route.

The loopback check runs the real gateway with the shipped config under a `sitecustomize` that
records every socket connect and name lookup the process makes, then drives every kind of
request (messages to both routes, count_tokens, health) through it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from turnroute.gateway.config import load_config
from tests.fixtures import cc_requests as cc
from tests.support.fake_anthropic import FakeAnthropic, Reply
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import REPO, Gateway

PROFILES = sorted(p.name for p in (REPO / "config").glob("*.yaml"))
CLOUD_KEY = "sk-ant-api03-GATEWAYKEY-profile-test-000111"

SITECUSTOMIZE = '''
import os, socket
_path = os.environ["TR_CONNECT_LOG"]
def _note(kind, what):
    with open(_path, "a") as f:
        f.write(kind + " " + repr(what) + "\\n")
for _name in ("connect", "connect_ex"):
    _orig = getattr(socket.socket, _name)
    def _wrap(self, address, _orig=_orig):
        _note("connect", address)
        return _orig(self, address)
    setattr(socket.socket, _name, _wrap)
_gai = socket.getaddrinfo
def _getaddrinfo(host, *a, **k):
    _note("resolve", host)
    return _gai(host, *a, **k)
socket.getaddrinfo = _getaddrinfo
'''


@pytest.mark.parametrize("name", PROFILES)
def test_every_shipped_profile_loads(name):
    cfg = load_config(REPO / "config" / name)
    assert cfg.backends and cfg.host == "127.0.0.1"


def test_the_default_config_names_only_loopback_servers():
    cfg = load_config(REPO / "config" / "turnroute.yaml")
    hosts = {urlsplit(u).hostname for b in cfg.backends.values() for u in b.urls}
    assert hosts == {"127.0.0.1"}


def loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in (None, "localhost") or isinstance(address, str) and address.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_default_gateway_opens_no_socket_but_to_loopback(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    trace = tmp_path / "connects.txt"
    cfg = yaml.safe_load((REPO / "config" / "turnroute.yaml").read_text())
    cfg["log"] = {"path": str(tmp_path / "requests.jsonl")}
    env = {"PYTHONPATH": f"{site}:{REPO}", "TR_CONNECT_LOG": str(trace), "ANTHROPIC_API_KEY": CLOUD_KEY}
    with Gateway(cfg, tmp_path, env=env) as gw:
        with httpx.Client(base_url=gw.base, timeout=60) as c:
            assert c.get("/health").status_code == 503      # no backend listens: down, truthfully
            assert c.post("/v1/messages/count_tokens", json={**cc.main_turn("hi"), "max_tokens": None}).status_code == 200
            for body in (cc.main_turn("what is a linker?"), cc.main_turn("fix the bug")):   # mlx, lmstudio
                assert c.post("/v1/messages", json=body).status_code == 529       # nothing listens there
        routes = [r["route"] for r in gw.wait_records(3)]
    assert {"mlx", "lmstudio"} <= set(routes)
    lines = trace.read_text().splitlines()
    kinds = {line.split(" ", 1)[0] for line in lines}
    assert "connect" in kinds                                   # the trace works: backends were tried
    outside = [line for line in lines if not loopback(eval(line.split(" ", 1)[1]))]
    assert outside == []


def test_cloud_mode_sends_every_turn_to_the_cloud_with_the_gateways_key(tmp_path):
    doc = yaml.safe_load((REPO / "config" / "local-plus-cloud.yaml").read_text())
    with FakeAnthropic() as cloud, FakeOpenAI() as local:
        doc["backends"]["cloud"]["url"] = cloud.base               # loopback stand-in for api.anthropic.com
        doc["backends"]["cloud"]["api_key_env"] = "ANTHROPIC_API_KEY"
        for name in ("mlx", "lmstudio"):
            doc["backends"][name]["url"] = local.url
        doc["log"] = {"path": str(tmp_path / "requests.jsonl")}
        cloud.script(Reply(text="from the cloud"), Reply(text="again"))
        with Gateway(doc, tmp_path, env={"TURNROUTE_MODE": "cloud", "ANTHROPIC_API_KEY": CLOUD_KEY}) as gw:
            for prompt in ("explain the code", "fix the bug"):
                r = httpx.post(gw.base + "/v1/messages", json={**cc.main_turn(prompt), "stream": False},
                               headers={"x-api-key": "sk-client"}, timeout=30)
                assert r.status_code == 200 and r.json()["content"][0]["text"] in ("from the cloud", "again")
                assert CLOUD_KEY not in r.text
            assert [q.headers.get("x-api-key") for q in cloud.requests] == [CLOUD_KEY, CLOUD_KEY]
            assert local.requests == []
            assert {x["rule"] for x in gw.wait_records(2)} == {"override:env"}
            assert CLOUD_KEY not in Path(gw.log_path).read_text() + gw.output()
