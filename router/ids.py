"""Tool-use ids that say which backend minted them — stateless stickiness.

Why: a tool loop (assistant tool_use → user tool_result → …) must stay on the backend that
started it. The client echoes our `tool_use.id` back in every `tool_result`, so encoding the
backend in the id gives stickiness with no shared state: any gateway process (or a restarted one)
reads the origin straight off the request.

Format: "toolu_01" + 4-char tag (blake2b of the backend name, base62) + 20 random base62 chars —
32 chars, the same alphabet as Anthropic's ids. Anthropic's own ids are 30 chars, so an id we did
not mint is never mistaken for ours; a foreign id that happens to be 32 chars matches a tag with
probability ~1/62**4 per backend.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache
from typing import Any, Iterable

__all__ = ["mint_tool_id", "origin_of", "backend_tag", "wrap_tool_id", "unwrap_tool_id"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PREFIX = "toolu_01"
_TAG_LEN = 4
_RAND_LEN = 20
_ID_LEN = len(_PREFIX) + _TAG_LEN + _RAND_LEN
# Wrapped ids (servers that mint their own ids, answering the Messages API natively): the tag,
# then the server's id itself, so the original comes back without any memory. "toolu_w" never
# starts an Anthropic id (those are "toolu_01…"). Ids outside the Messages API's alphabet are
# hex-encoded ("x" marker) so the wrapped id stays a valid tool_use id.
_WRAP = "toolu_w"
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,200}")


@lru_cache(maxsize=256)
def backend_tag(backend: str) -> str:
    """The 4 base62 chars that identify `backend` — stable across processes and restarts."""
    n = int.from_bytes(hashlib.blake2b(backend.encode("utf-8"), digest_size=8,
                                       person=b"turnroute").digest(), "big")
    out = []
    for _ in range(_TAG_LEN):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def mint_tool_id(backend: str) -> str:
    """A fresh tool_use id carrying `backend`'s tag."""
    rand = "".join(secrets.choice(_ALPHABET) for _ in range(_RAND_LEN))
    return f"{_PREFIX}{backend_tag(backend)}{rand}"


def wrap_tool_id(backend: str, original: str) -> str:
    """`original` (a server's own tool_use id) carrying `backend`'s tag; `unwrap_tool_id` reverses it."""
    if _SAFE.fullmatch(original):
        return f"{_WRAP}{backend_tag(backend)}p{original}"
    return f"{_WRAP}{backend_tag(backend)}x{original.encode('utf-8').hex()}"


def unwrap_tool_id(tool_id: Any) -> str | None:
    """The server's original id inside a wrapped id, or None when `tool_id` is not wrapped."""
    if not isinstance(tool_id, str) or not tool_id.startswith(_WRAP) or len(tool_id) < len(_WRAP) + _TAG_LEN + 2:
        return None
    kind, rest = tool_id[len(_WRAP) + _TAG_LEN], tool_id[len(_WRAP) + _TAG_LEN + 1:]
    if kind == "p":
        return rest
    if kind == "x":
        try:
            return bytes.fromhex(rest).decode("utf-8")
        except ValueError:
            return None
    return None


@lru_cache(maxsize=64)
def _tags(backends: tuple[str, ...]) -> dict[str, str]:
    return {backend_tag(b): b for b in backends}


def origin_of(tool_id: str | None, backends: Iterable[str]) -> str | None:
    """The backend that minted `tool_id`, or None (not ours, malformed, or backend since removed)."""
    if not isinstance(tool_id, str):
        return None
    if unwrap_tool_id(tool_id) is not None:
        start = len(_WRAP)
    elif len(tool_id) == _ID_LEN and tool_id.startswith(_PREFIX):
        start = len(_PREFIX)
    else:
        return None
    key = backends if isinstance(backends, tuple) else tuple(sorted(backends))
    return _tags(key).get(tool_id[start:start + _TAG_LEN])
