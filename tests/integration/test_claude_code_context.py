"""Real Claude Code against backends with a small context window: it compacts, then carries on.

When a conversation outgrows every backend's window, the gateway answers Anthropic's 400
"prompt is too long: N tokens > M maximum". Claude Code recognises that message: it compacts the
conversation (a /compact-style summary request) and retries the turn with the summary in place
of the history. The windows here are sized so that the first turn fits, the second (after a long
first answer) does not, and the compaction request and the retried turn fit again.
"""

from __future__ import annotations

import json
import re

from tests.support.claude_code import run_claude
from tests.support.fake_openai import FakeOpenAI, Received, Reply
from tests.support.gateway import Gateway, gateway_config, openai_backend

# Measured with Claude Code 2.1.331 (tiktoken estimates, tools stripped): the first turn is ~3,900
# tokens; after a first answer of ~1,500 tokens the second is ~5,600, and the compaction request
# for it ~4,700 (Claude Code's summary prompt replaces the system prompt). 5,200 − 64 for the
# answer leaves ~450 tokens of margin on either side.
WINDOW = 5200
SUMMARY = "<summary>The user asked what a build system is; it was explained at length.</summary>"
LONG_ANSWER = "A build system compiles things. " * 250
FOLLOW_UP = "Why is caching important?"


def model(req: Received) -> Reply:
    last = json.dumps((req.body or {}).get("messages", [])[-1])
    if "detailed summary of the conversation" in last:
        return Reply(text=SUMMARY)
    if FOLLOW_UP in last:
        return Reply(text="Caching avoids repeating work.")
    return Reply(text=LONG_ANSWER)


def test_claude_code_compacts_on_prompt_too_long_and_retries(claude_code, tmp_path):
    cwd, home = tmp_path / "project", tmp_path / "home"
    cwd.mkdir()
    with FakeOpenAI(default=model) as mlx, FakeOpenAI(default=model) as lms:
        cfg = gateway_config({"mlx": openai_backend(mlx.url, tools=False, context_window=WINDOW),
                              "lmstudio": openai_backend(lms.url, type="litellm", model="lm_studio/fake-model",
                                                         context_window=WINDOW)},
                             log_path=tmp_path / "requests.jsonl")
        with Gateway(cfg, tmp_path) as gw:
            for args, prompt in [((), "Explain what a build system is."), (("-c",), FOLLOW_UP)]:
                rc, out, err, result = run_claude(claude_code, gw.base, prompt, cwd=cwd, home=home, args=args,
                                                  timeout=240)
                assert rc == 0, f"claude failed: {err}\n{out}\n{gw.output()}"
            assert result["result"] == "Caching avoids repeating work."
            recs = [(r["turn"], r["status"]) for r in gw.wait_records(5) if r["turn"] in ("prompt", "compact")]
            assert recs == [("prompt", 200), ("prompt", 400), ("compact", 200), ("prompt", 200)], gw.records()
            too_long = [r for r in gw.records() if r["status"] == 400][0]
            assert re.fullmatch(r"prompt is too long: \d+ tokens > 5136 maximum", too_long["error_message"])
            # the retried turn carries the summary instead of the long first answer
            retried = mlx.requests[-1].body["messages"]
            assert SUMMARY[9:40] in json.dumps(retried) and LONG_ANSWER[:200] not in json.dumps(retried)
            assert not lms.requests
