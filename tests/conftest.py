"""Shared fixtures: tiny MLX models and servers, the scripted OpenAI fake, Claude Code."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.fake_openai import FakeOpenAI  # noqa: E402
from tests.support.net import free_port  # noqa: E402,F401  (re-exported for tests)
from tests.support.tiny_model import build_tiny_model, start_mlx_server  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random llama (no tool calling), built once per session (~1 s)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_tool_model_dir(tmp_path_factory) -> Path:
    """The same tiny llama with a tool-calling chat template (mlx-lm infers json_tools)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-tool-model"), tool_calling=True)


def _server(model_dir):
    server = start_mlx_server(model_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlx_server(tiny_model_dir):
    """One real mlx_lm.server on the tiny model for the whole session (started on first use).

    Request ``"model": mlx_server.model`` ("default_model").  Its prompt cache is shared by every
    test using it: tests that measure cached_tokens should use a prompt unique to the test.
    """
    yield from _server(tiny_model_dir)


@pytest.fixture(scope="session")
def mlx_server_2(tiny_model_dir):
    """A second, independent mlx_lm.server on the same tiny model (e.g. the lm_studio path)."""
    yield from _server(tiny_model_dir)


@pytest.fixture(scope="session")
def mlx_tool_server(tiny_tool_model_dir):
    """mlx_lm.server on the tool-calling variant: accepts ``tools`` (never emits tool calls)."""
    yield from _server(tiny_tool_model_dir)


@pytest.fixture
def fake_openai():
    """A fresh scripted OpenAI-compatible server, stopped after the test."""
    fake = FakeOpenAI()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def claude_code() -> Path:
    """Path to the pinned Claude Code executable (installed with npm on first use)."""
    from tests.support.claude_code import ensure_claude_code

    try:
        return ensure_claude_code()
    except RuntimeError as e:
        pytest.skip(f"Claude Code not installable here: {e}")
