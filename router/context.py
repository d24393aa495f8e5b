"""What the latest prompt refers to, and whether the conversation already holds it.

Why: a turn without tools can only answer from what is in the conversation. "explain how the
session store in store.py expires entries" is answerable after store.py was read, and a guess
about unseen code before. So the router asks, language-independently: which files, identifiers
and project-scope phrases does the prompt mention (`references`), and does each one already
appear in the conversation — tool inputs, tool results, pasted material, earlier assistant text
(`ConversationText.has`)? System-reminders are ignored: the client adds them, the user did not
show them to the model on purpose.

Pure and cheap: one pass over the messages collects the text pieces (no copies of tool-result
text beyond one join); each reference is one substring search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Refs", "Phrases", "mask", "ConversationText", "references", "conversation_text", "pasted", "prose",
           "strip_code", "PROJECT_SCOPE", "OUR"]

_EXT = (r"py|pyi|js|mjs|cjs|ts|tsx|jsx|go|rs|java|kt|swift|rb|php|c|h|cc|cpp|hpp|cs|sh|bash|zsh|ps1|"
        r"yaml|yml|json|jsonl|toml|ini|cfg|conf|env|lock|md|rst|txt|log|sql|html|css|scss|vue|svelte|"
        r"xml|csv|proto|gradle|tf|ipynb|lua|ex|exs|dart|scala")
# a path with a slash (api/handlers/, src/main.ts, ./run.sh) or a file name with a known extension
_PATH = re.compile(r"(?<![\w/.:-])(?:\.{0,2}/)?(?:[\w.-]+/)+[\w.-]*|(?<![\w/.-])\.?[\w-]+(?:\.[\w-]+)*\.(?:"
                   + _EXT + r")(?![\w-])|(?<![\w/.-])(?:Dockerfile|Makefile|Procfile|Gemfile|\.env|\.gitignore)(?:\.[\w-]+)*(?![\w-])")
_IDENT = re.compile(
    r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\(\)"      # Order.total()
    r"|(?<![\w.])[A-Za-z_]\w*\(\)"                       # main()
    r"|(?<![\w.])[A-Z]\w*\.[a-z_]\w*"                    # Order.total
    r"|(?<![\w.])_*[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+_*(?![\w.])"   # load_settings, __init__
    r"|(?<![\w.])[a-z]+[A-Z]\w*"                         # loadSettings
    r"|(?<![\w.])[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+(?![\w.])",  # OrderService
    re.A)
_TICKS = re.compile(r"`([^`\n]{1,80})`")
# Product and language names that look like identifiers but name nothing in the workspace.
_NOT_IDENT = frozenset(s.lower() for s in (
    "JavaScript", "TypeScript", "GitHub", "GitLab", "PostgreSQL", "MySQL", "MongoDB", "GraphQL", "WebSocket",
    "WebSockets", "FastAPI", "PyTorch", "TensorFlow", "OpenAI", "YouTube", "LinkedIn", "DevOps", "NumPy",
    "iPhone", "iOS", "macOS", "VSCode", "NodeJS", "NextJS", "CoffeeScript", "ClickHouse", "DynamoDB",
    "CloudFront", "PowerShell", "LiteLLM", "HashMap", "ArrayList", "README", "OAuth", "JSON", "gRPC",
    "eBPF", "CPython", "SQLite", "PyPI", "WebAssembly", "AssemblyScript", "RabbitMQ", "ElasticSearch"))
_URL = re.compile(r"\w+://\S+")

# "our" in each language (not the pronoun "nos", only "nos tests" below)
OUR = r"\b(?:our|nuestr[oa]s?|notre|unser(?:e|er|en|em|es)?|noss[oa]s?)"
# Phrases that point at this workspace without naming a file (multilingual; tunable in the YAML).
# "our <anything>" is one: in a coding session "our CI workflow", "nuestros tests", "unserer
# Tasks" are this workspace's.
PROJECT_SCOPE: tuple[str, ...] = (
    "this project", "the project", "this repo", "the repo", "this repository", "the repository",
    "the codebase", "this codebase", "the tests", "the test suite", "this app", "the app",
    "este proyecto", "el proyecto", "el repositorio", "este repositorio", "el código base", "las pruebas",
    "los tests", "esta app", "la app", "esta aplicación", "la aplicación",
    "ce projet", "le projet", "ce dépôt", "le dépôt", "la base de code", "les tests",
    "cette app", "l'app", "cette appli", "l'appli", "cette application", "l'application",
    "dieses projekt", "das projekt", "dieses repo", "das repo", "das repository", "die codebasis", "die tests",
    "diese app", "die app", "dieser app", "der app", "diese anwendung", "die anwendung",
    "este projeto", "o projeto", "o repositório", "este repositório", "a base de código", "os testes",
    "esse app", "este app", "o app", "essa app", "a app", "nessa app", "nesse app", "o aplicativo", "esse aplicativo",
    "este aplicativo", "a aplicação", "essa aplicação", "esta aplicação",
    "这个项目", "本项目", "项目里", "项目中", "代码库", "仓库", "我们的", "测试用例", "这个应用", "这个app", "这个 app",
    "このプロジェクト", "プロジェクト", "リポジトリ", "コードベース", "テストは", "テストが", "うちの", "私たちの", "このアプリ",
    "nos tests", "/" + OUR + r"\s+\w+/",
)
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


class Phrases:
    """Whole-word phrases (any whitespace between words), matched in lower-cased text; CJK
    phrases as plain substrings (no spaces to bound them); `/regex/` entries as given.

    Why not one re.I alternation: with ~100 phrases that costs ~25 µs per prompt; one lookaround
    around a lower-case alternation costs ~2 µs, and this runs on every prompt.
    """

    def __init__(self, entries: Sequence[str]):
        words, cjk, regexes = [], [], []
        for e in sorted(entries, key=len, reverse=True):
            if len(e) >= 2 and e.startswith("/") and e.endswith("/"):
                regexes.append(e[1:-1])
            elif _CJK.search(e):
                cjk.append(re.escape(e.lower()))
            else:
                words.append(r"\s+".join(re.escape(w) for w in e.lower().split()))
        parts = ([r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)"] if words else []) + cjk
        self._plain = re.compile("|".join(parts)) if parts else None
        self._regex = re.compile("|".join(f"(?:{r})" for r in regexes), re.I) if regexes else None

    def search(self, text: str, lowered: str | None = None) -> str | None:
        """The first phrase found in `text` (as written in the text), or None."""
        if self._plain is not None:
            low = lowered if lowered is not None else text.lower()
            m = self._plain.search(low)
            if m:
                return text[m.start():m.end()] if len(low) == len(text) else m.group(0)
        if self._regex is not None:
            m = self._regex.search(text)
            if m:
                return m.group(0)
        return None

    def findall(self, text: str) -> list[str]:
        found = self._plain.findall(text.lower()) if self._plain is not None else []
        return found + (self._regex.findall(text) if self._regex is not None else [])


_SCOPE = Phrases(PROJECT_SCOPE)
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_CODE_LINE = re.compile(r"^(?:\s{2,}\S|\t|[+-]{1}[^+-]|@@|\s*\d+[:\t│|]|\s*(?:at |File \"|Traceback|"
                        r"\d{4}-\d\d-\d\d|\[\d|[A-Z]+\s*\]|[{}()\[\];]|(?:def|class|function|import|from|"
                        r"return|if|for|const|let|var|func|fn|pub|public|#include)\b)|.*[;{}]\s*$)")


@dataclass(frozen=True)
class Refs:
    """References of one prompt: paths/file names, code identifiers, project-scope phrases."""

    paths: tuple[str, ...] = ()
    idents: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()

    @property
    def named(self) -> tuple[str, ...]:
        return self.paths + self.idents


def strip_code(text: str) -> str:
    """`text` without fenced blocks (pasted material is context, not a reference)."""
    return _FENCE.sub(" ", text) if "```" in text else text


def prose(text: str) -> str:
    """What the person wrote, without what they pasted: fenced blocks removed, and where three or
    more lines look like code, a diff or a log, those lines removed too."""
    text = strip_code(text)
    lines = text.splitlines()
    if len(lines) < 3:
        return text
    code = [bool(_CODE_LINE.match(ln)) for ln in lines]
    if sum(code) < 3:
        return text
    return "\n".join(ln for ln, c in zip(lines, code) if not c)


def pasted(text: str) -> bool:
    """Does the prompt carry pasted material — a fence, or several lines of code, diff or log?"""
    if "```" in text:
        return True
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3:
        return False
    return sum(1 for ln in lines if _CODE_LINE.match(ln)) >= 3


def references(text: str, *, scope: Phrases | None = None) -> Refs:
    """References in a human prompt (fenced blocks excluded: pasted text is already context)."""
    text = strip_code(text)
    if "://" in text:
        text = _URL.sub(" ", text)
    paths: list[str] = []
    for m in _PATH.finditer(text):
        p = m.group(0).rstrip(".")
        if p.count("/") == 1 and p.endswith("/") is False and "." not in p and len(p) < 8:
            continue                       # "and/or", "I/O", "yes/no": not paths
        if p.strip("./") and p not in paths:
            paths.append(p)
    idents: list[str] = []
    covered = " ".join(paths)
    for m in _IDENT.finditer(text):
        s = m.group(0)
        if s.lower() in _NOT_IDENT or s in covered or s in idents:
            continue
        idents.append(s)
    for m in _TICKS.finditer(text):
        s = m.group(1).strip()
        if s and " " not in s and s not in idents and s not in paths and s.lower() not in _NOT_IDENT:
            idents.append(s)
    found = (scope or _SCOPE).findall(text)
    return Refs(tuple(paths), tuple(idents), tuple(dict.fromkeys(f.lower() for f in found)))


def mask(text: str, refs: Refs) -> str:
    """`text` with each named reference replaced by "§" (what is asked, not what it is about)."""
    for r in sorted(refs.named, key=len, reverse=True):
        text = text.replace(r, " § ")
    return text


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def _drop_reminders(text: str) -> str:
    """`text` without <system-reminder> blocks (str.find: a lazy regex over a 4 KB reminder is slow)."""
    start = text.find("<system-reminder>")
    if start < 0:
        return text
    kept, pos = [], 0
    while start >= 0:
        kept.append(text[pos:start])
        end = text.find("</system-reminder>", start)
        if end < 0:
            return " ".join(kept)
        pos = end + len("</system-reminder>")
        start = text.find("<system-reminder>", pos)
    kept.append(text[pos:])
    return " ".join(kept)


_EDIT_TOOLS = frozenset(("Edit", "MultiEdit", "Write", "NotebookEdit"))
_OPEN_TOOLS = _EDIT_TOOLS | {"Read"}


@dataclass(frozen=True)
class ConversationText:
    """Everything the model has been shown before the latest prompt, as one searchable string."""

    text: str
    tool_results: int          # tool results so far (a session that has read something)
    assistant_turns: int       # earlier assistant messages
    edits: int = 0             # files the agent edited or wrote so far
    offer: bool = False        # the last assistant text ends in a question ("want me to apply it?")
    opened: tuple[str, ...] = ()   # files whose text the model was shown (Read, Edit, Write)

    @property
    def material(self) -> bool:
        """Is there anything a follow-up could be about?"""
        return self.tool_results > 0 or self.assistant_turns > 0

    def has(self, ref: str) -> bool:
        """Is `ref` in the conversation? Paths also match by their last component."""
        if ref in self.text:
            return True
        r = ref.rstrip("/").lstrip("./")
        if r and r in self.text:
            return True
        if r.endswith("()") and r[:-2] in self.text:
            return True
        base = r.rsplit("/", 1)[-1]
        return bool(base) and base != r and "." in base and base in self.text

    def shown(self, path: str) -> bool:
        """Was the text of file `path` shown (not only its name, in a listing or grep output)?"""
        p = path.rstrip("/").lstrip("./")
        if not p:
            return False
        if "/" in p:
            return any(o.endswith("/" + p) or o == p or o.startswith(p + "/") or ("/" + p + "/") in o
                       for o in self.opened)
        return any(o.rsplit("/", 1)[-1] == p for o in self.opened)


def conversation_text(messages: Sequence[Any], end: int) -> ConversationText:
    """Text of messages[:end] the model saw: tool inputs and results, user text, assistant text."""
    pieces: list[str] = []
    results = answers = edits = 0
    said = ""
    opened: list[str] = []
    for m in messages[:end]:
        if not isinstance(m, dict) or m.get("role") == "system":
            continue
        c = m.get("content")
        assistant = m.get("role") == "assistant"
        answers += assistant
        if isinstance(c, str):
            pieces.append(c if assistant else _drop_reminders(c))
            if assistant and c.strip():
                said = c
            continue
        if not isinstance(c, list):
            continue
        for b in c:
            if not isinstance(b, dict):
                continue
            t = b.get("type")
            if t == "text":
                s = b.get("text") or ""
                pieces.append(s if assistant else _drop_reminders(s))
                if assistant and s.strip():
                    said = s
            elif t == "tool_use":
                tool, args = b.get("name"), b.get("input")
                _strings(args, pieces)
                edits += tool in _EDIT_TOOLS
                if tool in _OPEN_TOOLS and isinstance(args, dict) and isinstance(args.get("file_path"), str):
                    opened.append(args["file_path"])
            elif t == "tool_result":
                results += 1
                _strings(b.get("content"), pieces)
    return ConversationText("\n".join(pieces), results, answers, edits, said.rstrip().endswith(("?", "？")),
                            tuple(opened))
