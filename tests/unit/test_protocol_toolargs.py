"""parse_tool_args: a local model's broken tool JSON never becomes an HTTP 500."""

from __future__ import annotations

import pytest

from turnroute.gateway.protocol import REPAIRED_NOTE, parse_tool_args


@pytest.mark.parametrize("raw, expected", [
    ("", {}),
    ("   ", {}),
    (None, {}),
    ("{}", {}),
    ('{"file_path": "/a.py", "limit": 10}', {"file_path": "/a.py", "limit": 10}),
    ('  {"nested": {"a": [1, {"b": null}]}}\n', {"nested": {"a": [1, {"b": None}]}}),
    ('{"q": "brace } and quote \\" inside"}', {"q": 'brace } and quote " inside'}),
])
def test_valid_arguments_pass_unchanged(raw, expected):
    assert parse_tool_args(raw) == (expected, None)


@pytest.mark.parametrize("raw, expected", [
    ('{"file_path": "/src/ma', {"file_path": "/src/ma"}),
    ('{"a": 1', {"a": 1}),
    ('{"a": 1,', {"a": 1}),
    ('{"a": 1, "b"', {"a": 1}),
    ('{"a": 1, "b":', {"a": 1}),
    ('{"a": 1, "b": ', {"a": 1}),
    ('{"a": [1, 2', {"a": [1, 2]}),
    ('{"a": tru', {"a": True}),
    ('{"a": fal', {"a": False}),
    ('{"a": nu', {"a": None}),
    ('{"a": 1.', {"a": 1}),
    ('{"a": -', {}),
    ('{"a": "x\\', {"a": "x"}),
    ('{"a": "caf\\u00', {"a": "caf"}),
    ('{"a": {"b": ["c", {"d": nul', {"a": {"b": ["c", {"d": None}]}}),
    ('{"edits": [{"old": "x", "new": "y"}, {"old', {"edits": [{"old": "x", "new": "y"}]}),
    ('{"cmd": "echo \\"hi', {"cmd": 'echo "hi'}),
    ("{", {}),
])
def test_truncated_arguments_are_repaired_with_a_note(raw, expected):
    assert parse_tool_args(raw) == (expected, REPAIRED_NOTE)


@pytest.mark.parametrize("raw, why", [
    ("this is not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"just a string"', "not a JSON object"),
    ("42", "not a JSON object"),
    ('{"a": 1}}', "not valid JSON"),
    ('{"a" 1}', "not valid JSON"),
    ("<tool_call>Read</tool_call>", "not valid JSON"),
])
def test_unusable_arguments_give_empty_input_and_a_visible_note(raw, why):
    tool_input, note = parse_tool_args(raw)
    assert tool_input == {}
    assert note is not None and why in note and raw[:20] in note


def test_note_quotes_at_most_200_characters_of_raw_arguments():
    _, note = parse_tool_args("x" * 5000)
    assert note is not None and len(note) < 300


def test_object_instead_of_string_is_accepted():
    assert parse_tool_args({"a": 1}) == ({"a": 1}, None)  # type: ignore[arg-type]


SAMPLES = [
    {"file_path": "/a/b.py", "old_string": 'def f(x, y):\n    return {"a": [1, 2]}',
     "new_string": 'x\\y \u00e9 "q"', "replace_all": False, "n": -1.5e3, "z": None,
     "arr": [{"k": [True, False, None]}, 's, "t"']},
    {"todos": [{"content": "a", "status": "pending"}, {"content": "b,{c}", "status": "done"}]},
]


@pytest.mark.parametrize("indent", [False, True], ids=["compact", "pretty"])
@pytest.mark.parametrize("sample", SAMPLES, ids=["edit", "todos"])
def test_every_truncation_point_of_real_arguments_is_repaired(sample, indent):
    """Wherever max_tokens cuts a tool call, the user gets an object, never an exception."""
    import orjson

    raw = orjson.dumps(sample, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    for cut in range(1, len(raw)):
        tool_input, note = parse_tool_args(raw[:cut])
        assert isinstance(tool_input, dict) and note == REPAIRED_NOTE, raw[:cut]
        for key, value in tool_input.items():  # recovered keys are real keys of the call
            assert key in sample
    assert parse_tool_args(raw) == (sample, None)
