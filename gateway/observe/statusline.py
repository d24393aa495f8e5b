"""`turnroute statusline`: Claude Code's status line showing which backend answered last.

Claude Code runs the configured command after each assistant message with a JSON object on stdin
(``session_id``, ``model``, ``workspace`` …) and shows the first line it prints. Configure it in
``~/.claude/settings.json``::

    {"statusLine": {"type": "command", "command": "turnroute statusline"}}

It runs often, so it must be fast (< 50 ms): no typer/fastapi/yaml imports, and the log is read
backwards from the end only as far as the session's last line (see ``last_for_session``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from turnroute.gateway.observe.reader import last_for_session
from turnroute.gateway.observe.table import fmt_ms

__all__ = ["statusline_text", "main"]

SEP = " · "


def _render(rec: dict[str, Any]) -> str:
    route = rec.get("route") or ("gateway" if rec.get("endpoint") == "count_tokens" else "?")
    head = f"⇄ {route}"
    if rec.get("fallbacks"):
        head += f" (after {', '.join(map(str, rec['fallbacks']))})"
    parts = [head]
    if rec.get("rule"):
        parts.append(str(rec["rule"]))
    if isinstance(rec.get("latency_ms"), (int, float)):
        parts.append(fmt_ms(rec["latency_ms"]))
    prompt, cached = rec.get("prompt_tokens"), rec.get("cached_tokens")
    if isinstance(prompt, int) and isinstance(cached, int) and prompt > 0:
        parts.append(f"cache {round(100 * cached / prompt)}%")
    status, error = rec.get("status"), rec.get("error")
    if error or (isinstance(status, int) and status >= 400):
        parts.append("✗ " + " ".join(str(x) for x in (status, error) if x is not None))
    if rec.get("tools_stripped"):
        parts.append("tools stripped")
    return SEP.join(parts)


def statusline_text(stdin_json: dict[str, Any] | None, log_path: str | os.PathLike[str]) -> str:
    """One line for the session in ``stdin_json`` (its last request, else the last overall)."""
    session = stdin_json.get("session_id") if isinstance(stdin_json, dict) else None
    rec = None
    try:
        if isinstance(session, str) and session:
            rec = last_for_session(log_path, session)
        if rec is None:
            rec = last_for_session(log_path, None)
    except OSError:
        rec = None
    if rec is None:
        return "turnroute: no requests yet"
    return _render(rec)


def main(log_path: str | os.PathLike[str]) -> int:
    """Read Claude Code's JSON from stdin (if any), print the line; never fails loudly."""
    data: dict[str, Any] | None = None
    try:
        if not sys.stdin.isatty():
            raw = sys.stdin.read()
            parsed = json.loads(raw) if raw.strip() else None
            data = parsed if isinstance(parsed, dict) else None
    except (ValueError, OSError):
        data = None
    try:
        line = statusline_text(data, log_path)
    except Exception as exc:  # a broken status line must not spam Claude Code with tracebacks
        line = f"turnroute: {type(exc).__name__}"
    sys.stdout.write(line + "\n")
    return 0

