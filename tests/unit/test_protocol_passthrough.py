"""The native relay: the request edits a Messages-API backend gets, and what the SSE relay touches."""

from __future__ import annotations

import orjson
import pytest

from turnroute.gateway.protocol.passthrough import (
    PassThrough,
    SSEEventSplitter,
    drop_path,
    event_data,
    native_request,
    rewrite_message,
    usage_counts,
)
from turnroute.router.ids import origin_of, unwrap_tool_id, wrap_tool_id
from tests.fixtures import cc_requests as cc

unwrap = unwrap_tool_id


def wrap(original: str) -> str:
    return wrap_tool_id("lms", original)


def ev(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n".encode()


def test_native_request_changes_only_what_it_declares():
    body = cc.main_turn("fix the bug")
    before = orjson.dumps(body)
    out = native_request(body, model="qwen3", drop=["context_management", "output_config.effort", "absent.path"],
                         unwrap=unwrap, max_tokens=4096)
    assert orjson.dumps(body) == before                       # the client's dict is not mutated
    assert out["model"] == "qwen3" and out["max_tokens"] == 4096
    assert not out["system"][0]["text"].startswith("x-anthropic-billing-header")
    assert out["system"] == body["system"][1:]
    assert "context_management" not in out and "effort" not in out.get("output_config", {})
    assert list(out) == [k for k in body if k != "context_management"]      # key order kept
    assert out["messages"] is body["messages"] and out["tools"] is body["tools"]   # nothing copied needlessly


def test_native_request_restores_wrapped_ids_in_tool_use_and_tool_result():
    body = cc.tool_result_turn(origin="lmstudio")
    own = body["messages"][-2]["content"][-1]["id"]           # an id the gateway minted: kept
    body["messages"].append({"role": "assistant", "content": [
        {"type": "tool_use", "id": wrap("call:7"), "name": "Read", "input": {}}]})
    body["messages"].append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": wrap("call:7"), "content": "x"}]})
    out = native_request(body, model="m", unwrap=unwrap)
    assert out["messages"][-2]["content"][0]["id"] == "call:7"
    assert out["messages"][-1]["content"][0]["tool_use_id"] == "call:7"
    assert out["messages"][-4]["content"][-1]["id"] == own
    assert body["messages"][-1]["content"][0]["tool_use_id"] == wrap("call:7")


def test_strip_tools_natively_is_tool_choice_none_with_the_tools_kept():
    body = cc.main_turn("explain it")
    out = native_request(body, model="m", unwrap=unwrap, no_tool_calls=True)
    assert out["tools"] == body["tools"] and out["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in native_request(cc.title_request(), model="m", unwrap=unwrap, no_tool_calls=True)


def test_drop_path_is_copy_on_write():
    doc = {"a": {"b": 1, "c": 2}, "d": 3}
    assert drop_path(doc, "a.b") == {"a": {"c": 2}, "d": 3} and doc == {"a": {"b": 1, "c": 2}, "d": 3}
    assert drop_path(doc, "x.y") is doc and drop_path(doc, "d.e") is doc


@pytest.mark.parametrize("original", ["toolu_01A09q90qw90lq917835lq9", "call_abc", "call:1 x", "ümlaut"])
def test_wrapped_ids_carry_the_backend_and_the_original(original):
    w = wrap(original)
    assert w.startswith("toolu_") and unwrap(w) == original and origin_of(w, ("lms", "mlx")) == "lms"
    assert all(c.isalnum() or c in "_-" for c in w)           # a valid Messages API tool id


def test_unwrap_ignores_ids_it_did_not_make():
    assert unwrap("toolu_01A09q90qw90lq917835lq9") is None and unwrap("toolu_wAAAAxzz") is None
    assert unwrap(None) is None


def test_splitter_handles_split_events_crlf_comments_and_a_last_event_without_blank_line():
    raw = ev("message_start", {"type": "message_start"}) + b": keepalive\n\n" + \
        ev("content_block_delta", {"type": "content_block_delta"}).replace(b"\n", b"\r\n") + \
        b'data: {"type":"ping"}\n\n' + b": c\nid: 7\nevent: content_block_stop\ndata: {}\n\n" + \
        b"event: message_stop\ndata: {}"
    s = SSEEventSplitter()
    got = []
    for i in range(len(raw)):                                  # one byte at a time
        got += s.feed(raw[i:i + 1])
    got += s.flush()
    assert [n for n, _ in got] == ["message_start", "content_block_delta", "ping", "content_block_stop",
                                "message_stop"]
    assert event_data(got[1][1]) == {"type": "content_block_delta"}


def test_splitter_bounds_an_event_that_never_ends():
    s = SSEEventSplitter(max_event=100)
    with pytest.raises(ValueError):
        s.feed(b"data: " + b"x" * 200)


def test_relay_passes_deltas_untouched_and_edits_model_tool_ids_and_a_clamped_stop():
    relay = PassThrough(model="claude-sonnet-4-5", wrap=wrap, clamped=True)
    start = ev("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "model": "qwen3", "content": [],
        "usage": {"input_tokens": 5, "cache_read_input_tokens": 95, "output_tokens": 1}}})
    delta = ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": "hi"}})
    tool = ev("content_block_start", {"type": "content_block_start", "index": 1,
                                      "content_block": {"type": "tool_use", "id": "call_9", "name": "Read", "input": {}}})
    text_start = ev("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})
    stop = ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                                "usage": {"output_tokens": 12}})
    out_start = event_data(relay.feed("message_start", start))
    assert out_start["message"]["model"] == "claude-sonnet-4-5" and out_start["message"]["id"] == "msg_1"
    assert not relay.got_content
    assert relay.feed("content_block_start", text_start) is text_start
    assert relay.feed("content_block_delta", delta) is delta and relay.got_content
    assert unwrap(event_data(relay.feed("content_block_start", tool))["content_block"]["id"]) == "call_9"
    assert event_data(relay.feed("message_delta", stop))["delta"]["stop_reason"] == "end_turn"
    assert relay.feed("message_stop", b"event: message_stop\ndata: {}\n\n") and relay.finished
    assert relay.truncated and relay.stop_reason == "max_tokens" and relay.notes
    assert relay.usage == {"prompt_tokens": 100, "cached_tokens": 95, "completion_tokens": 12}


