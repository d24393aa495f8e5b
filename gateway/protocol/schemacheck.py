"""Check a structured-output answer against the JSON schema the client asked for.

Why: a local model without constrained decoding (mlx_lm.server) answers a schema request with
prose, or with JSON of another shape. Claude Code's title request is coerced into shape
(`stream.coerce_json_text`); any other schema request (`llm --schema`, the SDK's structured
outputs) must get JSON that matches, or an error that says it did not — never prose passed off
as JSON. Pure: text and schema in, verdict out; `jsonschema` is imported on first use.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

__all__ = ["SchemaProblem", "check_schema", "check_answer", "unwrap_answer"]

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
