"""Built-in judgements of one parsed shell command line (see `router.safeguards.shell`).

Each `flag_*` function returns an explanation (a sentence the user sees under "Blocked by auto
mode") or None; `routine` says whether every command on the line is ordinary project work.
"""

from __future__ import annotations

import posixpath
from typing import Callable, Iterable

from turnroute.router.safeguards.context import Context
from turnroute.router.safeguards.paths import (HARMLESS_WRITES, TEMP_DIRS, TOKEN_RE, is_build_output, is_safety_path,
                                     is_secret_path)
from turnroute.router.safeguards.shell import SHELLS, Command

__all__ = ["SHELL_FLAGS", "routine"]

DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-download"})
INTERPRETERS = SHELLS | frozenset({"python", "python2", "python3", "perl", "ruby", "node", "php", "lua",
                                   "eval", "source", ".", "iex", "pwsh", "powershell", "deno", "bun"})
MUTATORS = frozenset({"rm", "rmdir", "mv", "cp", "tee", "touch", "mkdir", "chmod", "chown", "chgrp", "ln",
                      "truncate", "install", "shred", "unlink", "rsync", "dd"})
LOOKING = frozenset({"ls", "cat", "head", "tail", "less", "more", "grep", "egrep", "fgrep", "rg", "ag", "wc",
                     "echo", "printf", "pwd", "cd", "pushd", "popd", "true", "false", "test", "[", "which",
                     "type", "file", "stat", "du", "df", "tree", "sort", "uniq", "cut", "tr", "diff", "cmp",
                     "basename", "dirname", "realpath", "readlink", "date", "sleep", "awk", "jq", "yq",
                     "column", "nl", "xxd", "od", "hexdump", "md5sum", "sha1sum", "sha256sum", "seq", "uname",
                     "whoami", "id", "hostname", "ps", "env", "printenv", "export", "set", "git-lfs",
                     "mkdir", "touch", "cp", "mv", "rm", "rmdir", "tee", "ln", "chmod", "sed", "find", "xargs"})
BUILDERS = frozenset({"make", "cmake", "ninja", "meson", "cargo", "rustc", "rustfmt", "go", "gofmt", "gcc",
                      "g++", "cc", "clang", "clang++", "javac", "java", "mvn", "gradle", "gradlew", "npm", "pnpm",
                      "yarn", "pytest", "py.test", "tox", "nox", "uv", "pip", "pip3", "poetry", "pdm", "hatch",
                      "ruff", "black", "isort", "flake8", "pylint", "mypy", "pyright", "eslint", "prettier",
                      "tsc", "jest", "vitest", "mocha", "rspec", "bundle", "rake", "dotnet", "swift", "mix",
                      "composer", "phpunit", "shellcheck", "pre-commit", "coverage", "sphinx-build", "mkdocs"})
RUNS_FILES = frozenset({"python", "python3", "node", "bash", "sh", "zsh", "ruby", "perl", "php", "deno", "bun"})
GIT_ROUTINE = frozenset({"status", "diff", "log", "show", "add", "commit", "checkout", "switch", "stash", "fetch",
                         "pull", "push", "tag", "remote", "rev-parse", "ls-files", "blame", "grep", "init",
                         "merge", "restore", "mv", "rm", "describe", "shortlog", "config", "worktree", "branch",
                         "cherry-pick", "reflog", "clone", "submodule", "am", "apply", "format-patch", "bisect"})
# Subcommands of build tools and package managers that reach beyond the machine or the project.
PUBLISHING = frozenset({"publish", "upload", "release", "deploy", "login", "logout", "adduser", "owner", "token",
                        "unpublish", "deprecate", "dist-tag", "yank"})
SHARED_BRANCHES = frozenset({"main", "master", "develop", "development", "trunk", "production", "prod", "release"})


