"""Backends: where a decided request is sent."""

from __future__ import annotations

import os

from turnroute.gateway.backends.anthropic_native import AnthropicNativeBackend
from turnroute.gateway.backends.automodel import AutoModelBackend, is_auto
from turnroute.gateway.observe.record import add_known_secret
from turnroute.gateway.backends.base import Backend, BackendConfig, Supports
from turnroute.gateway.backends.litellm_backend import LiteLLMBackend
from turnroute.gateway.backends.openai_http import OpenAIHTTPBackend

BACKEND_TYPES = {"openai": OpenAIHTTPBackend, "litellm": LiteLLMBackend, "anthropic": AnthropicNativeBackend}


def build_backend(config: BackendConfig) -> Backend:
    """Instantiate a backend; its key is read from the environment, never from the YAML."""
    key = os.environ.get(config.api_key_env) if config.api_key_env else None
    add_known_secret(key)
    backend = BACKEND_TYPES[config.type](config, api_key=key)
    if is_auto(config.model):
        return AutoModelBackend(backend)
    return backend


__all__ = ["Backend", "BackendConfig", "Supports", "build_backend", "BACKEND_TYPES",
           "AnthropicNativeBackend", "LiteLLMBackend", "OpenAIHTTPBackend"]
