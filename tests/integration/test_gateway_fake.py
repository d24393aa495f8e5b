"""The anthropic SDK (the strict parser) against the running gateway, backed by the scripted fake.

Both routes are exercised: `mlx` (direct HTTP) and `lmstudio` (LiteLLM's lm_studio/ provider),
each pointed at its own FakeOpenAI so a test can see which backend received what.
"""

from __future__ import annotations

import warnings

import anthropic
import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply, ToolCall
from tests.support.gateway import Gateway, gateway_config, openai_backend

SECRET = "sk-ant-api03-SECRETSECRETSECRET-0123456789"
READ_TOOL = {"name": "Read", "description": "Read a file",
             "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                              "required": ["file_path"]}}
TOOLS = [READ_TOOL, {"name": "Bash", "description": "Run a command",
                     "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]


@pytest.fixture(scope="module")
def fakes():
    mlx, lms = FakeOpenAI(), FakeOpenAI()
    yield mlx, lms
    mlx.stop()
    lms.stop()


@pytest.fixture(scope="module")
def gw(fakes, tmp_path_factory):
    mlx, lms = fakes
    tmp = tmp_path_factory.mktemp("gw")
    cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False),
                          "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model",
                                                     json_schema=True)},
                         log_path=tmp / "requests.jsonl")
    with Gateway(cfg, tmp) as g:
        yield g


@pytest.fixture(autouse=True)
def _clean(fakes):
    for f in fakes:
        f.clear()
    yield


@pytest.fixture
def client(gw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SDK must parse everything without a warning
        yield anthropic.Anthropic(base_url=gw.base, api_key=SECRET, max_retries=0)


def ask(client, text, *, tools=TOOLS, stream=False, **kw):
    args = dict(model="claude-sonnet-4-6", max_tokens=20000, tools=tools,
                messages=[{"role": "user", "content": text}], **kw)
    if stream:
        with client.messages.stream(**args) as s:
            return s.get_final_message()
    return client.messages.create(**args)


@pytest.mark.parametrize("stream", [False, True])
def test_question_about_pasted_code_goes_to_mlx_without_tools(client, fakes, gw, stream):
    mlx, lms = fakes
    mlx.script(Reply(text="It parses the config.", chunks=4))
    msg = ask(client, "explain what this does:\n```python\nimport json\ncfg = json.load(open('config.json'))\n```",
              stream=stream)
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "It parses the config."
    assert msg.stop_reason == "end_turn"
    assert len(mlx.requests) == 1 and not lms.requests
    assert "tools" not in mlx.last.body          # stripped: MLX has no tool calling
    assert mlx.last.body["max_tokens"] == 64    # clamped to the backend's max_output_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_action_prompt_goes_to_lmstudio_and_tool_calls_parse(client, fakes, stream):
    mlx, lms = fakes
    lms.script(Reply.tools(ToolCall("Read", {"file_path": "/etc/hosts"}, pieces=4, empty_first=True),
                           text="Let me look."))
    msg = ask(client, "fix the bug in hosts parsing", stream=stream)
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    tool = msg.content[1]
    assert tool.name == "Read" and tool.input == {"file_path": "/etc/hosts"}
    assert tool.id.startswith("toolu_")
    assert msg.stop_reason == "tool_use"
    assert len(lms.requests) == 1 and not mlx.requests
    assert [t["function"]["name"] for t in lms.last.body["tools"]] == ["Read", "Bash"]


def test_unread_file_goes_to_tools_and_the_follow_up_after_reading_it_to_mlx(client, fakes, gw):
    """The same question needs the workspace before store.py was read and only the conversation after."""
    mlx, lms = fakes
    question = "explain how the session store in store.py expires entries"
    before = len(gw.records())
    lms.script(Reply.tools(ToolCall("Read", {"file_path": "/repo/store.py"}), text="Reading it."))
    first = ask(client, question)
    assert first.stop_reason == "tool_use" and len(lms.requests) == 1 and not mlx.requests
    source = "     1\tclass SessionStore:\n     2\t    def expire(self):\n     3\t        self._items.clear()"
    history = [{"role": "user", "content": question},
               {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[1].id,
                                             "content": source}]},
               {"role": "assistant", "content": "SessionStore.expire() clears every item."}]
    mlx.script(Reply(text="Because expire() clears everything at once."))
    msg = client.messages.create(model="claude-sonnet-4-6", max_tokens=100, tools=TOOLS, messages=[
        *history, {"role": "user", "content": "why does expire() drop every item at once?"}])
    assert msg.content[0].text == "Because expire() clears everything at once."
    assert len(mlx.requests) == 1 and "tools" not in mlx.last.body
    recs = gw.wait_records(before + 2)[before:]
    assert [(r["route"], r["rule"], r["needs"]) for r in recs] == [
        ("lmstudio", "needs-tools", "workspace"), ("mlx", "from-context", "context")]


