"""`model: auto`: the gateway uses the model the server has loaded (LM Studio: the one that can call
tools), picks again when the server says "model not found", and says which one in /health and the log."""

from __future__ import annotations

import anthropic
import httpx

from tests.support.fake_openai import Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

TOOLS = [{"name": "Read", "description": "read a file",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]

LMSTUDIO_LIST = [
    {"id": "text-embedding-nomic", "type": "embeddings", "state": "loaded", "capabilities": ["tool_use"]},
    {"id": "gemma-chat", "type": "llm", "state": "loaded", "capabilities": []},
    {"id": "qwen-coder-loaded", "type": "llm", "state": "loaded", "capabilities": ["tool_use"],
     "loaded_context_length": 32768},
    {"id": "big-coder-on-disk", "type": "llm", "state": "not-loaded", "capabilities": ["tool_use"]},
]


def health(gw: Gateway) -> dict:
    return httpx.get(gw.base + "/health", timeout=10, trust_env=False).json()["backends"]


def test_lmstudio_auto_picks_the_loaded_tool_model_and_repicks_when_it_is_gone(fake_openai, tmp_path):
    fake_openai.lmstudio_models = [dict(m) for m in LMSTUDIO_LIST]
    doc = gateway_config({"lmstudio": openai_backend(fake_openai.url, type="litellm", model="auto")},
                         rules=[], log_path=tmp_path / "requests.jsonl")
    with Gateway(doc, tmp_path) as gw:
        client = anthropic.Anthropic(base_url=gw.base, api_key="local", max_retries=0)
        client.messages.create(model="claude-sonnet-4", max_tokens=16, tools=TOOLS,
                               messages=[{"role": "user", "content": "read a.txt"}])
        assert fake_openai.requests[-1].body["model"] == "qwen-coder-loaded"
        assert gw.wait_records(1)[-1]["backend_model"] == "lm_studio/qwen-coder-loaded"
        entry = health(gw)["lmstudio"]
        assert entry["model"] == "lm_studio/qwen-coder-loaded" and entry["model_picked"] == entry["model"]

        # The user loads another model in LM Studio: the old id now fails with "not found".
        fake_openai.lmstudio_models[2]["state"] = "not-loaded"
        fake_openai.lmstudio_models.append({"id": "llama-tools", "type": "llm", "state": "loaded",
                                            "capabilities": ["tool_use"]})
        fake_openai.script(Reply.error(404, "model 'qwen-coder-loaded' not found"))
        client.messages.create(model="claude-sonnet-4", max_tokens=16, tools=TOOLS,
                               messages=[{"role": "user", "content": "read b.txt"}])
        assert [r.body["model"] for r in fake_openai.requests[-2:]] == ["qwen-coder-loaded", "llama-tools"]
        assert gw.wait_records(2)[-1]["backend_model"] == "lm_studio/llama-tools"
        assert "model auto → lm_studio/llama-tools" in gw.output()
        assert health(gw)["lmstudio"]["model"] == "lm_studio/llama-tools"


def test_auto_with_nothing_loaded_is_a_retryable_error_naming_the_fix(fake_openai, tmp_path):
    fake_openai.lmstudio_models = [LMSTUDIO_LIST[3]]
    doc = gateway_config({"lmstudio": openai_backend(fake_openai.url, type="litellm", model="auto")},
                         rules=[], log_path=tmp_path / "requests.jsonl")
    with Gateway(doc, tmp_path) as gw:
        r = httpx.post(gw.base + "/v1/messages", json={"model": "x", "max_tokens": 8, "messages": [
            {"role": "user", "content": "hi"}]}, timeout=30, trust_env=False)
        assert r.status_code == 529
        assert "has no model loaded" in r.json()["error"]["message"]
        assert health(gw)["lmstudio"]["model_error"].endswith("load one")
        assert not fake_openai.requests


def test_mlx_auto_uses_the_model_the_real_server_runs(mlx_server, tmp_path):
    doc = gateway_config({"mlx": openai_backend(mlx_server.url, model="auto", tools=False)},
                         rules=[], log_path=tmp_path / "requests.jsonl")
    with Gateway(doc, tmp_path) as gw:
        client = anthropic.Anthropic(base_url=gw.base, api_key="local", max_retries=0)
        reply = client.messages.create(model="claude-sonnet-4", max_tokens=4,
                                       messages=[{"role": "user", "content": "model auto on mlx"}])
        assert reply.usage.output_tokens > 0
        served = str(mlx_server.model_dir.resolve())
        assert gw.wait_records(1)[-1]["backend_model"] == served
        assert health(gw)["mlx"]["model"] == served
