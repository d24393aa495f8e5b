"""A program the suite needs, found on PATH or installed from Debian's packages.

The suite's set-up is the README's single test command, so on a clean CI machine (root, apt
available) such a program is installed here, once, like the pinned Claude Code client is. Under
`CI` a missing program fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Sequence

import pytest

__all__ = ["ensure_program"]


def _which(names: Sequence[str]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_program(names: Sequence[str], package: str, what: str) -> str:
    """Path of the first of `names` on PATH, after `apt-get install package` if need be."""
    path = _which(names)
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                       env=env, capture_output=True, timeout=900)
        path = _which(names)
        if path:
            return path
    reason = f"{what} not available (Debian: apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(reason + " — required when CI is set")
    pytest.skip(reason)
