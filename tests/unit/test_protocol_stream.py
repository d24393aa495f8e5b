"""StreamConverter / assemble: what Claude Code sees when a local model answers.

Every event sequence produced here is also pushed through the real anthropic SDK (strict
per-event validation + its own stream accumulation) so a shape the client rejects fails here.
"""

from __future__ import annotations

import itertools
import json

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from turnroute.gateway.protocol import (
    THINKING_SIGNATURE,
    StreamConverter,
    assemble,
    encode_event,
    error_event,
    openai_response_to_chunk,
)

EVENT = TypeAdapter(RawMessageStreamEvent)
TITLE_SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}},
                "required": ["title"], "additionalProperties": False}


# ----------------------------------------------------------------------------- helpers
def minter():
    counter = itertools.count(1)
    return lambda: f"toolu_01test{next(counter):020d}"


def chunk(content=None, *, reasoning=None, reasoning_key="reasoning_content", tool_calls=None,
          finish=None):
    delta = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_key] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def tc(index=None, id=None, name=None, args=None):
    frag = {"function": {}}
    if index is not None:
        frag["index"] = index
    frag["id"] = id
    if name is not None:
        frag["function"]["name"] = name
    if args is not None:
        frag["function"]["arguments"] = args
    return frag


def usage_chunk(prompt, completion, cached=None):
    u = {"prompt_tokens": prompt, "completion_tokens": completion,
         "total_tokens": prompt + completion}
    if cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"object": "chat.completion.chunk", "choices": [], "usage": u}


def convert(chunks, **kw):
    kw.setdefault("model", "claude-sonnet-4-5")
    kw.setdefault("input_tokens", 1234)
    kw.setdefault("mint_id", minter())
    conv = StreamConverter(**kw)
    events = conv.start()
    for c in chunks:
        events += conv.feed(c)
    events += conv.finish()
    return conv, events


def check_order(events):
    """message_start, (block start, deltas, stop)*, message_delta, message_stop; no overlap."""
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_idx, next_idx = None, 0
    for name, data in events[1:-2]:
        assert data["type"] == name
        if name == "content_block_start":
            assert open_idx is None and data["index"] == next_idx
            open_idx, next_idx = data["index"], next_idx + 1
        else:
            assert name in ("content_block_delta", "content_block_stop")
            assert data["index"] == open_idx
            if name == "content_block_stop":
                open_idx = None
    assert open_idx is None


def sdk_message(events) -> Message:
    """Validate each event strictly, re-parse from SSE bytes, accumulate with the SDK."""
    wire = b"".join(encode_event(n, d) for n, d in events)
    parsed = []
    for raw in wire.split(b"\n\n")[:-1]:
        ev_line, data_line = raw.split(b"\n")
        assert ev_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == ev_line[7:].decode()
        parsed.append(EVENT.validate_python(data))
    snapshot, bufs = None, {}
    for ev in parsed:
        snapshot = accumulate_event(event=ev, current_snapshot=snapshot, json_bufs=bufs)
    return Message.model_validate(snapshot.model_dump())


def run(chunks, **kw):
    conv, events = convert(chunks, **kw)
    check_order(events)
    msg = sdk_message(events)
    assembled = Message.model_validate(assemble(events))
    assert assembled.model_dump() == msg.model_dump()  # stream and non-stream agree
    for _, data in events:  # never an empty text block
        if data["type"] == "content_block_delta" and data["delta"]["type"] == "text_delta":
            assert data["delta"]["text"]
    assert all(b.text for b in msg.content if b.type == "text")
    return conv, events, msg


def blocks(msg):
    return [(b.type, b.text if b.type == "text" else b.input if b.type == "tool_use"
             else b.thinking) for b in msg.content]


# ----------------------------------------------------------------------------- text
@pytest.mark.parametrize("deltas, expected", [
    (["Hel", "lo", " world"], [("text", "Hello world")]),
    (["", "Hi", "", "!"], [("text", "Hi!")]),
    (["", ""], []),
    ([], []),
])
def test_text_deltas_make_one_text_block_and_never_an_empty_one(deltas, expected):
    conv, _, msg = run([chunk(d) for d in deltas] + [chunk(finish="stop")])
    assert blocks(msg) == expected
    assert msg.stop_reason == "end_turn"
    assert conv.got_content is bool(expected)


def test_message_start_echoes_model_and_carries_the_estimate():
    _, events, msg = run([chunk("x")], model="my-model-string", input_tokens=4321)
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["model"] == "my-model-string"
    assert start["usage"] == {"input_tokens": 4321, "output_tokens": 0}
    assert msg.usage.input_tokens == 4321  # unknown prompt tokens: the estimate survives


