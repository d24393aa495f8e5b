"""Claude Code's title request versus other structured output, and the schema check of answers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from turnroute.gateway.config import load_config
from turnroute.gateway.protocol import StreamConverter
from turnroute.gateway.protocol.schemacheck import SchemaProblem, check_answer, check_schema
from turnroute.router import TurnKind, extract_features
from tests.fixtures import cc_requests as cc

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "turnroute.yaml"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def llm_schema_request(schema: dict = SCHEMA, *, legacy: bool = False) -> dict:
    """What `llm --schema` sends: a bare prompt, no system, no tools, a JSON-schema format."""
    fmt = {"type": "json_schema", "schema": schema}
    body = {"model": "claude-sonnet-4-6", "max_tokens": 8192, "stream": True,
            "messages": [{"role": "user", "content": "Invent a dog"}]}
    body.update({"output_format": fmt} if legacy else {"output_config": {"format": fmt}})
    return body


def turn(body: dict) -> TurnKind:
    return extract_features(body, {}).turn


def test_claude_codes_title_request_is_a_title():
    assert turn(cc.title_request()) is TurnKind.TITLE


@pytest.mark.parametrize("change", ["thinking on", "tools", "other property", "extra property"])
def test_what_only_the_title_request_has(change):
    """Each difference from the title request makes it a structured-output request."""
    body = cc.title_request()
    schema = body["output_config"]["format"]["schema"]
    if change == "thinking on":
        body["thinking"] = {"type": "adaptive"}
    elif change == "tools":
        body["tools"] = cc.main_turn("x")["tools"]
    elif change == "other property":
        schema["properties"] = {"summary": {"type": "string"}}
        schema["required"] = ["summary"]
    else:
        schema["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    assert turn(body) is TurnKind.STRUCTURED


@pytest.mark.parametrize("legacy", [False, True])
def test_llm_schema_requests_are_structured(legacy):
    f = extract_features(llm_schema_request(legacy=legacy), {})
    assert f.turn is TurnKind.STRUCTURED and f.json_schema and not f.has_tools
    # a single string field that is not "title" is still somebody's schema
    assert turn(llm_schema_request({"type": "object", "properties": {"summary": {"type": "string"}}})) \
        is TurnKind.STRUCTURED


def test_shipped_rules_send_structured_output_to_the_schema_backend():
    config = load_config(SHIPPED)
    rules = config.rules
    d = rules.decide(rules.features(llm_schema_request(), {}))
    assert (d.rule, d.backend) == ("structured", "lmstudio")
    assert config.backends["lmstudio"].supports.json_schema and not config.backends["mlx"].supports.json_schema
    d = rules.decide(rules.features(cc.title_request(), {}))
    assert (d.rule, d.backend) == ("side-calls", "mlx")


def _answer(text: str, *, strict: bool, schema: dict = SCHEMA) -> tuple[StreamConverter, str]:
    conv = StreamConverter(model="m", input_tokens=1, mint_id=lambda: "toolu_x", json_schema=copy.deepcopy(schema),
                           strict_schema=strict)
    events = conv.start()
    for piece in (text[: len(text) // 2], text[len(text) // 2:]):
        events += conv.feed({"choices": [{"delta": {"content": piece}}]})
    events += conv.feed({"choices": [{"delta": {}, "finish_reason": "stop"}]})
    events += conv.finish()
    return conv, "".join(e[1]["delta"]["text"] for e in events if e[0] == "content_block_delta")


def test_strict_answer_is_checked_not_coerced():
    prose = "Meet Biscuit, four years old."
    conv, text = _answer(prose, strict=True)
    assert text == "" and conv.schema_problem.startswith("the answer is not JSON")
    assert conv.notes == [f"json_schema: {conv.schema_problem}"]
    # the title path still coerces prose into its one-field shape
    conv, text = _answer(prose, strict=False, schema={"type": "object", "properties": {"title": {"type": "string"}}})
    assert json.loads(text) == {"title": prose} and conv.schema_problem is None
    # matching JSON (fenced, after reasoning) comes back bare
    conv, text = _answer('<think>hm</think>```json\n{"name": "B", "age": 4}\n```', strict=True)
    assert json.loads(text) == {"name": "B", "age": 4} and conv.schema_problem is None


@pytest.mark.parametrize("answer, problem", [
    ('{"name": "B"}', "at $: 'age' is a required property"),
    ('{"name": "B", "age": 4.5}', "at $.age: 4.5 is not of type 'integer'"),
    ("", "the answer is empty"),
    ('{"name": "B", "age": 4', "the answer is not JSON"),
])
def test_check_answer_says_what_is_wrong(answer, problem):
    assert problem in check_answer(answer, SCHEMA)[1]


def test_check_schema_rejects_a_broken_schema():
    check_schema(SCHEMA)
    with pytest.raises(SchemaProblem, match="at properties/age/type"):
        check_schema({"type": "object", "properties": {"age": {"type": "int"}}})
