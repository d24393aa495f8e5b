"""Features of realistic Claude Code requests: turn kind, intent, session, client, timing."""

from __future__ import annotations


import pytest

from turnroute.gateway.protocol.content import parse_billing_header
from turnroute.router.features import TurnKind, extract_features, session_from_user_id
from turnroute.router.ids import mint_tool_id
from turnroute.router.intents import IntentSets
from tests.fixtures import cc_requests as cc

BACKENDS = ("lmstudio", "mlx")


def feats(body, headers=None, **kw):
    return extract_features(body, cc.cc_headers() if headers is None else headers, backends=BACKENDS, **kw)


CASES = [
    # id, body builder, endpoint, turn, intent, tool_count
    ("main-analysis", lambda: cc.main_turn("explain the retry logic in app.py"), "messages",
     TurnKind.PROMPT, "analysis", 24),
    ("main-action", lambda: cc.main_turn("fix the failing test in tests/test_app.py"), "messages",
     TurnKind.PROMPT, "action", 24),
    ("main-question-mark", lambda: cc.main_turn("the cache is never hit, any idea?"), "messages",
     TurnKind.PROMPT, "analysis", 24),
    ("main-no-intent", lambda: cc.main_turn("hello there"), "messages", TurnKind.PROMPT, None, 24),
    ("tool-result", lambda: cc.tool_result_turn("fix the failing test"), "messages",
     TurnKind.TOOL_RESULT, "action", 24),
    ("tool-result-long-loop", lambda: cc.tool_result_turn("fix it", loops=12), "messages",
     TurnKind.TOOL_RESULT, "action", 24),
    ("title", lambda: cc.title_request("explain the retry logic"), "messages", TurnKind.TITLE, "analysis", 0),
    ("compact", lambda: cc.compact_request(), "messages", TurnKind.COMPACT, None, 24),
    ("haiku-two-user-messages", lambda: cc.haiku_turn("why does the build fail?"), "messages",
     TurnKind.PROMPT, "analysis", 24),
    ("v2-safeguards", lambda: cc.v2_turn("what does the router module do?"), "messages",
     TurnKind.PROMPT, "analysis", 13),
    ("subagent-system-preamble", lambda: cc.subagent_turn(), "messages", TurnKind.SUBAGENT, "analysis", 23),
    ("subagent-billing-flag", lambda: cc.subagent_turn(marker="billing"), "messages", TurnKind.SUBAGENT,
     "analysis", 23),
    ("subagent-loop", lambda: cc.subagent_turn(loop=True), "messages", TurnKind.SUBAGENT, "analysis", 23),
    ("quota-probe", lambda: cc.quota_probe(), "messages", TurnKind.BACKGROUND, None, 0),
    ("count-tokens", lambda: cc.count_tokens_body("explain x"), "count_tokens", TurnKind.COUNT_TOKENS,
     "analysis", 24),
]


@pytest.mark.parametrize("name,build,endpoint,turn,intent,tools", CASES, ids=[c[0] for c in CASES])
def test_turn_and_intent(name, build, endpoint, turn, intent, tools):
    f = feats(build(), endpoint=endpoint)
    assert f.turn is turn
    assert f.intent == intent
    assert f.tool_count == tools and f.has_tools == (tools > 0)
    assert f.endpoint == endpoint


def test_main_turn_fields():
    f = feats(cc.main_turn("explain the retry logic"))
    assert f.session_id == cc.SESSION
    assert f.thinking is True and f.stream is True and f.images is False and f.json_schema is False
    assert f.model == cc.MAIN_MODEL
    assert f.prompt_text == "explain the retry logic"          # the date reminder is stripped
    assert f.client == {"cc_version": "2.1.197.a3f", "cc_entrypoint": "cli"}
    assert f.tool_names[:4] == ("Task", "Bash", "Glob", "Grep") and "MultiEdit" in f.tool_names
    assert f.user_turn == 1 and f.origin is None and f.input_tokens is None


