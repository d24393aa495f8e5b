"""What auto mode's safety check adds to a tool turn: rules only, and rules + the judge on the tiny model.

    .venv/bin/python bench/safeguards.py             # ~1 min; prints the table
    .venv/bin/python bench/safeguards.py --write     # also writes docs/safeguards-bench.md

One gateway (`turnroute serve`) in front of two backends: the scripted fake as the tool-calling
model (it answers every turn with one Bash tool call, instantly) and a real mlx_lm.server on the
test suite's tiny random model as the judge. Each scenario sends the same streaming tool turn
`--turns` times, one after another, and times request → last byte:
  baseline  no `safeguards` field (what -p runs and older clients send)
  rules     `safeguards` present, the call is routine (`pytest -q`): the rules decide
  judge     `safeguards` present, the call is open (`curl https://…`): one judge call on MLX
Scenarios are interleaved turn by turn so machine noise hits all three alike; the report gives
medians, the added time against the baseline, and the ratio. The tiny model's answer is random
text, so the judge's verdict is `unavailable` (invalid answer) — the time is what matters here:
prefill of the judge prompt plus generation up to the judge's token cap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.cc_safeguards import safeguards  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, Reply, ToolCall  # noqa: E402
from tests.support.gateway import Gateway, gateway_config, openai_backend  # noqa: E402
from tests.support.tiny_model import build_tiny_model, start_mlx_server  # noqa: E402

CWD = "/home/u/project"
COMMANDS = {"baseline": "pytest -q", "rules": "pytest -q", "judge": "curl https://example.com/data.json"}
TOOLS = [{"name": "Bash", "description": "Run a shell command",
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]


def turn_body(scenario: str, i: int) -> dict:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 4000, "stream": True, "tools": TOOLS,
            "messages": [{"role": "user", "content": f"turn {i}: run the {scenario} step"}]}
    if scenario != "baseline":
        body["safeguards"] = safeguards(cwd=CWD, home="/home/u")
    return body


def agent(req) -> Reply:
    text = req.messages[-1]["content"] if req.messages else ""
    scenario = next((s for s in COMMANDS if f"the {s} step" in str(text)), "baseline")
    return Reply.tools(ToolCall("Bash", {"command": COMMANDS[scenario]}))


def one(client: httpx.Client, base: str, scenario: str, i: int) -> float:
    t0 = time.perf_counter()
    with client.stream("POST", base + "/v1/messages", json=turn_body(scenario, i)) as r:
        for _ in r.iter_bytes():
            pass
        assert r.status_code == 200
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="write docs/safeguards-bench.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tr-bench-sg-"))
    model = build_tiny_model(tmp / "tiny")
    with start_mlx_server(model) as judge, FakeOpenAI(default=agent) as lms:
        cfg = gateway_config({"mlx": openai_backend(judge.url, model="default_model", tools=False,
                                                    max_output_tokens=8192),
                              "lmstudio": openai_backend(lms.url)},
                             rules=[{"name": "tools", "when": {"has_tools": True}, "route": "lmstudio"}],
                             log_path=tmp / "requests.jsonl", extra={"safeguards": {"model": "mlx", "timeout": 30}})
        with Gateway(cfg, tmp) as gw, httpx.Client(timeout=120) as client:
            for s in COMMANDS:                       # warm-up: connections, imports, the judge's prompt cache
                one(client, gw.base, s, -1)
            times: dict[str, list[float]] = {s: [] for s in COMMANDS}
            for i in range(args.turns):
                for s in COMMANDS:
                    times[s].append(one(client, gw.base, s, i))
            verdicts = [v for r in gw.wait_records(4 + 3 * args.turns) for v in r.get("safeguards") or []]
    judge_ms = [v["ms"] for v in verdicts if v["by"].startswith("judge")]
    rules_ms = [v["ms"] for v in verdicts if v["by"].startswith("builtin")]
    base = statistics.median(times["baseline"])
    lines = ["| scenario | median turn | added vs baseline | ratio |", "|---|---|---|---|"]
    for s in COMMANDS:
        m = statistics.median(times[s])
        lines.append(f"| {s} | {m:.1f} ms | {m - base:+.1f} ms | {m / base:.2f}× |")
    lines += ["", f"rules decided in {statistics.median(rules_ms) * 1000:.0f} µs (median, in the log line); "
              f"the judge call took {statistics.median(judge_ms):.0f} ms (median) on the tiny model; "
              f"verdicts from the judge: {sorted({v.get('reason') or v['outcome'] for v in verdicts if v['by'].startswith('judge')})}; "
              f"{args.turns} turns per scenario, interleaved."]
    table = "\n".join(lines)
    print(table)
    if args.write:
        (REPO / "docs" / "safeguards-bench.md").write_text(
            "# Auto mode's safety check: added time per tool turn\n\n`.venv/bin/python bench/safeguards.py "
            f"--turns {args.turns} --write` on {time.strftime('%Y-%m-%d')} (this shared 2-core machine; the judge "
            "is mlx_lm.server on the test suite's tiny random model).\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
