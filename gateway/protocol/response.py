"""Non-streaming responses through the streaming code path.

A non-streaming OpenAI response is turned into chunks (``openai_response_to_chunk``), fed to the
same ``StreamConverter``, and its events folded back into one Anthropic message (``assemble``).
One set of translation rules, one set of tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson


class AssembleError(ValueError):
    """The event sequence carried an ``error`` event; ``.envelope`` is its data."""

    def __init__(self, envelope: dict) -> None:
        err = envelope.get("error") or {}
        super().__init__(str(err.get("message") or "upstream error"))
        self.envelope = envelope


def assemble(events: Iterable[tuple[str, dict]]) -> dict:
    """Fold converter events into a Messages API response body."""
    message: dict[str, Any] | None = None
    content: list[dict] = []
    json_bufs: dict[int, list[str]] = {}
    for name, data in events:
        if name == "message_start":
            message = dict(data["message"])
            message["usage"] = dict(message.get("usage") or {})
            content = message["content"] = []
        elif name == "content_block_start":
            content.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            idx = data["index"]
            block = content[idx]
            delta = data["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            elif kind == "input_json_delta":
                json_bufs.setdefault(idx, []).append(delta["partial_json"])
        elif name == "content_block_stop":
            idx = data["index"]
            parts = json_bufs.pop(idx, None)
            if parts is not None and "".join(parts):
                content[idx]["input"] = orjson.loads("".join(parts))
        elif name == "message_delta" and message is not None:
            message["stop_reason"] = data["delta"].get("stop_reason")
            message["stop_sequence"] = data["delta"].get("stop_sequence")
            message["usage"].update(data.get("usage") or {})
        elif name == "error":
            raise AssembleError(data)
    if message is None:
        raise AssembleError({"type": "error", "error": {
            "type": "api_error", "message": "no message_start in converter events"}})
    return message


def _text_of(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return str(content)


def openai_response_to_chunk(resp: dict) -> list[dict]:
    """Turn a ``chat.completion`` body into the chunk dicts a stream would have carried."""
    chunks: list[dict] = []
    choices = resp.get("choices") or []
    if choices:
        choice = choices[0]
        msg = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant"}
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning:
            delta["reasoning_content"] = reasoning
        text = _text_of(msg.get("content"))
        if text:
            delta["content"] = text
        calls = []
        for i, tc in enumerate(msg.get("tool_calls") or ()):
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            if args is not None and not isinstance(args, str):
                args = orjson.dumps(args).decode()
            calls.append({"index": i, "id": tc.get("id"), "type": "function",
                          "function": {"name": fn.get("name"), "arguments": args or ""}})
        if calls:
            delta["tool_calls"] = calls
        chunks.append({"id": resp.get("id"), "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        chunks.append({"id": resp.get("id"), "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {},
                                    "finish_reason": choice.get("finish_reason")}]})
    if resp.get("usage"):
        chunks.append({"id": resp.get("id"), "object": "chat.completion.chunk",
                       "choices": [], "usage": resp["usage"]})
    return chunks
