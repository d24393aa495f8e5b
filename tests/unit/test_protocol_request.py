"""to_openai: what the local server receives for what Claude Code sends.

The key user-visible property is prefix-cache stability: the rendered prompt of request N must
be an exact prefix of request N+1's as the conversation grows.
"""

from __future__ import annotations

import copy

import orjson
import pytest

from turnroute.gateway.protocol import (
    IMAGE_PLACEHOLDER,
    TranslateOptions,
    parse_billing_header,
    to_openai,
)

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.a3f; cc_entrypoint=cli;"
SYSTEM = [
    {"type": "text", "text": BILLING},
    {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": "Be concise."},
]
TOOLS = [
    {"name": "Read", "description": "Read a file",
     "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                      "required": ["file_path"]}},
    {"name": "TodoRead", "description": "List todos", "input_schema": {"type": "object"}},
    {"name": "WebFetch", "description": "Fetch", "defer_loading": True,
     "cache_control": {"type": "ephemeral"}, "input_schema": {"type": "object", "properties": {}}},
]
OPTS = TranslateOptions(model="local-model", max_output_tokens=8192)
STRIP = TranslateOptions(model="local-model", max_output_tokens=8192, strip_tools=True)
NO_TOOLS = TranslateOptions(model="local-model", max_output_tokens=8192, tools=False)


def body(messages, **extra):
    return {"model": "claude-sonnet-4-5", "max_tokens": 64000, "stream": True,
            "system": SYSTEM, "tools": TOOLS, "messages": messages, **extra}


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def tool_use(id_, name, inp):
    return {"type": "tool_use", "id": id_, "name": name, "input": inp}


def tool_result(id_, content, **kw):
    return {"type": "tool_result", "tool_use_id": id_, "content": content, **kw}


def text(t, **kw):
    return {"type": "text", "text": t, **kw}


# ----------------------------------------------------------------------------- system
@pytest.mark.parametrize("system, expected", [
    (SYSTEM, "You are Claude Code.\n\nBe concise."),
    ("You are Claude Code.", "You are Claude Code."),
    ([text("one"), text("two")], "one\n\ntwo"),
    ([text(BILLING)], None),
    (None, None),
])
def test_system_becomes_one_leading_message_without_billing_header(system, expected):
    out = to_openai({**body([user("hi")]), "system": system}, OPTS)
    first = out["messages"][0]
    if expected is None:
        assert first["role"] == "user"
    else:
        assert first == {"role": "system", "content": expected}
    assert "billing-header" not in orjson.dumps(out).decode()


@pytest.mark.parametrize("system, fields", [
    (SYSTEM, {"cc_version": "2.1.197.a3f", "cc_entrypoint": "cli"}),
    ([text("x-anthropic-billing-header: cc_version=2.1.331.0b1; cc_entrypoint=sdk-cli; "
           "cc_subagent=1;")],
     {"cc_version": "2.1.331.0b1", "cc_entrypoint": "sdk-cli", "cc_subagent": "1"}),
    ([text("plain")], {}),
    ("plain string", {}),
    (None, {}),
])
def test_billing_header_fields_are_parsed(system, fields):
    assert parse_billing_header(system) == fields


# ----------------------------------------------------------------------------- plain text
@pytest.mark.parametrize("as_string, as_blocks", [
    ("hello", [text("hello")]),
    ("a\n\nb", [text("a"), text("b", cache_control={"type": "ephemeral"})]),
    ("<system-reminder>date</system-reminder>\n\nfix it",
     [text("<system-reminder>date</system-reminder>"), text("fix it")]),
])
def test_string_and_text_blocks_render_byte_identically(as_string, as_blocks):
    a = to_openai(body([user(as_string)]), OPTS)
    b = to_openai(body([user(as_blocks)]), OPTS)
    assert orjson.dumps(a) == orjson.dumps(b)
    assert a["messages"][-1] == {"role": "user", "content": as_string}


@pytest.mark.parametrize("messages, expected", [
    ([{"role": "system", "content": "Agents: x"}, user("hi")],
     [("user", "<system-reminder>\nAgents: x\n</system-reminder>\n\nhi")]),
    ([user("hi"), {"role": "system", "content": [text("Skills: y")]}],
     [("user", "hi\n\n<system-reminder>\nSkills: y\n</system-reminder>")]),
    ([{"role": "system", "content": "<system-reminder>env</system-reminder>"}, user("hi")],
     [("user", "<system-reminder>env</system-reminder>\n\nhi")]),
    ([user("one"), user([text("two")]), assistant("a"), assistant([text("b")])],
     [("user", "one\n\ntwo"), ("assistant", "a\n\nb")]),
    ([user("q"), assistant([{"type": "thinking", "thinking": "hmm", "signature": "s"},
                            text("answer")]), user("next")],
     [("user", "q"), ("assistant", "answer"), ("user", "next")]),
    ([user("q"), assistant([{"type": "redacted_thinking", "data": "x"}]), user("again")],
     [("user", "q\n\nagain")]),
])
def test_system_role_is_folded_and_same_role_messages_merged(messages, expected):
    out = to_openai(body(messages), OPTS)["messages"]
    assert out[0]["role"] == "system"
    assert [(m["role"], m["content"]) for m in out[1:]] == expected


# ----------------------------------------------------------------------------- tools in history
def test_tool_use_and_tool_result_become_openai_tool_messages():
    msgs = [
        user("read a and b"),
        assistant([text("Reading."), tool_use("toolu_1", "Read", {"file_path": "/a", "limit": 2}),
                   tool_use("toolu_2", "Read", {"file_path": "/b"})]),
        user([tool_result("toolu_1", "A body"),
              tool_result("toolu_2", [text("no such"), text("file")], is_error=True),
              text("<system-reminder>todo list</system-reminder>")]),
        assistant([tool_use("toolu_3", "TodoRead", {})]),
        user([tool_result("toolu_3", [])]),
    ]
    out = to_openai(body(msgs), OPTS)["messages"][1:]
    assert out == [
        {"role": "user", "content": "read a and b"},
        {"role": "assistant", "content": "Reading.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "Read", "arguments": '{"file_path":"/a","limit":2}'}},
            {"id": "toolu_2", "type": "function",
             "function": {"name": "Read", "arguments": '{"file_path":"/b"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "A body"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no such\n\nfile"},
        {"role": "user", "content": "<system-reminder>todo list</system-reminder>"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_3", "type": "function",
             "function": {"name": "TodoRead", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_3", "content": ""},
    ]


@pytest.mark.parametrize("opts", [STRIP, NO_TOOLS], ids=["strip_tools", "backend_without_tools"])
def test_tool_history_renders_as_deterministic_text_when_tools_are_off(opts):
    msgs = [
        user("read x"),
        assistant([text("Sure."), tool_use("toolu_1", "Read", {"file_path": "/x"})]),
        user([tool_result("toolu_1", "line1"), text("<system-reminder>r</system-reminder>")]),
        assistant([tool_use("toolu_2", "Bash", {"command": "false"})]),
        user([tool_result("toolu_2", [text("exit 1")], is_error=True)]),
    ]
    out = to_openai(body(msgs), opts)
    assert "tools" not in out and "tool_choice" not in out
    assert [(m["role"], m["content"]) for m in out["messages"][1:]] == [
        ("user", "read x"),
        ("assistant", 'Sure.\n\n[tool call Read {"file_path":"/x"}]'),
        ("user", "[tool result]\nline1\n\n<system-reminder>r</system-reminder>"),
        ("assistant", '[tool call Bash {"command":"false"}]'),
        ("user", "[tool error]\nexit 1"),
    ]


# ----------------------------------------------------------------------------- prefix stability
def conversation():
    """Successive request bodies of one session, as Claude Code grows them."""
    turns = [
        [{"role": "system", "content": "Agents: general"},
         user([text("<system-reminder>date</system-reminder>"),
               text("fix the bug", cache_control={"type": "ephemeral"})])],
        [assistant([{"type": "thinking", "thinking": "plan", "signature": "sig"},
                    text("Reading."), tool_use("toolu_1", "Read", {"file_path": "/a.py"})]),
         user([tool_result("toolu_1", [text("def f(): pass")],
                           cache_control={"type": "ephemeral"})])],
        [assistant([tool_use("toolu_2", "Read", {"file_path": "/b.py"}),
                    tool_use("toolu_3", "Grep", {"pattern": "f", "path": "."})]),
         user([tool_result("toolu_2", "B"), tool_result("toolu_3", "no match", is_error=True),
               text("<system-reminder>todos</system-reminder>")])],
        [assistant([text("Fixed it.")]),
         user([text("thanks, now run tests", cache_control={"type": "ephemeral"})])],
    ]
    history, bodies = [], []
    for turn in turns:
        # cache_control moves to the newest block: strip it from earlier messages,
        # and an earlier single [text] block may come back as a bare string.
        history = [_cosmetic_rewrite(m) for m in history] + turn
        bodies.append(body(copy.deepcopy(history)))
    return bodies


def _cosmetic_rewrite(msg):
    content = msg["content"]
    if isinstance(content, list):
        content = [{k: v for k, v in b.items() if k != "cache_control"} for b in content]
        if len(content) == 1 and content[0]["type"] == "text":
            content = content[0]["text"]
    return {**msg, "content": content}


@pytest.mark.parametrize("opts", [OPTS, STRIP], ids=["tools", "strip_tools"])
def test_each_request_is_an_exact_prefix_of_the_next(opts):
    rendered = [to_openai(b, opts) for b in conversation()]
    for prev, nxt in zip(rendered, rendered[1:]):
        n = len(prev["messages"])
        assert orjson.dumps(nxt["messages"][:n]) == orjson.dumps(prev["messages"])
        assert orjson.dumps(nxt.get("tools")) == orjson.dumps(prev.get("tools"))


def test_translation_does_not_mutate_the_client_body():
    for b in conversation():
        before = orjson.dumps(b)
        out = to_openai(b, OPTS)
        out["messages"].append({"role": "user", "content": "x"})
        out["tools"].append({})
        assert orjson.dumps(b) == before
    assert to_openai(conversation()[0], OPTS)["tools"] == to_openai(conversation()[0],
                                                                     OPTS)["tools"]


# ----------------------------------------------------------------------------- images
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}


@pytest.mark.parametrize("images, content", [
    (True, [{"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]),
    (False, f"what is this\n\n{IMAGE_PLACEHOLDER}"),
])
def test_images_become_data_urls_or_a_placeholder(images, content):
    opts = TranslateOptions(model="m", max_output_tokens=None, images=images)
    out = to_openai(body([user([text("what is this"), IMAGE])]), opts)
    assert out["messages"][-1] == {"role": "user", "content": content}


# ----------------------------------------------------------------------------- tools
def test_tools_keep_order_get_properties_and_drop_anthropic_only_fields():
    out = to_openai(body([user("hi")]), OPTS)
    assert out["tools"] == [
        {"type": "function", "function": {"name": "Read", "description": "Read a file",
                                          "parameters": TOOLS[0]["input_schema"]}},
        {"type": "function", "function": {"name": "TodoRead", "description": "List todos",
                                          "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "WebFetch", "description": "Fetch",
                                          "parameters": {"type": "object", "properties": {}}}},
    ]
    assert "tool_choice" not in out and "parallel_tool_calls" not in out


@pytest.mark.parametrize("extra, opts, expect", [
    ({"tools": []}, OPTS, {}),  # title generation
    ({"tool_choice": {"type": "auto"}}, OPTS, {"tool_choice": "auto", "n_tools": 3}),
    ({"tool_choice": {"type": "any"}}, OPTS, {"tool_choice": "required", "n_tools": 3}),
    ({"tool_choice": {"type": "tool", "name": "TodoRead"}}, OPTS,
     {"tool_choice": "required", "n_tools": 1, "only": "TodoRead"}),
    ({"tool_choice": {"type": "none"}}, OPTS, {"tool_choice": "none", "n_tools": 3}),
    ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, OPTS,
     {"tool_choice": "auto", "n_tools": 3, "parallel_tool_calls": False}),
    ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
     TranslateOptions(model="m", max_output_tokens=None, parallel_tool_calls=False),
     {"tool_choice": "auto", "n_tools": 3}),
    ({"tool_choice": {"type": "any"}}, STRIP, {}),
    ({}, NO_TOOLS, {}),
])
def test_tool_choice_and_when_tools_are_sent(extra, opts, expect):
    out = to_openai(body([user("hi")], **extra), opts)
    assert len(out.get("tools", [])) == expect.get("n_tools", 0)
    assert ("tools" in out) is bool(expect.get("n_tools"))
    assert out.get("tool_choice") == expect.get("tool_choice")
    assert out.get("parallel_tool_calls") == expect.get("parallel_tool_calls")
    if "only" in expect:
        assert out["tools"][0]["function"]["name"] == expect["only"]


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("max_tokens, limit, expected", [
    (64000, 8192, 8192), (128000, 4096, 4096), (1, 8192, 1), (32000, None, 32000),
])
def test_max_tokens_is_clamped_to_the_backend_limit(max_tokens, limit, expected):
    opts = TranslateOptions(model="m", max_output_tokens=limit)
    assert to_openai(body([user("hi")], max_tokens=max_tokens), opts)["max_tokens"] == expected


@pytest.mark.parametrize("stream, expected", [
    (True, {"stream": True, "stream_options": {"include_usage": True}}),
    (False, {"stream": False}),
])
def test_stream_asks_for_usage(stream, expected):
    out = to_openai(body([user("hi")]), TranslateOptions(model="m", max_output_tokens=None,
                                                         stream=stream))
    assert {k: out[k] for k in ("stream", "stream_options") if k in out} == expected
    assert out["model"] == "m"


@pytest.mark.parametrize("extra, expected", [
    ({}, {}),
    ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
    ({"stop_sequences": ["END"]}, {"stop": ["END"]}),
    ({"metadata": {"user_id": "u"}, "context_management": {}, "safeguards": {},
      "output_config": {"effort": "high"}}, {}),
])
def test_sampling_parameters_pass_through_and_are_never_invented(extra, expected):
    out = to_openai(body([user("hi")], **extra), OPTS)
    keys = {"temperature", "top_p", "top_k", "stop", "metadata", "context_management",
            "safeguards", "output_config", "response_format", "chat_template_kwargs"}
    assert {k: v for k, v in out.items() if k in keys} == expected


@pytest.mark.parametrize("thinking, backend_thinking, expected", [
    ({"type": "adaptive"}, True, {"enable_thinking": True}),
    ({"type": "enabled", "budget_tokens": 31999}, True, {"enable_thinking": True}),
    ({"type": "disabled"}, True, {"enable_thinking": False}),
    ({"type": "adaptive"}, False, None),
])
def test_thinking_maps_to_chat_template_kwargs(thinking, backend_thinking, expected):
    opts = TranslateOptions(model="m", max_output_tokens=None, thinking=backend_thinking)
    out = to_openai(body([user("hi")], thinking=thinking), opts)
    assert out.get("chat_template_kwargs") == expected


TITLE_FORMAT = {"type": "json_schema", "schema": {
    "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}


@pytest.mark.parametrize("json_schema, expected", [
    (True, {"type": "json_schema",
            "json_schema": {"name": "response", "schema": TITLE_FORMAT["schema"]}}),
    (False, None),
])
def test_title_generation_json_schema(json_schema, expected):
    opts = TranslateOptions(model="m", max_output_tokens=None, json_schema=json_schema)
    out = to_openai(body([user("hi")], tools=[], output_config={"format": TITLE_FORMAT}), opts)
    assert out.get("response_format") == expected and "tools" not in out
