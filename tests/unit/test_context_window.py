"""Context windows: the YAML key, what LM Studio reports, and how much of a window a prompt gets."""

from __future__ import annotations

import pytest

from turnroute.gateway.backends.window import effective_window, prompt_limit, reported_window, too_long_message
from turnroute.gateway.config import parse_config
from turnroute.router.rules import ConfigError

LOADED = {"id": "qwen2.5-coder-14b-instruct", "object": "model", "type": "llm", "state": "loaded",
          "max_context_length": 131072, "loaded_context_length": 32768}
OTHER = {"id": "llama-3.2-1b-instruct", "object": "model", "type": "llm", "state": "not-loaded",
         "max_context_length": 131072}


def config(window_line: str) -> str:
    return ("backends:\n"
            "  mlx:\n"
            "    url: http://127.0.0.1:8080/v1\n"
            "    model: default_model\n"
            f"{window_line}\n")


def test_context_window_is_read_from_the_yaml():
    assert parse_config(config("    context_window: 32768"), "c.yaml").backends["mlx"].context_window == 32768
    assert parse_config(config(""), "c.yaml").backends["mlx"].context_window is None


@pytest.mark.parametrize("value, needle", [("0", "must be a positive number of tokens"),
                                           ("32k", "must be int")])
def test_a_bad_context_window_names_file_and_line(value, needle):
    with pytest.raises(ConfigError) as err:
        parse_config(config(f"    context_window: {value}"), "c.yaml")
    assert str(err.value).startswith("c.yaml:5: backends.mlx.context_window") and needle in str(err.value)


@pytest.mark.parametrize("model", ["lm_studio/qwen2.5-coder-14b-instruct", "qwen2.5-coder-14b-instruct"])
def test_lm_studio_reports_the_loaded_models_window(model):
    assert reported_window({"object": "list", "data": [OTHER, LOADED]}, model) == 32768


def test_what_lm_studio_does_not_say_is_unknown():
    # not loaded yet: LM Studio picks the length when it loads the model
    assert reported_window({"data": [{**LOADED, "state": "not-loaded"}]}, "lm_studio/qwen2.5-coder-14b-instruct") is None
    # another model is the one loaded: that is what LM Studio answers with
    assert reported_window({"data": [OTHER, LOADED]}, "lm_studio/some-other-model") == 32768
    # two loaded, neither named: no guess
    assert reported_window({"data": [LOADED, {**OTHER, "state": "loaded", "loaded_context_length": 4096}]},
                           "lm_studio/x") is None
    for junk in (None, [], {"data": "x"}, {"error": "Unexpected endpoint"}):
        assert reported_window(junk, "m") is None


def test_the_smaller_of_configured_and_reported_wins():
    assert effective_window(32768, 8192) == 8192 and effective_window(16000, 32768) == 16000
    assert effective_window(None, 8192) == 8192 and effective_window(None, None) is None


def test_the_prompt_leaves_room_for_the_answer_but_at_most_a_quarter():
    assert prompt_limit(32768, 8192) == 24576
    assert prompt_limit(8192, 8192) == 6144           # capped at a quarter of the window
    assert prompt_limit(8192, None) == 8192
    assert too_long_message(40000, 24576) == "prompt is too long: 40000 tokens > 24576 maximum"
