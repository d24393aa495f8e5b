"""Deterministic safeguard rules: decide a pending tool call in microseconds, or leave it open.

Order (first that decides wins):
  1. the user's YAML rules (`safeguards.rules`) — their word beats the built-ins;
  2. the user's deny rules from Claude Code (`rules.deny`, `auto_mode.hard_deny/soft_deny`);
  3. built-in dangers: secrets, download-and-run, disabling safety, destructive git, recursive
     deletes beyond build output, writes outside the trusted directories;
  4. the user's allow rules from Claude Code (`rules.allow`, `auto_mode.allow`);
  5. `rules.ask` entries leave the call open (a person or the judge should look);
  6. built-in routine work: Claude Code's own bookkeeping tools, reading and editing project files,
     builds/tests/linters/package managers/git;
  7. anything else is open: the judge model decides.
A rule name is `builtin:<name>`, `user:<name>` or `claude:<list>`, so the log says who decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from turnroute.router.safeguards.context import Context, permission_rule_matches
from turnroute.router.safeguards.paths import DEFAULT_BUILD_OUTPUT, is_safety_path, is_secret_path
from turnroute.router.safeguards.shell import parse_shell
from turnroute.router.safeguards.shellrules import SHELL_FLAGS, flag_rm_recursive, routine

__all__ = ["RuleVerdict", "UserRule", "SafeguardRules", "BUILTIN_RULES", "subject_of"]

SHELL_TOOLS = frozenset({"Bash", "PowerShell"})
READ_TOOLS = frozenset({"Read", "Glob", "Grep", "LS", "NotebookRead"})
WRITE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
# Claude Code's own bookkeeping and questions: nothing leaves the session, nothing on disk changes.
INTERNAL_TOOLS = frozenset({"TodoWrite", "TodoRead", "Task", "Agent", "ExitPlanMode", "EnterPlanMode",
                            "AskUserQuestion", "WebSearch", "TaskOutput", "BashOutput", "KillShell",
                            "KillBash", "ToolSearch", "Skill", "SlashCommand", "TaskCreate", "TaskUpdate",
                            "TaskList", "TaskGet", "TaskStop"})
BUILTIN_RULES = ("secrets", "download-and-run", "disables-safety", "destructive-git", "rm-recursive",
                 "writes-outside-project", "internal-tool", "project-read", "project-edit", "routine-shell")


@dataclass(frozen=True)
class RuleVerdict:
    outcome: str | None          # "flagged" | "not_flagged" | None: open, the judge decides
    rule: str | None             # who decided (None when open)
    explanation: str


@dataclass(frozen=True)
class UserRule:
    """A YAML rule: `{name, tools: [Bash, …], flag: [patterns]}` or `pass:` instead of `flag:`.
    Patterns are whole words/phrases or `/regex/` over the command, path or URL of the call."""

    name: str
    outcome: str                 # "flagged" | "not_flagged"
    pattern: re.Pattern[str]
    tools: tuple[str, ...] = ()
    explanation: str = ""


def subject_of(tool: str, data: Mapping[str, Any]) -> str | None:
    """The string rules match against: the command, the file path or the URL."""
    for key in ("command", "file_path", "notebook_path", "path", "url", "pattern"):
        v = data.get(key)
        if isinstance(v, str) and v:
            if key == "pattern" and tool not in ("Glob",):
                continue
            return v
    return None


def _open(why: str) -> RuleVerdict:
    return RuleVerdict(None, None, why)


def _flag(rule: str, why: str) -> RuleVerdict:
    return RuleVerdict("flagged", rule, why)


def _pass(rule: str, why: str) -> RuleVerdict:
    return RuleVerdict("not_flagged", rule, why)


@dataclass(frozen=True)
class SafeguardRules:
    user: tuple[UserRule, ...] = ()
    disabled: frozenset[str] = frozenset()
    build_output: tuple[str, ...] = DEFAULT_BUILD_OUTPUT

    def check(self, tool: str, data: Any, ctx: Context) -> RuleVerdict:
        data = data if isinstance(data, Mapping) else {}
        subject = subject_of(tool, data)
        for r in self.user:
            if (not r.tools or tool in r.tools) and subject is not None and r.pattern.search(subject):
                return RuleVerdict(r.outcome, f"user:{r.name}", r.explanation or f"Your rule {r.name} decides this.")
        for name, rules in (("deny", ctx.deny), ("hard_deny", ctx.hard_deny), ("soft_deny", ctx.soft_deny)):
            hit = next((r for r in rules if permission_rule_matches(r, tool, subject, ctx)), None)
            if hit:
                return _flag(f"claude:{name}", f"It matches your {name.replace('_', ' ')} rule {hit}.")
        danger = self._danger(tool, data, subject, ctx)
        if danger is not None:
            return danger
        for name, rules in (("allow", ctx.allow), ("auto_mode.allow", ctx.auto_allow)):
            hit = next((r for r in rules if permission_rule_matches(r, tool, subject, ctx)), None)
            if hit:
                return _pass(f"claude:{name}", f"Your allow rule {hit} covers it.")
        if any(permission_rule_matches(r, tool, subject, ctx) for r in ctx.ask):
            return _open("your ask rules cover this call")
        return self._routine(tool, data, subject, ctx)

    def _on(self, name: str) -> bool:
        return name not in self.disabled

    def _danger(self, tool: str, data: Mapping, subject: str | None, ctx: Context) -> RuleVerdict | None:
        if tool in SHELL_TOOLS:
            if not isinstance(subject, str):
                return None
            parsed = parse_shell(subject)
            if not parsed.ok:
                return None
            for name, fn in SHELL_FLAGS[:4]:
                why = fn(parsed.commands, subject, ctx) if self._on(name) else None
                if why:
                    return _flag(f"builtin:{name}", why)
            why = flag_rm_recursive(parsed.commands, subject, ctx, self.build_output) \
                if self._on("rm-recursive") else None
            if why:
                return _flag("builtin:rm-recursive", why)
            name, fn = SHELL_FLAGS[4]
            why = fn(parsed.commands, subject, ctx) if self._on(name) else None
            return _flag(f"builtin:{name}", why) if why else None
        if tool in READ_TOOLS | WRITE_TOOLS and subject:
            path = ctx.resolve(subject)
            if self._on("secrets") and is_secret_path(path):
                return _flag("builtin:secrets", "It reads or changes a file that holds secrets.")
            if tool in WRITE_TOOLS:
                if self._on("disables-safety") and is_safety_path(path):
                    return _flag("builtin:disables-safety", "It changes permission, hook or sandbox settings.")
                if self._on("writes-outside-project") and not ctx.inside_trusted(path):
                    return _flag("builtin:writes-outside-project",
                                 "It writes a file outside the project's trusted directories.")
        return None

    def _routine(self, tool: str, data: Mapping, subject: str | None, ctx: Context) -> RuleVerdict:
        if tool in INTERNAL_TOOLS and self._on("internal-tool"):
            return _pass("builtin:internal-tool", "Claude Code's own bookkeeping; nothing changes on disk.")
        if tool in READ_TOOLS and self._on("project-read"):
            if subject is None or ctx.inside_trusted(subject) or not ctx.block_reads_outside:
                return _pass("builtin:project-read", "It only reads files.")
            return _open("a read outside the working directories, which the user restricted")
        if tool in WRITE_TOOLS and self._on("project-edit"):
            return _pass("builtin:project-edit", "It edits a file inside the project.")
        if tool in SHELL_TOOLS and self._on("routine-shell") and isinstance(subject, str):
            parsed = parse_shell(subject)
            if not parsed.ok:
                return _open(f"the command could not be parsed ({parsed.error})")
            if routine(parsed.commands, ctx):
                return _pass("builtin:routine-shell", "Routine project work (look around, build, test, lint, git).")
            return _open("a command the rules do not know")
        return _open("no rule covers this tool")
