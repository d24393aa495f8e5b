"""Drive an interactive terminal program (the real Claude Code TUI) under tmux, for tests.

    with TmuxSession.start(["claude"], cwd=..., env=...) as tui:
        tui.wait_for("auto mode on")                # bounded poll of the screen, no fixed sleeps
        tui.type("create hello.py and run it")      # waits until the text shows, then Enter
        screen = tui.wait_for("Done", timeout=120)

Each session has its own tmux server (a socket in a temporary directory), so tests never touch
a user's tmux and `close()` ends everything the session started.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from tests.support.debian import ensure_program

__all__ = ["TmuxSession", "ensure_tmux"]


def ensure_tmux() -> str:
    return ensure_program(("tmux",), "tmux", "tmux")


class TmuxSession:
    def __init__(self, tmux: str, socket: Path, tmp: tempfile.TemporaryDirectory):
        self.tmux, self.socket, self._tmp = tmux, socket, tmp

    @classmethod
    def start(cls, argv: Sequence[str], *, cwd: Path | str, env: Mapping[str, str], width: int = 160,
              height: int = 50) -> "TmuxSession":
        """Run `argv` with exactly `env` (nothing inherited) in a detached tmux window."""
        tmux = ensure_tmux()
        tmp = tempfile.TemporaryDirectory(prefix="tr-tmux-")
        socket = Path(tmp.name) / "sock"
        command = shlex.join(["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv])
        # remain-on-exit keeps the last screen readable if the program dies (the test can say why)
        subprocess.run([tmux, "-S", str(socket), "-f", "/dev/null", "new-session", "-d", "-x", str(width),
                        "-y", str(height), "-c", str(cwd), command], check=True, timeout=30)
        subprocess.run([tmux, "-S", str(socket), "set-option", "-g", "remain-on-exit", "on"], timeout=30)
        return cls(tmux, socket, tmp)

    def _run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-S", str(self.socket), *args], capture_output=True, text=True,
                              timeout=30).stdout

    def screen(self) -> str:
        """The visible screen as text (trailing blank lines dropped)."""
        return self._run("capture-pane", "-p", "-t", "0").rstrip()

    def wait_for(self, what: str | Callable[[str], bool], *, timeout: float = 60.0, interval: float = 0.2) -> str:
        """Poll the screen until it contains `what` (or `what(screen)` holds); return that screen.
        Raises AssertionError with the last screen after `timeout` seconds."""
        test = what if callable(what) else (lambda s: what in s)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if test(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {what!r}; the screen shows:\n{screen}")
            time.sleep(interval)

    def keys(self, *keys: str) -> None:
        """tmux key names: Enter, Escape, Down, BTab (shift+tab) …"""
        self._run("send-keys", "-t", "0", *keys)

    def type(self, text: str, *, submit: bool = True) -> None:
        """Type `text` literally; once it is on screen, press Enter."""
        self._run("send-keys", "-t", "0", "-l", text)
        self.wait_for(text[-40:], timeout=20)
        if submit:
            self.keys("Enter")

    def close(self) -> None:
        self._run("kill-server")
        self._tmp.cleanup()

    def __enter__(self) -> "TmuxSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
