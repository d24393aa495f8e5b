"""The `needs` verdict: can this prompt be answered from what is already in the conversation?

    context    everything it refers to is in the conversation, or the material is pasted in the
               prompt, or it is a follow-up about what was just read, changed or said
    workspace  it refers to something not yet seen, asks to find/search/list/open/check something,
               or asks about the project on a session that has read nothing
    none       general knowledge, nothing about this workspace
    change     edit/run/commit/install… in any phrasing, including "ok, apply it", "ship it"

Why this question and not "analysis or action": a tool-free turn (the cached MLX route) can only
answer from the conversation; "explain store.py" before store.py was read is a workspace turn.

Structure decides first (language-independent: references and whether they were seen, pasted
material, whether the session has anything yet); the *act* of the prompt (change / search / look /
ask / general) comes from the YAML's word lists when one matches, else from the small classifier
in router.needs_model, which reads the prompt and its situation (`situation`). A wrong tool-free
guess breaks the turn while a wrong tool guess only costs speed, so a prompt the classifier is
unsure about leans to the tools: a change probability of `CHANGE_FLOOR` makes it a change, a
search-or-look probability of `SEARCH_FLOOR` a search or look (the floors are chosen by
cross-validation over the session files: docs/needs.md). A file the conversation has not shown
sends a question to the tools, unless the classifier is `GENERAL_SURE` that it is general
knowledge and the file is named the way a framework's docs name one, by its bare name ("a Voter,
or a rule in security.yaml?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from turnroute.router.context import (OUR, PROJECT_SCOPE, ConversationText, Phrases, Refs, conversation_text,
                                      mask, pasted, prose, references)
from turnroute.router.language import language
from turnroute.router.needs_model import Model, load_model

__all__ = ["NEEDS", "Needs", "NeedsSets", "DEFAULT_NEEDS_SETS", "assess", "read", "Reading", "classifier_text",
           "situation", "CHANGE_FLOOR"]

NEEDS = ("context", "workspace", "none", "change")
CHANGE_FLOOR = 0.25
SEARCH_FLOOR = 0.08
GENERAL_FLOOR = 0.5          # below it, "general" is read as a question about this workspace
GENERAL_SURE = 0.95          # at or above it, a general question may name a file it has not shown



# Word lists that override the classifier (first list that matches wins, in ACTS order). Short on
# purpose: the classifier handles ordinary phrasing; these are the phrases it must never miss.
DEFAULT_CHANGE: tuple[str, ...] = (
    "go ahead", "ship it", "apply it", "apply that", "apply the fix", "make it so", "yes, do that",
    "commit it", "lgtm, merge", "hazlo", "aplícalo", "vas-y", "applique-le", "fais-le",
    "mach das", "mach es", "leg los", "pode fazer", "aplica isso", "manda ver", "就这么改", "照这样改", "动手吧",
    "そのまま適用", "やってください", "進めてください")
DEFAULT_SEARCH: tuple[str, ...] = ()
DEFAULT_ASK: tuple[str, ...] = ()
DEFAULT_GENERAL: tuple[str, ...] = ()
WORD_ACTS = ("change", "search", "ask", "general")     # the acts the YAML's word lists can name


@dataclass(frozen=True)
class NeedsSets:
    """The YAML's `needs:` word lists (overrides of the classifier) and project-scope phrases."""

    change: Sequence[str] = DEFAULT_CHANGE
    search: Sequence[str] = DEFAULT_SEARCH
    ask: Sequence[str] = DEFAULT_ASK
    general: Sequence[str] = DEFAULT_GENERAL
    scope: Sequence[str] = PROJECT_SCOPE
    _res: tuple = field(init=False, repr=False, compare=False)
    _scope: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for k in ("change", "search", "ask", "general", "scope"):
            object.__setattr__(self, k, tuple(getattr(self, k)))
        object.__setattr__(self, "_res", tuple((a, Phrases(getattr(self, a))) for a in WORD_ACTS if getattr(self, a)))
        object.__setattr__(self, "_scope", Phrases(self.scope))

    def word(self, text: str) -> tuple[str, str] | None:
        """(act, matched words) from the override lists, if any matches."""
        low = text.lower()
        for act, phrases in self._res:
            hit = phrases.search(text, low)
            if hit:
                return act, hit
        return None

    def model(self) -> Model:
        return load_model()


