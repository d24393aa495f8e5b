"""`backends.<name>.serve` in the YAML: accepted forms and errors naming the line."""

from __future__ import annotations

import pytest

from turnroute.gateway.backends.automodel import pick
from turnroute.gateway.config import parse_config
from turnroute.router.rules import ConfigError

HEAD = "backends:\n  mlx:\n"
TAIL = "default: {route: mlx}\n"


def parse(backend: str):
    return parse_config(HEAD + backend + TAIL, "/etc/tr/turnroute.yaml")


def test_serve_pool_with_relative_and_home_paths():
    cfg = parse("    serve:\n      - {model: models/coder, prompt_cache_size: 4, prompt_cache_bytes: 8000000000}\n"
                "      - {model: /m/other, extra_args: [--max-tokens, 512]}\n    context_window: 32768\n")
    mlx = cfg.backends["mlx"]
    assert [s.model for s in mlx.serve] == ["/etc/tr/models/coder", "/m/other"]
    assert mlx.serve[0].prompt_cache_bytes == 8_000_000_000 and mlx.serve[1].extra_args == ("--max-tokens", "512")
    assert mlx.model == "default_model" and mlx.urls == () and mlx.context_window == 32768


@pytest.mark.parametrize("backend, line, fragment", [
    ("    serve: {model: /m}\n    url: http://127.0.0.1:1/v1\n", 4, "backends.mlx.url: a backend with `serve`"),
    ("    serve: {model: /m, cache: 3}\n", 3, "backends.mlx.serve.cache: unknown key"),
    ("    serve: {prompt_cache_size: 3}\n", 3, "backends.mlx.serve.model: field required"),
    ("    type: litellm\n    model: x\n    serve: {model: /m}\n", 5, "needs type: openai"),
    ("    serve: [{model: /m, prompt_cache_bytes: -1}]\n", 3, "serve[0].prompt_cache_bytes: must be positive"),
])
def test_serve_errors_name_the_line(backend, line, fragment):
    with pytest.raises(ConfigError) as err:
        parse(backend)
    assert err.value.line == line and fragment in str(err.value)


def test_pick_prefers_a_loaded_tool_model_and_mlx_serves_its_local_path():
    lm = [{"id": "emb", "type": "embeddings", "state": "loaded", "capabilities": ["tool_use"]},
          {"id": "chat", "type": "llm", "state": "loaded"},
          {"id": "coder", "type": "llm", "state": "loaded", "capabilities": ["tool_use"]},
          {"id": "disk", "type": "llm", "state": "not-loaded", "capabilities": ["tool_use"]}]
    assert pick(lm, want_tools=True) == ("coder", "loaded, trained for tool use")
    assert pick(lm[:2], want_tools=True) == ("chat", "loaded (tool use not stated)")
    assert pick(lm[3:], want_tools=True) is None
    mlx = [{"id": "mlx-community/cached"}, {"id": "/models/served"}]
    assert pick(mlx, want_tools=False) == ("/models/served", "served")
