"""The YAML config: server, log, limits and backends here; rules are parsed by `router`.

Validation errors name the file and line (`config/turnroute.yaml:14: backends.mlx.url: …`), and a
bad edit while serving never replaces the last good config (see `ConfigWatcher`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from turnroute.gateway.backends.base import CLOUD_HOST, BackendConfig, ServeSpec, Supports
from turnroute.router.rules import ConfigError, RuleSet, parse_ruleset
from turnroute.router.safeguards import SafeguardSettings, parse_safeguards
from turnroute.router.schema import Ctx
from turnroute.router.yamlsrc import line_of, load_yaml

log = logging.getLogger("turnroute")

DEFAULT_PORT = 8400
TOP_LEVEL = {"server", "log", "limits", "backends", "aliases", "intents", "markers", "needs", "rules", "default",
             "safeguards"}


@dataclass(frozen=True)
class LogSettings:
    path: str | None = None          # None: the default in the user's state directory
    max_bytes: int = 10 * 1024 * 1024
    keep: int = 5
    prompts: bool = False            # log prompt text only when the user opts in


@dataclass(frozen=True)
class EdgeSettings:
    """Who may call the gateway and how much it takes on at once (read at start-up)."""

    allowed_hosts: tuple[str, ...] = ()     # Host names beyond loopback (a proxy's name)
    allowed_origins: tuple[str, ...] = ()   # browser origins beyond the gateway's own
    api_keys: tuple[str, ...] = ()          # required to bind beyond loopback; never logged
    max_concurrent: int = 64                # requests served at once; more get 529
    shutdown_grace: float = 5.0             # seconds streams may finish after SIGTERM
    preload_litellm: bool = False           # import LiteLLM at start-up instead of on first use


@dataclass(frozen=True)
class Config:
    source: str
    host: str
    port: int
    log: LogSettings
    max_body_bytes: int
    backends: dict[str, BackendConfig]
    rules: RuleSet
    safeguards: SafeguardSettings = SafeguardSettings()
    edge: EdgeSettings = EdgeSettings()


# Defaults live in the dataclasses; the reader below takes them from these instances.
_LOG = LogSettings()
_EDGE = EdgeSettings()
_BACKEND = BackendConfig(name="", type="openai", urls=(), model="")
_SUPPORTS = Supports()

BACKEND_KEYS = {"type", "url", "urls", "model", "max_output_tokens", "context_window", "timeout", "supports",
                "api_key_env", "description", "one_prefill_per_session", "serve",
                "session_header", "drop", "count_tokens"}
SERVE_KEYS = {"model", "prompt_cache_size", "prompt_cache_bytes", "extra_args"}
BACKEND_TYPES = ("openai", "litellm", "anthropic")
SUPPORT_KEYS = {"tools", "images", "thinking", "json_schema", "parallel_tool_calls"}


def _backend(r: Ctx, name: str, node: Any) -> BackendConfig:
    path = f"backends.{name}"
    if not isinstance(node, dict):
        raise r.error(node, None, path, "must be a mapping")
    r.keys(node, sorted(BACKEND_KEYS), path)
    kind = r.typed(node, "type", f"{path}.type", str, "openai")
    if kind not in BACKEND_TYPES:
        raise r.error(node, "type", f"{path}.type",
                     f"unknown backend type {kind!r} (expected {', '.join(BACKEND_TYPES)})")
    serve = _serve(r, node, path, kind)
    urls: list[str] = []
    if serve:
        if "url" in node or "urls" in node:
            raise r.error(node, "url" if "url" in node else "urls", f"{path}.url",
                          "a backend with `serve` runs its own servers: remove url/urls")
    elif "urls" in node:
        urls = r.typed(node, "urls", f"{path}.urls", list, [])
    elif "url" in node:
        urls = [r.typed(node, "url", f"{path}.url", str, "")]
    if not serve and not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
        raise r.error(node, "urls" if "urls" in node else "url", f"{path}.url",
                     "needs an http(s) URL such as http://127.0.0.1:8080/v1")
    # mlx_lm.server answers to "default_model" with the model it was started with.
    model = r.typed(node, "model", f"{path}.model", str, "default_model" if serve else None)
    if not model:
        raise r.error(node, None, f"{path}.model", "field required (the backend's model name)")
    timeout = r.mapping(node, "timeout", f"{path}.timeout", {"connect", "read"})
    supports = r.mapping(node, "supports", f"{path}.supports", SUPPORT_KEYS)
    sup = Supports(**{k: r.typed(supports, k, f"{path}.supports.{k}", bool, getattr(_SUPPORTS, k)) for k in SUPPORT_KEYS})
    max_out = r.typed(node, "max_output_tokens", f"{path}.max_output_tokens", int, _BACKEND.max_output_tokens)
    if max_out is not None and max_out <= 0:
        raise r.error(node, "max_output_tokens", f"{path}.max_output_tokens", "must be positive")
    window = r.typed(node, "context_window", f"{path}.context_window", int, _BACKEND.context_window)
    if window is not None and window <= 0:
        raise r.error(node, "context_window", f"{path}.context_window", "must be a positive number of tokens")
    drop = r.typed(node, "drop", f"{path}.drop", list, [])
    if not all(isinstance(d, str) and d and not d.startswith(".") and not d.endswith(".") for d in drop):
        raise r.error(node, "drop", f"{path}.drop", "must be a list of dotted field names such as output_config.effort")
    if (drop or "count_tokens" in node) and kind != "anthropic":
        raise r.error(node, "drop" if drop else "count_tokens", path, "drop and count_tokens apply to type: anthropic only")
    key_env = r.typed(node, "api_key_env", f"{path}.api_key_env", str, None)
    if key_env is None and kind == "anthropic" and any(urlsplit(u).hostname == CLOUD_HOST for u in urls):
        key_env = "ANTHROPIC_API_KEY"   # the cloud: the gateway's own key, never the client's
    return BackendConfig(
        name=name, type=kind, urls=tuple(u.rstrip("/") for u in urls), model=model, max_output_tokens=max_out,
        context_window=window,
        connect_timeout=r.typed(timeout, "connect", f"{path}.timeout.connect", float, _BACKEND.connect_timeout),
        read_timeout=r.typed(timeout, "read", f"{path}.timeout.read", float, _BACKEND.read_timeout),
        supports=sup, api_key_env=key_env,
        session_header=r.typed(node, "session_header", f"{path}.session_header", str, None) or None,
        drop=tuple(drop), count_tokens=r.typed(node, "count_tokens", f"{path}.count_tokens", bool, False),
        # On by default for direct servers (mlx_lm.server), whose batching does not share prefixes.
        one_prefill_per_session=r.typed(node, "one_prefill_per_session", f"{path}.one_prefill_per_session",
                                        bool, kind == "openai"),
        line=line_of(node), serve=serve)


def _positive(r: Ctx, node: dict, key: str, path: str) -> int | None:
    value = r.typed(node, key, path, int, None)
    if value is not None and value <= 0:
        raise r.error(node, key, path, "must be positive")
    return value


def _serve(r: Ctx, node: dict, path: str, kind: str) -> tuple[ServeSpec, ...]:
    """`serve:` one mapping, or a list of them (a pool the sessions are spread over)."""
    if node.get("serve") is None:
        return ()
    raw = node["serve"]
    items = raw if isinstance(raw, list) else [raw]
    if kind != "openai" or not items:
        raise r.error(node, "serve", f"{path}.serve", "needs type: openai and at least one server")
    specs = []
    for i, item in enumerate(items):
        where = f"{path}.serve" + (f"[{i}]" if isinstance(raw, list) else "")
        if not isinstance(item, dict):
            raise r.error(node, "serve", where, "must be a mapping such as {model: /path/to/model}")
        r.keys(item, sorted(SERVE_KEYS), where)
        model = r.typed(item, "model", f"{where}.model", str, None)
        if not model:
            raise r.error(item, None, f"{where}.model", "field required (a local model directory)")
        extra = r.typed(item, "extra_args", f"{where}.extra_args", list, [])
        if not all(isinstance(a, (str, int, float)) for a in extra):
            raise r.error(item, "extra_args", f"{where}.extra_args", "must be a list of strings")
        # A relative directory is relative to the config file, wherever the gateway was started.
        model = str((Path(r.source).parent / Path(model).expanduser()).resolve())
        specs.append(ServeSpec(model=model,
                               prompt_cache_size=_positive(r, item, "prompt_cache_size", f"{where}.prompt_cache_size"),
                               prompt_cache_bytes=_positive(r, item, "prompt_cache_bytes", f"{where}.prompt_cache_bytes"),
                               extra_args=tuple(str(a) for a in extra)))
    return tuple(specs)


def parse_config(text: str, source: str) -> Config:
    doc = load_yaml(text, source)
    r = Ctx(source)
    if not isinstance(doc, dict):
        raise ConfigError("the config must be a YAML mapping", source=source, line=1)
    for k in doc:
        if k not in TOP_LEVEL:
            raise r.error(doc, k, k, f"unknown section (expected one of {', '.join(sorted(TOP_LEVEL))})")
    server = r.mapping(doc, "server", "server", {"host", "port", "allowed_hosts", "allowed_origins",
                                                 "api_keys", "shutdown_grace", "preload_litellm"})
    logs = r.mapping(doc, "log", "log", {"path", "max_bytes", "keep", "prompts"})
    limits = r.mapping(doc, "limits", "limits", {"max_body_bytes", "max_concurrent"})
    backends_node = r.mapping(doc, "backends", "backends", set(doc.get("backends") or {}))
    if not backends_node:
        raise r.error(doc, "backends", "backends", "declare at least one backend")
    backends = {name: _backend(r, name, node) for name, node in backends_node.items()}
    rules = parse_ruleset(doc, backends=set(backends), source=source)
    return Config(
        source=source,
        host=r.typed(server, "host", "server.host", str, "127.0.0.1"),
        port=r.typed(server, "port", "server.port", int, DEFAULT_PORT),
        log=LogSettings(path=r.typed(logs, "path", "log.path", str, _LOG.path),
                        max_bytes=r.typed(logs, "max_bytes", "log.max_bytes", int, _LOG.max_bytes),
                        keep=r.typed(logs, "keep", "log.keep", int, _LOG.keep),
                        prompts=r.typed(logs, "prompts", "log.prompts", bool, _LOG.prompts)),
        max_body_bytes=r.typed(limits, "max_body_bytes", "limits.max_body_bytes", int, 32 * 1024 * 1024),
        backends=backends, rules=rules, safeguards=parse_safeguards(doc, backends=list(backends), source=source),
        edge=_edge(r, server, limits))


def _strings(r: Ctx, node: dict, key: str, path: str) -> tuple[str, ...]:
    value = r.typed(node, key, path, list, [])
    if not all(isinstance(v, str) and v for v in value):
        raise r.error(node, key, path, "must be a list of non-empty strings")
    return tuple(value)


def _edge(r: Ctx, server: dict, limits: dict) -> EdgeSettings:
    concurrent = r.typed(limits, "max_concurrent", "limits.max_concurrent", int, _EDGE.max_concurrent)
    if concurrent < 1:
        raise r.error(limits, "max_concurrent", "limits.max_concurrent", "must be at least 1")
    return EdgeSettings(
        allowed_hosts=_strings(r, server, "allowed_hosts", "server.allowed_hosts"),
        allowed_origins=_strings(r, server, "allowed_origins", "server.allowed_origins"),
        api_keys=_strings(r, server, "api_keys", "server.api_keys"),
        max_concurrent=concurrent,
        shutdown_grace=r.typed(server, "shutdown_grace", "server.shutdown_grace", float, _EDGE.shutdown_grace),
        preload_litellm=r.typed(server, "preload_litellm", "server.preload_litellm", bool, _EDGE.preload_litellm))


def load_config(path: str | os.PathLike) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", source=str(p), line=None) from None
    return parse_config(text, str(p))


class ConfigWatcher:
    """Polls the config file and applies good edits within ~0.5 s; bad edits are logged and ignored.

    Polling (stat every interval) is deliberate: it is cheap, needs no native watcher, and works
    the same for editors that replace the file and for ones that write it in place.
    """

    def __init__(self, path: str | os.PathLike, apply: Callable[[Config], None], *, interval: float = 0.3):
        self.path = Path(path)
        self.apply = apply
        self.interval = interval
        self._stamp = self._stat()
        self._task: asyncio.Task | None = None
        self.last_error: str | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def load_changed(self) -> Config | None:
        """The new config if the file changed and is good (file reads and YAML parsing: no loop needed)."""
        stamp = self._stat()
        if stamp == self._stamp or stamp is None:
            return None
        self._stamp = stamp
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            self.last_error = str(exc)
            log.error("config reload rejected, keeping the last good config: %s", exc)
            return None
        self.last_error = None
        return config

    def use(self, config: Config) -> None:
        self.apply(config)
        log.info("config reloaded from %s", self.path)

    def check(self) -> bool:
        """Reload if the file changed; returns True when a new config was applied."""
        config = self.load_changed()
        if config is not None:
            self.use(config)
        return config is not None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                # Parsing runs in a thread so a big YAML file never stalls streams; applying is
                # a few assignments and stays on the loop with the requests that read the config.
                config = await asyncio.to_thread(self.load_changed)
                if config is not None:
                    self.use(config)
            except Exception:  # never let the watcher die
                log.exception("config watcher error")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