# ----------------------------------------------------------------------------- tool calls
INTERLEAVED = {
    "by_index": [
        chunk(tool_calls=[tc(0, "call_a", "Read", '{"file_')]),
        chunk(tool_calls=[tc(1, "call_b", "Grep", '{"pattern": "TO')]),
        chunk(tool_calls=[tc(0, None, None, 'path": "/src/a.py"')]),
        chunk(tool_calls=[tc(1, None, None, 'DO", "path": "src"}')]),
        chunk(tool_calls=[tc(0, None, None, "}")]),
    ],
    "both_in_one_chunk": [
        chunk(tool_calls=[tc(0, "call_a", "Read", '{"file_'), tc(1, "call_b", "Grep", "{")]),
        chunk(tool_calls=[tc(1, None, None, '"pattern": "TODO", '), tc(0, None, None, 'path"')]),
        chunk(tool_calls=[tc(0, None, None, ': "/src/a.py"}'),
                          tc(1, None, None, '"path": "src"}')]),
    ],
    "no_index_keyed_by_id": [
        chunk(tool_calls=[tc(None, "call_a", "Read", '{"file_')]),
        chunk(tool_calls=[tc(None, "call_b", "Grep", '{"pattern": "TODO", ')]),
        chunk(tool_calls=[tc(None, "call_a", None, 'path": "/src/a.py"}')]),
        chunk(tool_calls=[tc(None, "call_b", None, '"path": "src"}')]),
    ],
    "no_index_no_id_later_by_order": [
        chunk(tool_calls=[tc(None, "call_a", "Read", '{"file_path": ')]),
        chunk(tool_calls=[tc(None, None, None, '"/src/a.py"}')]),
        chunk(tool_calls=[tc(None, "call_b", "Grep", '{"pattern": "TODO", ')]),
        chunk(tool_calls=[tc(None, None, None, '"path": "src"}')]),
    ],
}


@pytest.mark.parametrize("chunks", INTERLEAVED.values(), ids=INTERLEAVED.keys())
def test_two_tool_calls_each_get_their_own_input(chunks):
    conv, _, msg = run(chunks + [chunk(finish="tool_calls"), usage_chunk(900, 40)])
    assert blocks(msg) == [("tool_use", {"file_path": "/src/a.py"}),
                           ("tool_use", {"pattern": "TODO", "path": "src"})]
    assert [b.name for b in msg.content] == ["Read", "Grep"]
    assert msg.stop_reason == "tool_use" and conv.tool_calls_emitted == 2


def test_tool_use_ids_are_minted_by_the_gateway_not_passed_through():
    _, _, msg = run([chunk(tool_calls=[tc(0, "call_upstream_1", "Read", "{}")]),
                     chunk(tool_calls=[tc(1, "call_upstream_2", "Ls", "{}")])],
                    mint_id=minter())
    assert [b.id for b in msg.content] == [f"toolu_01test{i:020d}" for i in (1, 2)]


def test_server_reusing_index_zero_with_new_ids_gives_separate_calls():
    _, _, msg = run([chunk(tool_calls=[tc(0, "call_a", "Read", '{"file_path": "a"}')]),
                     chunk(tool_calls=[tc(0, "call_b", "Read", '{"file_path": "b"}')])])
    assert blocks(msg) == [("tool_use", {"file_path": "a"}), ("tool_use", {"file_path": "b"})]


