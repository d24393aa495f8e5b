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
import secrets
from functools import lru_cache
from typing import Iterable

__all__ = ["mint_tool_id", "origin_of", "backend_tag"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PREFIX = "toolu_01"
_TAG_LEN = 4
_RAND_LEN = 20
_ID_LEN = len(_PREFIX) + _TAG_LEN + _RAND_LEN


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


@lru_cache(maxsize=64)
def _tags(backends: tuple[str, ...]) -> dict[str, str]:
    return {backend_tag(b): b for b in backends}


def origin_of(tool_id: str | None, backends: Iterable[str]) -> str | None:
    """The backend that minted `tool_id`, or None (not ours, malformed, or backend since removed)."""
    if not isinstance(tool_id, str) or len(tool_id) != _ID_LEN or not tool_id.startswith(_PREFIX):
        return None
    key = backends if isinstance(backends, tuple) else tuple(sorted(backends))
    return _tags(key).get(tool_id[len(_PREFIX):len(_PREFIX) + _TAG_LEN])
