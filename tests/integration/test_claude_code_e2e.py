"""The real Claude Code client (pinned npm release) through turnroute, end to end.

`claude -p` runs offline against the gateway. The LM Studio role is played by the scripted fake
behind LiteLLM (a random model never emits tool calls), the MLX role by a real mlx_lm.server.
"""

from __future__ import annotations

import pytest

from tests.support.claude_code import run_claude
from tests.support.fake_openai import FakeOpenAI, Received, Reply, ToolCall, last_tool_result_text
from tests.support.gateway import Gateway, gateway_config, openai_backend

CODE_WORD = "PERIWINKLE-42"


def tool_loop_agent(req: Received) -> Reply:
    """Plays a tool-calling model: Read notes.txt, then answer from what the tool returned."""
    body = req.body or {}
    if not body.get("tools"):                       # side calls (title generation)
        return Reply(text='{"title": "Reading notes"}')
    seen = last_tool_result_text(body)
    if seen is None:
        return Reply.tools(ToolCall("Read", {"file_path": "notes.txt"}, pieces=3), text="Reading it.")
    word = CODE_WORD if CODE_WORD in seen else "NOT-FOUND"
    return Reply(text=f"The code word is {word}.")


def real_mlx_and_fake_lmstudio(mlx_server, lms: FakeOpenAI, tmp_path) -> dict:
    """The shipped rules over the real mlx_lm.server (8 output tokens) and a scripted LM Studio."""
    return gateway_config({"mlx": openai_backend(mlx_server.url, model="default_model", tools=False,
                                                 max_output_tokens=8),
                           "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model")},
                          log_path=tmp_path / "requests.jsonl")


@pytest.fixture
def workspace(tmp_path):
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / "notes.txt").write_text(f"meeting notes\nthe code word is {CODE_WORD}\n")
    return cwd, tmp_path / "home"


def read_code_word(claude_code, gw: Gateway, cwd, home) -> None:
    """Claude Code asked to Read notes.txt through `gw` reports the code word from the file."""
    rc, out, err, result = run_claude(
        claude_code, gw.base, "Update me: use the Read tool on notes.txt and report the code word.",
        cwd=cwd, home=home, timeout=240)
    assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
    assert isinstance(result, dict) and not result.get("is_error"), result
    assert CODE_WORD in result["result"]


def test_real_tool_loop_through_the_gateway(claude_code, workspace, tmp_path):
    cwd, home = workspace
    with FakeOpenAI(default=tool_loop_agent) as lms, FakeOpenAI(default=tool_loop_agent) as mlx:
        cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False),
                              "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model")},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            read_code_word(claude_code, gw, cwd, home)
            # The tool loop really happened: Claude Code ran Read and sent the tool_result back,
            # and the continuation went to the backend that started the turn.
            tool_msgs = [m for r in lms.requests for m in (r.body or {}).get("messages", [])
                         if m.get("role") == "tool"]
            assert any(CODE_WORD in str(m.get("content")) for m in tool_msgs)
            recs = gw.wait_records(3)
            loop = [r for r in recs if r["turn"] == "tool_result"]
            assert loop and all(r["route"] == "lmstudio" and r["rule"] == "tool-loop" for r in loop)
            assert all(r["status"] == 200 for r in recs), recs


def test_question_lands_on_mlx_and_edit_task_on_lmstudio(claude_code, workspace, tmp_path, mlx_server):
    cwd, home = workspace
    with FakeOpenAI(default=tool_loop_agent) as lms:
        cfg = real_mlx_and_fake_lmstudio(mlx_server, lms, tmp_path)
        with Gateway(cfg, tmp_path) as gw:
            rc, out, err, result = run_claude(claude_code, gw.base, "Explain what a build system is, briefly.",
                                              cwd=cwd, home=home, timeout=300)
            assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            question = [r for r in gw.wait_records(1) if r["turn"] == "prompt"]
            assert question and all(r["route"] == "mlx" and r["rule"] == "from-context"
                                    and r["tools_stripped"] for r in question), question
            assert not lms.requests or all(not (r.body or {}).get("tools") for r in lms.requests)

            before = len(gw.records())
            rc, out, err, result = run_claude(claude_code, gw.base,
                                              "Edit notes.txt: read it first, then report the code word.",
                                              cwd=cwd, home=home, timeout=240)
            assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            assert CODE_WORD in result["result"]
            edit = [r for r in gw.records()[before:] if r["turn"] in ("prompt", "tool_result")]
            assert edit and all(r["route"] == "lmstudio" for r in edit), edit
            assert {r["turn"] for r in edit} == {"prompt", "tool_result"}


