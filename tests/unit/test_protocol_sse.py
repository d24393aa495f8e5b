"""SSE encoding for Claude Code and decoding of upstream OpenAI streams."""

from __future__ import annotations

import json

import pytest

from turnroute.gateway.protocol import DONE, SSEDecoder, encode_event


@pytest.mark.parametrize("name, data, wire", [
    ("message_stop", {"type": "message_stop"},
     b'event: message_stop\ndata: {"type":"message_stop"}\n\n'),
    ("content_block_delta", {"delta": {"text": "h\u00e9\n\"x\""}},
     b'event: content_block_delta\ndata: {"delta":{"text":"h\xc3\xa9\\n\\"x\\""}}\n\n'),
])
def test_encode_event(name, data, wire):
    assert encode_event(name, data) == wire
    assert json.loads(wire.split(b"data: ", 1)[1]) == data


UPSTREAM = (
    b": keepalive 10/200\n\n"
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b": keepalive\r\n\r\n"
    b'data:{"choices":[{"delta":{"content":"lo \\u00e9"}}]}\r\n\r\n'
    b"event: ignored\nid: 3\nretry: 10\n"
    b'data: {"choices":[],"usage":{"prompt_tokens":5}}\n\n'
    b"data: [DONE]\n\n"
)
EXPECTED = [
    {"choices": [{"delta": {"content": "Hel"}}]},
    {"choices": [{"delta": {"content": "lo \u00e9"}}]},
    {"choices": [], "usage": {"prompt_tokens": 5}},
    DONE,
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(UPSTREAM)])
def test_decoder_handles_lines_split_across_feeds(size):
    dec = SSEDecoder()
    out = []
    for i in range(0, len(UPSTREAM), size):
        out += dec.feed(UPSTREAM[i:i + size])
    out += dec.flush()
    assert out == EXPECTED


@pytest.mark.parametrize("wire, expected", [
    (b'data: {"a": 1}', [{"a": 1}]),                        # no trailing newline: flush
    (b'data: {"a":\ndata: 1}\n\n', [{"a": 1}]),             # multi-line data field
    (b"data: not json\n\n", ["not json"]),                  # surfaced, not swallowed
    (b"data:\n\n\n\n", []),
    (b"data: [DONE]", [DONE]),
])
def test_decoder_edge_cases(wire, expected):
    dec = SSEDecoder()
    assert dec.feed(wire) + dec.flush() == expected
