"""Headless Chromium for the live-page tests: found on PATH, or installed from Debian's packages."""

from __future__ import annotations

from tests.support.debian import ensure_program

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def ensure_chromium() -> str:
    return ensure_program(NAMES, "chromium", "headless Chromium")
