"""Ordered YAML routing rules → a `Decision` with a per-rule trace.

Order of precedence in `RuleSet.decide` (why: an explicit human choice beats any heuristic):
  1. override — header `x-turnroute-route` or env `TURNROUTE_MODE` (the gateway reads both and
     passes `override=("header"|"env", name)`; "auto" means none)  → rule "override:header|env"
  2. model alias — the client's model string equals an alias (`claude --model mlx`) → "override:model"
  3. `rules:` in order, first match wins
  4. `default:`
The sections parsed here are `aliases`, `intents`, `markers`, `needs`, `rules`, `default`; other top-level
sections belong to gateway/config.py and are ignored. Every validation error names file:line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from turnroute.router.conditions import Condition, parse_condition
from turnroute.router.schema import Ctx, suggest
from turnroute.router.features import Features, TurnKind, extract_features
from turnroute.router.intents import DEFAULT_ACTION, DEFAULT_ANALYSIS, DEFAULT_MARKERS, IntentSets, Markers, compile_set
from turnroute.router.yamlsrc import ConfigError, line_of
from turnroute.router.needs import DEFAULT_NEEDS_SETS, NeedsSets

__all__ = ["RuleTrace", "Decision", "Rule", "RuleSet", "parse_ruleset", "ConfigError", "UnknownRoute", "ORIGIN"]

ORIGIN = "origin"
RULE_KEYS = ("name", "description", "when", "route", "strip_tools", "model", "max_tokens", "fallback")
DEFAULT_KEYS = ("description", "route", "strip_tools", "model", "max_tokens", "fallback")
_TURN_PHRASE = {
    TurnKind.PROMPT: "new prompt", TurnKind.TOOL_RESULT: "tool-loop continuation",
    TurnKind.TITLE: "title generation", TurnKind.COMPACT: "compaction (/compact)",
    TurnKind.COUNT_TOKENS: "token count", TurnKind.SUBAGENT: "subagent call",
    TurnKind.BACKGROUND: "background call", TurnKind.STRUCTURED: "structured-output request",
}


class UnknownRoute(ValueError):
    """An override names no backend or alias; the gateway answers 400 with this message."""


@dataclass(frozen=True)
class RuleTrace:
    name: str
    matched: bool
    failed: str | None           # the first condition that failed, human readable


@dataclass(frozen=True)
class Decision:
    backend: str
    rule: str                 # rule name ("override:header", "override:env", "override:model" too)
    reason: str               # one human sentence: why
    strip_tools: bool
    model: str | None         # backend model override
    max_tokens: int | None
    fallback: tuple[str, ...]
    trace: tuple[RuleTrace, ...]   # each rule evaluated: name, matched, failed condition text


@dataclass(frozen=True)
class Rule:
    name: str
    when: Condition | None        # None: always
    route: str                    # a backend name, or "origin"
    strip_tools: bool = False
    model: str | None = None
    max_tokens: int | None = None
    fallback: tuple[str, ...] = ()
    description: str = ""
    line: int | None = None


def _reason(f: Features, rule: Rule, backend: str) -> str:
    subject = _TURN_PHRASE.get(f.turn, f.turn.value)
    if f.needs:
        subject += f" that needs {f.needs}"
    elif f.intent and f.turn in (TurnKind.PROMPT, TurnKind.SUBAGENT):
        subject += f" classified as {f.intent}"
    if f.turn not in (TurnKind.COUNT_TOKENS, TurnKind.TITLE):
        subject += f" with {f.tool_count} tools" if f.has_tools else " without tools"
    verdict = f"{subject} → {backend}"
    if rule.route == ORIGIN:
        verdict += ", the backend that started this tool loop"
    if rule.strip_tools and f.has_tools and f.turn is not TurnKind.COUNT_TOKENS:
        verdict += ", tools stripped"
    if rule.model:
        verdict += f", model {rule.model}"
    return f"{verdict} (rule {rule.name})"


def _fallback(route: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    seen: list[str] = []
    for b in fallback:
        if b != route and b not in seen:
            seen.append(b)
    return tuple(seen)


class RuleSet:
    """Parsed routing config. Immutable; build a new one on reload (decide() is lock-free)."""

    def __init__(self, *, rules: tuple[Rule, ...], default: Rule, aliases: Mapping[str, str],
                 backends: frozenset[str], intents: IntentSets = IntentSets(),
                 markers: Markers = DEFAULT_MARKERS, source: str = "<config>",
                 needs: NeedsSets = DEFAULT_NEEDS_SETS):
        self.rules = rules
        self.default = default
        self.aliases = {k.lower(): v for k, v in aliases.items()}
        for b in backends:
            self.aliases.setdefault(b.lower(), b)
        self.backends = backends
        self.intents = intents
        self.markers = markers
        self.needs = needs
        self.source = source

    def resolve(self, name: str | None) -> str | None:
        """Backend for a backend name or alias (case-insensitive); None for unknown or "auto"."""
        if not name:
            return None
        return self.aliases.get(name.strip().lower())

    def features(self, body: dict, headers: Mapping[str, str], *, endpoint: str = "messages",
                 input_tokens: int | None = None, memory: Any = None) -> Features:
        """extract_features() with this config's intents, markers and backends."""
        return extract_features(body, headers, endpoint=endpoint, intents=self.intents,
                                backends=self.backends, input_tokens=input_tokens,
                                markers=self.markers, memory=memory, needs=self.needs)

    def _pinned(self, source: str, name: str, backend: str) -> Decision:
        why = {"header": f"x-turnroute-route header pins {backend}",
               "env": f"TURNROUTE_MODE={name} pins {backend}",
               "model": f"model alias {name!r} pins {backend}"}.get(source, f"{source} pins {backend}")
        return Decision(backend=backend, rule=f"override:{source}", reason=why, strip_tools=False,
                        model=None, max_tokens=None, fallback=(), trace=())

    def decide(self, f: Features, *, override: tuple[str, str] | str | None = None) -> Decision:
        """The routing decision for `f`.

        override: ("header" | "env", backend-or-alias) from the gateway; a bare string is taken as
        a header value. "auto" (or empty) means no override. Unknown names raise UnknownRoute.
        """
        if override:
            source, name = override if isinstance(override, tuple) else ("header", override)
            if name and name.strip().lower() != "auto":
                backend = self.resolve(name)
                if backend is None:
                    what = "x-turnroute-route" if source == "header" else "TURNROUTE_MODE"
                    raise UnknownRoute(f"{what}: unknown backend {name!r} (expected auto, "
                                       f"{', '.join(sorted(self.aliases))})")
                return self._pinned(source, name, backend)
        if f.model:
            backend = self.aliases.get(f.model.lower())
            if backend is not None:
                return self._pinned("model", f.model, backend)
        trace: list[RuleTrace] = []
        for rule in self.rules:
            why = rule.when.check(f) if rule.when is not None else None
            backend = rule.route
            if why is None and backend == ORIGIN:
                if f.origin is None or f.origin not in self.backends:
                    why = "origin unknown (route: origin needs the backend that started the tool loop)"
                else:
                    backend = f.origin
            if why is not None:
                trace.append(RuleTrace(rule.name, False, why))
                continue
            trace.append(RuleTrace(rule.name, True, None))
            return self._decision(f, rule, backend, tuple(trace))
        return self._decision(f, self.default, self.default.route, tuple(trace))

    def _decision(self, f: Features, rule: Rule, backend: str, trace: tuple[RuleTrace, ...]) -> Decision:
        return Decision(backend=backend, rule=rule.name, reason=_reason(f, rule, backend),
                        strip_tools=rule.strip_tools, model=rule.model, max_tokens=rule.max_tokens,
                        fallback=_fallback(backend, rule.fallback), trace=trace)


