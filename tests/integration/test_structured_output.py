"""Structured output that is not Claude Code's title, through the gateway with the anthropic SDK.

The request shape is what `llm --schema` and the SDKs send: no system, no tools, thinking not
set, `output_config.format` with the caller's schema. It must reach a backend that enforces
schemas (LM Studio through LiteLLM, here the scripted fake), and when only MLX can answer, an
answer that does not match the schema is an error — never prose returned as if it were JSON.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
PROMPT = "Invent a plausible dog: its name and its age."


def schema_request(client: anthropic.Anthropic, *, stream: bool, schema: dict = SCHEMA) -> str:
    """The `llm --schema` shape; returns the text of the answer."""
    args = dict(model="claude-sonnet-4-6", max_tokens=4000, messages=[{"role": "user", "content": PROMPT}],
                extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}})
    if stream:
        with client.messages.stream(**args) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**args)
    assert [b.type for b in msg.content] == ["text"]
    return msg.content[0].text


@pytest.fixture(scope="module")
def mlx():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def lms():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean(mlx, lms):
    mlx.clear()
    lms.clear()


def _gateway(tmp, mlx_url: str, lms_url: str) -> Gateway:
    cfg = gateway_config({"mlx": openai_backend(mlx_url, tools=False),
                          "lmstudio": openai_backend(lms_url, type="litellm", model="lm_studio/fake-model",
                                                     json_schema=True)},
                         log_path=tmp / "requests.jsonl")
    return Gateway(cfg, tmp)


@pytest.fixture(scope="module")
def gw(mlx, lms, tmp_path_factory):
    with _gateway(tmp_path_factory.mktemp("gw"), mlx.url, lms.url) as g:
        yield g


@pytest.fixture(scope="module")
def gw_no_lms(mlx, tmp_path_factory):
    """LM Studio down (nothing listens on port 9): only MLX, which cannot enforce schemas, answers."""
    with _gateway(tmp_path_factory.mktemp("gw-mlx-only"), mlx.url, "http://127.0.0.1:9/v1") as g:
        yield g


def client_for(g: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=g.base, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_schema_request_goes_to_the_backend_that_enforces_schemas(gw, mlx, lms, stream):
    lms.script(Reply(text='{"name": "Biscuit", "age": 4}', chunks=4))
    text = schema_request(client_for(gw), stream=stream)
    assert json.loads(text) == {"name": "Biscuit", "age": 4}
    assert not mlx.requests and len(lms.requests) == 1
    # the schema itself reached LM Studio, which constrains its decoding with it
    fmt = lms.last.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == SCHEMA
    rec = gw.wait_records(1)[-1]
    assert (rec["turn"], rec["rule"], rec["route"], rec["status"]) == ("structured", "structured", "lmstudio", 200)


def test_title_request_still_goes_to_mlx(gw, mlx, lms):
    """Claude Code's title request (a {"title"} schema, tools [], thinking disabled) is not
    mistaken for structured output: it stays a cheap MLX side call."""
    mlx.script(Reply(text="Inventing dogs"))
    msg = client_for(gw).messages.create(
        model="claude-sonnet-4-6", max_tokens=4000, tools=[], messages=[{"role": "user", "content": PROMPT}],
        extra_body={"thinking": {"type": "disabled"}, "output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}}})
    assert json.loads(msg.content[0].text) == {"title": "Inventing dogs"}
    assert len(mlx.requests) == 1 and not lms.requests
    assert gw.wait_records(1)[-1]["turn"] == "title"


@pytest.mark.parametrize("stream", [False, True])
def test_prose_from_a_backend_without_schemas_is_an_error_not_json(gw_no_lms, mlx, stream):
    mlx.script(Reply(text="Sure! Meet Biscuit, a cheerful four-year-old beagle."))
    with pytest.raises(anthropic.APIStatusError) as err:
        schema_request(client_for(gw_no_lms), stream=stream)
    message = err.value.body["error"]["message"] if isinstance(err.value.body, dict) else str(err.value)
    assert "the answer is not JSON" in message and "Sure! Meet Biscuit" in message
    assert "supports.json_schema: false" in message           # says what to change
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert len(mlx.requests) == 1 and "response_format" not in mlx.last.body
    rec = gw_no_lms.wait_records(1)[-1]
    assert rec["route"] == "mlx" and rec["fallbacks"] == ["lmstudio"] and rec["status"] == 400
    assert rec["notes"] and rec["notes"][0].startswith("json_schema: the answer is not JSON")


def test_wrong_shape_names_the_field_and_matching_json_passes(gw_no_lms, mlx):
    client = client_for(gw_no_lms)
    mlx.script(Reply(text='{"name": "Biscuit", "age": "four"}'))
    with pytest.raises(anthropic.BadRequestError) as err:
        schema_request(client, stream=False)
    assert "$.age: 'four' is not of type 'integer'" in err.value.message
    # a matching answer in a code fence comes back as the bare JSON
    mlx.script(Reply(text='```json\n{"name": "Biscuit", "age": 4}\n```'))
    assert json.loads(schema_request(client, stream=True)) == {"name": "Biscuit", "age": 4}


def test_invalid_schema_is_a_400_before_any_backend_call(gw, mlx, lms):
    r = httpx.post(gw.base + "/v1/messages", json={
        "model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": PROMPT}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "objekt"}}}})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "not a valid JSON schema" in r.json()["error"]["message"]
    assert not mlx.requests and not lms.requests
