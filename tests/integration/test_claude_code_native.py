"""The real Claude Code client through a `type: anthropic` backend (a scripted Messages-API server).

What a user of LM Studio's or llama.cpp's native endpoint relies on: the tool loop works with the
server's own tool ids (the client only ever sees tagged ones), the loop stays on that backend,
and a field the server rejects never reaches it once it is declared in `drop`.
"""

from __future__ import annotations

from tests.integration.test_claude_code_e2e import CODE_WORD, read_code_word, workspace  # noqa: F401
from tests.support.fake_anthropic import FakeAnthropic, Reply, ToolCall
from tests.support.fake_openai import FakeOpenAI, Received
from tests.support.gateway import Gateway, gateway_config, openai_backend

SERVER_ID = "srv_call_1"


def last_tool_result(body: dict) -> str | None:
    for m in reversed(body.get("messages") or []):
        for b in m.get("content") if isinstance(m.get("content"), list) else ():
            if b.get("type") == "tool_result":
                c = b.get("content")
                return c if isinstance(c, str) else " ".join(x.get("text", "") for x in c or ())
    return None


def native_agent(req: Received) -> Reply:
    """Plays a tool-calling model behind the Messages API: Read notes.txt, then answer from it."""
    body = req.body or {}
    if not body.get("tools"):
        return Reply(text='{"title": "Reading notes"}')
    seen = last_tool_result(body)
    if seen is None:
        return Reply.tools(ToolCall("Read", {"file_path": "notes.txt"}, id=SERVER_ID, pieces=3), text="Reading.")
    return Reply(text=f"The code word is {CODE_WORD if CODE_WORD in seen else 'NOT-FOUND'}.")


def test_claude_code_tool_loop_on_a_native_backend(claude_code, workspace, tmp_path):
    cwd, home = workspace
    with FakeAnthropic(default=native_agent, reject=("context_management",)) as lms, \
            FakeOpenAI(default='{"title": "Reading notes"}') as mlx:
        cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False),
                              "lmstudio": {"type": "anthropic", "url": lms.base, "model": "qwen3-coder",
                                           "drop": ["context_management"], "supports": {"tools": True}}},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            read_code_word(claude_code, gw, cwd, home)
            bodies = [r.body for r in lms.requests]
            assert all("context_management" not in b for b in bodies)
            # The continuation carried the server's own id back, in the tool_use and the tool_result.
            loop = [b for b in bodies if last_tool_result(b) is not None]
            assert loop and CODE_WORD in last_tool_result(loop[0])
            blocks = [x for m in loop[0]["messages"] if isinstance(m["content"], list) for x in m["content"]]
            assert {x.get("id") or x.get("tool_use_id") for x in blocks
                    if x["type"] in ("tool_use", "tool_result")} == {SERVER_ID}
            recs = gw.wait_records(2)
            tool_turns = [r for r in recs if r["turn"] == "tool_result"]
            assert tool_turns and all(r["route"] == "lmstudio" and r["rule"] == "tool-loop" for r in tool_turns)
            assert all(r["status"] == 200 for r in recs), recs
