"""Pure Anthropic Messages ⇄ OpenAI Chat Completions translation (no I/O).

Dicts and chunks in, dicts and events out, so every corner is a table-driven unit test;
docs/design.md shows where each module sits on a request's path.
"""

from .content import BILLING_PREFIX, RequestView, json_schema_of, parse_billing_header
from .request import IMAGE_PLACEHOLDER, TranslateOptions, system_text, to_openai, translate_messages
from .response import AssembleError, assemble, openai_response_to_chunk
from .sse import DONE, SSEDecoder, encode_event
from .schemacheck import coerce_json_text
from .stream import THINKING_SIGNATURE, StreamConverter, error_event
from .toolargs import REPAIRED_NOTE, parse_tool_args
from .validate import InvalidRequest, validate_count_tokens_request, validate_messages_request

__all__ = [
    "BILLING_PREFIX", "DONE", "IMAGE_PLACEHOLDER", "REPAIRED_NOTE", "THINKING_SIGNATURE",
    "AssembleError", "InvalidRequest", "RequestView", "SSEDecoder", "StreamConverter", "TranslateOptions",
    "assemble", "coerce_json_text", "encode_event", "error_event", "json_schema_of",
    "openai_response_to_chunk", "parse_billing_header", "parse_tool_args", "system_text",
    "to_openai", "translate_messages", "validate_count_tokens_request",
    "validate_messages_request",
]
