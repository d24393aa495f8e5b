"""References, what the conversation has seen, and the `needs` verdict on Claude Code-shaped turns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures import cc_requests as cc
from turnroute.router.context import conversation_text, pasted, references
from turnroute.router.language import language
from turnroute.router.needs import NeedsSets, assess, read
from turnroute.router.rules import parse_ruleset
from turnroute.router.yamlsrc import ConfigError, load_yaml

STORE = ("     1\timport time\n     2\t\n     3\tclass SessionStore:\n     4\t    def __init__(self, ttl=300):\n"
         "     5\t        self.ttl = ttl\n     6\t\n     7\t    def _evict_expired(self):\n"
         "     8\t        cutoff = time.time() - self.ttl\n")


def read_store() -> list[dict]:
    """A session that asked about store.py and read it with the Read tool."""
    return cc.history_of(
        [{"role": "user", "content": [{"type": "text", "text": cc.DATE_REMINDER},
                                      {"type": "text", "text": "walk me through store.py"}]}],
        cc.tool_call("Read", {"file_path": "/repo/store.py"}, result=STORE),
        [{"role": "assistant", "content": [{"type": "text", "text": "SessionStore evicts entries past the ttl."}]}])


def verdict(prompt: str, history=(), **kw):
    body = cc.main_turn(prompt, history=list(history))
    msgs = body["messages"]
    return assess(prompt, msgs, len(msgs) - 1, **kw)


@pytest.mark.parametrize("text, paths, idents", [
    ("explain how the session store in store.py expires entries", ("store.py",), ()),
    ("list the handlers under api/handlers/", ("api/handlers/",), ()),
    ("what does Order.total() return, and who calls load_settings?", (), ("Order.total()", "load_settings")),
    ("why does loadSettings differ from OrderService in `settings.ts`?", ("settings.ts",),
     ("loadSettings", "OrderService")),
    ("does JavaScript or TypeScript handle I/O better, and/or faster?", (), ()),   # names, not refs
    ("see https://example.com/a/b.py for details", (), ()),                        # a URL is not a path
    ("explícame cómo main() usa deploy.sh", ("deploy.sh",), ("main()",)),
    ("mira si VERCEL_ENV está en .env.example y en Dockerfile.dev", (".env.example", "Dockerfile.dev"), ("VERCEL_ENV",)),
    ("check .env. then the Makefile", (".env", "Makefile"), ()),
    ("解释一下 store.py 里的 _evict_expired", ("store.py",), ("_evict_expired",)),
])
def test_references_are_language_independent(text, paths, idents):
    refs = references(text)
    assert refs.paths == paths and refs.idents == idents


def test_fenced_material_is_not_a_reference_and_counts_as_pasted():
    text = "why does this fail?\n```python\ndef load_settings():\n    return open('x.yaml')\n```"
    assert references(text).named == () and pasted(text)
    assert pasted("it fails with\nTraceback (most recent call last):\n  File \"a.py\", line 3\n    x = 1/0\n")
    assert not pasted("explain the retry logic\nand the backoff")


def test_seen_covers_tool_inputs_results_and_answers_but_not_reminders():
    hist = read_store() + [{"role": "user", "content": [{"type": "text", "text":
                            "<system-reminder>\nContents of /repo/secret_notes.py: API_TOKEN\n</system-reminder>"}]}]
    conv = conversation_text(hist, len(hist))
    assert conv.has("store.py") and conv.has("/repo/store.py") and conv.has("./store.py")
    assert conv.has("_evict_expired") and conv.has("SessionStore")          # tool result text
    assert conv.has("ttl")                                                  # the assistant's answer
    assert not conv.has("secret_notes.py") and not conv.has("API_TOKEN")    # system-reminders ignored
    assert conv.tool_results == 1 and conv.material


GREP = "src/billing.py:12:def refund(order):\nsrc/api.py:40:    billing.refund(order)"


def grep_refund() -> list[dict]:
    """A session that grepped for refund: billing.py is named in the hits, its text never shown."""
    return cc.history_of(
        [{"role": "user", "content": [{"type": "text", "text": cc.DATE_REMINDER},
                                      {"type": "text", "text": "who calls refund?"}]}],
        cc.tool_call("Grep", {"pattern": "refund", "output_mode": "content"}, result=GREP),
        [{"role": "assistant", "content": [{"type": "text", "text": "Only api.py calls billing.refund. "
                                                                    "Want me to add a test for it?"}]}])


def test_a_file_named_in_grep_hits_is_seen_but_its_text_was_not_shown():
    hist = grep_refund()
    conv = conversation_text(hist, len(hist))
    assert conv.has("billing.py") and not conv.shown("billing.py")
    assert conv.offer and conv.edits == 0                      # the agent asked; nothing edited yet
    hist = read_store()
    conv = conversation_text(hist, len(hist))
    assert conv.shown("store.py") and conv.shown("/repo/store.py") and not conv.shown("settings.py")


def test_the_classifier_is_told_the_situation():
    """What the session holds and what the prompt's references are, as tags the act classifier reads
    next to the words: the same "and for Postgres?" is general after a chat, about code after a Read."""
    assert situation_of("and for Postgres?") == ("x:fresh", "x:norefs")
    chat = [{"role": "user", "content": [{"type": "text", "text": "how do SQLite transactions lock?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "SQLite takes a database-wide lock."}]}]
    assert situation_of("and for Postgres?", chat) == ("x:chat", "x:norefs")
    assert situation_of("what does billing.py do with a partial refund?", grep_refund()) == \
        ("x:tools", "x:offer", "x:seen", "x:listed")
    assert situation_of("why does _evict_expired use settings.py?", read_store()) == \
        ("x:tools", "x:seen", "x:unseen-path")


def test_the_situation_changes_the_verdict_for_the_same_words():
    chat = [{"role": "user", "content": [{"type": "text", "text": "how do SQLite transactions lock?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "SQLite takes a database-wide lock."}]}]
    assert verdict("and for Postgres?", chat).verdict == "none"             # general, after a general answer
    # a file named in grep hits is not its text: a question about what it does needs the tools,
    # one the hits answer does not
    assert verdict("what does billing.py do with a partial refund?", grep_refund()).verdict == "workspace"
    assert verdict("so api.py is the only caller?", grep_refund()).verdict == "context"


def situation_of(prompt: str, history=()) -> tuple[str, ...]:
    body = cc.main_turn(prompt, history=list(history))
    msgs = body["messages"]
    return read(prompt, msgs, len(msgs) - 1).tags


@pytest.mark.parametrize("prompt, history, expected", [
    # the examples on a fresh session: reading or searching is the job
    ("explain how the session store in store.py expires entries", (), "workspace"),
    ("find where we call load_settings", (), "workspace"),
    ("list the handlers under api/", (), "workspace"),
    ("what does this project do?", (), "workspace"),
    # after the file was read, the same kind of question is answerable from the conversation
    ("explain how the session store in store.py expires entries", "read", "context"),
    ("what does _evict_expired return?", "read", "context"),
    ("why does it check the ttl twice?", "read", "context"),
    ("explícame esta función", "read", "context"),
    ("and how does settings.py load the ttl?", "read", "workspace"),        # a file not read yet
    # changes, in any phrasing, including follow-ups that act on what was discussed
    ("ok, make the ttl configurable", "read", "change"),
    ("yes, go ahead", "read", "change"),
    ("explain why the test fails and fix it", (), "change"),
    ("füge eine Prüfung hinzu, die negative Werte ablehnt", "read", "change"),
    # general knowledge
    ("what is the difference between TCP and UDP?", (), "none"),
])
def test_needs_verdicts(prompt, history, expected):
    v = verdict(prompt, read_store() if history == "read" else history)
    assert v.verdict == expected, v.evidence()


class _Says:
    """A classifier that always gives `probs`: the verdict's rules, whatever the weights say."""

    def __init__(self, **probs: float):
        self.probs = {"change": 0.0, "search": 0.0, "look": 0.0, "ask": 0.0, "general": 0.0, **probs}

    def predict(self, text, tags=()):
        best = max(self.probs, key=self.probs.__getitem__)
        return best, self.probs[best], self.probs