def test_session_from_metadata_when_no_header():
    f = feats(cc.main_turn("hi", session="abc-123"), headers={})
    assert f.session_id == "abc-123"
    assert session_from_user_id("user_0f3a_account__session_11111111-2222-3333-4444-555555555555") \
        == "11111111-2222-3333-4444-555555555555"
    assert session_from_user_id('{"device_id":"x","account_uuid":"","session_id":"s-1"}') == "s-1"
    assert session_from_user_id("{not json") is None and session_from_user_id(None) is None


def test_header_session_wins():
    f = feats(cc.main_turn("hi", session="from-metadata"), headers=cc.cc_headers("from-header"))
    assert f.session_id == "from-header"


def test_billing_header_flags():
    assert parse_billing_header("x-anthropic-billing-header: cc_version=2.1.331.a3f; cc_entrypoint=cli; "
                                "cc_flag;") == {"cc_version": "2.1.331.a3f", "cc_entrypoint": "cli",
                                                "cc_flag": ""}
    f = feats(cc.main_turn("fix it", entrypoint="sdk-agent"))
    assert f.turn is TurnKind.SUBAGENT


def test_tool_result_origin_from_id():
    assert feats(cc.tool_result_turn(origin="mlx")).origin == "mlx"
    assert feats(cc.tool_result_turn(origin="lmstudio")).origin == "lmstudio"
    assert feats(cc.tool_result_turn(origin=None)).origin is None        # foreign id
    assert feats(cc.main_turn("explain")).origin is None                   # not mid-loop


def test_user_turn_counts_human_prompts_not_tool_results():
    hist = cc.history_of(cc.exchange("explain a", "A."), cc.exchange("why b", "B."))
    assert feats(cc.main_turn("fix c", history=hist)).user_turn == 3
    body = cc.tool_result_turn("fix c", history=hist, loops=5)
    f = feats(body)
    assert f.turn is TurnKind.TOOL_RESULT and f.user_turn == 3 and f.prompt_text == "fix c"
    # haiku: the agent-list user message and the prompt are one turn
    assert feats(cc.haiku_turn("why?")).user_turn == 1


def test_haiku_prompt_text_includes_trailing_user_messages():
    f = feats(cc.haiku_turn("why does the build fail?"))
    assert f.prompt_text.endswith("why does the build fail?")
    assert "Available agent types" in f.prompt_text
    assert f.thinking is True and f.model == cc.HAIKU_MODEL


def test_role_system_messages_are_skipped():
    f = feats(cc.main_turn("explain this", system_messages=True))
    assert f.turn is TurnKind.PROMPT and f.prompt_text == "explain this" and f.user_turn == 1


def test_title_and_json_schema():
    f = feats(cc.title_request())
    assert f.json_schema is True and f.thinking is False and f.turn is TurnKind.TITLE
    # a title request without the json_schema, recognised by its system text
    body = cc.title_request()
    del body["output_config"]
    assert feats(body).turn is TurnKind.TITLE
    # json_schema on a request *with* tools is not a title: structured output to honour
    body = cc.main_turn("explain")
    body["output_config"] = {"format": {"type": "json_schema", "schema": {}}}
    assert feats(body).turn is TurnKind.STRUCTURED


def test_compact_marker_appended_to_last_user_message():
    hist = [*cc.exchange("explain a", "A."), {"role": "user", "content": [{"type": "text", "text": "go on"}]}]
    assert feats(cc.compact_request(hist)).turn is TurnKind.COMPACT
    assert feats(cc.compact_request()).turn is TurnKind.COMPACT


def test_markers_are_configurable():
    from turnroute.router.intents import Markers
    body = cc.main_turn("Please SUMMARISE EVERYTHING now")
    assert feats(body).turn is TurnKind.PROMPT
    assert feats(body, markers=Markers(compact=("summarise everything",))).turn is TurnKind.COMPACT
    # markers attached to the IntentSets travel with them
    intents = IntentSets(markers=Markers(compact=("summarise everything",)))
    assert feats(body, intents=intents).turn is TurnKind.COMPACT


def test_images_anywhere():
    assert feats(cc.main_turn("what is in this screenshot?", images=True)).images is True
    body = cc.tool_result_turn()
    body["messages"][-1]["content"][0]["content"] = [{"type": "image", "source": {"type": "base64",
                                                      "media_type": "image/png", "data": "x"}}]
    assert feats(body).images is True


