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

from turnroute.router.intents import compile_set
from turnroute.router.safeguards.context import Context
from turnroute.router.safeguards.paths import DEFAULT_BUILD_OUTPUT
from turnroute.router.safeguards.rules import BUILTIN_RULES, SafeguardRules, UserRule
from turnroute.router.safeguards.verdicts import PendingCall, Verdict
from turnroute.router.schema import Ctx, suggest

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


_DEFAULT = SafeguardSettings()


def _patterns(r: Ctx, node: Mapping, key: str, path: str) -> tuple[str, ...]:
    return r.strings(node, key, path) if node.get(key) is not None else ()


def _user_rule(r: Ctx, node: Any, i: int, parent: Any) -> UserRule:
    path = f"safeguards.rules[{i}]"
    if not isinstance(node, Mapping):
        raise r.error(parent, i, path, "must be a mapping with name and flag or pass")
    r.keys(node, RULE_KEYS, path)
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise r.error(node, "name", f"{path}.name", "field required (a name for the log)")
    if ("flag" in node) == ("pass" in node):
        raise r.error(node, None, path, "needs exactly one of flag: or pass: (a list of patterns)")
    key = "flag" if "flag" in node else "pass"
    try:
        pattern = compile_set(_patterns(r, node, key, f"{path}.{key}"), where=f"{path}.{key}")
    except ValueError as exc:
        raise r.error(node, key, f"{path}.{key}", str(exc).split(": ", 1)[-1]) from None
    if pattern is None:
        raise r.error(node, key, f"{path}.{key}", "needs at least one pattern")
    return UserRule(name, "flagged" if key == "flag" else "not_flagged", pattern,
                    _patterns(r, node, "tools", f"{path}.tools"),
                    r.typed(node, "explanation", f"{path}.explanation", str, ""))


def parse_safeguards(doc: Mapping | None, *, backends: Sequence[str], source: str) -> SafeguardSettings:
    """Validate the `safeguards:` section (absent: rules+judge on the `mlx` backend, or the first)."""
    r = Ctx(source, frozenset(backends))
    default_model = "mlx" if "mlx" in backends else (next(iter(backends), None))
    node = r.mapping(doc or {}, "safeguards", "safeguards", KEYS) if (doc or {}).get("safeguards") is not None else None
    if node is None:
        return SafeguardSettings(model=default_model)
    mode = node.get("mode", _DEFAULT.mode)
    if mode is False:                  # YAML 1.1 reads a bare `off` as false
        mode = "off"
    if mode not in MODES:
        raise r.error(node, "mode", "safeguards.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    model = node.get("model", default_model)
    if mode == "rules+judge" and model not in backends:
        raise r.error(node, "model", "safeguards.model",
                      f"unknown backend {model!r} (configured: {', '.join(backends)}){suggest(model, backends)}")
    timeout = r.typed(node, "timeout", "safeguards.timeout", float, _DEFAULT.timeout)
    if timeout <= 0:
        raise r.error(node, "timeout", "safeguards.timeout", "must be a positive number of seconds")
    unavailable = r.typed(node, "unavailable", "safeguards.unavailable", str, _DEFAULT.unavailable)
    if unavailable not in ("ask", "block"):
        raise r.error(node, "unavailable", "safeguards.unavailable", "must be ask or block")
    rules_node = node.get("rules") or []
    if not isinstance(rules_node, list):
        raise r.error(node, "rules", "safeguards.rules", "must be a list of rules")
    disabled = _patterns(r, node, "disable", "safeguards.disable")
    for i, name in enumerate(disabled):
        if name not in BUILTIN_RULES:
            raise r.error(node["disable"], i, f"safeguards.disable[{i}]",
                          f"unknown built-in rule {name!r} (one of {', '.join(BUILTIN_RULES)}){suggest(name, BUILTIN_RULES)}")
    rules = SafeguardRules(
        user=tuple(_user_rule(r, x, i, rules_node) for i, x in enumerate(rules_node)),
        disabled=frozenset(disabled),
        build_output=DEFAULT_BUILD_OUTPUT + _patterns(r, node, "build_output", "safeguards.build_output"))
    return SafeguardSettings(mode=mode, model=model if mode == "rules+judge" else None, timeout=timeout,
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