# ---------------------------------------------------------------- parsing

def _backend(v: Any, ctx: Ctx, node: Any, key: Any, path: str, allow_origin: bool) -> str:
    choices = sorted(ctx.backends) + ([ORIGIN] if allow_origin else [])
    if not isinstance(v, str) or v not in choices:
        raise ctx.error(node, key, path, f"unknown backend {v!r} (expected one of {', '.join(choices)})"
                                         f"{suggest(v, choices)}")
    return v


def _actions(node: Mapping, ctx: Ctx, path: str, name: str, allow_origin: bool) -> Rule:
    if "route" not in node:
        raise ctx.error(node, None, f"{path}.route", "field required (a backend name"
                        + (" or origin)" if allow_origin else ")"))
    route = _backend(node["route"], ctx, node, "route", f"{path}.route", allow_origin)
    strip = node.get("strip_tools", False)
    if not isinstance(strip, bool):
        raise ctx.error(node, "strip_tools", f"{path}.strip_tools", f"must be true or false, got {strip!r}")
    model = node.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ctx.error(node, "model", f"{path}.model", f"must be a model name string, got {model!r}")
    mt = node.get("max_tokens")
    if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt <= 0):
        raise ctx.error(node, "max_tokens", f"{path}.max_tokens", f"must be a positive integer, got {mt!r}")
    fb = node.get("fallback", [])
    if isinstance(fb, str):
        fb = [fb]
    if not isinstance(fb, list):
        raise ctx.error(node, "fallback", f"{path}.fallback", f"must be a list of backends, got {fb!r}")
    fallback = tuple(_backend(b, ctx, fb if hasattr(fb, "item_lines") else node, i if hasattr(fb, "item_lines")
                              else "fallback", f"{path}.fallback[{i}]", False) for i, b in enumerate(fb))
    desc = node.get("description", "")
    if not isinstance(desc, str):
        raise ctx.error(node, "description", f"{path}.description", "must be text")
    when = None
    if node.get("when") is not None:
        when = parse_condition(node["when"], ctx, f"{path}.when")
    return Rule(name=name, when=when, route=route, strip_tools=strip, model=model, max_tokens=mt,
                fallback=fallback, description=desc, line=line_of(node))


