"""The one validator of turnroute's YAML: typed accessors whose errors name file, line and path.

Both halves of the config use it — the gateway's sections (server, log, limits, backends, in
gateway/config.py) and the router's (aliases, intents, markers, rules, default) — so a mistake
anywhere reads the same: `config/turnroute.yaml:14: backends.mlx.url: needs an http(s) URL …`,
with a "did you mean" for near-miss names. Defaults live with the code that reads each key (one
place each); the shipped YAML lists only what a user would change.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

from turnroute.router.yamlsrc import ConfigError, line_of

__all__ = ["Ctx", "suggest"]


def suggest(word: Any, choices: Iterable[Any]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class Ctx:
    """Where we are while parsing: the file (for errors) and the declared backend names."""

    source: str
    backends: frozenset[str] = frozenset()

    def error(self, node: Any, key: Any, path: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {message}", self.source, line_of(node, key))

    def keys(self, node: Any, allowed: Iterable[str], path: str) -> None:
        """Every key of `node` is one of `allowed` (else: unknown key, with a suggestion)."""
        allowed = tuple(allowed)
        for k in node:
            if k not in allowed:
                raise self.error(node, k, f"{path}.{k}" if path else str(k),
                                 f"unknown key (expected one of {', '.join(allowed)}){suggest(k, allowed)}")

    def mapping(self, node: Any, key: str, path: str, allowed: Iterable[str] | None = None) -> dict:
        """`node[key]` as a mapping ({} when absent), its keys checked against `allowed`."""
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(node, key, path, "must be a mapping")
        if allowed is not None:
            self.keys(value, sorted(allowed), path)
        return value

    def typed(self, node: dict, key: str, path: str, kind: type | tuple, default: Any) -> Any:
        """`node[key]` checked against `kind` (bools are not numbers; ints are floats), or `default`."""
        if key not in node or node[key] is None:
            return default
        value = node[key]
        if kind in (int, float) and isinstance(value, bool):
            raise self.error(node, key, path, f"must be a number, got {value!r}")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.error(node, key, path, f"must be {want}, got {value!r}")
        return value

    def strings(self, node: Any, key: str, path: str) -> tuple[str, ...]:
        """A non-empty string or a list of them."""
        v = node[key]
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise self.error(node, key, path, "must be a list of non-empty strings")
        return tuple(v)