@pytest.mark.parametrize("general, prompt, expected", [
    # a framework's file named the way its docs name it, by a classifier sure it is general
    (0.97, "in Symfony, when is an access_control rule in security.yaml enough?", "none"),
    (0.80, "in Symfony, when is an access_control rule in security.yaml enough?", "workspace"),
    # a path into this workspace keeps the tools however general the question sounds
    (0.99, "side question: does src/models/order.js compute the total in a hook?", "workspace"),
])
def test_a_general_question_may_name_a_file_only_by_its_bare_name(monkeypatch, general, prompt, expected):
    monkeypatch.setattr(NeedsSets, "model", lambda self: _Says(general=general, ask=1 - general))
    v = verdict(prompt)
    assert v.verdict == expected, v.evidence()
    assert v.unseen and ("names a file as the docs do" in v.why) == (expected == "none")


@pytest.mark.parametrize("prompt", [
    "what does our CI workflow actually run?", "¿qué corre exactamente nuestro pipeline de CI?",
    "notre CI lance quoi exactement ?", "was macht unsere CI-Pipeline eigentlich?", "o que o nosso CI roda?",
    "我们的 CI 到底跑了什么？", "うちのCIって何を回してる？"])
def test_our_anything_is_this_workspace_however_general_it_sounds(monkeypatch, prompt):
    monkeypatch.setattr(NeedsSets, "model", lambda self: _Says(general=0.99, ask=0.01))
    v = verdict(prompt)                                     # a fresh session: nothing read yet
    assert v.verdict == "workspace" and v.scope, v.evidence()


