"""`type: anthropic` backends: the anthropic SDK → the gateway → scripted Messages-API servers.

`lms` stands for LM Studio's native endpoint (a strict server that rejects two Claude Code fields,
declared in `drop`), `strict` is the same server without the declaration, `cloud` a stand-in for
api.anthropic.com holding the gateway's key, `mlx` a translated OpenAI backend next to them.
"""

from __future__ import annotations

import copy
import json
import warnings

import anthropic
import httpx
import orjson
import pytest

from tests.support.fake_anthropic import FakeAnthropic, Reply, ToolCall, anthropic_error
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import Gateway, gateway_config, openai_backend

CLIENT_KEY = "sk-ant-api03-CLIENTKEY-do-not-forward-0123456789"
CLOUD_KEY = "sk-ant-api03-GATEWAYCLOUDKEY-only-for-the-cloud-9876"
SESSION = "5f1c1a52-6a55-4f3e-9c1b-0d2c2b7f4e11"
BILLING = "x-anthropic-billing-header: cc_version=2.1.331.a3f; cc_entrypoint=cli;"
READ = {"name": "Read", "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
DROP = ["context_management", "output_config.effort"]


def native(url: str, **kw) -> dict:
    return {"type": "anthropic", "url": url, "model": kw.pop("model", "qwen3-coder"),
            "max_output_tokens": kw.pop("max_output_tokens", 4096), "timeout": {"connect": 1, "read": 30},
            "supports": {"tools": True, "thinking": True, "json_schema": True}, **kw}


RULES = [
    {"name": "tool-loop", "when": {"turn": ["tool_result"], "origin": "known", "tool_errors": {"max": 1}},
     "route": "origin"},
    {"name": "struggling", "when": {"tool_errors": 2}, "route": "cloud"},
    {"name": "count", "when": {"turn": "count_tokens"}, "route": "lms"},
    {"name": "huge", "when": {"tokens": {"above": 50000}}, "route": "cloud"},
    {"name": "tools", "when": {"has_tools": True}, "route": "lms", "fallback": ["mlx", "cloud"]},
]


@pytest.fixture(scope="module")
def fakes():
    lms, cloud, mlx = FakeAnthropic(reject=DROP), FakeAnthropic(), FakeOpenAI()
    yield {"lms": lms, "cloud": cloud, "mlx": mlx}
    for f in (lms, cloud, mlx):
        f.stop()


@pytest.fixture(scope="module")
def gw(fakes, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("native")
    cfg = gateway_config({
        "lms": native(fakes["lms"].base + "/v1", drop=DROP, count_tokens=True, session_header="x-session-affinity"),
        "strict": native(fakes["lms"].base),
        "cloud": native(fakes["cloud"].base, model="claude-sonnet-4-5", max_output_tokens=None,
                        api_key_env="TR_TEST_CLOUD_KEY"),
        "mlx": openai_backend(fakes["mlx"].url, tools=False),
    }, rules=RULES, default={"route": "mlx"}, log_path=tmp / "requests.jsonl")
    with Gateway(cfg, tmp, env={"TR_TEST_CLOUD_KEY": CLOUD_KEY, "ANTHROPIC_API_KEY": CLIENT_KEY}) as g:
        yield g


@pytest.fixture(autouse=True)
def _clean(fakes):
    for f in fakes.values():
        f.clear()


class Sent:
    """The anthropic SDK as the client, keeping the exact bytes of every request it sent."""

    def __init__(self, base: str):
        self.bodies: list[bytes] = []
        self.headers: list[dict] = []

        def keep(request) -> None:
            self.bodies.append(request.read())
            self.headers.append(dict(request.headers))
        http = anthropic.DefaultHttpxClient(event_hooks={"request": [keep]})
        self.sdk = anthropic.Anthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0, http_client=http)


@pytest.fixture
def client(gw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sent = Sent(gw.base)
        yield sent
        sent.sdk.close()


def cc_body(prompt="fix the bug in a.py", **kw) -> dict:
    """A Claude Code-shaped request (billing block, fields a strict local server rejects)."""
    return {"model": "claude-sonnet-4-5", "max_tokens": 64000,
            "system": [{"type": "text", "text": BILLING}, {"type": "text", "text": "You are Claude Code."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
            "tools": [READ], "metadata": {"user_id": json.dumps({"session_id": SESSION})},
            "extra_body": {"context_management": {"edits": []}, "output_config": {"effort": "high"}}, **kw}


def plain_body(**kw) -> dict:
    """cc_body() as a raw JSON body (the SDK's extra_body merged in)."""
    body = cc_body(**kw)
    extra = body.pop("extra_body")
    return {**body, **extra}


def create(client: Sent, body: dict, *, stream: bool, **extra):
    body = copy.deepcopy(body)
    extra_body = body.pop("extra_body", {})
    if stream:
        with client.sdk.messages.stream(**body, extra_body=extra_body, **extra) as s:
            return s.get_final_message()
    return client.sdk.messages.create(**body, extra_body=extra_body, timeout=30, **extra)


def declared_changes(raw: bytes, *, model: str, max_tokens: int | None, drop=DROP) -> bytes:
    """What the native backend must receive: the client's bytes with only the declared edits."""
    body = orjson.loads(raw)
    body["model"] = model
    body["system"] = body["system"][1:]
    for path in drop:
        head, _, leaf = path.partition(".")
        if leaf:
            body[head].pop(leaf)
        else:
            body.pop(head)
    if max_tokens:
        body["max_tokens"] = min(body["max_tokens"], max_tokens)
    return orjson.dumps(body)


@pytest.mark.parametrize("stream", [True, False])
def test_bytes_reaching_the_server_are_the_clients_minus_the_declared_changes(client, fakes, gw, stream):
    fakes["lms"].script(Reply(text="done", chunks=3, usage={"input_tokens": 40, "cache_read_input_tokens": 900,
                                                            "cache_creation_input_tokens": 60, "output_tokens": 7}))
    msg = create(client, cc_body(), stream=stream)
    assert msg.content[0].text == "done" and msg.model == "claude-sonnet-4-5"
    assert msg.usage.cache_read_input_tokens == 900
    got = fakes["lms"].requests[0]
    assert got.raw == declared_changes(client.bodies[0], model="qwen3-coder", max_tokens=4096)
    assert "x-api-key" not in got.headers and "authorization" not in got.headers
    assert got.headers["anthropic-version"] == client.headers[0]["anthropic-version"]   # passed on
    assert got.headers["x-session-affinity"] == SESSION
    rec = gw.wait_records(1)[-1]
    assert (rec["route"], rec["backend_model"], rec["status"]) == ("lms", "qwen3-coder", 200)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["output_tokens"]) == (1000, 900, 7)
    assert rec["stop_reason"] == "end_turn" and rec["ttft_ms"] is not None


def test_undeclared_field_the_server_rejects_is_a_400_naming_it(client, fakes):
    with pytest.raises(anthropic.BadRequestError) as err:
        create(client, cc_body(), stream=True, extra_headers={"x-turnroute-route": "strict"})
    assert "context_management" in err.value.message and err.value.status_code == 400


@pytest.mark.parametrize("stream", [True, False])
def test_tool_ids_are_tagged_and_restored_so_the_loop_stays_on_its_backend(client, fakes, gw, stream):
    fakes["lms"].script(Reply.tools(ToolCall("Read", {"file_path": "a.py"}, id="call:srv 1", pieces=3),
                                    text="Reading."), Reply(text="fixed"))
    first = create(client, cc_body(), stream=stream)
    use = first.content[1]
    assert use.type == "tool_use" and use.input == {"file_path": "a.py"} and first.stop_reason == "tool_use"
    assert use.id.startswith("toolu_") and use.id != "call:srv 1"
    body = cc_body()
    body["messages"] += [{"role": "assistant", "content": [c.model_dump(exclude_none=True) for c in first.content]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                       "content": "print(1)"}]}]
    fakes["mlx"].script(Reply(text="mlx must not answer"))
    # A tool result whose tool came from lms: the rule "tool-loop" sends it back there.
    second = create(client, body, stream=stream)
    assert second.content[0].text == "fixed"
    history = fakes["lms"].requests[1].body["messages"]
    assert history[1]["content"][1]["id"] == "call:srv 1"
    assert history[2]["content"][0]["tool_use_id"] == "call:srv 1"
    assert fakes["mlx"].requests == []
    assert [r["rule"] for r in gw.wait_records(2)[-2:]] == ["tools", "tool-loop"]


def test_a_turn_the_local_model_failed_twice_goes_to_the_cloud(client, fakes, gw):
    body = cc_body()
    for i in range(2):
        body["messages"] += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_w0000p{i}", "name": "Read",
                                               "input": {"file_path": "nope"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_w0000p{i}",
                                          "is_error": True, "content": "file not found"}]}]
    fakes["cloud"].script(Reply(text="from the cloud"))
    assert create(client, body, stream=True).content[0].text == "from the cloud"
    assert gw.wait_records(1)[-1]["rule"] == "struggling"


