"""Two gateway processes behind one port (a round-robin proxy) route a session's turns identically.

What makes replicas agree with no shared state: the rules read only the request, tool ids carry
the backend that made them (a tool result can come back through the other replica), a session
hashes to the same server of a multi-URL backend, and each backend can pass the session id on in
the header a serving fleet's router uses for affinity.
"""

from __future__ import annotations

import httpx

from tests.fixtures import cc_requests as cc
from tests.support.fake_anthropic import FakeAnthropic, Reply, ToolCall
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import Gateway, gateway_config, openai_backend
from tests.support.rrproxy import RoundRobinProxy

SESSIONS = ["0b8e3c1e-1111-4c6b-9a57-3f0c5c6f0a01", "7d2f9a40-2222-4b1e-8e0f-9b1f3f2d6c02",
            "c4a1e8b2-3333-4f7d-a2c9-51e0d7b3a903"]


def post(base: str, body: dict) -> dict:
    """One request on a fresh connection, so the proxy picks the next replica."""
    with httpx.Client(timeout=30) as c:
        r = c.post(base + "/v1/messages", json={**body, "stream": False}, headers={"connection": "close"})
    assert r.status_code == 200, r.text
    return r.json()


def conversation(base: str, session: str) -> list[str]:
    """question → change (tool call) → tool result → follow-up; returns the answering routes."""
    routes = []
    first = cc.main_turn("what is a mutex?", session=session)
    routes.append(post(base, first)["content"][0]["text"])
    action = cc.main_turn("fix the retry logic", session=session)
    answer = post(base, action)
    routes.append(answer["content"][0]["text"])
    use = answer["content"][-1]
    follow = {**action, "messages": action["messages"] + [
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "ok"}]}]}
    routes.append(post(base, follow)["content"][0]["text"])
    routes.append(post(base, {**follow, "messages": follow["messages"] + [
        {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
        {"role": "user", "content": "why was it broken?"}]})["content"][0]["text"])
    return routes


def lms_reply(req) -> Reply:
    if any(b.get("type") == "tool_result" for m in req.body["messages"] if isinstance(m["content"], list)
           for b in m["content"]):
        return Reply(text="lms")
    return Reply.tools(ToolCall("Read", {"file_path": "a.py"}, id="srv_1"), text="lms")


def test_two_replicas_behind_one_port_route_each_session_identically(tmp_path):
    with FakeOpenAI(default="mlx-a") as mlx_a, FakeOpenAI(default="mlx-b") as mlx_b, \
            FakeAnthropic(default=lms_reply) as lms:
        cfg = {"mlx": openai_backend(mlx_a.url, tools=False, session_header="x-session-affinity"),
               "lmstudio": {"type": "anthropic", "url": lms.base, "model": "m", "supports": {"tools": True},
                            "session_header": "x-session-affinity"}}
        cfg["mlx"]["urls"] = [mlx_a.url, mlx_b.url]
        del cfg["mlx"]["url"]
        replicas = []
        for i in range(2):
            (tmp_path / f"r{i}").mkdir()
            replicas.append(Gateway(gateway_config(cfg, log_path=tmp_path / f"r{i}" / "requests.jsonl"),
                                    tmp_path / f"r{i}"))
        try:
            with RoundRobinProxy([g.port for g in replicas]) as proxy:
                seen = {s: conversation(proxy.base, s) for s in SESSIONS}
            # Each replica answered part of every conversation ...
            assert len(set(proxy.connections)) == 2
            recs = [r for g in replicas for r in g.wait_records(len(SESSIONS) * 2)]
            assert len(recs) == 4 * len(SESSIONS)
            for s, answers in seen.items():
                # ... and the session's turns went where one gateway would have sent them:
                # its MLX turns always to the same one of the two servers, the tool loop back to lms.
                mlx_answer = answers[0]
                assert answers == [mlx_answer, "lms", "lms", mlx_answer], (s, answers)
                mine = [r for r in recs if r["session"] == s]
                assert {r["rule"] for r in mine} == {"from-context", "needs-tools", "tool-loop"}
            for fake in (mlx_a, mlx_b, lms):
                assert all(q.headers.get("x-session-affinity") in SESSIONS for q in fake.requests)
            assert mlx_a.requests and mlx_b.requests          # the sessions spread over both servers
        finally:
            for g in replicas:
                g.stop()