@pytest.mark.parametrize("prompt", [
    "how does this app talk to the backend?", "¿cómo se comunica esta app con el backend?",
    "comment cette appli parle au backend ?", "wie redet diese App mit dem Backend?",
    "como essa app conversa com o backend?", "这个应用是怎么跟后端通信的？", "このアプリはバックエンドとどう通信してる？"])
def test_this_app_is_this_workspace_in_every_language(monkeypatch, prompt):
    monkeypatch.setattr(NeedsSets, "model", lambda self: _Says(general=0.99, ask=0.01))
    v = verdict(prompt)
    assert v.verdict == "workspace" and v.scope, v.evidence()


@pytest.mark.parametrize("prompt, expected", [
    # "reminder" appears nowhere in the session: a part of the project it has not read
    ("does our reminder job evict sessions the same way?", "workspace"),
    ("¿nuestro job de reminders también expira las sesiones así?", "workspace"),
    ("unser Reminder-Job, macht der das genauso?", "workspace"),
    # the store the session just read: a follow-up
    ("so our session store never evicts before the ttl?", "context"),
    ("alors notre session store n'évince rien avant le ttl ?", "context"),
])
def test_our_part_the_conversation_never_mentioned_needs_the_workspace(monkeypatch, prompt, expected):
    monkeypatch.setattr(NeedsSets, "model", lambda self: _Says(ask=0.99, general=0.01))
    v = verdict(prompt, read_store())
    assert v.verdict == expected and v.scope, v.evidence()


def test_pasted_code_is_context_even_on_a_fresh_session():
    v = verdict("why does this throw?\n```python\nuser = {}\nprint(user['name'])\n```\nKeyError: 'name'")
    assert v.verdict == "context" and v.pasted


def test_evidence_names_seen_and_unseen_references_and_what_decided():
    v = verdict("how does _evict_expired in store.py compare with settings.py?", read_store())
    assert v.verdict == "workspace"
    assert v.unseen == ("settings.py",) and set(v.seen) == {"store.py", "_evict_expired"}
    text = v.evidence()
    assert "unseen settings.py" in text and "seen store.py" in text and "classifier" in text
    assert "words 'go ahead'" in verdict("yes, go ahead", read_store()).evidence()


