"""YAML text → plain dicts/lists that remember their 1-based line.

Why: a user edits the routing rules by hand, and an error like "rules[2].when.turn: unknown turn
kind" is only useful with the line it lives on. PyYAML throws marks away after construction, so a
custom constructor keeps them on `LineDict` / `LineList` (subclasses of dict/list, so every other
consumer sees ordinary containers). No file I/O here: callers pass the text and a source name.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["ConfigError", "LineDict", "LineList", "load_yaml", "line_of"]

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A config problem that names where it is: str(e) == "file:line: message"."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source or "<config>"
        self.line = line
        where = f"{self.source}:{line}" if line else self.source
        super().__init__(f"{where}: {message}")


class LineDict(dict):
    """A mapping from YAML: `.line` is where it starts, `.key_lines[key]` where each key is."""

    line: int | None = None
    key_lines: dict

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key_lines = {}


class LineList(list):
    """A sequence from YAML: `.line` is where it starts, `.item_lines[i]` where item i is."""

    line: int | None = None
    item_lines: list

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.item_lines = []


def line_of(node: Any, key: Any = None) -> int | None:
    """Best line for `node[key]` (a dict key or list index), else for `node`, else None."""
    if key is not None:
        if isinstance(node, LineDict) and key in node.key_lines:
            return node.key_lines[key]
        if isinstance(node, LineList) and isinstance(key, int) and 0 <= key < len(node.item_lines):
            return node.item_lines[key]
    return getattr(node, "line", None)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader (C-accelerated when available) whose containers carry line numbers."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Any:
    explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    merged = len(node.value) - explicit       # merged (<<) pairs come first and may be overridden
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    explicit_keys: set = set()
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise ConfigError(f"unhashable mapping key {key!r}", loader.name, line) from None
        if i >= merged:
            if key in explicit_keys:      # YAML forbids this; PyYAML would silently keep the last
                raise ConfigError(f"duplicate key {key!r}", loader.name, line)
            explicit_keys.add(key)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> Any:
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    for child in node.value:
        data.append(loader.construct_object(child, deep=True))
        data.item_lines.append(child.start_mark.line + 1)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str, source: str = "<string>") -> Any:
    """Parse one YAML document; syntax errors become ConfigError("source:line: …")."""
    loader = _Loader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {what}", source, line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", source, None) from None
    finally:
        loader.dispose()
