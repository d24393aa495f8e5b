"""Context windows through the gateway, with the anthropic SDK as the strict client.

MLX's window is configured (mlx_lm.server does not report one); LM Studio's is read from its
`GET /api/v0/models` (the scripted fake plays it). A prompt too long for the decided backend goes
to the next one that holds it; one too long for all gets Anthropic's "prompt is too long" 400.
"""

from __future__ import annotations

import re

import anthropic
import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

MLX_WINDOW = 2000          # configured; max_output_tokens 64 → 1936 tokens for the prompt
LMS_WINDOW = 50000         # reported by the LM Studio fake; → 49936 for the prompt
LMS_MODEL = {"id": "fake-model", "object": "model", "type": "llm", "state": "loaded",
             "max_context_length": 131072, "loaded_context_length": LMS_WINDOW}
TOO_LONG = re.compile(r"^prompt is too long: (\d+) tokens > (\d+) maximum$")


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAI(default="from mlx") as mlx, FakeOpenAI(default="from lmstudio") as lms:
        lms.lmstudio_models = [LMS_MODEL]
        yield mlx, lms


@pytest.fixture(scope="module")
def gw(fakes, tmp_path_factory):
    mlx, lms = fakes
    tmp = tmp_path_factory.mktemp("gw")
    cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False, context_window=MLX_WINDOW),
                          "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model")},
                         log_path=tmp / "requests.jsonl")
    with Gateway(cfg, tmp) as g:
        health = httpx.get(g.base + "/health").json()      # (re)reads the reported windows
        assert health["backends"]["lmstudio"]["context_window"] == LMS_WINDOW
        yield g


@pytest.fixture(autouse=True)
def _clean(fakes):
    for f in fakes:
        f.clear()


def ask(gw: Gateway, text: str, *, stream: bool = False, **kw) -> str:
    client = anthropic.Anthropic(base_url=gw.base, api_key="sk-test", max_retries=0)
    args = dict(model="claude-sonnet-4-6", max_tokens=20000, messages=[{"role": "user", "content": text}], **kw)
    if stream:
        with client.messages.stream(**args) as s:
            return s.get_final_message().content[0].text
    return client.messages.create(**args).content[0].text


def filler(tokens: int) -> str:
    return " lorem" * tokens          # one cl100k token per word


def test_a_prompt_that_fits_goes_where_the_rules_say(gw):
    assert ask(gw, "what is a linker?" + filler(1500)) == "from mlx"
    rec = gw.wait_records(1)[-1]
    assert rec["route"] == "mlx" and not rec["fallbacks"] and not rec.get("notes")


def test_too_long_for_mlx_goes_to_the_next_backend_that_holds_it(gw, fakes):
    mlx, _ = fakes
    assert ask(gw, "what is a linker?" + filler(3000)) == "from lmstudio"
    assert not mlx.requests
    rec = gw.wait_records(1)[-1]
    assert rec["rule"] == "from-context" and rec["route"] == "lmstudio" and rec["fallbacks"] == ["mlx"]
    assert re.search(r"fell back to lmstudio after mlx \(prompt is too long: \d+ tokens > 1936 maximum\)",
                     rec["reason"]), rec["reason"]
    assert rec["notes"] == [f"context_window: mlx holds {MLX_WINDOW} tokens, 1936 of them for the prompt; "
                            f"this one is ~{rec['est_tokens']}"]


def test_tools_that_are_stripped_do_not_count_against_the_window(gw):
    """A question with a large tool list still fits MLX: its tools are not sent there."""
    tools = [{"name": f"Tool{i}", "description": filler(100),
              "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}} for i in range(15)]
    assert ask(gw, "what is a linker?" + filler(1000), tools=tools) == "from mlx"
    rec = gw.wait_records(1)[-1]
    assert rec["est_tokens"] > MLX_WINDOW and rec["route"] == "mlx" and rec["tools_stripped"]


@pytest.mark.parametrize("stream", [False, True])
def test_too_long_for_every_backend_is_the_400_claude_code_compacts_on(gw, fakes, stream):
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(gw, "what is a linker?" + filler(52000), stream=stream)
    assert err.value.body["error"]["type"] == "invalid_request_error"
    m = TOO_LONG.match(err.value.body["error"]["message"])
    assert m, err.value.body
    rec = gw.wait_records(1)[-1]
    assert (int(m[1]), int(m[2])) == (rec["est_tokens"], LMS_WINDOW - 64)   # the roomiest backend
    assert rec["status"] == 400 and rec["fallbacks"] == ["mlx", "lmstudio"] and len(rec["notes"]) == 2
    assert not fakes[0].requests and not fakes[1].requests


def test_models_and_health_report_each_window_and_follow_a_reload(gw, fakes):
    _, lms = fakes
    models = {m["id"]: m for m in httpx.get(gw.base + "/v1/models").json()["data"]}
    assert models["mlx"]["max_input_tokens"] == MLX_WINDOW and models["lmstudio"]["max_input_tokens"] == LMS_WINDOW
    assert models["lms"]["max_input_tokens"] == LMS_WINDOW          # an alias reports its backend's
    # LM Studio reloads the model with a smaller context: the next health check picks it up
    lms.lmstudio_models = [{**LMS_MODEL, "loaded_context_length": 8192}]
    try:
        assert httpx.get(gw.base + "/health").json()["backends"]["lmstudio"]["context_window"] == 8192
        models = {m["id"]: m for m in httpx.get(gw.base + "/v1/models").json()["data"]}
        assert models["lmstudio"]["max_input_tokens"] == 8192
    finally:
        lms.lmstudio_models = [LMS_MODEL]
        httpx.get(gw.base + "/health")