def _paths(c: Command) -> Iterable[str]:
    """Words of a command that look like paths (not options, not URLs)."""
    for a in (*c.args, *c.writes, *c.reads):
        if a and not a.startswith("-") and "://" not in a and not a.startswith("__subst"):
            yield a.split("=", 1)[1] if a.startswith(("if=", "of=")) else a


def _targets(c: Command) -> list[str]:
    """Paths a mutating command changes: all operands, except only the destination of cp/install."""
    ops = [a for a in _paths(c) if a not in c.reads]
    if c.program in ("cp", "install", "rsync") and ops:
        return ops[-1:]
    if c.program == "dd":
        return [a[3:] for a in c.args if a.startswith("of=")]
    if c.program == "sed":
        return ops[1:] if any(a.startswith("-i") or a == "--in-place" for a in c.args) else []
    return ops


def flag_secrets(cmds: tuple[Command, ...], text: str, ctx: Context) -> str | None:
    if TOKEN_RE.search(text):
        return "The command line contains a credential (token, key or password) in plain text."
    for c in cmds:
        for p in _paths(c):
            if is_secret_path(ctx.resolve(p)):
                return f"It reads or sends a file that holds secrets ({posixpath.basename(p.rstrip('/')) or p})."
    return None


def flag_download_and_run(cmds: tuple[Command, ...], text: str, ctx: Context) -> str | None:
    fetched = False
    for c in cmds:
        if c.nested and not c.piped:
            continue
        if not c.piped:
            fetched = False
        if c.program in DOWNLOADERS:
            fetched = True
        elif c.piped and fetched and c.program in INTERPRETERS:
            return "It downloads a script and runs it straight away (download-and-run)."
        if c.program in INTERPRETERS and any(s.program in DOWNLOADERS for s in c.subst):
            return "It runs code fetched from the network without looking at it (download-and-run)."
    return None


def flag_disables_safety(cmds: tuple[Command, ...], text: str, ctx: Context) -> str | None:
    for c in cmds:
        args = set(c.args)
        if args & {"--no-verify", "--dangerously-skip-permissions", "--no-sandbox"}:
            return "It switches off hooks, permission checks or sandboxing."
        if c.program == "git" and any("hookspath" in a.lower() for a in c.args):
            return "It redirects or disables git hooks."
        if (c.program == "setenforce" and "0" in args) or (c.program == "ufw" and "disable" in args) or \
                (c.program == "systemctl" and args & {"stop", "disable", "mask"} and
                 any(x in a for a in args for x in ("apparmor", "firewalld", "auditd", "selinux"))):
            return "It turns off a system security service."
        if c.program in MUTATORS or c.writes or c.program == "sed":
            if any(is_safety_path(ctx.resolve(p)) for p in (*_targets(c), *c.writes)):
                return "It changes permission, hook or sandbox settings."
    return None


def _git(c: Command) -> tuple[str, list[str]]:
    args, i = list(c.args), 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    return (args[i], args[i + 1:]) if i < len(args) else ("", [])


def flag_destructive_git(cmds: tuple[Command, ...], text: str, ctx: Context) -> str | None:
    shared = SHARED_BRANCHES | ({ctx.default_branch} if ctx.default_branch else set())
    for c in cmds:
        if c.program != "git":
            continue
        sub, rest = _git(c)
        flags = {a for a in rest if a.startswith("-")}
        if sub == "push":
            if flags & {"-f", "--force", "--force-with-lease", "--force-if-includes", "--mirror"} or \
                    any(a.startswith(("+", "--force-with-lease=")) for a in rest):
                return "It force-pushes, which rewrites history others may have pulled."
            if flags & {"-d", "--delete", "--prune"} or any(a.startswith(":") for a in rest):
                return "It deletes a branch or tag on the remote."
        if sub == "reset" and "--hard" in flags and (ctx.branch is None or ctx.branch in shared):
            return f"It discards commits and changes on the shared branch {ctx.branch or '(unknown)'} (reset --hard)."
        if sub == "branch" and flags & {"-D", "-d", "--delete"}:
            return "It deletes a git branch."
        if sub == "clean" and any(f.startswith("-") and "f" in f.lstrip("-") for f in flags if not f.startswith("--")):
            return "It deletes every untracked file (git clean -f)."
        if sub in ("filter-branch", "filter-repo") or (sub == "update-ref" and "-d" in flags):
            return "It rewrites or deletes git history."
    return None


