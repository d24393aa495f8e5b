"""validate_*: a bad body gets a 400 whose message names the exact field."""

from __future__ import annotations

import copy

import pytest

from turnroute.gateway.protocol import (
    InvalidRequest,
    validate_count_tokens_request,
    validate_messages_request,
)

GOOD = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64000,
    "stream": True,
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1;"},
               {"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "Read", "input_schema": {"type": "object"}, "defer_loading": True}],
    "messages": [
        {"role": "system", "content": "agents"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image", "source": {"type": "base64",
                                                                  "media_type": "image/png",
                                                                  "data": "AA"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "redacted_thinking", "data": "x"},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
             "content": [{"type": "text", "text": "nope"}]},
            {"type": "text", "text": "<system-reminder>r</system-reminder>"}]},
    ],
    "metadata": {"user_id": "{\"session_id\": \"abc\"}"},
    "thinking": {"type": "adaptive"},
    "context_management": {"edits": []},
    "output_config": {"effort": "high"},
    "safeguards": {"anything": True},
    "some_future_field": 1,
}


def mutate(path, value, *, delete=False):
    body = copy.deepcopy(GOOD)
    node = body
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body


def test_a_real_claude_code_body_is_accepted():
    validate_messages_request(GOOD)
    validate_count_tokens_request({k: v for k, v in GOOD.items() if k != "max_tokens"})


@pytest.mark.parametrize("body, message", [
    ([], "body: request body must be a JSON object"),
    (mutate(["model"], None, delete=True), "model: field required"),
    (mutate(["model"], ""), "model: must be a non-empty string"),
    (mutate(["max_tokens"], None, delete=True), "max_tokens: field required"),
    (mutate(["max_tokens"], 0), "max_tokens: must be a positive integer"),
    (mutate(["max_tokens"], "100"), "max_tokens: must be a positive integer"),
    (mutate(["max_tokens"], True), "max_tokens: must be a positive integer"),
    (mutate(["messages"], []), "messages: must be a non-empty list"),
    (mutate(["messages"], None, delete=True), "messages: field required"),
    (mutate(["messages", 1, "role"], "tool"),
     "messages.1.role: unknown role 'tool' (expected user, assistant or system)"),
    (mutate(["messages", 1, "content"], None, delete=True), "messages.1.content: field required"),
    (mutate(["messages", 1, "content"], 5),
     "messages.1.content: must be a string or a list of content blocks"),
    (mutate(["messages", 2, "content", 0, "type"], "foo"),
     "messages.2.content.0.type: unknown content block type 'foo'"),
    (mutate(["messages", 1, "content", 0, "text"], None, delete=True),
     "messages.1.content.0.text: field required (string)"),
    (mutate(["messages", 2, "content", 2, "input"], "x"),
     "messages.2.content.2.input: must be an object"),
    (mutate(["messages", 3, "content", 0, "tool_use_id"], 3),
     "messages.3.content.0.tool_use_id: must be a string"),
    (mutate(["messages", 3, "content", 0, "content", 0, "type"], "tool_use"),
     "messages.3.content.0.content.0.type: unknown content block type 'tool_use'"),
    (mutate(["system"], 3), "system: must be a string or a list of text blocks"),
    (mutate(["system", 1, "type"], "image"), "system.1: must be a text block"),
    (mutate(["tools", 0, "name"], None, delete=True), "tools.0.name: field required (string)"),
    (mutate(["tool_choice"], {"type": "sometimes"}),
     "tool_choice: type must be one of auto, any, tool, none"),
    (mutate(["tool_choice"], {"type": "tool"}), "tool_choice.name: field required (string)"),
    (mutate(["temperature"], "hot"), "temperature: must be a number"),
    (mutate(["stop_sequences"], "END"), "stop_sequences: must be a list of strings"),
    (mutate(["stream"], "yes"), "stream: must be a boolean"),
])
def test_invalid_bodies_name_the_field(body, message):
    with pytest.raises(InvalidRequest) as exc:
        validate_messages_request(body)
    assert str(exc.value) == message
    assert isinstance(exc.value, ValueError)
    assert message.startswith(exc.value.field + ":")


