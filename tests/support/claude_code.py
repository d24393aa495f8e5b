"""The real Claude Code CLI, pinned, for end-to-end tests.

``ensure_claude_code()`` installs ``@anthropic-ai/claude-code@2.1.331`` with npm into
``<repo>/.cache/claude-code`` (gitignored) unless it is already there, and returns the path of
the ``claude`` executable.  npm prints ``EBADENGINE`` warnings (the package asks for node >= 22;
this machine has node 20): harmless, the package is a native binary (~400 MB) that node only
copies into place in a postinstall step.  If that postinstall did not run (npm refusing install
scripts), the platform package's binary is returned instead.

``run_claude(claude, base_url, prompt, cwd=..., home=...)`` runs
``claude -p PROMPT --output-format json`` against ``base_url`` with a scratch ``HOME`` and
returns ``(returncode, stdout, stderr, parsed_json_or_None)``.

Running tools in ``-p`` mode (2.1.331, measured against a scripted Messages-API server that
answers the first call with a ``tool_use`` and the second with the ``tool_result`` text it got):

* ``Read`` of a file inside ``cwd`` executes with **no flag**: read-only tools inside the
  working directories need no permission (Claude Code sends ``cat -n``-style text back).
* Anything that needs permission is **denied automatically** in ``-p`` mode, and the run still
  exits 0: the denial goes back to the model as a ``tool_result`` with ``is_error: true``, e.g.
  Bash writing a file: "Output redirection to '…/made.txt' needs approval …"; Read outside
  ``cwd``: "Claude requested permissions to read from /etc/hostname, but you haven't granted it
  yet."
* To allow: ``--allowedTools Bash`` / ``--allowedTools Read`` (comma or space list, patterns
  like ``"Bash(git *)"``) for specific tools (``--allowedTools Read`` also allows reads outside
  ``cwd``); ``--permission-mode acceptEdits`` for Write/Edit in ``cwd``; or
  ``--permission-mode bypassPermissions`` (= ``--dangerously-skip-permissions``) for everything.
* As **root** (this machine), bypassPermissions / --dangerously-skip-permissions exit 1 with
  "--dangerously-skip-permissions cannot be used with root/sudo privileges for security
  reasons" unless ``IS_SANDBOX=1`` is in the environment; ``claude_env`` always sets it.
* ``DEFAULT_TOOL_ARGS = ("--permission-mode", "bypassPermissions")``; ``run_claude`` does not
  add it by itself: pass ``args=DEFAULT_TOOL_ARGS`` when a test needs Bash/Write/Edit.
* ``--tools Read,Bash`` limits the tool list sent to the model (``""`` for none).
* A tool round trip against a local scripted server takes ~0.5 s wall time.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

__all__ = [
    "CLAUDE_CODE_VERSION",
    "CLAUDE_CODE_DIR",
    "DEFAULT_TOOL_ARGS",
    "TEST_API_KEY",
    "ensure_claude_code",
    "claude_env",
    "run_claude",
    "seed_interactive_home",
]

CLAUDE_CODE_VERSION = "2.1.331"
CLAUDE_CODE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "claude-code"
TEST_API_KEY = "sk-test-not-a-secret-0000000000000000"
DEFAULT_TOOL_ARGS: tuple[str, ...] = ("--permission-mode", "bypassPermissions")


def _platform_binary(root: Path) -> Path | None:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    system = {"linux": "linux", "darwin": "darwin"}.get(platform.system().lower())
    if system is None:
        return None
    for suffix in (f"{system}-{arch}", f"{system}-{arch}-musl"):
        p = root / "node_modules" / "@anthropic-ai" / f"claude-code-{suffix}" / "claude"
        if p.is_file():
            return p
    return None


def _version_of(exe: Path) -> str | None:
    try:
        r = subprocess.run(
            [str(exe), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env=claude_env("http://127.0.0.1:9", home=None),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_claude_code(dest: Path | None = None, *, version: str = CLAUDE_CODE_VERSION) -> Path:
    """Install the pinned Claude Code into ``dest`` (default ``<repo>/.cache/claude-code``)
    if it is not there yet; return the path of a working ``claude`` executable.

    Raises ``RuntimeError`` (with npm's output) when npm is missing or the install fails.
    """
    root = Path(dest) if dest is not None else CLAUDE_CODE_DIR
    exe = root / "node_modules" / ".bin" / "claude"
    pkg_json = root / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"

    def installed_version() -> str | None:
        try:
            return json.loads(pkg_json.read_text()).get("version")
        except (OSError, ValueError):
            return None

    if installed_version() != version:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found on PATH; cannot install Claude Code")
        root.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund",
             f"@anthropic-ai/claude-code@{version}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if r.returncode != 0 or installed_version() != version:
            raise RuntimeError(
                f"npm install @anthropic-ai/claude-code@{version} failed (rc={r.returncode})\n"
                f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
            )

    for candidate in (exe, _platform_binary(root)):
        if candidate is not None and candidate.exists():
            v = _version_of(candidate)
            if v and version in v:
                return candidate
    raise RuntimeError(f"Claude Code {version} installed in {root} but no working claude binary")


def claude_env(base_url: str, *, home: Path | str | None, extra_env: dict | None = None) -> dict:
    """The environment for a test run of ``claude``: nothing inherited but PATH and locale."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": TEST_API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HF_HUB_OFFLINE": "1",
        # lets --permission-mode bypassPermissions run as root (refused otherwise)
        "IS_SANDBOX": "1",
    }
    if home is not None:
        env["HOME"] = str(home)
    if extra_env:
        env.update({k: str(v) for k, v in extra_env.items()})
    return env


