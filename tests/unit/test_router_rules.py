"""The shipped rules route real-shaped requests as intended; overrides, aliases, explain, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnroute.router.intents import IntentSets
from turnroute.router.replay import format_replay, replay_inputs
from turnroute.router.explain import describe_features, explain
from turnroute.router.rules import ConfigError, UnknownRoute, parse_ruleset
from turnroute.router.yamlsrc import load_yaml
from tests.fixtures import cc_requests as cc

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    path = ROOT / "config" / name
    doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return parse_ruleset(doc, backends=set(doc["backends"]), source=str(path))


@pytest.fixture(scope="module")
def shipped():
    return load("turnroute.yaml")


@pytest.fixture(scope="module")
def mlx_tools():
    return load("mlx-tools.yaml")


def route(rules, body, headers=None, endpoint="messages", **kw):
    f = rules.features(body, cc.cc_headers() if headers is None else headers, endpoint=endpoint)
    return rules.decide(f, **kw)


READ_APP = ("Read", {"file_path": "/repo/app.py"},
            "     1\tdef retry(fn):\n     2\t    for attempt in range(3):\n     3\t        ...")


def after_reading_app(prompt: str, **kw):
    """A follow-up on a session that has already read app.py."""
    hist = cc.history_of(cc.exchange("read app.py", "Done."), cc.tool_call(*READ_APP[:2], result=READ_APP[2]))
    return cc.main_turn(prompt, history=hist, **kw)


SHIPPED = [
    # id, builder, endpoint, backend, strip_tools, rule
    ("question-about-unread-file", lambda: cc.main_turn("explain the retry logic in app.py"), "messages",
     "lmstudio", False, "needs-tools"),
    ("question-about-read-file", lambda: after_reading_app("explain the retry logic in app.py"), "messages",
     "mlx", True, "from-context"),
    ("follow-up-after-read", lambda: after_reading_app("why does it try three times?"), "messages",
     "mlx", True, "from-context"),
    ("change-prompt", lambda: cc.main_turn("fix the failing test"), "messages", "lmstudio", False, "needs-tools"),
    ("mixed-explain-and-fix", lambda: cc.main_turn("explain why the test fails and fix it"), "messages",
     "lmstudio", False, "needs-tools"),
    ("go-ahead-after-read", lambda: after_reading_app("yes, go ahead"), "messages", "lmstudio", False,
     "needs-tools"),
    ("general-question", lambda: cc.main_turn("what is the difference between TCP and UDP?"), "messages",
     "mlx", True, "from-context"),
    ("tool-loop-lmstudio", lambda: cc.tool_result_turn(origin="lmstudio"), "messages", "lmstudio", False,
     "tool-loop"),
    ("tool-loop-mlx", lambda: cc.tool_result_turn(origin="mlx"), "messages", "mlx", False, "tool-loop"),
    ("tool-loop-unknown-origin", lambda: cc.tool_result_turn(origin=None), "messages", "lmstudio", False,
     "tools"),
    ("title", lambda: cc.title_request(), "messages", "mlx", True, "side-calls"),
    ("compact", lambda: cc.compact_request(), "messages", "mlx", True, "compaction"),
    ("haiku-general", lambda: cc.haiku_turn("what is a mutex?"), "messages", "mlx", True, "from-context"),
    ("haiku-project-question", lambda: cc.haiku_turn("what does this project do?"), "messages", "lmstudio",
     False, "needs-tools"),
    ("v2-project-question", lambda: cc.v2_turn("how is this project structured?"), "messages", "lmstudio",
     False, "needs-tools"),
    ("v2-action", lambda: cc.v2_turn("add a test for the router"), "messages", "lmstudio", False, "needs-tools"),
    ("subagent", lambda: cc.subagent_turn(), "messages", "lmstudio", False, "subagent"),
    ("subagent-loop", lambda: cc.subagent_turn(loop=True, origin="lmstudio"), "messages", "lmstudio", False,
     "tool-loop"),
    ("quota", lambda: cc.quota_probe(), "messages", "mlx", True, "side-calls"),
    ("count-tokens", lambda: cc.count_tokens_body(), "count_tokens", "mlx", True, "side-calls"),
    ("tool-free", lambda: cc.main_turn("fix it", tools=False), "messages", "mlx", False, "no-tools"),
]


@pytest.mark.parametrize("name,build,endpoint,backend,strip,rule", SHIPPED, ids=[c[0] for c in SHIPPED])
def test_shipped_rules(shipped, name, build, endpoint, backend, strip, rule):
    d = route(shipped, build(), endpoint=endpoint)
    assert (d.backend, d.strip_tools, d.rule) == (backend, strip, rule), d.reason
    assert d.reason and "\n" not in d.reason


def test_shipped_fallbacks_and_reason(shipped):
    d = route(shipped, cc.main_turn("fix the bug"))
    assert d.fallback == ("mlx",)
    assert d.reason == "new prompt that needs change with 24 tools → lmstudio (rule needs-tools)"
    d = route(shipped, cc.tool_result_turn(origin="mlx"))
    assert d.fallback == ("lmstudio",)                   # the chosen backend is never its own fallback
    assert "started this tool loop" in d.reason


def test_shipped_intents_equal_builtin_defaults(shipped):
    default = IntentSets()
    assert shipped.intents.analysis == default.analysis and shipped.intents.action == default.action


MLX_TOOLS = [
    ("change", lambda: cc.main_turn("fix the failing test"), "mlx", False, "needs-tools"),
    ("workspace-keeps-tools", lambda: cc.main_turn("explain app.py"), "mlx", False, "needs-tools"),
    ("context-keeps-tools", lambda: after_reading_app("explain app.py"), "mlx", False, "from-context"),
    ("subagent", lambda: cc.subagent_turn(), "mlx", False, "everything-on-mlx"),
    ("loop-stays-on-lmstudio", lambda: cc.tool_result_turn(origin="lmstudio"), "lmstudio", False, "tool-loop"),
    ("compact", lambda: cc.compact_request(), "mlx", True, "compaction"),
]


@pytest.mark.parametrize("name,build,backend,strip,rule", MLX_TOOLS, ids=[c[0] for c in MLX_TOOLS])
def test_mlx_tools_profile(mlx_tools, name, build, backend, strip, rule):
    d = route(mlx_tools, build())
    assert (d.backend, d.strip_tools, d.rule) == (backend, strip, rule)
    if d.backend == "mlx":
        assert d.fallback == ("lmstudio",)


def test_overrides(shipped):
    body = cc.main_turn("explain store.py")          # a file nobody has read: a turn for the tools
    assert route(shipped, body, override=("header", "lmstudio")).rule == "override:header"
    d = route(shipped, body, override=("env", "lms"))                 # aliases work for overrides
    assert (d.backend, d.rule, d.strip_tools) == ("lmstudio", "override:env", False)
    assert route(shipped, body, override=("env", "auto")).rule == "needs-tools"
    assert route(shipped, body, override="MLX").backend == "mlx"      # bare string = header, any case
    with pytest.raises(UnknownRoute, match="unknown backend 'gpu'"):
        route(shipped, body, override=("header", "gpu"))


def test_model_alias_pins_backend(shipped):
    d = route(shipped, cc.main_turn("fix the bug", model="mlx"))
    assert (d.backend, d.rule) == ("mlx", "override:model")
    assert route(shipped, cc.main_turn("explain x", model="LMS")).backend == "lmstudio"
    assert shipped.resolve("local") == "mlx" and shipped.resolve("nope") is None


def _rules(yaml_text: str, backends=("mlx", "lmstudio")):
    return parse_ruleset(load_yaml(yaml_text, "t.yaml"), backends=set(backends), source="t.yaml")


def test_route_origin_never_matches_unknown_origin():
    rs = _rules("rules:\n  - name: loop\n    route: origin\ndefault: {route: lmstudio}\n")
    d = route(rs, cc.tool_result_turn(origin=None))
    assert d.rule == "default" and "origin unknown" in d.trace[0].failed
    assert route(rs, cc.tool_result_turn(origin="mlx")).backend == "mlx"


def test_conditions():
    rs = _rules("""
