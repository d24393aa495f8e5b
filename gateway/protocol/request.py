"""Anthropic Messages request → OpenAI Chat Completions request.

The rendered prompt must be byte-stable turn to turn so mlx_lm.server's prefix cache hits
(a changed token costs every token after it): text-only content is always a plain string,
joins are always ``"\\n\\n"``, ``cache_control`` and the per-session billing-header block are
dropped, and tool history is rendered deterministically. Request N's messages are then an exact
prefix of request N+1's. The system prompt and tools are translated once per distinct value (`prefix.py`): callers must
not mutate ``out["tools"]`` entries, which are shared between requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from .content import RequestView, joined_text, json_schema_of
from .prefix import system_text, translate_tools
from .jsonfast import dumps

IMAGE_PLACEHOLDER = "[image omitted: this backend does not accept images]"
DOCUMENT_PLACEHOLDER = "[document omitted: this backend does not accept documents]"
_TOOL_CHOICE = {"auto": "auto", "any": "required", "tool": "required", "none": "none"}


@dataclass(frozen=True)
class TranslateOptions:
    model: str                     # backend model name
    max_output_tokens: int | None  # clamp
    tools: bool = True             # backend accepts tools
    images: bool = False
    thinking: bool = False
    json_schema: bool = False
    parallel_tool_calls: bool = True
    strip_tools: bool = False      # decision: drop tools, render tool history as text
    stream: bool = True

    def clamps(self, asked: Any) -> bool:
        """Whether the gateway's output limit cuts below the client's `max_tokens` (an answer cut
        there is the gateway's doing, reported as `end_turn`, not the client's `max_tokens`)."""
        limit = self.max_output_tokens
        return bool(limit and isinstance(asked, int) and asked > limit)


# ---------------------------------------------------------------------------- content
def _image_part(block: dict) -> dict | None:
    src = block.get("source") or {}
    if src.get("type") == "base64" and src.get("data"):
        url = f"data:{src.get('media_type') or 'image/png'};base64,{src['data']}"
    elif src.get("type") == "url" and src.get("url"):
        url = src["url"]
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _media(block: dict, opts: TranslateOptions, parts: list) -> None:
    """Append an image/document block as an image part or placeholder text."""
    if block.get("type") == "document":
        src = block.get("source") or {}
        text = src.get("data") if src.get("type") == "text" else None
        parts.append(text if isinstance(text, str) and text else DOCUMENT_PLACEHOLDER)
        return
    part = _image_part(block) if opts.images else None
    parts.append(part if part is not None else IMAGE_PLACEHOLDER)


def _flatten_result(content: Any, opts: TranslateOptions) -> tuple[str, list[dict]]:
    """tool_result content → (text, image parts to send in the following user message)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[dict] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype == "text":
            if block.get("text"):
                texts.append(block["text"])
        elif btype in ("image", "document"):
            parts: list = []
            _media(block, opts, parts)
            for p in parts:
                (texts if isinstance(p, str) else images).append(p)
        elif btype == "tool_reference":
            texts.append(f"[tool reference: {block.get('tool_name', '')}]")
        elif btype == "search_result":
            inner = _flatten_result(block.get("content"), opts)[0]
            texts.append(f"{block.get('title', '')}\n{inner}".strip())
    return "\n\n".join(texts), images


def _user_content(parts: list) -> str | list[dict]:
    """Text-only → one string (byte-stable); with images → parts, adjacent texts joined."""
    if all(isinstance(p, str) for p in parts):
        return "\n\n".join(parts)
    out: list[dict] = []
    for p in parts:
        if isinstance(p, str):
            if out and out[-1]["type"] == "text":
                out[-1] = {"type": "text", "text": out[-1]["text"] + "\n\n" + p}
            else:
                out.append({"type": "text", "text": p})
        else:
            out.append(p)
    return out


def _join(a: Any, b: Any) -> Any:
    if a is None or a == "":
        return b
    if b is None or b == "":
        return a
    if isinstance(a, str) and isinstance(b, str):
        return a + "\n\n" + b
    pa = [a] if isinstance(a, str) else [p["text"] if p["type"] == "text" else p for p in a]
    pb = [b] if isinstance(b, str) else [p["text"] if p["type"] == "text" else p for p in b]
    return _user_content(pa + pb)


def _push(out: list[dict], msg: dict) -> None:
    """Append, merging into a preceding user/assistant message of the same role."""
    prev = out[-1] if out else None
    if prev is not None and prev["role"] == msg["role"] and msg["role"] in ("user", "assistant"):
        prev["content"] = _join(prev.get("content"), msg.get("content"))
        if msg.get("tool_calls"):
            prev["tool_calls"] = prev.get("tool_calls", []) + msg["tool_calls"]
        return
    out.append(msg)


