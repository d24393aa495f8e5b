"""The request record: the fixed set of keys every log line carries, and their redaction.

Why a fixed schema: a reader (`turnroute logs`, /ui, a user's jq) can rely on every key being
present, unknown values are JSON null (never a fake 0: a backend that does not report cached tokens
must not look like a 0 % cache hit), and a typo in a key fails in tests instead of producing a
column nobody reads. Every line passes `redact()`: unknown keys are dropped and secret-looking
strings scrubbed — defence in depth, since the pipeline never puts a header or key in a record.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any

__all__ = ["SCHEMA_KEYS", "OPTIONAL_KEYS", "LogRecord", "new_record", "redact", "utc_ts", "scrub",
           "add_known_secret"]

#: Keys every line carries, in output order (JSON null when unknown).
SCHEMA_KEYS: tuple[str, ...] = (
    "ts", "id", "endpoint", "session", "model", "turn", "intent", "rule", "reason", "route",
    "backend_model", "fallbacks", "stream", "tools", "tools_stripped", "est_tokens",
    "prompt_tokens", "cached_tokens", "uncached_tokens", "output_tokens", "ttft_ms",
    "latency_ms", "status", "error", "error_message", "stop_reason",
)
#: Keys allowed but only present when set (prompt text: only when the user opted in).
OPTIONAL_KEYS: tuple[str, ...] = ("prompt", "notes", "safeguards", "needs")
_ALLOWED = frozenset(SCHEMA_KEYS) | frozenset(OPTIONAL_KEYS)

#: A log record is a plain dict (cheap to build, to serialise and to hand to /api/recent).
LogRecord = dict[str, Any]

# Secret-looking substrings. Replacement keeps the label so a reader knows something was removed.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{4,}"), "Bearer [redacted]"),
    (re.compile(r"(?i)\b(x-api-key|api[_-]?key|authorization|access[_-]?token|secret)"
                r"(\"?\s*[:=]\s*\"?)[^\s\"',;}]+"), r"\1\2[redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), "sk-[redacted]"),
    (re.compile(r"\b(?:ghp|gho|github_pat|xox[abp]|AKIA)[A-Za-z0-9_-]{10,}"), "[redacted]"),
)


def utc_ts(t: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` (sortable as text, parseable by fromisoformat)."""
    dt = datetime.fromtimestamp(time.time() if t is None else t, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def note_first_token(record: LogRecord, t0: float) -> None:
    """Set `ttft_ms` (from `t0`, a perf_counter reading) the first time content is seen."""
    if record.get("ttft_ms") is None:
        record["ttft_ms"] = round((time.perf_counter() - t0) * 1000, 2)


def new_record(**known: Any) -> LogRecord:
    """A record with every schema key present (None when unknown); ``ts`` defaults to now.

    Raises ``TypeError`` for a key outside the schema: a typo should fail in tests, not silently
    produce a column nobody reads.
    """
    unknown = set(known) - _ALLOWED
    if unknown:
        raise TypeError(f"unknown log record keys: {sorted(unknown)}")
    rec: LogRecord = dict.fromkeys(SCHEMA_KEYS)
    rec["fallbacks"] = []
    rec["ts"] = utc_ts()
    rec.update(known)
    return rec


# Secret values the gateway itself holds (backend keys read from the environment): scrubbed
# verbatim wherever they appear, whatever their format — a backend that echoes the key it was sent
# in an error message must not put it in a log line or a response. Bounded: one per backend.
_KNOWN: set[str] = set()
_KNOWN_MAX = 64


def add_known_secret(value: str | None) -> None:
    if value and len(value) >= 8 and len(_KNOWN) < _KNOWN_MAX:
        _KNOWN.add(value)


def scrub(text: str) -> str:
    """`text` with known secret values and secret-looking substrings replaced."""
    for secret in _KNOWN:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


#: Longest string and list a line keeps: a client value echoed in an error can be megabytes, and
#: one such line must not rotate every earlier line away nor bloat what /ui polls.
MAX_FIELD_CHARS = 2000
MAX_LIST_ITEMS = 32


def _scrub_cut(text: str) -> str:
    """Scrub, then cut: cutting first could leave half a secret that no pattern recognises."""
    if len(text) <= MAX_FIELD_CHARS:
        return scrub(text)
    return scrub(text[:4 * MAX_FIELD_CHARS])[:MAX_FIELD_CHARS] + f"… ({len(text)} chars)"


def _clean(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return _scrub_cut(value)
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value[:MAX_LIST_ITEMS]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # Anything else (dicts, objects) has no place in the fixed schema: stringify and scrub, so the
    # line still serialises and no nested header dict can smuggle a key through.
    return _scrub_cut(str(value))


def redact(record: LogRecord) -> LogRecord:
    """A copy with only schema keys (in schema order) and secret-looking strings scrubbed."""
    out: LogRecord = {k: _clean(record.get(k)) for k in SCHEMA_KEYS}
    if out["fallbacks"] is None:
        out["fallbacks"] = []
    for k in OPTIONAL_KEYS:
        if record.get(k) is None:
            continue
        if k == "safeguards":     # one verdict per tool call: flat dicts of scalars
            out[k] = [{str(n): _clean(v) for n, v in d.items()} for d in record[k] if isinstance(d, dict)]
        else:
            out[k] = _clean(record[k])
    return out


