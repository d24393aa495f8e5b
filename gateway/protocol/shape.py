"""Limits on the shape of client JSON, and short quotes of client values for error messages.

A body that parsed is not yet safe to use: JSON nested ~1,000 deep parses fine but makes every
later recursive step (serialising for token counting, translation, schema validation) raise
``RecursionError``. Such a body is rejected here, before anything else touches it, with a 400
that names the path. An iterative walk: nothing here can itself recurse too deep.
"""

from __future__ import annotations

from typing import Any

import orjson

# Real Claude Code bodies nest ~12 deep, but a tool's input is the model's JSON and may nest a few
# hundred levels legitimately. The stdlib serialisers the pipeline falls back to recurse once per
# level under Python's limit of 1,000 frames (~980 failed), so 512 leaves room on both sides.
MAX_DEPTH = 512
# A 32 MiB body of real conversation holds a few hundred thousand JSON values; a body built only
# of empty arrays holds millions and would keep the validator busy for seconds.
MAX_NODES = 1_000_000
# A client's JSON schema is validated by jsonschema, which recurses several frames per level:
# 64 levels (32 nested subschemas, far beyond any real structured-output schema) stay safe.
SCHEMA_MAX_DEPTH = 64
QUOTE_CHARS = 200
# orjson serialises at most this many levels: a body it serialises is shallower than MAX_DEPTH.
_ORJSON_DEPTH = 254

class ShapeError(ValueError):
    """A body or schema whose shape the gateway refuses; ``path`` names where (dotted)."""

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of a client value cut to ``limit`` characters, so an error never echoes a megabyte."""
    if isinstance(value, (dict, list)):
        text = f"<{type(value).__name__} of {len(value)}>"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def join(path: str, key: Any) -> str:
    """``path.key`` with the key cut short (object keys are client text of any length)."""
    k = str(key)
    if len(k) > 40:
        k = k[:40] + "…"
    return f"{path}.{k}" if path else k


def short_path(path: str, limit: int = QUOTE_CHARS) -> str:
    return path if len(path) <= limit else path[: limit // 2] + " … " + path[-limit // 2:]


def check_shape(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH,
                max_nodes: int = MAX_NODES) -> None:
    """Raise ``ShapeError`` when ``value`` nests deeper than ``max_depth`` or holds too many values.

    Runs on every request (an 80 KB Claude Code body holds tens of thousands of values), so it
    walks level by level and builds no paths; only a body that fails is walked again to name
    where (``_locate``).
    """
    if max_depth >= _ORJSON_DEPTH and max_nodes >= _quick_size(value):
        return
    level = [value] if isinstance(value, (dict, list)) else []
    nodes = 1
    depth = 0
    while level:
        if depth >= max_depth:
            raise ShapeError(f"nested deeper than {max_depth} levels", short_path(_locate(value, path, max_depth)))
        deeper: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            nodes += len(children)
            if nodes > max_nodes:
                raise ShapeError(f"the body holds more than {max_nodes} JSON values", path or "body")
            deeper += [c for c in children if isinstance(c, (dict, list))]
        level = deeper
        depth += 1


def _quick_size(value: Any) -> int:
    """An upper bound on the values in ``value`` from one C-speed serialisation (each value takes
    at least one byte), or "too many" when orjson refuses it — it serialises at most 254 levels."""
    try:
        return len(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):
        return MAX_NODES + 1


def _locate(value: Any, path: str, max_depth: int) -> str:
    """The path of the first container at depth ``max_depth`` (only called on a failing body)."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth >= max_depth:
            return where or "body"
        items: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, (dict, list)):
                stack.append((child, join(where, key), depth + 1))
    return path or "body"