def seed_interactive_home(home: Path | str, cwd: Path | str, *, api_key: str = TEST_API_KEY) -> None:
    """Pre-seed ``$HOME/.claude.json`` so the interactive TUI starts straight at its prompt.

    Each key was found necessary by removing it (2.1.331): without ``hasCompletedOnboarding`` the
    first start opens the onboarding (a theme picker); without the key's last 20
    characters in ``customApiKeyResponses.approved`` it asks "Detected a custom API key … Do you
    want to use this API key?" (default: No); without ``projects[cwd].hasTrustDialogAccepted`` it
    asks "Is this a project you created or one you trust?" (default: No, exit)."""
    Path(home).mkdir(parents=True, exist_ok=True)
    state = {"hasCompletedOnboarding": True,
             "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
             "projects": {str(cwd): {"hasTrustDialogAccepted": True}}}
    (Path(home) / ".claude.json").write_text(json.dumps(state))


def run_claude(
    claude: Path | str,
    base_url: str,
    prompt: str,
    *,
    cwd: Path | str,
    home: Path | str,
    extra_env: dict | None = None,
    args: Sequence[str] = (),
    timeout: float = 180,
) -> tuple[int, str, str, dict | list | None]:
    """Run ``claude -p PROMPT --output-format json *args`` with stdin closed.

    Returns ``(returncode, stdout, stderr, parsed)`` where ``parsed`` is stdout parsed as JSON
    (``--output-format json`` prints one object with ``result``, ``is_error``, ``num_turns``,
    ``usage`` …; with ``--output-format stream-json --verbose`` each line is parsed and a list is
    returned) or None.  On timeout the return code is 124 and stdout/stderr hold what was read.
    """
    Path(home).mkdir(parents=True, exist_ok=True)
    cmd = [str(claude), "-p", prompt, "--output-format", "json", *args]
    if "--output-format" in args:  # caller chose another format: drop ours
        cmd = [str(claude), "-p", prompt, *args]
    try:
        r = subprocess.run(
            cmd,
            cwd=str(cwd),
            env=claude_env(base_url, home=home, extra_env=extra_env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        def _s(x):
            return x.decode("utf-8", "replace") if isinstance(x, bytes) else (x or "")
        rc, out, err = 124, _s(e.stdout), _s(e.stderr)
    return rc, out, err, _parse(out)


def _parse(out: str) -> dict | list | None:
    text = out.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    items = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            items.append(json.loads(line))
        except ValueError:
            return None
    return items or None
