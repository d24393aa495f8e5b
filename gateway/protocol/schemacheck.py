"""Check a structured-output answer against the JSON schema the client asked for.

Why: a local model without constrained decoding (mlx_lm.server) answers a schema request with
prose, or with JSON of another shape. Claude Code's title request is coerced into shape
(`coerce_json_text`); any other schema request (`llm --schema`, the SDK's structured
outputs) must get JSON that matches, or an error that says it did not — never prose passed off
as JSON. Pure: text and schema in, verdict out; `jsonschema` is imported on first use.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import orjson

__all__ = ["SchemaProblem", "check_schema", "check_answer", "unwrap_answer", "coerce_json_text"]

TITLE_FALLBACK = "Untitled session"
TITLE_MAX_CHARS = 80
_DECODER = json.JSONDecoder()

_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.S)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S)


class SchemaProblem(ValueError):
    """The schema itself is not a valid JSON schema (a client error, found before any call)."""


def _validator_class(schema: dict) -> Any:
    from jsonschema.validators import validator_for

    return validator_for(schema, default=_default())


@lru_cache(maxsize=1)
def _default() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator


def check_schema(schema: dict) -> None:
    """Raise SchemaProblem when `schema` is not a valid JSON schema."""
    from jsonschema.exceptions import SchemaError

    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise SchemaProblem(f"{exc.message}" + (f" (at {where})" if where else "")) from None


def unwrap_answer(text: str) -> str:
    """The answer without reasoning tags and without one enclosing code fence."""
    t = _THINK.sub("", text).strip()
    m = _FENCE.match(t)
    return m.group(1).strip() if m else t


def check_answer(text: str, schema: dict) -> tuple[str, str | None]:
    """(the JSON text to return, None) when the answer matches `schema`; else (…, why not).

    Deliberately strict — no hunting for an object embedded in prose: a reply that is not JSON
    is reported, not repaired.
    """
    from jsonschema.exceptions import best_match

    t = unwrap_answer(text)
    try:
        value = orjson.loads(t)
    except orjson.JSONDecodeError:
        preview = " ".join(t.split())[:80]
        return t, (f"the answer is not JSON (it begins {preview!r})" if preview else "the answer is empty")
    error = best_match(_validator_class(schema)(schema).iter_errors(value))
    if error is None:
        return t, None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return t, f"the answer does not match the schema at {where}: {error.message}"


def _single_string_key(schema: dict | None) -> str | None:
    """The one string property the schema asks for (e.g. "title"), if there is exactly one."""
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return None
    required = [r for r in schema.get("required") or () if r in props]
    names = required if len(required) == 1 else list(props)
    if len(names) != 1:
        return None
    prop = props[names[0]]
    return names[0] if isinstance(prop, dict) and prop.get("type") == "string" else None


def coerce_json_text(text: str, schema: dict | None) -> str:
    """Make sure a json_schema answer is JSON the client can parse (title generation).

    Keeps a JSON object as sent; else the first embedded ``{...}`` that parses; else, for a
    one-string-field schema, wraps the first line of the text as that field.
    """
    t = unwrap_answer(text)
    try:
        if isinstance(orjson.loads(t), dict):
            return t
    except orjson.JSONDecodeError:
        pass
    start = t.find("{")
    for _ in range(20):
        if start < 0:
            break
        try:
            obj, end = _DECODER.raw_decode(t, start)
        except ValueError:
            pass
        else:
            if isinstance(obj, dict):
                return t[start:end]
        start = t.find("{", start + 1)
    key = _single_string_key(schema)
    if key is None:
        return t or "{}"
    line = next((ln.strip() for ln in t.splitlines() if ln.strip()), "")
    line = re.sub(rf"^(?:[#*>`\"'\s]+)?(?:{re.escape(key)}\s*[:\-]\s*)?", "", line, flags=re.I)
    line = line.strip(" \t*`\"'#")
    if len(line) > TITLE_MAX_CHARS:
        cut = line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0]
        line = cut if len(cut) > TITLE_MAX_CHARS // 2 else line[:TITLE_MAX_CHARS]
    return orjson.dumps({key: line or TITLE_FALLBACK}).decode()