def test_safeguards_and_defer_loading_do_not_disturb():
    body = cc.v2_turn("explain the config loader")
    assert "safeguards" in body and any(t.get("defer_loading") for t in body["tools"])
    f = feats(body)
    assert f.client["cc_version"].startswith("2.1.331") and f.intent == "analysis"


def test_max_tokens_one_probe_with_tools_is_background():
    body = cc.main_turn("fix x")
    body["max_tokens"] = 1
    assert feats(body).turn is TurnKind.BACKGROUND


def test_memory_fills_unknown_origin():
    from turnroute.router.sticky import TurnMemory
    mem = TurnMemory()
    body = cc.tool_result_turn(origin=None)
    mem.remember(cc.SESSION, 1, "mlx")
    assert feats(body, memory=mem).origin == "mlx"
    assert feats(cc.tool_result_turn(origin="lmstudio"), memory=mem).origin == "lmstudio"   # id wins
    mem.remember(cc.SESSION, 2, "mlx")                                   # another turn: no match
    assert feats(body, memory=mem).origin is None


def test_input_tokens_passed_through():
    assert feats(cc.main_turn("x"), input_tokens=1234).input_tokens == 1234


def test_garbage_tolerated():
    f = feats({"messages": "nope", "tools": "x", "system": 3, "metadata": [], "model": 5}, headers={})
    assert f.turn is TurnKind.PROMPT and f.tool_count == 0 and f.model == "" and f.session_id is None


def test_mint_and_origin_ids_roundtrip():
    from turnroute.router.ids import origin_of
    tid = mint_tool_id("mlx")
    assert tid.startswith("toolu_01") and len(tid) == 32
    assert origin_of(tid, {"mlx", "lmstudio"}) == "mlx"
    assert origin_of(tid, {"lmstudio"}) is None
    assert origin_of(cc.foreign_tool_id(), {"mlx", "lmstudio"}) is None
    assert origin_of(None, {"mlx"}) is None


INTENT_CASES = [
    ("explain the retry logic", "analysis"),
    ("Why does the cache miss on every turn", "analysis"),
    ("what does router/rules.py do", "analysis"),
    ("summarise the design doc", "analysis"),
    ("Review this diff please", "analysis"),
    ("where is the config loaded", "analysis"),
    ("the build is broken, any idea?", "analysis"),
    ("how does the write path work?", "analysis"),              # "write" is not a command here
    ("fix the failing test", "action"),
    ("Add a --verbose flag", "action"),
    ("run the tests", "action"),
    ("please refactor the parser", "action"),
    ("explain why the test fails and fix it", "action"),        # imperative action wins
    ("why does it fail? Fix it.", "action"),
    ("can you update the README?", "action"),
    ("commit this", "action"),
    ("hello", None),
    ("", None),
    ("what does `rm -rf build && make install` do", "analysis"),   # code is ignored
]


@pytest.mark.parametrize("text,intent", INTENT_CASES)
def test_default_intents(text, intent):
    assert IntentSets().classify(text) == intent


def test_custom_intent_sets_and_regex():
    s = IntentSets(analysis=["ponder", "/^\\s*q:/"], action=["do it"])
    assert s.classify("Q: is this right") == "analysis"
    assert s.classify("please ponder") == "analysis"
    assert s.classify("do it now") == "action"
    assert s.classify("doing it") is None                      # whole words only
    with pytest.raises(ValueError, match="bad regex"):
        IntentSets(analysis=["/([/"])


def test_tool_errors_count_failed_tool_calls_of_the_current_turn_only():
    body = cc.tool_result_turn("fix it", loops=3)
    assert feats(body).tool_errors == 0
    for m in body["messages"][-4:]:
        for b in m["content"] if m["role"] == "user" else ():
            if b.get("type") == "tool_result":
                b["is_error"] = True
    assert feats(body).tool_errors == 2
    # A new human prompt starts a new turn: earlier failures no longer count.
    later = cc.tool_result_turn("now something else", history=body["messages"])
    assert feats(later).tool_errors == 0
