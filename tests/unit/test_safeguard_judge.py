"""The judge call's outcomes mapped to verdicts: whatever goes wrong is `unavailable` with a reason,
and what it sends is bounded (token cap per call, JSON schema where the backend supports it)."""

from __future__ import annotations

import asyncio
import json

import pytest

from turnroute.gateway.backends.base import BackendConfig, Supports
from turnroute.gateway.errors import BackendRejected, BackendUnavailable
from turnroute.gateway.safeguards import judge
from turnroute.router.safeguards import PendingCall, SafeguardSettings, context_of
from tests.fixtures.cc_safeguards import classifier_context

CALLS = [PendingCall("toolu_x", "WebFetch", {"url": "https://example.com"})]
CTX = context_of(classifier_context())
BODY = {"messages": [{"role": "user", "content": "read the docs"}]}


class Judge:
    """The judge's backend, answering (or failing) as told; it records what it was sent."""

    def __init__(self, answer=None, *, raises=None, delay=0.0, json_schema=False):
        self.config = BackendConfig(name="mlx", type="openai", urls=("http://127.0.0.1:9/v1",), model="m",
                                    max_output_tokens=4096, supports=Supports(json_schema=json_schema))
        self.answer, self.raises, self.delay, self.sent = answer, raises, delay, []

    async def complete(self, body, *, session_id):
        self.sent.append(body)
        await asyncio.sleep(self.delay)
        if self.raises:
            raise self.raises
        return {"choices": [{"message": {"content": self.answer}, "finish_reason": "stop"}]}


def run(backend, **settings):
    s = SafeguardSettings(**{"model": "mlx", "timeout": 0.5, **settings})
    return asyncio.run(judge(s, {"mlx": backend} if backend else {}, BODY, CALLS, CTX))


def test_a_valid_answer_is_the_verdict():
    j = Judge(json.dumps({"verdicts": [{"id": "toolu_x", "outcome": "not_flagged", "explanation": "Docs."}]}),
              json_schema=True)
    (v,) = run(j)
    assert (v.outcome, v.by, v.explanation) == ("not_flagged", "judge:mlx", "Docs.")
    sent = j.sent[0]
    assert sent["max_tokens"] == 32 + 96 and sent["temperature"] == 0 and sent["stream"] is False
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["verdicts"]
    plain = Judge("{}")                                 # no json_schema support: no response_format
    run(plain)
    assert "response_format" not in plain.sent[0]


@pytest.mark.parametrize("backend,reason", [
    (Judge("{}", delay=2.0), "timeout"),
    (Judge(raises=BackendUnavailable("connection refused")), "error"),
    (Judge(raises=BackendRejected("prompt exceeds the maximum context length")), "input_too_long"),
    (Judge(raises=RuntimeError("a bug in a backend")), "error"),
    (Judge("not json"), "error"),
    (None, "error"),                                   # the configured judge backend is gone
])
def test_failures_are_unavailable_never_approved(backend, reason):
    (v,) = run(backend)
    assert (v.outcome, v.reason, v.ask) == ("unavailable", reason, True)


def test_rules_only_mode_and_block_setting():
    (v,) = run(Judge("{}"), mode="rules", model=None)
    assert (v.outcome, v.reason, v.by) == ("unavailable", "refused", "rules-only")
    (v,) = run(Judge(raises=BackendUnavailable("down")), unavailable="block")
    assert v.ask is False and v.wire() == {"type": "unavailable", "reason": "error"}