def test_interleaved_tool_calls_keep_their_own_arguments(client, fakes):
    _, lms = fakes
    lms.script(Reply.tools(ToolCall("Read", {"file_path": "/a/first.py"}, pieces=5),
                           ToolCall("Bash", {"command": "ls -la /tmp"}, pieces=5), interleave=True,
                           finish_reason="stop"))
    msg = ask(client, "run ls and read first.py", stream=True)
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("Read", {"file_path": "/a/first.py"}),
                                                  ("Bash", {"command": "ls -la /tmp"})]
    assert msg.stop_reason == "tool_use"     # despite finish_reason "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_litellm_route_assembles_interleaved_fragments_and_sends_what_litellm_built(client, fakes, gw, stream):
    """The lmstudio route: LiteLLM resolves provider, URL, auth and body; the server's own stream
    (fragments of two calls interleaved, later ones with `"id": null`) is assembled by index."""
    mlx, lms = fakes
    lms.script(Reply.tools(ToolCall("Read", {"file_path": "/a/first.py"}, pieces=6),
                           ToolCall("Bash", {"command": "ls -la /tmp && echo \"done\""}, pieces=7),
                           text="Two things.", interleave=True, null_id=True,
                           usage={"prompt_tokens": 900, "completion_tokens": 30, "cached_tokens": 640}))
    msg = ask(client, "run ls and read first.py", stream=stream)
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert [(u.name, u.input) for u in msg.content[1:]] == [
        ("Read", {"file_path": "/a/first.py"}), ("Bash", {"command": 'ls -la /tmp && echo "done"'})]
    assert msg.content[1].id != msg.content[2].id
    assert msg.stop_reason == "tool_use"
    assert msg.usage.cache_read_input_tokens == 640
    assert not mlx.requests and lms.last.path == "/v1/chat/completions"
    assert lms.last.body["model"] == "fake-model"             # LiteLLM took off the provider prefix
    assert lms.last.headers["authorization"] == "Bearer lm-studio"
    assert lms.last.body["stream"] is stream
    rec = gw.wait_records(1)[-1]
    assert rec["route"] == "lmstudio" and rec["cached_tokens"] == 640


def test_tool_loop_continuation_stays_on_the_backend_that_started_it(client, fakes, gw):
    mlx, lms = fakes
    lms.script(Reply.tools(ToolCall("Read", {"file_path": "notes.txt"})))
    first = ask(client, "update notes.txt with a summary", stream=True)
    tool = first.content[-1]
    # The follow-up carries the tool result; its *prompt text* now looks like analysis, but the
    # tool_use id says lmstudio started this turn.
    lms.script(Reply(text="Done: the notes say hello."))
    follow = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=1000, tools=TOOLS,
        messages=[{"role": "user", "content": "update notes.txt with a summary"},
                  {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id,
                                                "content": "hello"}]}])
    assert follow.content[0].text == "Done: the notes say hello."
    assert len(lms.requests) == 2 and not mlx.requests
    sent = lms.last.body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": tool.id, "content": "hello"}
    rec = gw.wait_records(1)[-1]
    assert rec["rule"] == "tool-loop" and rec["route"] == "lmstudio" and rec["turn"] == "tool_result"


def test_title_generation_returns_the_json_the_client_expects(client, fakes):
    mlx, _ = fakes
    mlx.script(Reply(text="Fixing the flaky login test\nand more words"))
    msg = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=8000, tools=[],
        system=[{"type": "text", "text": "Generate a concise title for this coding session."}],
        messages=[{"role": "user", "content": "the login test is flaky, please fix it"}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}},
            "thinking": {"type": "disabled"}})
    import json
    assert json.loads(msg.content[0].text) == {"title": "Fixing the flaky login test"}
    assert len(mlx.requests) == 1


def test_cut_stream_becomes_an_sse_error_event(client, fakes, gw):
    mlx, _ = fakes
    mlx.script(Reply(text="partial answer that never ends", chunks=6, cut_after=3))
    with pytest.raises(anthropic.APIStatusError) as err:
        ask(client, "what is a mutex?", stream=True)
    assert "mlx" in str(err.value)
    assert err.value.body["error"]["type"] == "overloaded_error"     # Claude Code retries these
    rec = gw.wait_records(1)[-1]
    assert rec["status"] == 500 and rec["error"] == "api_error" and rec["route"] == "mlx"


def test_backend_400_is_a_400_with_its_message(client, fakes):
    mlx, _ = fakes
    mlx.script(Reply.error(400, "context length 9000 exceeds 8192"))
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, "what is an integer overflow?")
    assert "context length 9000 exceeds 8192" in err.value.message
    assert err.value.body["error"]["type"] == "invalid_request_error"