def flag_rm_recursive(cmds: tuple[Command, ...], text: str, ctx: Context, build: tuple[str, ...]) -> str | None:
    for c in cmds:
        recursive = c.program == "rm" and any(
            a in ("--recursive", "-r", "-R") or (a.startswith("-") and not a.startswith("--") and
                                                 ("r" in a or "R" in a)) for a in c.args)
        if not recursive:
            continue
        if not _targets(c) or "xargs" in c.wrappers:
            return "It deletes recursively whatever it is fed (xargs or a pipe): nothing limits it to build output."
        for t in _targets(c):
            p = ctx.resolve(t)
            roots = [r for r in ctx.trusted if p.startswith(r.rstrip("/") + "/")]
            if not roots or any(ch in t for ch in "*?[$") or not is_build_output(p, roots[0], build):
                return f"It deletes {t} recursively, which is not build output inside the project."
    return None


def flag_writes_outside(cmds: tuple[Command, ...], text: str, ctx: Context) -> str | None:
    for c in cmds:
        targets = list(c.writes) + (_targets(c) if c.program in MUTATORS or c.program == "sed" else [])
        for t in targets:
            if "$" in t:              # where a variable points is unknown here: not routine (see below)
                continue
            p = ctx.resolve(t)
            if p in HARMLESS_WRITES or ctx.inside_trusted(p) or p.startswith(tuple(d + "/" for d in TEMP_DIRS)):
                continue
            return f"It changes {t}, outside the project's trusted directories."
    return None


def _routine_one(c: Command, ctx: Context) -> bool:
    prog = c.program
    if "sudo" in c.wrappers or "doas" in c.wrappers:
        return False
    if any("$" in t for t in (*c.writes, *(_targets(c) if prog in MUTATORS else ()))):
        return False                  # it changes a path held in a variable: the judge looks
    if prog in ("find",):
        return not ({"-delete", "-exec", "-execdir", "-ok", "-okdir"} & set(c.args))
    if prog in BUILDERS:
        return not PUBLISHING & set(c.args)
    if prog in LOOKING or prog == "":
        return True
    if prog == "git":
        return _git(c)[0] in GIT_ROUTINE
    if prog in RUNS_FILES:
        args = [a for a in c.args if not a.startswith("-")]
        if "-c" in c.args or "-e" in c.args:
            return False
        if prog.startswith("python") and c.args[:1] == ("-m",):
            return len(c.args) > 1 and c.args[1] in ("pytest", "unittest", "pip", "venv", "build", "mypy",
                                                      "ruff", "black", "compileall", "coverage", "tox")
        return bool(args) and ctx.inside_trusted(args[0])
    return c.argv[0].startswith("./") and ctx.inside_trusted(c.argv[0])


def routine(cmds: tuple[Command, ...], ctx: Context) -> bool:
    """Every command is ordinary project work: looking around, building, testing, linting,
    package managers, version control, running the project's own files."""
    return bool(cmds) and all(_routine_one(c, ctx) for c in cmds)


FlagFn = Callable[[tuple[Command, ...], str, Context], "str | None"]
SHELL_FLAGS: tuple[tuple[str, FlagFn], ...] = (
    ("secrets", flag_secrets),
    ("download-and-run", flag_download_and_run),
    ("disables-safety", flag_disables_safety),
    ("destructive-git", flag_destructive_git),
    ("writes-outside-project", flag_writes_outside),
)