DEFAULT_NEEDS_SETS = NeedsSets()


@dataclass(frozen=True)
class Needs:
    verdict: str
    act: str
    act_by: str                    # "words 'ship it'" | "classifier 0.87"
    seen: tuple[str, ...]
    unseen: tuple[str, ...]
    scope: tuple[str, ...]
    pasted: bool
    language: str
    why: str                       # the structural reason for the verdict

    def evidence(self) -> str:
        """One line for `route --explain` and the log's reason."""
        refs = []
        if self.unseen:
            refs.append("unseen " + ", ".join(self.unseen[:4]))
        if self.seen:
            refs.append("seen " + ", ".join(self.seen[:4]))
        if self.scope:
            refs.append("scope " + ", ".join(self.scope[:2]))
        extra = "; ".join(refs + (["pasted"] if self.pasted else []))
        return f"{self.verdict}: {self.why} (act {self.act} by {self.act_by}; lang {self.language}" \
               + (f"; {extra}" if extra else "") + ")"


def classifier_text(prompt: str, refs: Refs) -> str:
    """What the act classifier reads: the prompt without what it pastes, references masked."""
    text = prose(prompt)
    return mask(text if text.strip() else prompt, refs)


def situation(conv: ConversationText, refs: Refs, seen: Sequence[str], unseen: Sequence[str],
              has_paste: bool) -> tuple[str, ...]:
    """What the classifier is told about the conversation besides the prompt's words ("and for
    Postgres?" is general after a general answer and a question about the code after a Read):
    what the session holds, whether the prompt's references were seen, pasted material."""
    tags = ["x:tools" if conv.tool_results else "x:chat" if conv.assistant_turns else "x:fresh"]
    if conv.edits:
        tags.append("x:edited")
    if conv.offer:
        tags.append("x:offer")
    if seen:
        tags.append("x:seen")
    if any(r in refs.paths and not conv.shown(r) for r in seen):
        tags.append("x:listed")         # a file named in a listing or a grep hit, its text not shown
    if any(r in refs.paths for r in unseen):
        tags.append("x:unseen-path")
    elif unseen:
        tags.append("x:unseen")
    if not refs.named:
        tags.append("x:norefs")
    if has_paste:
        tags.append("x:pasted")
    if refs.scope:
        tags.append("x:scope")
    return tuple(tags)


def _act(text: str, sets: NeedsSets, tags: Sequence[str] = (), files_shown: bool = False) -> tuple[str, str, float]:
    """The act, what decided it, and the classifier's confidence in it (0 for a word list: it
    names the act, not how sure anyone is that a file is only named in passing). Unsure leans to
    the side that keeps the tools: a change probability of `CHANGE_FLOOR` is enough for a change,
    then `SEARCH_FLOOR` for a search, and general knowledge needs `GENERAL_FLOOR`. `files_shown`:
    the prompt names only files whose text the conversation shows, so a look is an ask."""
    hit = sets.word(text)
    if hit is not None:
        return hit[0], f"words {hit[1]!r}", 0.0
    model = sets.model()
    act, p, probs = model.predict(text, tags)
    if act != "change" and probs["change"] >= CHANGE_FLOOR:
        return "change", f"classifier unsure (change {probs['change']:.2f}, {act} {p:.2f})", probs["change"]
    shown = "x:seen" in tags and not {"x:listed", "x:unseen", "x:unseen-path"} & set(tags)
    # "explain how store.py expires entries" after store.py was read: its text is right there,
    # so a doubt about needing to look is not enough to send it to the tools
    look = probs["search"] + (0.0 if shown else probs["look"])
    why = ""
    if act == "look" and files_shown:
        # it names only files whose text the conversation shows: what it asks to look at is there
        act, p, why = "ask", probs["ask"], f" (look {probs['look']:.2f} at files the conversation shows)"
    if act in ("ask", "general") and look >= SEARCH_FLOOR:
        best = "search" if shown or probs["search"] >= probs["look"] else "look"
        return best, f"classifier unsure (search/look {look:.2f}, {act} {p:.2f})", look
    if act == "general" and p < GENERAL_FLOOR:
        return "ask", f"classifier unsure (general {p:.2f}, ask {probs['ask']:.2f})", probs["ask"]
    return act, f"classifier {p:.2f}{why}", p


