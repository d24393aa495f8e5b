"""A shell command line → the simple commands it would run, for the safeguard rules.

Why not regexes over the raw text: `echo "rm -rf /"` is harmless and `x=1; rm -rf ~` is not. The
rules need each *simple command* (argv after assignments and wrappers such as `sudo`, `env`,
`nohup`), whether its input is piped from an earlier command, and where it redirects output.
Command substitutions (`$(…)`, backticks, `<(…)`), subshells and `sh -c '…'` bodies are parsed
recursively, so a download-and-run hidden inside them is seen too.

Anything the tokenizer cannot read (unbalanced quotes) yields `ShellParse(ok=False)`: the rules
then leave the call to the judge instead of guessing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

__all__ = ["Command", "ShellParse", "parse_shell", "SHELLS", "WRAPPERS"]

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish"})
# Prefixes that run the rest of the line as the real command.
WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "time", "nice", "ionice", "timeout", "xargs",
                      "exec", "command", "builtin", "stdbuf", "unbuffer"})
SEPARATORS = frozenset({";", "&&", "||", "&", "\n", "|", "|&"})
REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<", "<<", "<<<", "<>", ">&", "<&"})
MAX_DEPTH = 4
MAX_COMMANDS = 200

_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One simple command: what runs, and how it is connected to its neighbours."""

    argv: tuple[str, ...]                 # after assignments and wrappers; argv[0] is the program
    piped: bool = False                   # its stdin comes from the previous command in a pipeline
    writes: tuple[str, ...] = ()          # output redirection targets (`> f`, `>> f`, `&> f`)
    reads: tuple[str, ...] = ()           # input redirection sources (`< f`)
    assignments: tuple[str, ...] = ()     # `NAME=value` words before the program
    wrappers: tuple[str, ...] = ()        # `sudo`, `env`, … that were peeled off
    nested: bool = False                  # from a $(…), `…`, <(…) or `sh -c` body
    subst: tuple["Command", ...] = ()     # commands inside substitutions among its words

    @property
    def program(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""

    @property
    def args(self) -> tuple[str, ...]:
        return self.argv[1:]


@dataclass(frozen=True)
class ShellParse:
    ok: bool
    commands: tuple[Command, ...] = field(default=())
    error: str = ""


def _substitutions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, body) of each $(…), <(…), >(…) and `…` in raw text (balanced parentheses,
    single quotes respected)."""
    out: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    quote = ""
    while i < n:
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            i += 1
            continue
        if c == "\\":
            i += 2
            continue
        if c == "'" and not quote:
            quote = "'"
        elif c == '"':
            quote = "" if quote == '"' else '"'
        elif c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                break
            out.append((i, end + 1, text[i + 1:end]))
            i = end + 1
            continue
        elif c in "$<>" and i + 1 < n and text[i + 1] == "(":
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            out.append((i, j, text[i + 2:j - 1]))
            i = j
            continue
        i += 1
    return out


def _tokens(text: str) -> list[str]:
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()\n")
    lex.whitespace_split = True
    lex.commenters = "#"
    lex.whitespace = " \t\r"          # newlines separate commands, like `;`
    tokens: list[str] = []
    for tok in lex:
        tokens.append(tok)
    return tokens


def _split_punct(tok: str) -> list[str]:
    """shlex glues runs of punctuation (`;&`, `)|`): split them into the operators bash knows."""
    ops = sorted(SEPARATORS | REDIRECTS | {"(", ")"}, key=len, reverse=True)
    out, i = [], 0
    while i < len(tok):
        for op in ops:
            if tok.startswith(op, i):
                out.append(op)
                i += len(op)
                break
        else:
            out.append(tok[i])
            i += 1
    return out


def _peel(words: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Split leading `NAME=value` words and wrapper programs (with their options) off argv."""
    assigns: list[str] = []
    wrappers: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if _ASSIGN.match(w):
            assigns.append(w)
            i += 1
            continue
        name = w.rsplit("/", 1)[-1]
        if name in WRAPPERS:
            wrappers.append(name)
            i += 1
            # options of the wrapper (`sudo -u x`, `timeout 5`, `nice -n 10`, `env -i`)
            while i < len(words) and (words[i].startswith("-") or (name in ("timeout", "nice") and
                                                                    words[i][:1].isdigit())):
                takes_value = words[i] in ("-u", "-g", "-n", "-C", "-s", "-k", "-I", "-L", "-P")
                i += 2 if takes_value else 1
            continue
        break
    return tuple(words[i:]), tuple(assigns), tuple(wrappers)