def test_unavailable_native_server_falls_back_before_the_first_byte(client, fakes, gw):
    fakes["lms"].script(anthropic_error(529, "busy", "overloaded_error"))
    fakes["mlx"].script(Reply(text="mlx took it"))
    msg = create(client, cc_body(), stream=True)
    assert msg.content[0].text == "mlx took it"
    rec = gw.wait_records(1)[-1]
    assert rec["route"] == "mlx" and rec["fallbacks"] == ["lms"]


def sse_events(gw, body: dict) -> list[tuple[str, dict]]:
    body = {**{k: v for k, v in body.items() if k != "extra_body"}, "stream": True}
    r = httpx.post(gw.base + "/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY}, timeout=30)
    out = []
    for block in r.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_cut_stream_ends_in_a_retryable_error_event(fakes, gw):
    fakes["lms"].script(Reply(text="a long answer", chunks=6, cut_after=4))
    events = sse_events(gw, cc_body())
    assert events[0][0] == "message_start"
    assert events[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": events[-1][1]
                                                               ["error"]["message"]}})
    assert "backend 'lms'" in events[-1][1]["error"]["message"]
    assert gw.wait_records(1)[-1]["status"] == 500


def test_mid_stream_error_event_keeps_its_type(fakes, gw):
    start = {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "x",
                                                  "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}}
    fakes["lms"].script(Reply(raw_lines=[f"event: message_start\ndata: {json.dumps(start)}\n\n",
                                         'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error",'
                                         '"message":"slow down"}}\n\n']))
    events = sse_events(gw, cc_body())
    assert events[-1][0] == "error" and "slow down" in events[-1][1]["error"]["message"]
    assert gw.wait_records(1)[-1]["status"] == 429


def test_count_tokens_is_forwarded_where_the_server_counts(fakes, gw):
    body = {k: v for k, v in cc_body().items() if k not in ("max_tokens", "extra_body", "metadata")}
    r = httpx.post(gw.base + "/v1/messages/count_tokens", json=body, headers={"x-api-key": CLIENT_KEY})
    got = fakes["lms"].requests[0]
    assert got.path == "/v1/messages/count_tokens" and got.body["model"] == "qwen3-coder"
    assert r.status_code == 200 and r.json() == {"input_tokens": 1000 + len(got.raw) // 4}
    assert r.headers["x-turnroute-route"] == "lms"


def test_cloud_key_reaches_the_cloud_only_and_is_never_logged_or_returned(client, fakes, gw):
    fakes["cloud"].script(Reply(text="cloud says hi"), Reply(text="again"))
    msg = create(client, cc_body(model="cloud"), stream=True)        # claude --model cloud
    assert msg.content[0].text == "cloud says hi"
    r = httpx.post(gw.base + "/v1/messages", json=plain_body(),
                   headers={"x-api-key": CLIENT_KEY, "x-turnroute-route": "cloud"}, timeout=30)
    cloud = fakes["cloud"].requests
    assert [q.headers["x-api-key"] for q in cloud] == [CLOUD_KEY, CLOUD_KEY]
    assert cloud[0].body["model"] == "claude-sonnet-4-5" and "max_tokens" in cloud[0].body
    fakes["lms"].script(Reply(text="local"))
    create(client, cc_body(), stream=False)
    for name in ("lms", "mlx"):
        for q in fakes[name].log:
            assert CLOUD_KEY not in repr(q.headers) + q.raw.decode()
    for fake in fakes.values():
        for q in fake.log:
            assert CLIENT_KEY not in repr(q.headers) + q.raw.decode()
    seen = gw.log_path.read_text() + gw.output() + r.text + repr(dict(r.headers)) + msg.model_dump_json()
    assert CLOUD_KEY not in seen and CLIENT_KEY not in seen
    assert gw.wait_records(3)[-3]["rule"] == "override:model"


def test_health_probes_native_servers_without_generating(fakes, gw):
    health = httpx.get(gw.base + "/health", timeout=10).json()["backends"]
    assert health["lms"]["ok"] and health["cloud"]["ok"] and health["lms"]["type"] == "anthropic"
    assert fakes["lms"].requests == [] and fakes["cloud"].requests == []
    got = [q for q in fakes["cloud"].log if q.path == "/v1/models"]
    assert got and got[-1].headers.get("x-api-key") == CLOUD_KEY     # the cloud lists models only with a key
    assert all("x-api-key" not in q.headers for q in fakes["lms"].log)


def test_model_auto_on_a_native_backend_uses_the_servers_model(tmp_path):
    with FakeAnthropic(models=("qwen3-coder-30b",)) as lms:
        lms.script(Reply(text="picked"))
        cfg = gateway_config({"lms": native(lms.base, model="auto")}, rules=[], default={"route": "lms"},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            r = httpx.post(gw.base + "/v1/messages", json={**plain_body(), "stream": True},
                           headers={"anthropic-version": "2023-06-01"}, timeout=30)
            assert r.status_code == 200 and "picked" in r.text, (r.text, [q.path for q in lms.log])
            assert lms.requests[0].body["model"] == "qwen3-coder-30b"
            assert gw.wait_records(1)[-1]["backend_model"] == "qwen3-coder-30b"