_OURS = re.compile(OUR + r"\s+((?:[^\W\d_][\w-]*\s*){1,3})", re.I)
_OF = frozenset("de del des du da do dos das of".split())


def ours(text: str) -> tuple[str, ...]:
    """What "our …" names, in each language: the first word after it, and the word after "de"/"of"
    in the next two ("our nightly sync worker" → nightly; "nuestro spider de rentals" → spider,
    rentals)."""
    words: list[str] = []
    for m in _OURS.finditer(text):
        span = [w for w in re.split(r"[\s-]+", m.group(1).lower()) if w]
        picked = span[:1] + [b for a, b in zip(span, span[1:]) if a in _OF]
        words += [w for w in picked if len(w) >= 3 and w not in words]
    return tuple(words)


def _unmentioned(prompt: str, conv: ConversationText) -> bool:
    """Does the prompt ask about "our <something>" the conversation has not mentioned at all?
    ("does our returns page load its data the same way?" after the orders pages were read.)"""
    words = ours(prose(prompt))
    if not words:
        return False
    low = conv.text.lower()
    return any(w not in low for w in words)


@dataclass(frozen=True)
class Reading:
    """What the router reads off one prompt in its conversation, before deciding anything."""

    conv: ConversationText
    refs: Refs
    pasted: bool
    seen: tuple[str, ...]
    unseen: tuple[str, ...]
    text: str                      # what the act classifier reads
    tags: tuple[str, ...]          # the situation it reads it in


def read(prompt: str, messages: Sequence[Any], end: int, *, sets: NeedsSets = DEFAULT_NEEDS_SETS) -> Reading:
    """References, whether each was seen, pasted material, and the classifier's input."""
    conv = conversation_text(messages, end)
    refs = references(prompt, scope=sets._scope)
    has_paste = pasted(prompt)
    if has_paste:                                  # what the prompt pastes counts as shown
        conv = replace(conv, text=conv.text + "\n" + prompt)
    seen = tuple(r for r in refs.named if conv.has(r))
    unseen = tuple(r for r in refs.named if r not in seen)
    return Reading(conv, refs, has_paste, seen, unseen, classifier_text(prompt, refs),
                   situation(conv, refs, seen, unseen, has_paste))


def assess(prompt: str, messages: Sequence[Any], end: int, *, sets: NeedsSets = DEFAULT_NEEDS_SETS) -> Needs:
    """The verdict for `prompt` given the conversation `messages[:end]` before it."""
    r = read(prompt, messages, end, sets=sets)
    conv, refs, has_paste, seen, unseen = r.conv, r.refs, r.pasted, r.seen, r.unseen
    files_shown = bool(refs.paths) and set(refs.named) == set(refs.paths) and all(map(conv.shown, refs.paths))
    act, by, sure = _act(r.text, sets, r.tags, files_shown)
    lang = language(prompt)

    def out(verdict: str, why: str) -> Needs:
        return Needs(verdict, act, by, seen, unseen, refs.scope, has_paste, lang, why)

    if act == "change":
        return out("change", "asks for a change")
    files = [r for r in unseen if r in refs.paths]
    # "a Voter, or a rule in security.yaml?" names a file the way the framework's docs do: by its
    # bare name; "src/models/order.js" is a path into this workspace, however general it sounds
    docs_file = sure >= GENERAL_SURE and not any("/" in f or "\\" in f for f in files)
    if act == "general" and not refs.scope and (not files or docs_file):
        # "when would I reach for useReducer?" names an API, not a file of this workspace
        return out("none", "general knowledge" + (" (names a file as the docs do)" if files
                                                  else " (names APIs, no file)" if unseen else ""))
    if unseen:
        return out("workspace", "refers to something not in the conversation")
    if act == "search":
        return out("workspace", "asks to find, list or open something")
    if act == "look":
        return out("workspace", "asks about what the conversation does not show")
    if has_paste:
        return out("context", "the material is pasted in the prompt")
    if seen:
        return out("context", "everything it refers to is in the conversation")
    if refs.scope:
        if conv.tool_results and _unmentioned(prompt, conv):
            return out("workspace", "about a part of the project the conversation has not mentioned")
        if conv.tool_results:
            return out("context", "about the project, after the session has read it")
        return out("workspace", "about the project, on a session that has read nothing")
    if conv.material:
        return out("context", "a follow-up on the conversation")
    return out("workspace", "refers to something, on a session that has nothing yet")