def test_unread_file_goes_to_the_tool_backend_and_the_follow_up_to_mlx(claude_code, workspace, tmp_path, mlx_server):
    """On a fresh session a question about notes.txt needs the workspace (the tool backend reads
    it); once it was read, a follow-up about it is answered by MLX from the conversation."""
    cwd, home = workspace
    with FakeOpenAI(default=tool_loop_agent) as lms:
        cfg = real_mlx_and_fake_lmstudio(mlx_server, lms, tmp_path)
        with Gateway(cfg, tmp_path) as gw:
            rc, out, err, result = run_claude(claude_code, gw.base, "What is the code word in notes.txt?",
                                              cwd=cwd, home=home, timeout=240)
            assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            assert CODE_WORD in result["result"]                  # the tool backend really read the file
            first = [r for r in gw.wait_records(2) if r["turn"] == "prompt"]
            assert [(r["route"], r["rule"]) for r in first] == [("lmstudio", "needs-tools")], gw.records()

            before = len(gw.records())
            rc, out, err, _ = run_claude(claude_code, gw.base, "Why does notes.txt mention a code word?",
                                         cwd=cwd, home=home, args=("-c",), timeout=300)
            assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            follow = [r for r in gw.wait_records(before + 1)[before:] if r["turn"] == "prompt"]
            assert [(r["route"], r["rule"], r["tools_stripped"]) for r in follow] == [
                ("mlx", "from-context", True)], gw.records()[before:]


def test_context_command_is_answered_locally(claude_code, workspace, tmp_path):
    """/context makes ~14 count_tokens calls: all answered by the gateway, none reach a backend
    (a 404 there would make Claude Code send full-prefill max_tokens: 1 calls instead)."""
    cwd, home = workspace
    with FakeOpenAI() as lms, FakeOpenAI() as mlx:
        cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False),
                              "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model")},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            rc, out, err, result = run_claude(claude_code, gw.base, "/context", cwd=cwd, home=home, timeout=180)
            assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            recs = gw.wait_records(5)
            assert len(recs) >= 5 and all(r["endpoint"] == "count_tokens" and r["status"] == 200 for r in recs)
            assert all(isinstance(r["est_tokens"], int) and r["est_tokens"] > 0 for r in recs)
            assert not mlx.requests and not lms.requests


def test_follow_up_turns_hit_the_mlx_prompt_cache(claude_code, workspace, tmp_path, mlx_server):
    """Three turns of one real Claude Code conversation (`-c` continues it): the rendered prompt
    stays byte-stable, so each follow-up reuses almost the whole previous prefill on mlx_lm.server."""
    cwd, home = workspace
    with FakeOpenAI() as lms:
        cfg = real_mlx_and_fake_lmstudio(mlx_server, lms, tmp_path)
        with Gateway(cfg, tmp_path) as gw:
            for args, prompt in [((), "What is a build system?"),
                                 (("-c",), "Why is caching important?"),
                                 (("-c",), "What does a linker do?")]:
                rc, out, err, _ = run_claude(claude_code, gw.base, prompt, cwd=cwd, home=home, args=args,
                                             timeout=300)
                assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            turns = [r for r in gw.wait_records(3) if r["turn"] == "prompt"]
            assert len(turns) == 3 and all(r["route"] == "mlx" for r in turns)
            for prev, cur in zip(turns, turns[1:]):
                assert cur["prompt_tokens"] > prev["prompt_tokens"]
                # everything the previous turn prefilled (bar the last few template tokens) is reused
                assert cur["cached_tokens"] >= 0.98 * prev["prompt_tokens"], (prev, cur)


def test_compact_is_recognised_and_sent_to_mlx_without_tools(claude_code, workspace, tmp_path):
    cwd, home = workspace
    summary = "<analysis>short</analysis>\n<summary>We discussed build systems.</summary>"
    with FakeOpenAI(default=summary) as mlx, FakeOpenAI() as lms:
        cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False),
                              "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model")},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            for args, prompt in [((), "What is a build system?"), (("-c",), "/compact")]:
                rc, out, err, _ = run_claude(claude_code, gw.base, prompt, cwd=cwd, home=home, args=args)
                assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            compact = [r for r in gw.wait_records(2) if r["turn"] == "compact"]
            assert len(compact) == 1, gw.records()
            assert (compact[0]["rule"], compact[0]["route"], compact[0]["tools_stripped"]) == ("compaction", "mlx", True)
            assert "tools" not in mlx.last.body and not lms.requests


def test_subagent_requests_are_recognised(claude_code, workspace, tmp_path):
    """The main model launches a subagent (the Agent/Task tool); the subagent's own requests carry
    Claude Code's agent preamble and are routed by the `subagent` rule to the tool backend."""
    cwd, home = workspace
    launched: list[bool] = []

    def model(req: Received) -> Reply:
        body = req.body or {}
        names = [t["function"]["name"] for t in body.get("tools") or []]
        if last_tool_result_text(body) is not None:
            return Reply(text="done")
        tool = "Agent" if "Agent" in names else "Task" if "Task" in names else None
        if tool and not launched:
            launched.append(True)
            return Reply.tools(ToolCall(tool, {"description": "find retries", "subagent_type": "general-purpose",
                                               "prompt": "Find where retries are configured"}))
        return Reply(text="retries are configured in config.py")

    with FakeOpenAI(default=model) as lms, FakeOpenAI(default=model) as mlx:
        cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False),
                              "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model")},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            rc, out, err, _ = run_claude(claude_code, gw.base,
                                         "Implement retries: first use a subagent to find where they are configured.",
                                         cwd=cwd, home=home, timeout=200)
            assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            assert launched
            sub = [r for r in gw.wait_records(3) if r["turn"] == "subagent"]
            assert sub and all((r["rule"], r["route"]) == ("subagent", "lmstudio") for r in sub), gw.records()