def test_text_block_is_closed_before_tool_use_and_first_json_delta_is_whole():
    _, events, msg = run([chunk("Let me read it."),
                          chunk(tool_calls=[tc(0, "c", "Read", '{"file_path":"/x","limit":5}')]),
                          chunk(finish="tool_calls")])
    assert blocks(msg) == [("text", "Let me read it."),
                           ("tool_use", {"file_path": "/x", "limit": 5})]
    deltas = [d["delta"]["partial_json"] for n, d in events
              if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert deltas == ['{"file_path":"/x","limit":5}']  # key order kept


@pytest.mark.parametrize("args, expected_input, note_fragment", [
    ('{"file_path": "/src/ma', {"file_path": "/src/ma"}, "repaired truncated arguments"),
    ('{"command": "ls", "timeout":', {"command": "ls"}, "repaired truncated arguments"),
    ("this is not json", {}, "invalid tool arguments"),
    ('["a", "b"]', {}, "invalid tool arguments"),
])
def test_bad_tool_arguments_never_fail_and_the_user_sees_a_note(args, expected_input,
                                                                 note_fragment):
    conv, _, msg = run([chunk(tool_calls=[tc(0, "c", "Bash", args)]), chunk(finish="length")])
    (t_type, note), (u_type, tool_input) = blocks(msg)
    assert t_type == "text" and note_fragment in note and "Bash" in note
    assert u_type == "tool_use" and tool_input == expected_input
    assert msg.stop_reason == "tool_use"
    assert conv.notes and note_fragment in conv.notes[0]


def test_empty_arguments_mean_empty_input_without_a_note():
    _, _, msg = run([chunk(tool_calls=[tc(0, "c", "TodoRead", "")]), chunk(finish="tool_calls")])
    assert blocks(msg) == [("tool_use", {})]


def test_nameless_tool_call_becomes_a_visible_note_not_a_tool_use():
    _, _, msg = run([chunk(tool_calls=[tc(0, "c", None, '{"a": 1}')]), chunk(finish="stop")])
    assert [b.type for b in msg.content] == ["text"] and "without a name" in msg.content[0].text
    assert msg.stop_reason == "end_turn"


# ----------------------------------------------------------------------------- stop reasons
@pytest.mark.parametrize("chunks, stop_reason", [
    ([chunk(tool_calls=[tc(0, "c", "Read", "{}")]), chunk(finish="stop")], "tool_use"),
    ([chunk(tool_calls=[tc(0, "c", "Read", "{}")]), chunk(finish="length")], "tool_use"),
    ([chunk(tool_calls=[tc(0, "c", "Read", "{}")])], "tool_use"),
    ([chunk("partial answer"), chunk(finish="length")], "max_tokens"),
    ([chunk("done"), chunk(finish="stop")], "end_turn"),
    ([chunk("no finish reason at all")], "end_turn"),
    ([chunk("said tool_calls but sent none"), chunk(finish="tool_calls")], "end_turn"),
    ([chunk(finish="content_filter")], "refusal"),
])
def test_stop_reason(chunks, stop_reason):
    conv, _, msg = run(chunks)
    assert msg.stop_reason == stop_reason == conv.stop_reason
    assert msg.stop_sequence is None


# ----------------------------------------------------------------------------- usage
@pytest.mark.parametrize("tail, expected", [
    ([usage_chunk(5000, 42, cached=4800)],
     {"input_tokens": 200, "output_tokens": 42, "cache_read_input_tokens": 4800}),
    ([usage_chunk(5000, 42, cached=0)],
     {"input_tokens": 5000, "output_tokens": 42, "cache_read_input_tokens": 0}),
    ([usage_chunk(5000, 42)], {"input_tokens": 5000, "output_tokens": 42}),
    ([], {"output_tokens": 3}),  # unknown: estimate from the 3 deltas, no fake cache zeros
])
def test_usage_reaches_message_delta(tail, expected):
    conv, events, msg = run([chunk("a"), chunk("b"), chunk("c"), chunk(finish="stop")] + tail)
    assert events[-2][1]["usage"] == expected
    assert msg.usage.output_tokens == expected["output_tokens"]
    assert msg.usage.cache_read_input_tokens == expected.get("cache_read_input_tokens")
    assert conv.usage["cached_tokens"] == expected.get("cache_read_input_tokens")


def test_usage_attribute_stays_none_when_unknown():
    conv, _, _ = run([chunk("hi")])
    assert conv.usage == {"prompt_tokens": None, "cached_tokens": None, "completion_tokens": None}


# ----------------------------------------------------------------------------- thinking
@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_signed_thinking_block(key):
    _, events, msg = run([chunk(reasoning="Let me ", reasoning_key=key),
                          chunk(reasoning="think.", reasoning_key=key),
                          chunk("Answer."), chunk(finish="stop")], thinking=True)
    assert blocks(msg) == [("thinking", "Let me think."), ("text", "Answer.")]
    assert msg.content[0].signature == THINKING_SIGNATURE
    names = [(n, d.get("delta", {}).get("type")) for n, d in events]
    sig = names.index(("content_block_delta", "signature_delta"))
    assert names[sig + 1] == ("content_block_stop", None)


def test_reasoning_is_dropped_when_thinking_is_off():
    _, _, msg = run([chunk(reasoning="hidden"), chunk("Answer.")], thinking=False)
    assert blocks(msg) == [("text", "Answer.")]


# ----------------------------------------------------------------------------- json_schema
@pytest.mark.parametrize("deltas, title", [
    (['{"title": "Fix ', 'login bug"}'], "Fix login bug"),
    (['```json\n{"title": "Add tests"}\n```'], "Add tests"),
    (['Sure! Here it is: {"title": "Refactor parser"} hope it helps'], "Refactor parser"),
    (["<think>hmm</think>", "Title: Speed up the cache\nextra words"], "Speed up the cache"),
    (['"Update README"'], "Update README"),
    (["   "], "Untitled session"),
    ([], "Untitled session"),
    (["word " * 40], None),
])
def test_title_generation_always_yields_the_json_the_client_expects(deltas, title):
    _, _, msg = run([chunk(d) for d in deltas] + [chunk(finish="stop")],
                    json_schema=TITLE_SCHEMA)
    assert [b.type for b in msg.content] == ["text"]
    parsed = json.loads(msg.content[0].text)
    assert isinstance(parsed, dict) and isinstance(parsed["title"], str) and parsed["title"]
    if title is not None:
        assert parsed["title"] == title
    assert len(parsed["title"]) <= 80


# ----------------------------------------------------------------------------- lifecycle
def test_finish_is_idempotent_and_feed_after_finish_is_ignored():
    conv = StreamConverter(model="m", input_tokens=1, mint_id=minter())
    conv.start()
    conv.feed(chunk("hi"))
    assert [n for n, _ in conv.finish()][-1] == "message_stop"
    assert conv.finish() == [] and conv.feed(chunk("late")) == []


def test_got_content_turns_true_with_the_first_block_only():
    conv = StreamConverter(model="m", input_tokens=1, mint_id=minter())
    conv.start()
    flags = []
    for c in [chunk(""), chunk("a"), chunk("b")]:
        conv.feed(c)
        flags.append(conv.got_content)
    assert flags == [False, True, True]


@pytest.mark.parametrize("envelope", [
    {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
    {"type": "overloaded_error", "message": "busy"},
])
def test_error_event(envelope):
    assert error_event(envelope) == (
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})


# ----------------------------------------------------------------------------- non-streaming
@pytest.mark.parametrize("resp, expected, stop", [
    ({"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Hello"}}],
      "usage": {"prompt_tokens": 10, "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 8}}},
     [("text", "Hello")], "end_turn"),
    ({"id": "x", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "reasoning": "hmm",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "Read", "arguments": '{"file_path": "a"}'}},
                       {"id": "call_2", "type": "function",
                        "function": {"name": "Grep", "arguments": '{"pattern": "x"'}}]}}]},
     [("thinking", "hmm"), ("tool_use", {"file_path": "a"}), ("text", None),
      ("tool_use", {"pattern": "x"})], "tool_use"),
    ({"id": "x", "choices": [{"index": 0, "finish_reason": "length",
                              "message": {"role": "assistant", "content": "cut"}}]},
     [("text", "cut")], "max_tokens"),
])
def test_non_streaming_response_goes_through_the_same_path(resp, expected, stop):
    _, _, msg = run(openai_response_to_chunk(resp), thinking=True)
    got = blocks(msg)
    assert [t for t, _ in got] == [t for t, _ in expected]
    for (_, g), (_, e) in zip(got, expected):
        if e is not None:
            assert g == e
    assert msg.stop_reason == stop
    if resp.get("usage"):
        assert msg.usage.cache_read_input_tokens == 8 and msg.usage.input_tokens == 2


