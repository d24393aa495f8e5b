"""vLLM (`hosted_vllm/`) and Ollama (`ollama_chat/`) through the LiteLLM backend, with the anthropic
SDK as the client. No GPU here: vLLM is played by the scripted OpenAI server, Ollama by a
scripted `/api/chat` server; what is checked is that the provider names route through LiteLLM
and that text, a streamed tool call and usage come back in Anthropic's shape.
"""

from __future__ import annotations

import anthropic
import pytest

from tests.support.fake_ollama import FakeOllama
from tests.support.fake_openai import FakeOpenAI, Reply, ToolCall
from tests.support.gateway import Gateway, gateway_config, openai_backend

READ = {"name": "Read", "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("providers")
    with FakeOpenAI() as vllm, FakeOllama() as ollama:
        cfg = gateway_config({
            "vllm": openai_backend(vllm.url, type="litellm", model="hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct",
                                   session_header="x-session-affinity"),
            "ollama": openai_backend(ollama.base, type="litellm", model="ollama_chat/qwen3-coder:30b"),
        }, rules=[], default={"route": "vllm"}, log_path=tmp / "requests.jsonl")
        with Gateway(cfg, tmp) as gw:
            yield gw, {"vllm": vllm, "ollama": ollama}


@pytest.mark.parametrize("name", ["vllm", "ollama"])
@pytest.mark.parametrize("stream", [True, False])
def test_provider_text_tool_call_and_usage(servers, name, stream):
    gw, fakes = servers
    fake = fakes[name]
    fake.clear()
    fake.script(Reply.tools(ToolCall("Read", {"file_path": "a.py"}, pieces=3), text="Reading."))
    client = anthropic.Anthropic(base_url=gw.base, api_key="sk-client", max_retries=0)
    args = dict(model=name, max_tokens=512, tools=[READ], messages=[{"role": "user", "content": "fix a.py"}],
                extra_headers={"x-claude-code-session-id": "s-1"})
    if stream:
        with client.messages.stream(**args) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**args)
    client.close()
    assert msg.stop_reason == "tool_use" and msg.content[0].text == "Reading."
    assert msg.content[1].name == "Read" and msg.content[1].input == {"file_path": "a.py"}
    got = fake.requests[0]
    assert got.path == ("/v1/chat/completions" if name == "vllm" else "/api/chat")
    assert got.body["model"] == ("Qwen/Qwen2.5-Coder-32B-Instruct" if name == "vllm" else "qwen3-coder:30b")
    if name == "vllm":
        assert got.headers.get("x-session-affinity") == "s-1"
    rec = gw.wait_records(1)[-1]
    assert rec["route"] == name and rec["status"] == 200 and rec["output_tokens"]
