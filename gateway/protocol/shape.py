"""Limits on the shape of client JSON, and short quotes of client values for error messages.

A body that parsed is not yet safe to use: JSON nested ~1,000 deep parses fine but makes every
later recursive step (serialising for token counting, translation, schema validation) raise
``RecursionError``. Such a body is rejected here, before anything else touches it, with a 400
that names the path. An iterative walk: nothing here can itself recurse too deep.
"""

from __future__ import annotations

from typing import Any

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
    """Raise ``ShapeError`` when ``value`` nests deeper than ``max_depth`` or holds too many values."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    nodes = 0
    while stack:
        node, where, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ShapeError(f"the body holds more than {max_nodes} JSON values", path or "body")
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth >= max_depth:
            raise ShapeError(f"nested deeper than {max_depth} levels", short_path(where or "body"))
        for key, child in items:
            if isinstance(child, (dict, list)):
                stack.append((child, join(where, key), depth + 1))
            else:
                nodes += 1