def _system_reminder(text: str) -> str:
    if text.lstrip().startswith("<system-reminder>"):
        return text
    return f"<system-reminder>\n{text}\n</system-reminder>"


def _assistant(content: list, text_mode: bool, out: list[dict]) -> None:
    texts: list[str] = []
    calls: list[dict] = []
    for block in content:
        btype = block.get("type")
        if btype == "text":
            if block.get("text"):
                texts.append(block["text"])
        elif btype == "tool_use":
            args = dumps(block.get("input") or {}).decode()
            if text_mode:
                texts.append(f"[tool call {block.get('name', '')} {args}]")
            else:
                calls.append({"id": block.get("id", ""), "type": "function",
                              "function": {"name": block.get("name", ""), "arguments": args}})
        # thinking, redacted_thinking, server tool blocks: dropped
    text = "\n\n".join(texts)
    if calls:
        _push(out, {"role": "assistant", "content": text or None, "tool_calls": calls})
    elif text:
        _push(out, {"role": "assistant", "content": text})


def _user(content: list, opts: TranslateOptions, text_mode: bool, out: list[dict]) -> None:
    tool_msgs: list[dict] = []
    parts: list = []
    for block in content:
        btype = block.get("type")
        if btype == "text":
            if block.get("text"):
                parts.append(block["text"])
        elif btype in ("image", "document"):
            _media(block, opts, parts)
        elif btype == "tool_result":
            text, images = _flatten_result(block.get("content"), opts)
            error = bool(block.get("is_error"))
            if text_mode:
                head = "[tool error]" if error else "[tool result]"
                parts.append(f"{head}\n{text}" if text else head)
            else:
                tool_msgs.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                                  "content": f"Error: {text}" if error else text})
            parts.extend(images)
    out.extend(tool_msgs)  # tool messages must directly follow the assistant's tool_calls
    if parts:
        _push(out, {"role": "user", "content": _user_content(parts)})


def translate_messages(view: RequestView, opts: TranslateOptions) -> list[dict]:
    """The OpenAI ``messages`` list: leading system message, then the conversation."""
    body = view.body
    text_mode = not opts.tools or opts.strip_tools
    out: list[dict] = []
    sys_text = system_text(view)
    if sys_text:
        out.append({"role": "system", "content": sys_text})
    for msg in body.get("messages") or ():
        role = msg.get("role")
        content = msg.get("content")
        if role == "system":  # most chat templates reject a non-leading system message
            text = joined_text(content)
            if text:
                _push(out, {"role": "user", "content": _system_reminder(text)})
        elif isinstance(content, str):
            if content:
                _push(out, {"role": "assistant" if role == "assistant" else "user",
                            "content": content})
        elif role == "assistant":
            _assistant(content or (), text_mode, out)
        else:
            _user(content or (), opts, text_mode, out)
    return out


# ---------------------------------------------------------------------------- body
def to_openai(request: RequestView | dict, opts: TranslateOptions) -> dict:
    """Build the Chat Completions body. The body is not modified and not deep-copied."""
    view = request if isinstance(request, RequestView) else RequestView.of(request)
    body = view.body
    out: dict[str, Any] = {"model": opts.model, "messages": translate_messages(view, opts)}
    max_tokens = body.get("max_tokens")
    limit = opts.max_output_tokens
    if limit is not None and (max_tokens is None or max_tokens > limit):
        max_tokens = limit
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    out["stream"] = opts.stream
    if opts.stream:
        out["stream_options"] = {"include_usage": True}

    tools = body.get("tools")
    if tools and opts.tools and not opts.strip_tools:
        choice = body.get("tool_choice") or {}
        ctype = choice.get("type")
        only = choice.get("name") if ctype == "tool" else None
        translated = translate_tools(view, only)
        if translated:
            out["tools"] = translated
            if ctype in _TOOL_CHOICE:
                out["tool_choice"] = _TOOL_CHOICE[ctype]
            if opts.parallel_tool_calls and choice.get("disable_parallel_tool_use"):
                out["parallel_tool_calls"] = False

    stop = body.get("stop_sequences")
    if stop:
        out["stop"] = list(stop)
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    if opts.thinking:
        thinking = body.get("thinking")
        enabled = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        out["chat_template_kwargs"] = {"enable_thinking": enabled}
    if opts.json_schema:
        schema = json_schema_of(body)
        if schema is not None:
            out["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "response", "schema": schema}}
    return out
