"""The Anthropic request's vocabulary, read once: the one home for "what text does this carry".

Both the router (features) and the translation read the same facts of a request — the billing
header, the JSON schema asked for, the text of a message's content, system-reminders — so they are
defined here, at the bottom of the layering (protocol ← router ← edge), and nowhere else.

`RequestView` is built once per request by the edge: the parsed body plus the serialised system
prompt and tools (40–80 KB in a Claude Code request, byte-identical across a session) and their
digest. Token counting keys its memo on that digest and the translation keys its memoised system
and tool translations on those bytes, so the prefix is serialised once per request, not per user.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .jsonfast import dumps

__all__ = ["BILLING_PREFIX", "RequestView", "json_schema_of", "parse_billing_header", "strip_reminders",
           "text_pieces", "joined_text"]

BILLING_PREFIX = "x-anthropic-billing-header:"
_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|$)", re.S)


def text_pieces(content: Any) -> list[str]:
    """The text of one message's content (a string, or its text blocks); other blocks excluded."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [b.get("text") or "" for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return []


def joined_text(content: Any) -> str:
    """Text content as one string: blocks joined with a blank line, empty blocks skipped — the
    same bytes whether the client sent a string or [text] blocks, so a rendered prompt is stable."""
    if isinstance(content, str):
        return content
    return "\n\n".join(t for t in text_pieces(content) if t)


def strip_reminders(text: str) -> str:
    """Text without <system-reminder>…</system-reminder> blocks, trimmed."""
    if "<system-reminder>" in text:
        text = _REMINDER.sub("", text)
    return text.strip()


def json_schema_of(body: dict) -> dict | None:
    """The JSON schema of ``output_config.format`` (or legacy ``output_format``), if any."""
    config = body.get("output_config")
    fmt = (config.get("format") if isinstance(config, dict) else None) or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"]
    return None


def _header_fields(text: str) -> dict:
    out: dict = {}
    for part in text[len(BILLING_PREFIX):].split(";"):
        key, sep, value = part.partition("=")
        key = key.strip()
        if key:
            out[key] = value.strip() if sep else ""
    return out


def parse_billing_header(system: Any) -> dict:
    """Fields of the ``x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;`` block, from a
    system string, a list of system blocks, or the header line itself ({} when absent)."""
    if isinstance(system, str):
        first = system.split("\n", 1)[0]
        return _header_fields(first) if first.startswith(BILLING_PREFIX) else {}
    if isinstance(system, list):
        for block in system:
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, str) and text.startswith(BILLING_PREFIX):
                return _header_fields(text)
    return {}


@dataclass(frozen=True)
class RequestView:
    """One parsed request and its serialised prefix, shared by features, token counting and
    translation (see the module docstring)."""

    body: dict
    system_bytes: bytes
    tools_bytes: bytes
    prefix_digest: bytes

    @classmethod
    def of(cls, body: dict) -> "RequestView":
        system, tools = body.get("system"), body.get("tools")
        sb = dumps(system) if system else b""
        tb = dumps(tools) if tools else b""
        digest = hashlib.blake2b(sb + b"\0" + tb, digest_size=16).digest()
        return cls(body, sb, tb, digest)
