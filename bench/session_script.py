"""The scripted Claude Code session bench/session.py replays: twelve user turns on one small repo.

Questions on pasted code and on code already read, follow-ups, three changes whose tool loops
(Read → Edit → Bash) are scripted here, questions about the changes. The same script drives the
client (prompts, tool results) and the scripting proxy in front of each model server (which tool
call comes next), so a turn behaves the same whichever backend serves it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import request as rq
from turnroute.router.evaluate import numbered

REPO = "/Users/dev/src/ratelimit"

LIMITS_PY = '''\
"""Token-bucket rate limiting for the API client."""

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens += (now - self.stamp) * self.rate
        self.stamp = now

    def acquire(self, n: int = 1) -> None:
        with self.lock:
            self._refill()
            while self.tokens < n:
                time.sleep((n - self.tokens) / self.rate)
                self._refill()
            self.tokens -= n


class Limiter:
    def __init__(self, per_host: dict[str, TokenBucket]) -> None:
        self.per_host = per_host

    def acquire(self, host: str) -> None:
        bucket = self.per_host.get(host)
        if bucket is not None:
            bucket.acquire()
'''

TEST_PY = '''\
import time

from ratelimit.limits import TokenBucket


def test_bucket_starts_full():
    b = TokenBucket(rate=10, capacity=5)
    t0 = time.monotonic()
    for _ in range(5):
        b.acquire()
    assert time.monotonic() - t0 < 0.05


def test_bucket_waits_when_empty():
    b = TokenBucket(rate=100, capacity=1)
    b.acquire()
    t0 = time.monotonic()
    b.acquire()
    assert time.monotonic() - t0 >= 0.009
'''


@dataclass(frozen=True)
class Call:
    name: str
    input: dict
    result: str


@dataclass(frozen=True)
class Turn:
    what: str                      # kind of turn, for the report
    prompt: str
    calls: tuple[Call, ...] = ()   # the tool loop the model is scripted to run for this prompt


def _read(path: str, text: str) -> Call:
    return Call("Read", {"file_path": f"{REPO}/{path}"}, numbered(text))


def _edit(path: str, old: str, new: str) -> Call:
    return Call("Edit", {"file_path": f"{REPO}/{path}", "old_string": old, "new_string": new},
                f"The file {REPO}/{path} has been updated. Here's the result of running `cat -n` on a "
                f"snippet of the edited file:\n" + numbered(new))


def _bash(cmd: str, out: str) -> Call:
    return Call("Bash", {"command": cmd, "description": "Run the tests"}, out)


_PASS = "............ [100%]\n12 passed in 0.41s"

TURNS: tuple[Turn, ...] = (
    Turn("question on pasted code",
         f"Here is our rate limiter:\n\n```python\n{LIMITS_PY}```\n\nExplain how the bucket refills."),
    Turn("follow-up", "Why does acquire keep holding the lock while it sleeps?"),
    Turn("follow-up", "What happens when two threads race on an empty bucket?"),
    Turn("change (Read, Edit, Bash)",
         "Fix the refill bug in ratelimit/limits.py so tokens never exceed capacity, then run the tests.",
         (_read("ratelimit/limits.py", LIMITS_PY),
          _edit("ratelimit/limits.py", "        self.tokens += (now - self.stamp) * self.rate",
                "        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)"),
          _bash("python -m pytest -q", _PASS))),
    Turn("question about the change", "Explain what you changed and why it fixes the overflow."),
    Turn("question on code already read", "Is there any other place where capacity could be exceeded?"),
    Turn("change (Read, Edit, Bash)",
         "Add a test for a burst after a long idle period to tests/test_limits.py and run the tests.",
         (_read("tests/test_limits.py", TEST_PY),
          _edit("tests/test_limits.py", "def test_bucket_waits_when_empty():",
                "def test_idle_bucket_caps_at_capacity():\n    b = TokenBucket(rate=1000, capacity=3)\n"
                "    time.sleep(0.05)\n    b._refill()\n    assert b.tokens == 3\n\n\n"
                "def test_bucket_waits_when_empty():"),
          _bash("python -m pytest -q tests/test_limits.py", "... [100%]\n3 passed in 0.12s"))),
    Turn("question about the change", "Why did the new test sleep for 50 ms?"),
    Turn("question on code already read", "Review the tests for timing flakiness."),
    Turn("change (Read, Edit, Bash)",
         "Rename acquire to take in ratelimit/limits.py and run the tests.",
         (_read("ratelimit/limits.py", LIMITS_PY.replace(
             "self.tokens += (now - self.stamp) * self.rate",
             "self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)")),
          _edit("ratelimit/limits.py", "    def acquire(self, n: int = 1) -> None:",
                "    def take(self, n: int = 1) -> None:"),
          _bash("python -m pytest -q", _PASS))),
    Turn("question about the changes", "Summarize the three changes for a commit message."),
    Turn("question on code already read", "What does the refill look like now?"),
)

TOOL_NAMES = ("Read", "Edit", "Write", "Bash", "Grep", "Glob")


def turn_of(prompt_text: str) -> Turn | None:
    """The scripted turn whose prompt this text carries (the text may hold other blocks too)."""
    for turn in TURNS:
        if turn.prompt in prompt_text:
            return turn
    return None


def system(system_chars: int) -> list[dict]:
    """Claude Code's three system blocks (billing header first), the main one ~system_chars long."""
    rng = random.Random(11)
    main = (rq.IDENTITY + "\n\nYou are an interactive CLI tool that helps users with software "
            "engineering tasks.\n\n# Doing tasks\n" + rq._prose(rng, system_chars)
            + f"\n\n<env>\nWorking directory: {REPO}\nIs directory a git repo: Yes\nPlatform: darwin\n</env>\n")
    return [{"type": "text", "text": rq.BILLING},
            {"type": "text", "text": rq.IDENTITY, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": main, "cache_control": {"type": "ephemeral"}}]


def tools(description_chars: int) -> list[dict]:
    out = []
    for t in rq.tools():
        if t["name"] in TOOL_NAMES:
            out.append({**t, "description": t["description"][:description_chars]})
    return out


def body(messages: list[dict], system_chars: int, description_chars: int) -> dict:
    return {"model": rq.MODEL, "max_tokens": 32000, "stream": True,
            "system": system(system_chars), "tools": tools(description_chars), "messages": messages,
            "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "",
                                                "session_id": rq.SESSION_ID})},
            "thinking": {"type": "adaptive"}}
