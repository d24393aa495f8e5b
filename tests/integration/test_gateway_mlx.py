"""The gateway in front of a real mlx_lm.server (tiny random model built at test time).

Route `mlx` uses direct HTTP; route `lmstudio` goes through LiteLLM's lm_studio/ provider to a
second real mlx_lm.server (LM Studio itself cannot run here; its API is the same shape).
"""

from __future__ import annotations

import json
import uuid

import anthropic
import pytest

from tests.support.gateway import Gateway, gateway_config, openai_backend


@pytest.fixture(scope="module")
def gw(mlx_server, mlx_server_2, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw-mlx")
    cfg = gateway_config({
        "mlx": openai_backend(mlx_server.url, model="default_model", tools=False, max_output_tokens=8),
        "lmstudio": openai_backend(mlx_server_2.url, type="litellm", model="lm_studio/default_model",
                                   tools=False, max_output_tokens=8),
    }, log_path=tmp / "requests.jsonl")
    with Gateway(cfg, tmp) as g:
        yield g


@pytest.fixture
def client(gw):
    return anthropic.Anthropic(base_url=gw.base, api_key="sk-test", max_retries=0)


def conversation(session: str, turns: int) -> list[dict]:
    """A Claude Code-like growing conversation whose prefix is unique to this test."""
    msgs: list[dict] = []
    for i in range(turns):
        msgs.append({"role": "user", "content": [{"type": "text", "text": f"<system-reminder>session {session}</system-reminder>"},
                                                 {"type": "text", "text": f"explain step {i} of the build " * 20}]})
        if i < turns - 1:
            msgs.append({"role": "assistant", "content": [{"type": "text", "text": f"step {i} compiles the code"}]})
    return msgs


SYSTEM = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331.a3f; cc_entrypoint=cli;"},
          {"type": "text", "text": "You are Claude Code, a CLI for software engineering. " * 30}]


@pytest.mark.parametrize("stream", [False, True])
def test_mlx_route_and_cache_hit_on_follow_up(client, gw, stream):
    session = uuid.uuid4().hex
    headers = {"x-claude-code-session-id": session}

    def turn(n):
        args = dict(model="claude-sonnet-4-6", max_tokens=20000, system=SYSTEM,
                    messages=conversation(session, n), extra_headers=headers)
        if stream:
            with client.messages.stream(**args) as s:
                return s.get_final_message()
        return client.messages.create(**args)

    first = turn(1)
    assert first.content and first.content[0].type == "text" and first.content[0].text
    # Cut at the backend's 8-token limit, which the gateway clamped Claude Code's ask down to:
    # reported as end_turn (Claude Code fails a turn on max_tokens), logged as max_tokens.
    assert first.stop_reason == "end_turn"
    second = turn(2)
    # The follow-up extends the first prompt: mlx_lm.server's prompt cache must hit, and the
    # gateway must report it the Anthropic way.
    assert second.usage.cache_read_input_tokens and second.usage.cache_read_input_tokens > 100
    recs = [r for r in gw.wait_records(2) if r["session"] == session]
    assert [r["route"] for r in recs] == ["mlx", "mlx"]
    assert recs[-1]["cached_tokens"] == second.usage.cache_read_input_tokens
    assert recs[-1]["prompt_tokens"] > recs[-1]["cached_tokens"] > 0
    assert recs[0]["stop_reason"] == "max_tokens"
    assert recs[-1]["ttft_ms"] is not None and recs[-1]["latency_ms"] >= recs[-1]["ttft_ms"]


@pytest.mark.parametrize("stream", [False, True])
def test_litellm_lm_studio_route_against_a_real_server(client, gw, stream):
    args = dict(model="claude-sonnet-4-6", max_tokens=20000, system=SYSTEM,
                messages=[{"role": "user", "content": f"what does module {uuid.uuid4().hex[:6]} do?"}],
                extra_headers={"x-turnroute-route": "lmstudio"})
    if stream:
        with client.messages.stream(**args) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**args)
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.output_tokens > 0
    rec = gw.wait_records(1)[-1]
    assert rec["route"] == "lmstudio" and rec["backend_model"] == "lm_studio/default_model"
    assert rec["status"] == 200 and rec["prompt_tokens"] > 0


def test_title_generation_on_real_mlx_is_valid_json(client):
    msg = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=8000, tools=[], system=SYSTEM,
        messages=[{"role": "user", "content": "please refactor the parser"}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}},
            "thinking": {"type": "disabled"}})
    data = json.loads(msg.content[0].text)       # a random model's junk still becomes {"title": …}
    assert set(data) == {"title"} and isinstance(data["title"], str) and data["title"]


def test_mlx_tools_profile_sends_tool_turns_to_a_tool_capable_mlx(mlx_tool_server, tmp_path):
    """config/mlx-tools.yaml: MLX serves a tool-capable model, so tool turns stay on MLX with tools."""
    cfg = gateway_config({
        "mlx": openai_backend(mlx_tool_server.url, model="default_model", tools=True, max_output_tokens=8),
        "lmstudio": openai_backend("http://127.0.0.1:9/v1", type="litellm", model="lm_studio/x"),
    }, log_path=tmp_path / "requests.jsonl", profile="mlx-tools.yaml")
    tools = [{"name": "Edit", "description": "Edit a file", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}}}}]
    with Gateway(cfg, tmp_path) as gw:
        client = anthropic.Anthropic(base_url=gw.base, api_key="sk-test", max_retries=0)
        msg = client.messages.create(model="claude-sonnet-4-6", max_tokens=20000, system=SYSTEM, tools=tools,
                                     messages=[{"role": "user", "content": "edit main.py to add logging"}])
        assert msg.content and msg.stop_reason in ("end_turn", "tool_use")
        rec = gw.wait_records(1)[-1]
        assert rec["route"] == "mlx" and rec["tools"] == 1 and rec["tools_stripped"] is False
        assert rec["status"] == 200 and rec["prompt_tokens"] > 0