def test_word_lists_from_the_yaml_override_the_classifier():
    sets = NeedsSets(change=("ship the thing",), search=("rummage",))
    assert verdict("ok, ship the thing", read_store(), sets=sets).act == "change"
    assert verdict("rummage through the queue code", read_store(), sets=sets).verdict == "workspace"
    doc = load_yaml("backends: {mlx: {}}\nneeds:\n  search: [rummage]\nrules: []\n", "t.yaml")
    rs = parse_ruleset(doc, backends={"mlx"}, source="t.yaml")
    f = rs.features(cc.main_turn("rummage in the queue code", history=read_store()), {})
    assert f.needs == "workspace" and "words 'rummage'" in f.needs_why
    with pytest.raises(ConfigError, match=r"t.yaml:2: needs.serach: unknown key .*did you mean 'search'"):
        parse_ruleset(load_yaml("backends: {mlx: {}}\nneeds: {serach: [x]}\n", "t.yaml"),
                      backends={"mlx"}, source="t.yaml")


def test_conditions_on_needs_refs_paste_and_language():
    rs = parse_ruleset(load_yaml("""
rules:
  - {name: unseen, when: {unseen_refs: true}, route: lmstudio}
  - {name: pasted, when: {pasted: true}, route: mlx}
  - {name: spanish, when: {language: es, needs: context}, route: mlx}
default: {route: lmstudio}
""", "t.yaml"), backends={"mlx", "lmstudio"}, source="t.yaml")
    decide = lambda prompt, hist=(): rs.decide(rs.features(cc.main_turn(prompt, history=list(hist)), {}))
    assert decide("what is in deploy.sh?").rule == "unseen"
    assert decide("and this?\n```\nx = 1\n```").rule == "pasted"
    d = decide("¿por qué comprueba el ttl dos veces?", read_store())
    assert d.rule == "spanish"
    d = decide("why does it check the ttl twice?", read_store())
    assert d.rule == "default" and "language is en, wanted es" in d.trace[2].failed
    with pytest.raises(ConfigError, match="unknown needs verdict 'tools'"):
        parse_ruleset(load_yaml("rules:\n  - {name: x, when: {needs: tools}, route: mlx}\n", "t.yaml"),
                      backends={"mlx"}, source="t.yaml")


@pytest.mark.parametrize("text, lang", [
    ("why does it check the ttl twice?", "en"), ("¿por qué comprueba el ttl dos veces?", "es"),
    ("pourquoi vérifie-t-il le ttl deux fois ?", "fr"), ("warum prüft es den ttl zweimal?", "de"),
    ("por que ele verifica o ttl duas vezes?", "pt"), ("为什么它要检查两次 ttl？", "zh"),
    ("なぜ ttl を二回チェックしているの？", "ja"),
])
def test_language(text, lang):
    assert language(text) == lang


def test_only_new_prompts_get_a_verdict():
    rs = parse_ruleset(load_yaml("backends: {mlx: {}}\nrules: []\n", "t.yaml"), backends={"mlx"}, source="t.yaml")
    assert rs.features(cc.tool_result_turn(), {}).needs is None
    assert rs.features(cc.title_request(), {}).needs is None
    assert rs.features(cc.main_turn("fix it"), {}).needs == "change"


def test_replay_of_log_lines_uses_the_logged_verdict():
    from turnroute.router.replay import replay_inputs

    path = Path(__file__).resolve().parents[2] / "config" / "turnroute.yaml"
    rs = parse_ruleset(load_yaml(path.read_text(encoding="utf-8"), str(path)), backends={"mlx", "lmstudio"},
                       source=str(path))
    line = {"ts": "2026-12-01T20:00:00Z", "session": "s1", "turn": "prompt", "intent": "analysis",
            "tools": 24, "endpoint": "messages"}
    rows = replay_inputs("\n".join(json.dumps({**line, "needs": n}) for n in ("workspace", "context")), rs, rs)
    assert [(r.new.rule, r.new.backend) for r in rows] == [("needs-tools", "lmstudio"), ("from-context", "mlx")]
