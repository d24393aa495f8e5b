"""Intent of the latest human prompt: "analysis" (answerable without tools) or "action".

Why: with ~90 % of Claude Code requests carrying tools, "has tools" says nothing. What the user
*asked* does: "explain the retry logic" can be answered by the cached MLX server with tools
stripped; "fix the failing test" needs the tool loop. The sets live in the YAML (`intents:`) so a
user can tune them; entries are plain keywords/phrases (whole word, case-insensitive, any
whitespace between words) or regexes written as `/…/`.

When both sets match, the policy is deliberate and conservative:
  1. an action keyword in *imperative position* wins — at the start of a clause (text start, after
     . ! ? ; : or a newline) or after a connector/request phrase ("and", "then", "please",
     "can you", "could you", "let's", …): "explain this and fix it" → action;
  2. otherwise analysis wins: an action word that is not a command is descriptive
     ("how does the write path work?", "the build is broken, any idea?") → analysis.
Misclassifying an action as analysis strips tools and breaks the turn; the opposite only costs
speed, so rule 1 is generous about what counts as a command. Fenced/inline code is ignored and only the first
`MAX_CHARS` characters are read (pasted logs are full of verbs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

__all__ = ["IntentSets", "Markers", "DEFAULT_MARKERS", "DEFAULT_ANALYSIS", "DEFAULT_ACTION", "DEFAULT_INTENTS", "INTENTS", "MAX_CHARS", "compile_set"]

INTENTS = ("analysis", "action")
MAX_CHARS = 1200

DEFAULT_ANALYSIS: tuple[str, ...] = (
    "explain", "explanation", "why", "what does", "what do", "what is", "what are", "what's",
    "how does", "how do", "how is", "how are", "how come", "review", "summarize", "summarise",
    "summary", "describe", "where is", "where are", "where does", "which", "walk me through",
    "tell me about", "overview", "understand", "analyse", "analyze", "compare", "difference between",
    "is there", "are there", "does it", "should i", "find", "search for", "look for", "look at",
    "show me", "list", "investigate", "what happens", "how many", "/\\?\\s*$/",
)
DEFAULT_ACTION: tuple[str, ...] = (
    "fix", "add", "implement", "refactor", "rename", "run the tests", "run tests", "run the test",
    "run it", "commit", "push", "create", "write", "delete", "remove", "update", "install",
    "edit", "change", "modify", "replace", "move", "make", "build", "generate", "migrate", "upgrade",
    "bump", "set up", "setup", "configure", "deploy", "apply", "revert", "merge", "rebase",
    "debug", "format", "lint", "clean up", "optimize", "optimise", "convert", "port", "scaffold",
    "/\\brun\\s+(?:npm|pnpm|yarn|make|cargo|go|pytest|python|uv|pip)\\b/",
)

# Where an action keyword counts as an imperative (see module docstring, rule 1).
_IMPERATIVE_LEAD = (
    r"(?:^|[.!?;:\n]|\b(?:and|then|also|please|pls|now|so|but|just|first|next|finally|"
    r"can\s+you|could\s+you|would\s+you|will\s+you|can\s+we|let'?s|i\s+want\s+you\s+to|"
    r"i'?d\s+like\s+you\s+to|i\s+want\s+to|we\s+need\s+to|go\s+ahead\s+and|try\s+to|need\s+to|help\s+me)\b)"
    r"[\s,*>\-]*"
)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)


def _entry_regex(entry: str) -> str:
    """One YAML entry → regex source. `/re/` is taken verbatim; anything else is a whole phrase."""
    if len(entry) >= 2 and entry.startswith("/") and entry.endswith("/"):
        return f"(?:{entry[1:-1]})"
    words = [re.escape(w) for w in entry.split()]
    return r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"


def compile_set(entries: Iterable[str], *, where: str = "intents") -> re.Pattern[str] | None:
    """Compile entries into one case-insensitive alternation (one scan finds the earliest hit)."""
    parts = []
    for i, e in enumerate(entries):
        if not isinstance(e, str) or not e.strip():
            raise ValueError(f"{where}[{i}]: must be a non-empty string")
        src = _entry_regex(e.strip())
        try:
            re.compile(src)
        except re.error as exc:
            raise ValueError(f"{where}[{i}]: bad regex {e!r}: {exc}") from None
        parts.append(src)
    return re.compile("|".join(parts), re.I | re.M) if parts else None


@dataclass(frozen=True)
class Markers:
    """Text markers of special turns; configurable under `markers:` in the YAML."""

    compact: tuple[str, ...] = ("Your task is to create a detailed summary of the conversation so far",)
    title: tuple[str, ...] = ("sentence-case title", "generate a title", "generate a concise title",
                              "title for this conversation", "word title")
    subagent: tuple[str, ...] = ("You are an agent for Claude Code",)
    background: tuple[str, ...] = ("quota",)
    # lowercase copies, built once: matching is case-insensitive
    _lc: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lc", {k: tuple(m.lower() for m in getattr(self, k))
                                         for k in ("compact", "title", "subagent", "background")})


DEFAULT_MARKERS = Markers()


@dataclass(frozen=True)
class IntentSets:
    """Compiled analysis/action keyword sets; build once per config (compilation is the cost)."""

    analysis: Sequence[str] = DEFAULT_ANALYSIS
    action: Sequence[str] = DEFAULT_ACTION
    markers: Markers = DEFAULT_MARKERS     # the YAML's `markers:` travel with the intents
    _analysis_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _action_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _imperative_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "analysis", tuple(self.analysis))
        object.__setattr__(self, "action", tuple(self.action))
        an = compile_set(self.analysis, where="intents.analysis")
        ac = compile_set(self.action, where="intents.action")
        object.__setattr__(self, "_analysis_re", an)
        object.__setattr__(self, "_action_re", ac)
        imp = re.compile(_IMPERATIVE_LEAD + f"(?:{ac.pattern})", re.I | re.M) if ac else None
        object.__setattr__(self, "_imperative_re", imp)

    def classify(self, text: str | None) -> str | None:
        """"analysis" | "action" | None for a human prompt (system-reminders already removed)."""
        if not text:
            return None
        text = text[:MAX_CHARS]
        if "`" in text:
            text = _CODE.sub(" ", text)
        a = self._analysis_re.search(text) if self._analysis_re else None
        b = self._action_re.search(text) if self._action_re else None
        if a is None:
            return "action" if b is not None else None
        if b is None:
            return "analysis"
        if self._imperative_re is not None and self._imperative_re.search(text):
            return "action"
        return "analysis"


DEFAULT_INTENTS = IntentSets()