def test_tool_refusal_falls_back_to_the_next_backend(client, fakes, gw):
    mlx, lms = fakes
    lms.script(Reply.error(400, "This model does not support tool calling"))
    mlx.script(Reply(text="answered without tools"))
    msg = ask(client, "write a README for this repo")
    assert msg.content[0].text == "answered without tools"
    rec = gw.wait_records(1)[-1]
    assert rec["route"] == "mlx" and rec["fallbacks"] == ["lmstudio"] and rec["tools_stripped"] is True
    assert "fell back to mlx" in rec["reason"]


def test_unreachable_backend_is_retryable_529_naming_it(tmp_path):
    cfg = gateway_config({"mlx": openai_backend("http://127.0.0.1:9/v1", tools=False)},
                         rules=[], default={"route": "mlx"}, log_path=tmp_path / "r.jsonl")
    with Gateway(cfg, tmp_path) as g:
        r = httpx.post(g.base + "/v1/messages", json={"model": "m", "max_tokens": 10,
                                                      "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 529
        err = r.json()["error"]
        assert err["type"] == "overloaded_error"
        assert "mlx" in err["message"] and "127.0.0.1:9" in err["message"]
        assert g.wait_records(1)[-1]["status"] == 529


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b'{"model": "m", "max_tokens": 10, "messages": []}', 400, "messages"),
    (b'{"model": "m", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}', 400, "max_tokens"),
    (b'{"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]}',
     400, "messages.0.content.0"),
])
def test_bad_requests_get_a_400_envelope_naming_the_field(gw, body, status, needle):
    r = httpx.post(gw.base + "/v1/messages", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    data = r.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert needle in data["error"]["message"]
    assert gw.wait_records(1)[-1]["status"] == status


def test_oversized_body_is_413(gw):
    big = b'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"' + b"x" * (33 * 1024 * 1024) + b'"}]}'
    r = httpx.post(gw.base + "/v1/messages", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_count_tokens_models_health_and_hello(gw, fakes):
    r = httpx.post(gw.base + "/v1/messages/count_tokens?beta=true",
                   json={"model": "m", "messages": [{"role": "user", "content": "hello world " * 50}],
                         "tools": TOOLS})
    assert r.status_code == 200 and 100 < r.json()["input_tokens"] < 400
    assert not fakes[0].requests and not fakes[1].requests     # counted locally
    ids = [m["id"] for m in httpx.get(gw.base + "/v1/models?limit=1000").json()["data"]]
    assert "mlx" in ids and "lmstudio" in ids
    health = httpx.get(gw.base + "/health").json()
    assert health["backends"]["mlx"]["ok"] and health["backends"]["lmstudio"]["ok"]
    assert not fakes[0].requests                               # nothing generated
    assert httpx.head(gw.base + "/").status_code == 200
    assert httpx.get(gw.base + "/api/hello").status_code == 200


def test_manual_overrides_header_and_model_alias(client, fakes, gw):
    mlx, lms = fakes
    lms.script(Reply(text="pinned"))
    msg = ask(client, "explain this", extra_headers={"x-turnroute-route": "lmstudio"})
    assert msg.content[0].text == "pinned" and len(lms.requests) == 1
    mlx.script(Reply(text="alias"))
    msg = client.messages.create(model="local", max_tokens=100, tools=TOOLS,
                                 messages=[{"role": "user", "content": "fix everything"}])
    assert msg.content[0].text == "alias" and len(mlx.requests) == 1
    recs = gw.wait_records(2)[-2:]
    assert [r["rule"] for r in recs] == ["override:header", "override:model"]


def test_response_headers_and_a_log_line_without_secrets(client, fakes, gw):
    mlx, _ = fakes
    mlx.script(Reply(text="fine", usage={"prompt_tokens": 120, "completion_tokens": 1, "cached_tokens": 100}))
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=100, tools=TOOLS,
        messages=[{"role": "user", "content": "what is an integer overflow?"}])
    assert raw.headers["x-turnroute-route"] == "mlx"
    assert raw.headers["x-turnroute-rule"] == "from-context"
    rid = raw.headers["x-turnroute-request-id"]
    msg = raw.parse()
    assert msg.usage.cache_read_input_tokens == 100 and msg.usage.input_tokens == 20
    rec = next(r for r in gw.wait_records(1) if r["id"] == rid)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["output_tokens"]) == (120, 100, 1)
    assert rec["intent"] == "analysis" and rec["tools"] == 2 and rec["tools_stripped"] is True
    # Bearer tokens (ANTHROPIC_AUTH_TOKEN), on a failing request too.
    bearer = "Bearer sk-ant-oat01-TOKENTOKENTOKEN-987654"
    bad = httpx.post(gw.base + "/v1/messages", headers={"authorization": bearer}, content=b"{oops")
    assert bad.status_code == 400
    gw.wait_records(1)
    everything = gw.log_path.read_text() + gw.output() + httpx.get(gw.base + "/api/recent").text \
        + httpx.get(gw.base + "/metrics").text
    assert SECRET not in everything and "SECRETSECRET" not in everything and "TOKENTOKEN" not in everything
