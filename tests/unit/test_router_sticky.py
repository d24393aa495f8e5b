"""Stickiness: every request of one user turn goes to the same backend, also under concurrency."""

from __future__ import annotations

import random
import sys
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


def test_concurrent_memory_is_consistent_under_eviction():
    """32 threads share 48 sessions in a memory of 16: every write evicts, every read races a write.

    The thread switch interval is made tiny so the interleavings that break an unlocked
    OrderedDict (move_to_end of a key another thread just evicted, two threads evicting at once)
    actually happen; with the lock, no thread fails, the bound holds, and a recall only ever
    returns the backend written for that exact (session, turn).
    """
    m = TurnMemory(max_sessions=16)
    errors: list[str] = []

    def expected(sid: str, turn: int) -> str:
        return "mlx" if (hash(sid) + turn) % 2 else "lmstudio"

    def worker(n: int) -> None:
        try:
            for i in range(400):
                sid, turn = f"s{(n * 7 + i) % 48}", i % 5
                m.remember(sid, turn, expected(sid, turn))
                got = m.recall(f"s{(n + i) % 48}", turn)
                if got is not None and got != expected(f"s{(n + i) % 48}", turn):
                    errors.append(f"wrong backend for s{(n + i) % 48}/{turn}: {got}")
                if len(m) > 16:
                    errors.append(f"bound exceeded: {len(m)}")
        except Exception as exc:  # an unlocked table raises here (KeyError, RuntimeError)
            errors.append(repr(exc))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:5]
    assert len(m) == 16


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
