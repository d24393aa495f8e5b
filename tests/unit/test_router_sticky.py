"""Stickiness: every request of one user turn goes to the same backend, also under concurrency."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from turnroute.router.features import TurnKind
from turnroute.router.ids import backend_tag, mint_tool_id, origin_of
from turnroute.router.rules import parse_ruleset
from turnroute.router.sticky import TurnMemory, sticky_key
from turnroute.router.yamlsrc import load_yaml
from tests.fixtures import cc_requests as cc

ROOT = Path(__file__).resolve().parents[2]


def shipped():
    path = ROOT / "config" / "turnroute.yaml"
    doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return parse_ruleset(doc, backends=set(doc["backends"]), source=str(path))


def test_remember_recall_and_turn_change():
    m = TurnMemory()
    m.remember("s", 1, "lmstudio")
    assert m.recall("s", 1) == "lmstudio"
    assert m.recall("s", 2) is None                 # a new prompt is a new turn
    m.remember("s", 2, "mlx")
    assert m.recall("s", 1) is None and m.recall("s", 2) == "mlx"
    assert m.recall(None, 1) is None and m.recall("other", 1) is None
    m.remember(None, 1, "mlx")                      # no session: nothing to remember
    assert len(m) == 1


def test_lru_bound():
    m = TurnMemory(max_sessions=3)
    for s in "abc":
        m.remember(s, 1, "mlx")
    m.recall("a", 1)                                # touch a: b is now the oldest
    m.remember("d", 1, "mlx")
    assert len(m) == 3 and m.recall("b", 1) is None and m.recall("a", 1) == "mlx"


def test_sticky_key_separates_subagents_and_ignores_side_calls():
    rs = shipped()
    h = cc.cc_headers()
    assert sticky_key(rs.features(cc.main_turn("fix"), h)) == (cc.SESSION, 1)
    assert sticky_key(rs.features(cc.subagent_turn(), h)) == (cc.SESSION + "#subagent", 1)
    assert sticky_key(rs.features(cc.title_request(), h)) is None
    assert sticky_key(rs.features(cc.count_tokens_body(), h, endpoint="count_tokens")) is None


def test_ids_are_stateless_and_distinct():
    assert backend_tag("mlx") == backend_tag("mlx") != backend_tag("lmstudio")
    ids = {mint_tool_id("mlx") for _ in range(1000)}
    assert len(ids) == 1000 and all(origin_of(i, ["mlx", "lmstudio"]) == "mlx" for i in ids)


def test_concurrent_memory_is_consistent():
    m = TurnMemory(max_sessions=64)
    errors: list[str] = []

    def worker(n: int) -> None:
        for turn in range(1, 50):
            sid = f"s{n}"
            backend = "mlx" if (n + turn) % 2 else "lmstudio"
            m.remember(sid, turn, backend)
            got = m.recall(sid, turn)
            if got != backend:
                errors.append(f"{sid}/{turn}: {got} != {backend}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(m) == 32


def test_every_request_of_a_user_turn_goes_to_the_same_backend_concurrently():
    """Many sessions at once, each: prompt → tool loop (ids sometimes untagged) → next prompt.

    Untagged tool_result ids force the memory path; the shipped rules must then keep the loop on
    the backend that served its prompt, whatever the interleaving of threads.
    """
    rs = shipped()
    memory = TurnMemory(max_sessions=256)
    prompts = ["fix the failing test", "explain the retry logic", "add a CLI flag", "why is it slow?"]

    def session(n: int) -> list[tuple[int, str, str]]:
        rnd = random.Random(n)
        sid = f"sess-{n:04d}"
        headers = cc.cc_headers(sid)
        history: list[dict] = []
        seen: list[tuple[int, str, str]] = []
        for prompt in rnd.sample(prompts, k=3):
            body = cc.main_turn(prompt, session=sid, history=history)
            f = rs.features(body, headers, memory=memory)
            d = rs.decide(f)
            memory.remember_features(f, d.backend)
            seen.append((f.user_turn, f.turn.value, d.backend))
            msgs = body["messages"]
            if not d.strip_tools:                    # the backend answers with tool calls
                for _ in range(rnd.randint(1, 4)):
                    tagged = rnd.random() < 0.5      # ids minted by us, or foreign (memory path)
                    msgs = msgs + cc.tool_call(backend=d.backend if tagged else None)
                    body = {**body, "messages": msgs}
                    f = rs.features(body, headers, memory=memory)
                    assert f.turn is TurnKind.TOOL_RESULT
                    d2 = rs.decide(f)
                    memory.remember_features(f, d2.backend)
                    seen.append((f.user_turn, f.turn.value, d2.backend))
            history = msgs + [{"role": "assistant", "content": [{"type": "text", "text": "Done."}]}]
        return seen

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(session, range(64)))
    for seen in results:
        by_turn: dict[int, set[str]] = {}
        for user_turn, _, backend in seen:
            by_turn.setdefault(user_turn, set()).add(backend)
        assert all(len(b) == 1 for b in by_turn.values()), seen
        assert [t for t, kind, _ in seen if kind == "prompt"] == [1, 2, 3]
