"""Headless Chromium for the live-page tests: found on PATH, or installed from Debian's packages.

The test suite's set-up is the README's single test command, so on a clean CI machine (root,
apt available) the browser is installed here, once, like the pinned Claude Code client is.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _which() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    path = _which()
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                       env=env, capture_output=True, timeout=900)
        path = _which()
        if path:
            return path
    reason = "headless Chromium not available (Debian: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason + " — required when CI is set")
    pytest.skip(reason)
