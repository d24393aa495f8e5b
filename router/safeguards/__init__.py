"""Answers Claude Code's auto-mode safety check (`safeguards` → `safeguard_results`), purely.

Rules first (`rules`, `shellrules`, over `shell`-parsed command lines and the session's
`context`); what they leave open goes to a judge model whose prompt and answer live in `judge`;
`verdicts` holds the wire shapes; `settings` the YAML section. No I/O here: the gateway calls the
judge's backend.
"""

from turnroute.router.safeguards.context import Context, context_of
from turnroute.router.safeguards.judge import JudgeError, judge_messages, judged, parse_judgement, unavailable
from turnroute.router.safeguards.rules import BUILTIN_RULES, RuleVerdict, SafeguardRules
from turnroute.router.safeguards.settings import MODES, SafeguardSettings, parse_safeguards, rules_pass
from turnroute.router.safeguards.verdicts import (DANGEROUS_TOOL_USE, PendingCall, ToolUseCollector, Verdict, requested,
                                        results)

__all__ = ["Context", "context_of", "JudgeError", "judge_messages", "judged", "parse_judgement", "unavailable",
           "BUILTIN_RULES", "RuleVerdict", "SafeguardRules", "MODES", "SafeguardSettings", "parse_safeguards",
           "rules_pass", "DANGEROUS_TOOL_USE", "PendingCall", "ToolUseCollector", "Verdict", "requested", "results"]