def test_relay_keeps_a_real_max_tokens_when_the_client_asked_for_that_limit():
    relay = PassThrough(model="m", wrap=wrap, clamped=False)
    stop = ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}})
    assert relay.feed("message_delta", stop) is stop and relay.truncated


def test_non_streaming_answer_gets_the_same_edits():
    msg = {"id": "m", "model": "qwen3", "content": [{"type": "text", "text": "x"},
                                                    {"type": "tool_use", "id": "c1", "name": "Read", "input": {}}],
           "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}}
    out, seen = rewrite_message(msg, model="claude", wrap=wrap)
    assert out["model"] == "claude" and unwrap(out["content"][1]["id"]) == "c1" and msg["content"][1]["id"] == "c1"
    assert seen.usage == {"prompt_tokens": 3, "completion_tokens": 4} and seen.stop_reason == "tool_use"


def test_usage_counts_unknown_stays_unknown():
    assert usage_counts(None) == {} and usage_counts({"output_tokens": 2}) == {"completion_tokens": 2}


def test_each_server_gets_back_its_own_ids_and_no_thinking_signed_by_the_gateway():
    from turnroute.gateway.native import own_ids
    from turnroute.gateway.protocol import THINKING_SIGNATURE
    body = cc.main_turn("fix it")
    body["messages"] += [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "local reasoning", "signature": THINKING_SIGNATURE},
            {"type": "thinking", "thinking": "cloud reasoning", "signature": "EqQBCkYIBxgCKkA"},
            {"type": "tool_use", "id": wrap_tool_id("lms", "call:1"), "name": "Read", "input": {}},
            {"type": "tool_use", "id": wrap_tool_id("cloud", "toolu_01abc"), "name": "Read", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": wrap_tool_id("lms", "call:1"), "content": "a"},
            {"type": "tool_result", "tool_use_id": wrap_tool_id("cloud", "toolu_01abc"), "content": "b"}]}]
    to_cloud = native_request(body, model="m", unwrap=own_ids("cloud"))["messages"]
    assert [b.get("id") or b.get("signature") for b in to_cloud[-2]["content"]] == [
        "EqQBCkYIBxgCKkA", wrap_tool_id("lms", "call:1"), "toolu_01abc"]
    assert [b["tool_use_id"] for b in to_cloud[-1]["content"]] == [wrap_tool_id("lms", "call:1"), "toolu_01abc"]
    to_lms = native_request(body, model="m", unwrap=own_ids("lms"))["messages"]
    assert [b["tool_use_id"] for b in to_lms[-1]["content"]] == ["call:1", wrap_tool_id("cloud", "toolu_01abc")]
