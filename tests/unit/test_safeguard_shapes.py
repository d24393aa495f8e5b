"""Safeguard wire shapes against the captured contract, the tool-call collector on real converter
events, and the judge's prompt and answer validation (invalid → an error, never an approval)."""

from __future__ import annotations

import json

import pytest

from turnroute.gateway.protocol import StreamConverter
from turnroute.router.safeguards import (JudgeError, PendingCall, ToolUseCollector, Verdict, context_of,
                                         judge_messages, parse_judgement, requested, results, unavailable)
from turnroute.router.safeguards.verdicts import UNAVAILABLE_REASONS
from tests.fixtures.cc_safeguards import CAPTURED_KEYS, classifier_context, safeguards

CALLS = [PendingCall("toolu_a", "Bash", {"command": "make"}), PendingCall("toolu_b", "WebFetch", {"url": "u"})]


def test_the_fixture_is_the_captured_shape():
    sg = safeguards(cwd="/p", home="/h")
    assert requested({"safeguards": sg}) == sg and requested({}) == [] and requested({"safeguards": "x"}) == []
    assert tuple(sg[0]["classifier_context"]) == CAPTURED_KEYS
    ctx = context_of(sg[0]["classifier_context"])
    assert (ctx.cwd, ctx.home, ctx.trusted, ctx.branch) == ("/p", "/h", ("/p",), None)


def test_results_shape_per_verdict_kind():
    vs = [Verdict("toolu_a", "Bash", "flagged", "builtin:x", "Why."), Verdict("toolu_b", "Read", "not_flagged", "b", "ok"),
          Verdict("toolu_c", "Bash", "unavailable", "judge:mlx", reason="timeout")]
    out = results(safeguards(), vs)
    assert out == [{"type": "dangerous_tool_use", "status": {"type": "available", "tool_uses": {
        "toolu_a": {"type": "evaluated", "outcome": "flagged", "explanation": "Why."},
        "toolu_b": {"type": "evaluated", "outcome": "not_flagged", "explanation": "ok"},
        "toolu_c": {"type": "unavailable", "reason": "timeout"}}}}]
    assert results(safeguards(), None) == [{"type": "dangerous_tool_use", "status": {"type": "unsupported"}}]
    # a safeguard kind this gateway does not know is answered unsupported, not ignored
    assert results([{"type": "prompt_injection"}], vs) == [{"type": "prompt_injection",
                                                            "status": {"type": "unsupported"}}]


def test_ask_leaves_the_id_out_so_claude_code_asks_and_the_log_still_says_why():
    asked = unavailable(CALLS[:1], "timeout", "judge:mlx", 5000.0, ask=True)
    blocked = unavailable(CALLS[:1], "timeout", "judge:mlx", 5000.0, ask=False)
    assert results(safeguards(), asked)[0]["status"]["tool_uses"] == {}
    assert results(safeguards(), blocked)[0]["status"]["tool_uses"] == {"toolu_a": {"type": "unavailable",
                                                                                     "reason": "timeout"}}
    assert asked[0].log() == {"tool": "Bash", "id": "toolu_a", "outcome": "unavailable", "by": "judge:mlx",
                              "ms": 5000.0, "reason": "timeout", "asked": True}
    assert set(UNAVAILABLE_REASONS) == {"timeout", "error", "refused", "input_too_long", "truncated"}


def test_collector_reads_tool_calls_from_the_converters_events():
    conv = StreamConverter(model="m", input_tokens=1, mint_id=iter(["toolu_1", "toolu_2"]).__next__)
    col = ToolUseCollector()
    col.watch(conv.start())
    for piece in ('{"comm', 'and": "ls -la"}'):
        col.watch(conv.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c0", "type": "function", "function": {"name": "Bash", "arguments": piece}}]}}]}))
    col.watch(conv.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 1, "id": "c1", "type": "function", "function": {"name": "Read", "arguments": ""}}]}}]}))
    col.watch(conv.finish())
    assert col.calls() == [PendingCall("toolu_1", "Bash", {"command": "ls -la"}), PendingCall("toolu_2", "Read", {})]


def answer(*items) -> str:
    return json.dumps({"verdicts": [dict(zip(("id", "outcome", "explanation"), i)) for i in items]})


def test_a_valid_judgement():
    text = "```json\n" + answer(("toolu_a", "not_flagged", "Builds."), ("toolu_b", "flagged", "Unknown host.")) + "\n```"
    assert parse_judgement(text, CALLS) == {"toolu_a": ("not_flagged", "Builds."), "toolu_b": ("flagged", "Unknown host.")}


@pytest.mark.parametrize("text,finish,reason", [
    ("I think it is fine.", "stop", "error"),
    ("{not json}", "stop", "error"),
    (json.dumps({"verdict": "ok"}), "stop", "error"),
    (answer(("toolu_a", "not_flagged", "x")), "stop", "error"),                                   # one missing
    (answer(("toolu_a", "ok", "x"), ("toolu_b", "flagged", "y")), "stop", "error"),               # bad outcome
    (answer(("toolu_a", "flagged", "x"), ("toolu_a", "flagged", "y"), ("toolu_b", "flagged", "z")), "stop", "error"),
    (answer(("toolu_a", "flagged", 3), ("toolu_b", "flagged", "y")), "stop", "error"),
    (answer(("toolu_a", "not_flagged", "x"), ("toolu_zz", "not_flagged", "y")), "stop", "error"),  # invented id
    ('{"verdicts": [{"id": "toolu_a", "outc', "length", "truncated"),
])
def test_an_invalid_judgement_is_an_error_with_its_reason(text, finish, reason):
    with pytest.raises(JudgeError) as e:
        parse_judgement(text, CALLS, finish_reason=finish)
    assert e.value.reason == reason


def test_the_judge_sees_the_request_the_session_and_only_the_open_calls_bounded():
    ctx = context_of(classifier_context("/w/p", "/w", deny=("Bash(npm publish:*)",), branch="feat", default_branch="main"))
    body = {"messages": [{"role": "user", "content": "old " * 5000},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t0", "name": "Read",
                                                            "input": {"file_path": "a"}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t0", "content": "x"},
                                                      {"type": "text", "text": "now fetch the data please"}]}]}
    system, user = judge_messages(body, CALLS[1:], ctx)
    assert system["role"] == "system" and "JSON" in system["content"]
    text = user["content"]
    assert "now fetch the data please" in text and "toolu_b" in text and "toolu_a" not in text
    assert "/w/p" in text and "npm publish" in text and '"git_branch": "feat"' in text
    assert len(text) < 10_000                          # the tail is bounded, however long the chat
