"""The YAML `safeguards:` section and the rules-first pass over a reply's tool calls.

    safeguards:
      mode: rules+judge       # rules+judge | rules | off
      model: mlx              # the backend that judges what the rules leave open
      timeout: 5              # seconds the judge may take
      unavailable: ask        # ask: Claude Code asks the user; block: it does not run the call
      rules:                  # yours, checked before the built-in ones
        - {name: no-prod, tools: [Bash], flag: ['/kubectl .*--context[= ]prod/'], explanation: …}
        - {name: deploy-staging, pass: ['make deploy-staging']}
      disable: [destructive-git]      # built-in rules to switch off
      build_output: [generated]       # more directories `rm -rf` may clear

The built-in rules live in code (`router.safeguards.rules`); the YAML only says what differs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from router.intents import compile_set
from router.safeguards.context import Context
from router.safeguards.paths import DEFAULT_BUILD_OUTPUT
from router.safeguards.rules import BUILTIN_RULES, SafeguardRules, UserRule
from router.safeguards.verdicts import PendingCall, Verdict
from router.yamlsrc import ConfigError, line_of

__all__ = ["MODES", "SafeguardSettings", "parse_safeguards", "rules_pass"]

MODES = ("rules+judge", "rules", "off")
KEYS = ("mode", "model", "timeout", "unavailable", "rules", "disable", "build_output")
RULE_KEYS = ("name", "tools", "flag", "pass", "explanation")


@dataclass(frozen=True)
class SafeguardSettings:
    mode: str = "rules+judge"
    model: str | None = None           # backend name; None: no judge configured
    timeout: float = 5.0
    unavailable: str = "ask"           # "ask" | "block"
    rules: SafeguardRules = field(default_factory=SafeguardRules)


def _err(node: Any, key: Any, path: str, message: str, source: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", source, line_of(node, key))


def _strings(node: Mapping, key: str, path: str, source: str) -> tuple[str, ...]:
    value = node.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise _err(node, key, path, "must be a list of non-empty strings", source)
    return tuple(value)


def _user_rule(node: Any, i: int, parent: Any, source: str) -> UserRule:
    path = f"safeguards.rules[{i}]"
    if not isinstance(node, Mapping):
        raise _err(parent, i, path, "must be a mapping with name and flag or pass", source)
    for k in node:
        if k not in RULE_KEYS:
            raise _err(node, k, f"{path}.{k}", f"unknown key (expected one of {', '.join(RULE_KEYS)})", source)
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise _err(node, "name", f"{path}.name", "field required (a name for the log)", source)
    if ("flag" in node) == ("pass" in node):
        raise _err(node, None, path, "needs exactly one of flag: or pass: (a list of patterns)", source)
    key = "flag" if "flag" in node else "pass"
    patterns = _strings(node, key, f"{path}.{key}", source)
    try:
        pattern = compile_set(patterns, where=f"{path}.{key}")
    except ValueError as exc:
        raise _err(node, key, f"{path}.{key}", str(exc).split(": ", 1)[-1], source) from None
    if pattern is None:
        raise _err(node, key, f"{path}.{key}", "needs at least one pattern", source)
    explanation = node.get("explanation") or ""
    if not isinstance(explanation, str):
        raise _err(node, "explanation", f"{path}.explanation", "must be a string", source)
    return UserRule(name, "flagged" if key == "flag" else "not_flagged", pattern,
                    _strings(node, "tools", f"{path}.tools", source), explanation)


def parse_safeguards(doc: Mapping | None, *, backends: Sequence[str], source: str) -> SafeguardSettings:
    """Validate the `safeguards:` section (absent: rules+judge on the `mlx` backend, or the first)."""
    default_model = "mlx" if "mlx" in backends else (backends[0] if backends else None)
    node = (doc or {}).get("safeguards")
    if node is None:
        return SafeguardSettings(model=default_model)
    if not isinstance(node, Mapping):
        raise _err(doc, "safeguards", "safeguards", "must be a mapping", source)
    for k in node:
        if k not in KEYS:
            raise _err(node, k, f"safeguards.{k}", f"unknown key (expected one of {', '.join(KEYS)})", source)
    mode = node.get("mode", "rules+judge")
    if mode is False:                  # YAML 1.1 reads a bare `off` as false
        mode = "off"
    if mode not in MODES:
        raise _err(node, "mode", "safeguards.mode", f"must be one of {', '.join(MODES)}, got {mode!r}", source)
    model = node.get("model", default_model)
    if mode == "rules+judge" and model not in backends:
        raise _err(node, "model", "safeguards.model",
                   f"unknown backend {model!r} (configured: {', '.join(backends)})", source)
    timeout = node.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise _err(node, "timeout", "safeguards.timeout", "must be a positive number of seconds", source)
    unavailable = node.get("unavailable", "ask")
    if unavailable not in ("ask", "block"):
        raise _err(node, "unavailable", "safeguards.unavailable", "must be ask or block", source)
    rules_node = node.get("rules") or []
    if not isinstance(rules_node, list):
        raise _err(node, "rules", "safeguards.rules", "must be a list of rules", source)
    disabled = _strings(node, "disable", "safeguards.disable", source)
    for i, name in enumerate(disabled):
        if name not in BUILTIN_RULES:
            raise _err(node["disable"], i, f"safeguards.disable[{i}]",
                       f"unknown built-in rule {name!r} (one of {', '.join(BUILTIN_RULES)})", source)
    rules = SafeguardRules(
        user=tuple(_user_rule(r, i, rules_node, source) for i, r in enumerate(rules_node)),
        disabled=frozenset(disabled),
        build_output=DEFAULT_BUILD_OUTPUT + _strings(node, "build_output", "safeguards.build_output", source))
    return SafeguardSettings(mode=mode, model=model if mode == "rules+judge" else None, timeout=float(timeout),
                             unavailable=unavailable, rules=rules)


def rules_pass(settings: SafeguardSettings, calls: Sequence[PendingCall], ctx: Context
               ) -> tuple[list[Verdict], list[PendingCall]]:
    """Decide what the rules can; return (verdicts, calls left open for the judge)."""
    decided: list[Verdict] = []
    open_calls: list[PendingCall] = []
    for c in calls:
        t0 = time.perf_counter()
        v = settings.rules.check(c.name, c.input, ctx)
        ms = (time.perf_counter() - t0) * 1000
        if v.outcome is None:
            open_calls.append(c)
        else:
            decided.append(Verdict(c.id, c.name, v.outcome, v.rule or "rules", v.explanation, ms=ms))
    return decided, open_calls
