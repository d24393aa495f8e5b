"""Which processes are running: for tests that check nothing was left behind."""

from __future__ import annotations

from pathlib import Path

__all__ = ["processes_with"]


def processes_with(text: str) -> list[str]:
    """Command lines (Linux /proc) that contain ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(cmd)
    return found
