"""Compact JSON bytes: orjson, falling back to the stdlib for what orjson refuses.

orjson parses up to 1024 levels of nesting but serialises only 254, so a deeply nested tool input
that the gateway accepted would otherwise crash on the way out (and every later turn of the
session, which carries it in its history).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