def _needs_sets(doc: Mapping, ctx: Ctx) -> NeedsSets:
    """The `needs:` section: word lists that override the act classifier, and project-scope phrases."""
    node = doc.get("needs")
    if node is None:
        return DEFAULT_NEEDS_SETS
    if not isinstance(node, Mapping):
        raise ctx.error(doc, "needs", "needs", "must be a mapping of word lists (change, search, ask, general, scope)")
    fields = ("change", "search", "ask", "general", "scope")
    ctx.keys(node, fields, "needs")
    return NeedsSets(**{k: (ctx.strings(node, k, f"needs.{k}") if node.get(k) is not None
                            else getattr(DEFAULT_NEEDS_SETS, k)) for k in fields})


def parse_ruleset(doc: Mapping | None, *, backends: set[str] | frozenset[str], source: str) -> RuleSet:
    """Validate and build the router sections of a loaded config (see router.yamlsrc.load_yaml)."""
    doc = doc or {}
    ctx = Ctx(source=source, backends=frozenset(backends))
    if not isinstance(doc, Mapping):
        raise ConfigError("the config must be a YAML mapping", source, 1)
    if not backends:
        raise ctx.error(doc, "backends", "backends", "declare at least one backend")

    aliases: dict[str, str] = {}
    node = doc.get("aliases") or {}
    if not isinstance(node, Mapping):
        raise ctx.error(doc, "aliases", "aliases", "must be a mapping alias: backend")
    for k, v in node.items():
        if not isinstance(k, str) or not k:
            raise ctx.error(node, k, f"aliases.{k}", "alias must be a string")
        aliases[k] = _backend(v, ctx, node, k, f"aliases.{k}", False)

    intents = IntentSets()
    node = doc.get("intents")
    if node is not None:
        if not isinstance(node, Mapping):
            raise ctx.error(doc, "intents", "intents", "must be a mapping with analysis and action lists")
        ctx.keys(node, ("analysis", "action"), "intents")
        sets = {}
        for k, dflt in (("analysis", DEFAULT_ANALYSIS), ("action", DEFAULT_ACTION)):
            if node.get(k) is None:
                sets[k] = dflt
                continue
            sets[k] = ctx.strings(node, k, f"intents.{k}")
            for i, entry in enumerate(sets[k]):
                try:
                    compile_set([entry])
                except ValueError as exc:
                    why = str(exc).split(": ", 1)[-1]
                    raise ConfigError(f"intents.{k}[{i}]: {why}", source,
                                      line_of(node[k], i) or line_of(node, k)) from None
        intents = IntentSets(**sets)

    markers = DEFAULT_MARKERS
    node = doc.get("markers")
    if node is not None:
        if not isinstance(node, Mapping):
            raise ctx.error(doc, "markers", "markers", "must be a mapping")
        fields = ("compact", "title", "subagent", "background")
        ctx.keys(node, fields, "markers")
        markers = Markers(**{k: (ctx.strings(node, k, f"markers.{k}") if node.get(k) is not None
                                 else getattr(DEFAULT_MARKERS, k)) for k in fields})

    intents = IntentSets(analysis=intents.analysis, action=intents.action, markers=markers)
    needs = _needs_sets(doc, ctx)

    rules: list[Rule] = []
    node = doc.get("rules") or []
    if not isinstance(node, list):
        raise ctx.error(doc, "rules", "rules", "must be a list of rules")
    seen: dict[str, int | None] = {}
    for i, r in enumerate(node):
        path = f"rules[{i}]"
        if not isinstance(r, Mapping):
            raise ctx.error(node, i, path, f"must be a mapping with name, when, route, got {r!r}")
        ctx.keys(r, RULE_KEYS, path)
        name = r.get("name")
        if not isinstance(name, str) or not name:
            raise ctx.error(r, "name" if "name" in r else None, f"{path}.name", "field required (a unique rule name)")
        if name in seen or name == "default" or name.startswith("override:"):
            first = f" (first used on line {seen[name]})" if seen.get(name) else ""
            raise ctx.error(r, "name", f"{path}.name", f"duplicate or reserved rule name {name!r}{first}")
        seen[name] = line_of(r, "name")
        rules.append(_actions(r, ctx, path, name, True))

    node = doc.get("default")
    if node is None:
        order = [b for b in (doc.get("backends") or {}) if b in backends] or sorted(backends)
        default = Rule(name="default", when=None, route=order[0], description="no default: block")
    else:
        if not isinstance(node, Mapping):
            raise ctx.error(doc, "default", "default", "must be a mapping with route (and optional actions)")
        ctx.keys(node, DEFAULT_KEYS, "default")
        default = _actions(node, ctx, "default", "default", False)
    return RuleSet(rules=tuple(rules), default=default, aliases=aliases, backends=frozenset(backends),
                   intents=intents, markers=markers, source=source, needs=needs)