def test_assembled_message_is_a_valid_anthropic_message():
    _, events = convert([chunk("hi"), chunk(tool_calls=[tc(0, "c", "Read", "{}")]),
                         usage_chunk(10, 3, cached=4)])
    body = assemble(events)
    msg = Message.model_validate(body)
    assert msg.stop_reason == "tool_use" and msg.usage.input_tokens == 6
    assert orjson.loads(orjson.dumps(body)) == body  # plain JSON-serialisable dict


@pytest.mark.parametrize("clamped, expected", [(True, "end_turn"), (False, "max_tokens")])
def test_reply_cut_at_the_gateways_clamp_is_not_a_client_error(clamped, expected):
    """Claude Code fails the turn on max_tokens; a cut at the gateway's own clamp is shown instead."""
    conv = StreamConverter(model="m", input_tokens=5, mint_id=lambda: "toolu_x", clamped=clamped)
    events = conv.start() + conv.feed({"choices": [{"index": 0, "delta": {"content": "partial"}}]})
    events += conv.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}) + conv.finish()
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == expected
    assert conv.truncated is True


@pytest.mark.parametrize("choice_extra, expected", [
    ({"stop_reason": "END"}, ("stop_sequence", "END")),       # vLLM names the matched stop string
    ({"matched_stop": "###"}, ("stop_sequence", "###")),      # SGLang
    ({"stop_reason": None}, ("end_turn", None)),              # EOS: not a stop sequence
    ({"stop_reason": "other"}, ("end_turn", None)),           # not one the client asked for
])
def test_matched_stop_sequence_is_reported(choice_extra, expected):
    conv = StreamConverter(model="m", input_tokens=5, mint_id=lambda: "toolu_x", stop_sequences=("END", "###"))
    events = conv.start() + conv.feed({"choices": [{"index": 0, "delta": {"content": "abc"}}]})
    events += conv.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", **choice_extra}]})
    events += conv.finish()
    delta = next(d for n, d in events if n == "message_delta")["delta"]
    assert (delta["stop_reason"], delta["stop_sequence"]) == expected
    message = assemble(events)
    Message.model_validate(message)
    assert (message["stop_reason"], message["stop_sequence"]) == expected
