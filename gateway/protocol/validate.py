"""Validate an Anthropic Messages request body, naming the exact field on failure.

Claude Code does not retry a 400 and shows its message to the user, so the message must point
at the offending field (``messages.2.content.0.type: …``). Plain loops, no pydantic: this runs
on every request against ~100 KB bodies. Unknown top-level fields are accepted and ignored.

Every value is type-checked before it is used (a list where a string belongs must be a 400, not
a ``TypeError``), the body's nesting and size are bounded first, and a message quotes at most
~200 characters of what the client sent.
"""

from __future__ import annotations

from typing import Any

from .schemacheck import SchemaProblem, check_schema
from .shape import SCHEMA_MAX_DEPTH, ShapeError, check_shape, quote

ROLES = frozenset({"user", "assistant", "system"})
# Block types a client may legitimately send back; the translator drops the ones it cannot use.
BLOCK_TYPES = frozenset({
    "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "search_result",
    "container_upload", "mcp_tool_use", "mcp_tool_result", "tool_reference",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
})
TOOL_CHOICE_TYPES = frozenset({"auto", "any", "tool", "none"})


class InvalidRequest(ValueError):
    """A request the gateway rejects with HTTP 400 ``invalid_request_error``."""

    def __init__(self, message: str, field: str = "") -> None:
        self.field = field
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _require_str(block: dict, key: str, path: str) -> None:
    if not isinstance(block.get(key), str):
        raise InvalidRequest("field required (string)" if key not in block
                             else "must be a string", f"{path}.{key}")


def _check_block(block: Any, path: str, *, in_tool_result: bool = False) -> None:
    if not isinstance(block, dict):
        raise InvalidRequest("content block must be an object", path)
    btype = block.get("type")
    if not isinstance(btype, str):
        raise InvalidRequest("field required" if btype is None else "must be a string", f"{path}.type")
    allowed = ("text", "image", "document", "search_result", "tool_reference") \
        if in_tool_result else BLOCK_TYPES
    if btype not in allowed:
        raise InvalidRequest(f"unknown content block type {quote(btype)}", f"{path}.type")
    if btype == "text":
        _require_str(block, "text", path)
    elif btype in ("image", "document"):
        if not isinstance(block.get("source"), dict):
            raise InvalidRequest("field required (object)", f"{path}.source")
    elif btype == "tool_use":
        _require_str(block, "id", path)
        _require_str(block, "name", path)
        if not isinstance(block.get("input"), dict):
            raise InvalidRequest("must be an object", f"{path}.input")
    elif btype == "tool_result":
        _require_str(block, "tool_use_id", path)
        content = block.get("content")
        if isinstance(content, list):
            for j, sub in enumerate(content):
                _check_block(sub, f"{path}.content.{j}", in_tool_result=True)
        elif content is not None and not isinstance(content, str):
            raise InvalidRequest("must be a string or a list of content blocks",
                                 f"{path}.content")
    elif btype == "thinking":
        _require_str(block, "thinking", path)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("must be a non-empty list", "messages")
    for i, msg in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(msg, dict):
            raise InvalidRequest("must be an object", path)
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidRequest(
                "field required" if role is None else
                f"unknown role {quote(role)} (expected user, assistant or system)", f"{path}.role")
        if "content" not in msg:
            raise InvalidRequest("field required", f"{path}.content")
        content = msg["content"]
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise InvalidRequest("must be a string or a list of content blocks",
                                 f"{path}.content")
        for j, block in enumerate(content):
            _check_block(block, f"{path}.content.{j}")


def _check_common(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", "body")
    try:
        check_shape(body)
    except ShapeError as exc:
        raise InvalidRequest(exc.message, exc.path) from None
    model = body.get("model")
    if model is None:
        raise InvalidRequest("field required", "model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("must be a non-empty string", "model")
    if len(model) > 256:
        raise InvalidRequest(f"is {len(model)} characters; at most 256 (got {quote(model)})", "model")
    if "messages" not in body:
        raise InvalidRequest("field required", "messages")
    _check_messages(body["messages"])
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list):
            raise InvalidRequest("must be a string or a list of text blocks", "system")
        for j, block in enumerate(system):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str) \
                    or block["type"] != "text":
                raise InvalidRequest("must be a text block", f"system.{j}")
            _require_str(block, "text", f"system.{j}")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("must be a list", "tools")
        for j, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise InvalidRequest("must be an object", f"tools.{j}")
            _require_str(tool, "name", f"tools.{j}")
            schema = tool.get("input_schema")
            if schema is not None and not isinstance(schema, dict):
                raise InvalidRequest("must be an object", f"tools.{j}.input_schema")
    choice = body.get("tool_choice")
    if choice is not None:
        ctype = choice.get("type") if isinstance(choice, dict) else None
        if not isinstance(ctype, str) or ctype not in TOOL_CHOICE_TYPES:
            raise InvalidRequest("type must be one of auto, any, tool, none", "tool_choice")
        if ctype == "tool":
            _require_str(choice, "name", "tool_choice")
    config = body.get("output_config")
    _check_output_format(config.get("format") if isinstance(config, dict) else None, "output_config.format")
    _check_output_format(body.get("output_format"), "output_format")


def _check_output_format(fmt: Any, path: str) -> None:
    """A json_schema the gateway will coerce answers to is checked up front, so a bad schema is a
    400 now rather than an error after the stream began. Optional objects of other shapes are
    ignored, as the router ignores them."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        return
    try:
        check_shape(schema, f"{path}.schema", max_depth=SCHEMA_MAX_DEPTH)
        check_schema(schema)
    except ShapeError as exc:
        raise InvalidRequest(exc.message, exc.path) from None
    except SchemaProblem as exc:
        raise InvalidRequest(f"not a valid JSON schema: {str(exc)[:200]}", f"{path}.schema") from None


def _check_sampling(body: dict) -> None:
    stop = body.get("stop_sequences")
    if stop is not None and (not isinstance(stop, list)
                             or not all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("must be a list of strings", "stop_sequences")
    for key in ("temperature", "top_p"):
        if key in body and body[key] is not None and not _is_num(body[key]):
            raise InvalidRequest("must be a number", key)
    if body.get("top_k") is not None and not _is_int(body["top_k"]):
        raise InvalidRequest("must be an integer", "top_k")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise InvalidRequest("must be a boolean", "stream")


def validate_messages_request(body: Any) -> None:
    """Raise ``InvalidRequest`` when a ``POST /v1/messages`` body cannot be served."""
    _check_common(body)
    if "max_tokens" not in body:
        raise InvalidRequest("field required", "max_tokens")
    max_tokens = body["max_tokens"]
    if not _is_int(max_tokens) or max_tokens < 1:
        raise InvalidRequest("must be a positive integer", "max_tokens")
    _check_sampling(body)


def validate_count_tokens_request(body: Any) -> None:
    """Raise ``InvalidRequest`` for a bad ``POST /v1/messages/count_tokens`` body."""
    _check_common(body)
