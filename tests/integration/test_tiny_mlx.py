"""A real mlx_lm.server on the tiny random model: the prompt cache is reported in usage."""

import json
import time
import uuid

import httpx
import pytest

MAX_TOKENS = 8

TOOLS = [{
    "type": "function",
    "function": {
        "name": "Read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}},
                       "required": ["file_path"]},
    },
}]


def _system_prompt() -> str:
    # unique per call so tests never hit each other's cache entries; ~700 tokens
    return f"[{uuid.uuid4()}] You are a helpful coding assistant. " + " ".join(
        f"Rule {i}: read the file before you edit it and run the tests." for i in range(40))


def _chat(server, messages, *, stream=False, **extra) -> tuple[dict, float]:
    """POST a chat request; return (OpenAI response or the usage chunk + text, seconds)."""
    body = {"model": server.model, "messages": messages, "max_tokens": MAX_TOKENS, **extra}
    t0 = time.perf_counter()
    if not stream:
        r = httpx.post(f"{server.url}/chat/completions", json=body, timeout=120)
        r.raise_for_status()
        return r.json(), time.perf_counter() - t0
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    text, usage, finish, comments = [], None, None, 0
    with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=120) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith(":"):
                comments += 1
                continue
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage") is not None and chunk.get("choices") == []:
                usage = chunk["usage"]
            for c in chunk.get("choices") or []:
                text.append((c.get("delta") or {}).get("content") or "")
                finish = c.get("finish_reason") or finish
    return ({"text": "".join(text), "usage": usage, "finish_reason": finish,
             "comments": comments}, time.perf_counter() - t0)


def _conversation():
    system = _system_prompt()
    first = [{"role": "system", "content": system},
             {"role": "user", "content": "Read notes.txt and summarize it."}]
    return first


def _extend(first, reply_text):
    return first + [{"role": "assistant", "content": reply_text},
                    {"role": "user", "content": "Now list the three most important points."}]


def test_health_and_models(mlx_server):
    assert httpx.get(f"{mlx_server.base}/health").json() == {"status": "ok"}
    ids = [m["id"] for m in httpx.get(f"{mlx_server.url}/models").json()["data"]]
    assert ids == [str(mlx_server.model_dir.resolve())]


def test_unknown_model_name_is_a_404(mlx_server):
    """Any "model" other than "default_model" or the --model path is loaded as a hub repo."""
    r = httpx.post(f"{mlx_server.url}/chat/completions", timeout=60, json={
        "model": "some-other-model", "max_tokens": 2,
        "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    assert "outgoing traffic has been disabled" in r.json()["error"]


def test_followup_is_cached_non_streaming(mlx_server):
    first = _conversation()
    r1, t1 = _chat(mlx_server, first)
    u1 = r1["usage"]
    assert u1["prompt_tokens"] > 500
    assert u1["completion_tokens"] == MAX_TOKENS
    assert r1["choices"][0]["finish_reason"] == "length"
    # cold: at most the few leading template tokens shared with other tests' entries
    assert u1["prompt_tokens_details"]["cached_tokens"] < 16

    reply = r1["choices"][0]["message"]["content"]
    r2, t2 = _chat(mlx_server, _extend(first, reply))
    u2 = r2["usage"]
    cached = u2["prompt_tokens_details"]["cached_tokens"]
    print(f"\nnon-stream: cold {t1:.3f}s ({u1['prompt_tokens']} tok), "
          f"follow-up {t2:.3f}s ({cached}/{u2['prompt_tokens']} cached)")
    assert u2["prompt_tokens"] > u1["prompt_tokens"]
    assert cached > 0
    assert cached >= u1["prompt_tokens"] - 1  # the whole previous prompt is reused


def test_followup_is_cached_streaming(mlx_server):
    first = _conversation()
    r1, t1 = _chat(mlx_server, first, stream=True)
    assert r1["usage"] is not None, "no usage chunk although include_usage was set"
    assert r1["usage"]["prompt_tokens_details"]["cached_tokens"] < 16
    assert r1["finish_reason"] == "length"
    r2, t2 = _chat(mlx_server, _extend(first, r1["text"]), stream=True)
    u2 = r2["usage"]
    cached = u2["prompt_tokens_details"]["cached_tokens"]
    print(f"\nstream: cold {t1:.3f}s ({r1['usage']['prompt_tokens']} tok, "
          f"{r1['comments']} keepalive comments), follow-up {t2:.3f}s "
          f"({cached}/{u2['prompt_tokens']} cached)")
    assert cached > 0
    assert cached >= r1["usage"]["prompt_tokens"] - 1


def test_stream_without_include_usage_has_no_usage(mlx_server):
    body = {"model": mlx_server.model, "max_tokens": 4, "stream": True,
            "messages": [{"role": "user", "content": f"hi {uuid.uuid4()}"}]}
    with httpx.stream("POST", f"{mlx_server.url}/chat/completions", json=body, timeout=60) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
    assert chunks and all(not c.get("usage") for c in chunks)


def test_tools_on_plain_model_are_ignored_not_rejected(mlx_server):
    """mlx-lm 0.32.2 only logs a warning for tools on a model without tool calling."""
    r = httpx.post(f"{mlx_server.url}/chat/completions", timeout=60, json={
        "model": mlx_server.model, "max_tokens": 4, "tools": TOOLS,
        "messages": [{"role": "user", "content": f"read a file {uuid.uuid4()}"}]})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while "does not support tool calling" not in mlx_server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Received tools but model does not support tool calling" in mlx_server.output()


def test_tool_model_accepts_tools_and_renders_them(mlx_tool_server):
    msgs = [{"role": "user", "content": f"read a file {uuid.uuid4()}"}]
    base = {"model": mlx_tool_server.model, "max_tokens": 4, "messages": msgs}
    plain = httpx.post(f"{mlx_tool_server.url}/chat/completions", json=base, timeout=60)
    with_tools = httpx.post(f"{mlx_tool_server.url}/chat/completions",
                            json={**base, "tools": TOOLS}, timeout=60)
    assert plain.status_code == 200 and with_tools.status_code == 200, with_tools.text
    # the tool definitions are rendered into the prompt
    assert with_tools.json()["usage"]["prompt_tokens"] > plain.json()["usage"]["prompt_tokens"] + 20
    assert "does not support tool calling" not in mlx_tool_server.output()


def test_tool_history_round_trip(mlx_tool_server):
    """A conversation with an assistant tool call and a tool result is accepted and cached."""
    call = {"id": "call_0", "type": "function",
            "function": {"name": "Read", "arguments": json.dumps({"file_path": "notes.txt"})}}
    first = [{"role": "system", "content": _system_prompt()},
             {"role": "user", "content": "Read notes.txt"},
             {"role": "assistant", "content": "", "tool_calls": [call]},
             {"role": "tool", "tool_call_id": "call_0", "content": "hello from notes"}]
    r1, _ = _chat(mlx_tool_server, first, tools=TOOLS)
    second = first + [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]},
                      {"role": "user", "content": "thanks"}]
    r2, _ = _chat(mlx_tool_server, second, tools=TOOLS)
    assert r2["usage"]["prompt_tokens_details"]["cached_tokens"] >= r1["usage"]["prompt_tokens"] - 1
