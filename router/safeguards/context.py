"""What Claude Code tells the server about the session (`classifier_context`), and path helpers.

The rules need to know where the project is (trusted directories), where home is (`~`), what the
user already allowed or denied, and which git branch is checked out. Everything is optional: a
missing field makes the rules more careful, never more permissive (no trusted directory → every
write is "outside").
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Context", "context_of", "permission_rule_matches"]


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(x for x in value if isinstance(x, str)) if isinstance(value, list) else ()


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, Mapping) else None
    return d


@dataclass(frozen=True)
class Context:
    cwd: str | None = None
    home: str | None = None
    trusted: tuple[str, ...] = ()
    block_reads_outside: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    auto_allow: tuple[str, ...] = ()
    soft_deny: tuple[str, ...] = ()
    hard_deny: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    branch: str | None = None
    default_branch: str | None = None
    git_root: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, path: str) -> str:
        """Absolute, normalised path (`~` is the session's home, relative is from cwd)."""
        p = path.strip()
        if p == "~" or p.startswith("~/"):
            p = (self.home or "/nonexistent-home") + p[1:]
        elif not p.startswith("/"):
            p = posixpath.join(self.cwd or "/nonexistent-cwd", p)
        return posixpath.normpath(p)

    def inside_trusted(self, path: str) -> bool:
        p = self.resolve(path)
        return any(p == t or p.startswith(t.rstrip("/") + "/") for t in self.trusted)


def context_of(classifier_context: Any) -> Context:
    """`safeguards[i].classifier_context` (as Claude Code 2.1.331 sends it) → Context."""
    c = classifier_context if isinstance(classifier_context, Mapping) else {}
    td = c.get("trusted_directories") if isinstance(c.get("trusted_directories"), Mapping) else {}
    trusted: list[str] = []
    for entry in [td.get("primary"), *(td.get("additional") or [])]:
        if isinstance(entry, str):
            trusted.append(entry)
        elif isinstance(entry, Mapping):
            trusted += [p for p in [entry.get("path"), *(entry.get("resolved") or [])] if isinstance(p, str)]
    git = c.get("git_state") if isinstance(c.get("git_state"), Mapping) else {}
    rules, auto = c.get("rules") or {}, c.get("auto_mode") or {}
    return Context(
        cwd=c.get("live_cwd") if isinstance(c.get("live_cwd"), str) else None,
        home=c.get("home_dir") if isinstance(c.get("home_dir"), str) else None,
        trusted=tuple(dict.fromkeys(posixpath.normpath(t) for t in trusted if t.startswith("/"))),
        block_reads_outside=bool(td.get("block_reads_outside_working_directories")),
        allow=_strs(_get(rules, "allow")), deny=_strs(_get(rules, "deny")), ask=_strs(_get(rules, "ask")),
        auto_allow=_strs(_get(auto, "allow")), soft_deny=_strs(_get(auto, "soft_deny")),
        hard_deny=_strs(_get(auto, "hard_deny")), environment=_strs(_get(auto, "environment")),
        branch=git.get("branch") if isinstance(git.get("branch"), str) else None,
        default_branch=git.get("default_branch") if isinstance(git.get("default_branch"), str) else None,
        git_root=git.get("root") if isinstance(git.get("root"), str) else None,
        raw=c)


_RULE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\((.*)\))?\s*$", re.S)


def permission_rule_matches(rule: str, tool: str, subject: str | None, ctx: Context) -> bool:
    """Claude Code permission-rule syntax: `Tool`, `Bash(npm test:*)` (prefix), `Bash(git *)`
    (glob over the command), `Read(./.env)` / `Edit(src/**)` (glob over the path),
    `WebFetch(domain:example.com)`. `subject` is the command, path or URL of the call."""
    m = _RULE.match(rule)
    if not m or m.group(1) != tool:
        return False
    spec = m.group(2)
    if spec is None or spec.strip() in ("", "*"):
        return True
    if subject is None:
        return False
    spec = spec.strip()
    if tool == "Bash":
        if spec.endswith(":*"):
            return subject.strip().startswith(spec[:-2])
        return fnmatch.fnmatchcase(subject.strip(), spec)
    if spec.startswith("domain:"):
        host = re.sub(r"^[a-z]+://", "", subject).split("/", 1)[0].split(":", 1)[0]
        want = spec[len("domain:"):]
        return host == want or host.endswith("." + want)
    if spec.startswith("//"):
        spec = spec[1:]
    pattern = ctx.resolve(spec)
    path = ctx.resolve(subject)
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.replace("/**", "/*"))