def _mask(text: str, depth: int) -> tuple[str, dict[str, list[Command]]]:
    """Replace each substitution by a placeholder word, remembering the commands inside it."""
    found: dict[str, list[Command]] = {}
    if depth >= MAX_DEPTH:
        return text, found
    parts, last = [], 0
    for k, (start, end, body) in enumerate(_substitutions(text)):
        key = f"__subst{depth}_{k}__"
        found[key] = _commands(body, depth + 1, True)
        parts += [text[last:start], key]
        last = end
    return "".join(parts) + text[last:], found


def _commands(text: str, depth: int, nested: bool) -> list[Command]:
    text, found = _mask(text, depth)
    tokens: list[str] = []
    for tok in _tokens(text):
        tokens.extend(_split_punct(tok) if tok and all(c in ";&|<>()\n" for c in tok) else [tok])
    out: list[Command] = []
    words: list[str] = []
    writes: list[str] = []
    reads: list[str] = []
    piped = False

    def flush(next_piped: bool) -> None:
        nonlocal words, writes, reads, piped
        argv, assigns, wrappers = _peel(words)
        inner = [c for w in (*words, *writes, *reads) for key in found if key in w for c in found[key]]
        body = _shell_c_body(argv) if depth < MAX_DEPTH and argv else None
        if body is not None:           # `sh -c 'BODY'`: BODY runs as commands of their own
            inner += _commands(body, depth + 1, True)
        if argv or writes or reads:
            out.append(Command(argv, piped, tuple(writes), tuple(reads), assigns, wrappers, nested, tuple(inner)))
        out.extend(inner)
        words, writes, reads = [], [], []
        piped = next_piped

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("|", "|&"):
            flush(True)
        elif tok in SEPARATORS:
            flush(False)
        elif tok in ("(", ")"):
            flush(piped if tok == "(" else False)
        elif tok in REDIRECTS:
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            if tok in (">&", "<&") or target.startswith("&"):
                pass                                   # fd duplication (2>&1): not a file
            elif tok.startswith("<"):
                if tok == "<":
                    reads.append(target)
            else:
                writes.append(target)
            i += 1
            # a `2` right before `>` is a file descriptor number, not an argument
            if words and words[-1].isdigit():
                words.pop()
        else:
            words.append(tok)
        i += 1
    flush(False)
    return out


def _shell_c_body(argv: tuple[str, ...]) -> str | None:
    if argv[0].rsplit("/", 1)[-1] not in SHELLS:
        return None
    for j, a in enumerate(argv[1:], start=1):
        if a.startswith("-") and "c" in a[1:] and not a.startswith("--") and j + 1 < len(argv):
            return argv[j + 1]
    return None


def parse_shell(text: str) -> ShellParse:
    """Parse a command line; `ok=False` (with the reason) when it cannot be tokenized."""
    if not isinstance(text, str):
        return ShellParse(False, error="command is not a string")
    # line continuations join lines, like the shell does
    text = text.replace("\\\n", " ")
    try:
        commands = _commands(text, 0, False)
    except ValueError as exc:              # shlex: "No closing quotation", "No escaped character"
        return ShellParse(False, error=str(exc))
    if len(commands) > MAX_COMMANDS:
        return ShellParse(False, error=f"more than {MAX_COMMANDS} commands")
    return ShellParse(True, tuple(commands))
