"""A native backend (the Messages API) answers auto mode's safety check itself; its verdicts must
be keyed by the tool ids the gateway shows the client, or Claude Code finds none for its calls."""

from __future__ import annotations

import orjson

from turnroute.gateway.protocol.passthrough import PassThrough, rewrite_message
from turnroute.router.ids import wrap_tool_id

RESULTS = [{"type": "dangerous_tool_use", "status": {"type": "available", "tool_uses": {
    "toolu_cloud1": {"type": "evaluated", "outcome": "flagged", "explanation": "Downloads and runs a script."}}}}]


def wrap(original: str) -> str:
    return wrap_tool_id("claude", original)


def event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def test_streamed_verdicts_follow_the_wrapped_ids():
    relay = PassThrough(model="claude-sonnet-4-6", wrap=wrap)
    start = relay.feed("content_block_start", event("content_block_start", {
        "type": "content_block_start", "index": 0,
        "content_block": {"type": "tool_use", "id": "toolu_cloud1", "name": "Bash", "input": {}}}))
    shown = orjson.loads(start.split(b"data: ", 1)[1])["content_block"]["id"]
    out = relay.feed("message_delta", event("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": "tool_use", "safeguard_results": RESULTS}}))
    delta = orjson.loads(out.split(b"data: ", 1)[1])["delta"]
    assert shown != "toolu_cloud1" and list(delta["safeguard_results"][0]["status"]["tool_uses"]) == [shown]
    assert delta["stop_reason"] == "tool_use"


def test_non_streamed_verdicts_follow_the_wrapped_ids():
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "x", "stop_reason": "tool_use",
           "content": [{"type": "tool_use", "id": "toolu_cloud1", "name": "Bash", "input": {}}],
           "usage": {"input_tokens": 1, "output_tokens": 1}, "safeguard_results": RESULTS}
    out, _ = rewrite_message(msg, model="m", wrap=wrap)
    assert list(out["safeguard_results"][0]["status"]["tool_uses"]) == [out["content"][0]["id"]]
    assert msg["safeguard_results"] is RESULTS and "toolu_cloud1" in RESULTS[0]["status"]["tool_uses"]
