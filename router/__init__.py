"""turnroute's pure routing core: request → Features → Decision (no I/O, no web frameworks).

Typical gateway use:
    doc = load_yaml(text, path); rules = parse_ruleset(doc, backends=set(doc["backends"]), source=path)
    f = rules.features(body, headers, endpoint="messages", input_tokens=n, memory=turn_memory)
    d = rules.decide(f, override=("header", h) if h else ("env", mode) if mode else None)
    … serve with d.backend (then d.fallback) …; turn_memory.remember_features(f, served_backend)
"""

from turnroute.router.features import DEFAULT_MARKERS, Features, Markers, TurnKind, extract_features
from turnroute.router.ids import mint_tool_id, origin_of
from turnroute.router.intents import IntentSets
from turnroute.router.replay import ReplayRow, features_from_log, format_replay, parse_capture, replay_inputs
from turnroute.router.explain import describe_features, explain
from turnroute.router.rules import ConfigError, Decision, Rule, RuleSet, RuleTrace, UnknownRoute, parse_ruleset
from turnroute.router.sticky import TurnMemory, sticky_key
from turnroute.router.yamlsrc import LineDict, LineList, load_yaml

__all__ = [
    "TurnKind", "Features", "Markers", "DEFAULT_MARKERS", "extract_features", "IntentSets",
    "Decision", "Rule", "RuleSet", "RuleTrace", "UnknownRoute", "ConfigError", "parse_ruleset",
    "describe_features", "explain", "mint_tool_id", "origin_of", "TurnMemory", "sticky_key",
    "load_yaml", "LineDict", "LineList", "ReplayRow", "replay_inputs", "format_replay", "parse_capture",
    "features_from_log",
]