rules:
  - name: big
    when: {tokens: {above: 30000}}
    route: lmstudio
  - name: haiku
    when: {model: "*haiku*", tool_count: {min: 20, max: 30}}
    route: mlx
    model: small
    max_tokens: 1000
  - name: combo
    when:
      any:
        - tool: [NotebookEdit]
        - not: {thinking: true}
      all: [{images: false}, {json_schema: false}, {endpoint: messages}, {stream: true}]
      session: "5f0c*"
      subagent: false
      origin: unknown
      intent: [null, action]
    route: lmstudio
default: {route: mlx}
""")
    f = rs.features(cc.main_turn("fix"), cc.cc_headers(), input_tokens=40000)
    assert rs.decide(f).rule == "big"
    d = route(rs, cc.haiku_turn("hello"))
    assert (d.rule, d.model, d.max_tokens) == ("haiku", "small", 1000)
    assert route(rs, cc.main_turn("fix")).rule == "combo"
    d = route(rs, cc.main_turn("explain"))
    assert d.rule == "default"
    assert d.trace[0].failed == "input tokens unknown"
    assert d.trace[1].failed == f"model '{cc.MAIN_MODEL}' does not match *haiku*"
    assert d.trace[2].failed == "intent is analysis, wanted one of none, action"


def test_explain_names_failed_condition(shipped):
    d = route(shipped, cc.main_turn("fix the failing test"))
    text = explain(d, shipped)
    assert "✗ side-calls" in text and "turn is prompt, wanted one of count_tokens, title, background" in text
    # the failed needs condition carries the evidence: what decided and why
    assert "✗ from-context  needs change, wanted one of context, none — change: asks for a change (act change " \
           "by classifier" in text
    assert "✓ needs-tools" in text and "verdict: lmstudio (rule needs-tools), fallback mlx" in text
    assert "· no-tools" in text                                         # later rules: not reached
    d = route(shipped, cc.main_turn("explain the retry logic in app.py"))
    assert "unseen app.py" in explain(d, shipped)
    d = route(shipped, cc.main_turn("x"), override=("header", "mlx"))
    assert "not evaluated: override:header" in explain(d)
    rows = dict(describe_features(shipped.features(cc.main_turn("explain x"), cc.cc_headers())))
    assert rows["turn"] == "prompt" and rows["intent"] == "analysis" and rows["tools"].startswith("24 (Task")


def test_validation_errors_name_file_and_line():
    bad = [
        ("rules:\n  - name: a\n    when: {turn: promt}\n    route: mlx\n", 3,
         "rules[0].when.turn: unknown turn kind 'promt'"),
        ("rules:\n  - name: a\n    route: gpu\n", 3, "rules[0].route: unknown backend 'gpu'"),
        ("rules:\n  - name: a\n    route: mlx\n  - name: a\n    route: mlx\n", 4, "duplicate or reserved rule name 'a'"),
        ("rules:\n  - name: a\n    rout: mlx\n", 3, "rules[0].rout: unknown key"),
        ("rules:\n  - name: a\n    route: mlx\n    when:\n      has_tools: yes please\n", 5,
         "rules[0].when.has_tools: must be true or false"),
        ("rules:\n  - name: a\n    route: mlx\n    when: {intent: analyse}\n", 4, "unknown intent 'analyse'"),
        ("rules:\n  - name: a\n    route: mlx\n    fallback:\n      - mlx\n      - lmstudoi\n", 6,
         "rules[0].fallback[1]: unknown backend 'lmstudoi'"),
        ("default: {route: origin}\n", 1, "default.route: unknown backend 'origin'"),
        ("aliases:\n  fast: nowhere\n", 2, "aliases.fast: unknown backend"),
        ("intents:\n  analysis:\n    - explain\n    - /([a-z/\n", 4, "intents.analysis[1]"),
        ("markers: {compact: 3}\n", 1, "markers.compact: must be a list"),
        ("rules:\n  - name: a\n    route: mlx\n    when: {any: []}\n", 4, "rules[0].when.any: must be a non-empty"),
        ("rules:\n  - name: a\n    route: mlx\n    when:\n      tool_count: {least: 3}\n", 5, "unknown key"),
        ("rules:\n  - name: a\n    route: mlx\n    when:\n      colour: red\n", 5, "unknown condition"),
    ]
    for text, line, message in bad:
        with pytest.raises(ConfigError) as e:
            _rules(text)
        assert e.value.line == line, (text, str(e.value))
        assert message in str(e.value), str(e.value)
        assert str(e.value).startswith(f"t.yaml:{line}: ")


def test_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'prompt'"):
        _rules("rules:\n  - name: a\n    when: {turn: promt}\n    route: mlx\n")


def test_missing_default_uses_first_backend():
    doc = load_yaml("backends: {lmstudio: {}, mlx: {}}\n", "t.yaml")
    assert parse_ruleset(doc, backends={"mlx", "lmstudio"}, source="t.yaml").default.route == "lmstudio"


def test_replay_shows_changed_turns(shipped):
    alt = load("mlx-tools.yaml")
    captures = [
        {"body": cc.main_turn("fix the failing test"), "headers": cc.cc_headers()},
        {"body": cc.tool_result_turn("fix the failing test", origin=None), "headers": cc.cc_headers()},
        after_reading_app("explain app.py"),
        {"body": cc.title_request(), "headers": cc.cc_headers()},
    ]
    rows = replay_inputs(captures, shipped, alt)
    assert [(r.old.backend, r.new.backend) for r in rows] == [
        ("lmstudio", "mlx"), ("lmstudio", "mlx"), ("mlx", "mlx"), ("mlx", "mlx")]
    assert [r.changed for r in rows] == [True, True, True, False]        # row 2: tools no longer stripped
    assert rows[1].new.rule == "tool-loop"           # the loop follows the new prompt decision
    text = format_replay(rows, changed_only=True)
    assert "3 of 4 decisions would change" in text and "CHANGED" in text


def test_replay_log_lines(shipped):
    alt = load("mlx-tools.yaml")
    lines = (ROOT / "tests" / "fixtures" / "sample_log.jsonl").read_text()
    rows = replay_inputs(lines, shipped, alt)
    assert rows and all(r.old.backend in ("mlx", "lmstudio") for r in rows)
    first = json.loads(lines.splitlines()[0])
    assert rows[0].features.session_id == first["session"] and rows[0].features.turn.value == first["turn"]
    # action prompts move from lmstudio to mlx under the alternative profile
    assert any(r.changed and r.old.backend == "lmstudio" and r.new.backend == "mlx" for r in rows)


def test_tool_errors_condition_sends_a_struggling_turn_elsewhere():
    rs = _rules("rules:\n  - name: escalate\n    when: {tool_errors: 2}\n    route: lmstudio\n"
                "default: {route: mlx}\n")
    body = cc.tool_result_turn("fix it", loops=2)
    assert route(rs, body).rule == "default" and "tool_errors is 0, wanted ≥ 2" in route(rs, body).trace[0].failed
    for m in body["messages"]:
        for b in m["content"] if m["role"] == "user" and isinstance(m["content"], list) else ():
            if b.get("type") == "tool_result":
                b["is_error"] = True
    assert route(rs, body).backend == "lmstudio"