@pytest.mark.parametrize("body, message", [
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, None),
    ({"model": "m", "messages": []}, "messages: must be a non-empty list"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "model: field required"),
])
def test_count_tokens_bodies_need_no_max_tokens(body, message):
    if message is None:
        validate_count_tokens_request(body)
        return
    with pytest.raises(InvalidRequest, match=message):
        validate_count_tokens_request(body)


def _deep(levels: int) -> list:
    node: list = []
    for _ in range(levels):
        node = [node]
    return node


@pytest.mark.parametrize("body, message", [
    (mutate(["messages", 1, "role"], ["user"]),
     "messages.1.role: unknown role <list of 1> (expected user, assistant or system)"),
    (mutate(["messages", 1, "content", 0, "type"], {"t": 1}), "messages.1.content.0.type: must be a string"),
    (mutate(["tool_choice"], {"type": ["auto"]}), "tool_choice: type must be one of auto, any, tool, none"),
    (mutate(["system", 0, "type"], ["text"]), "system.0: must be a text block"),
    (mutate(["output_config"], {"format": {"type": "json_schema", "schema": {"required": True}}}),
     "output_config.format.schema: not a valid JSON schema: True is not of type 'array' (at required)"),
    (mutate(["output_config"], {"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"title": {"type": "strin"}}}}}),
     "output_config.format.schema: not a valid JSON schema: 'strin' is not valid under any of the given "
     "schemas (at properties/title/type)"),
    (mutate(["output_format"], {"type": "json_schema", "schema": {"anyOf": []}}),
     "output_format.schema: not a valid JSON schema: [] should be non-empty (at anyOf)"),
])
def test_wrong_types_and_shapes_are_400s_not_crashes(body, message):
    with pytest.raises(InvalidRequest) as exc:
        validate_messages_request(body)
    assert str(exc.value) == message


def test_too_deep_a_tool_input_is_a_400_naming_a_shortened_path():
    with pytest.raises(InvalidRequest) as exc:
        validate_messages_request(mutate(["messages", 2, "content", 2, "input"], {"a": _deep(520)}))
    text = str(exc.value)
    assert text.startswith("messages.2.content.2.input.a.0.0.") and " … " in text
    assert text.endswith(".0.0: nested deeper than 512 levels") and len(text) < 260


def test_a_thousand_levels_deep_is_refused_without_recursion():
    body = mutate(["metadata"], {"x": _deep(1000)})
    with pytest.raises(InvalidRequest, match="nested deeper than 512 levels"):
        validate_count_tokens_request(body)


def test_error_messages_quote_at_most_about_200_characters_of_the_client_value():
    with pytest.raises(InvalidRequest) as exc:
        validate_messages_request(mutate(["messages", 1, "role"], "x" * 1_000_000))
    assert len(str(exc.value)) < 320
    with pytest.raises(InvalidRequest) as exc:
        validate_messages_request(mutate(["messages", 1, "content", 0, "type"], "y" * 50_000))
    assert len(str(exc.value)) < 320


@pytest.mark.parametrize("key, value", [("thinking", "adaptive"), ("metadata", [1]), ("output_config", "weird"),
                                        ("output_config", {"format": "json"})])
def test_optional_objects_of_other_shapes_are_ignored_as_the_router_ignores_them(key, value):
    validate_messages_request(mutate([key], value))


def test_three_hundred_levels_of_tool_input_are_still_served():
    validate_messages_request(mutate(["messages", 2, "content", 2, "input"], {"a": _deep(300)}))


def test_a_schema_nested_too_deep_for_the_schema_checker_is_a_400_not_a_recursion_error():
    schema: dict = {"type": "string"}
    for _ in range(250):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(InvalidRequest, match=r"^output_config\.format\.schema\.properties\.a\..*nested deeper than 64"):
        validate_messages_request(mutate(["output_config"], {"format": {"type": "json_schema", "schema": schema}}))
