"""What the `needs` verdict adds to the router's CPU per Claude Code request (not a test: a number).

    .venv/bin/python bench/router_needs.py [--rounds 7] [--n 300]

Builds ~80 KB main-turn bodies from bench/request.py (system, 25 tools, 12 earlier tool calls with
file text), ends each with a new prompt, and times `RuleSet.features` + `decide` with the shipped
config, against the same body one step earlier (a tool-result turn, which gets no verdict). CPU time (process_time), best of
`--rounds`, so other processes on a shared machine disturb it less. Also: classifier load time
and one classifier decision.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import request as rq  # noqa: E402

PROMPTS = {
    "follow-up (seen refs)": "why does the writer drop lines when the queue is full, and is the lock held?",
    "unseen file": "explain how rotate_logs in observe/rotation.py decides when to rotate",
    "change": "ok, make the queue bounded and add a test for it",
    "spanish follow-up": "¿por qué se pierden líneas cuando la cola está llena?",
}


def body_with(prompt: str) -> dict:
    body = rq.anthropic_body(12)
    body["messages"] += [{"role": "assistant", "content": [{"type": "text", "text": "The writer drops lines."}]},
                         {"role": "user", "content": [{"type": "text", "text": prompt}]}]
    return body


def best(fn, n: int, rounds: int) -> float:
    out = []
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(n):
            fn()
        out.append((time.process_time() - t) / n)
    return min(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)

    from turnroute.router import needs_model
    t0 = time.perf_counter()
    needs_model.load_model()
    load_ms = (time.perf_counter() - t0) * 1000

    from turnroute.router.rules import parse_ruleset
    from turnroute.router.yamlsrc import load_yaml

    path = ROOT / "config" / "turnroute.yaml"
    doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    rules = parse_ruleset(doc, backends=set(doc["backends"]), source=str(path))
    print(f"classifier weights load (once per process, on its first prompt): {load_ms:.1f} ms")
    model = needs_model.load_model()
    per = best(lambda: model.predict(PROMPTS["spanish follow-up"]), args.n, args.rounds)
    print(f"one classifier decision: {per * 1e6:.0f} µs")
    print(f"{'prompt':<24} {'body':>7} {'router':>9} {'without':>9} {'added':>8}  verdict")
    for name, prompt in PROMPTS.items():
        body = body_with(prompt)
        size = len(json.dumps(body)) / 1024
        run = lambda: rules.decide(rules.features(body, {}))     # noqa: E731
        verdict = rules.features(body, {}).needs
        with_needs = best(run, args.n, args.rounds)
        body_plain = dict(body, messages=body["messages"][:-2])  # the tool-result turn before: no verdict
        without = best(lambda: rules.decide(rules.features(body_plain, {})), args.n, args.rounds)
        print(f"{name:<24} {size:>5.0f} KB {with_needs * 1e6:>6.0f} µs {without * 1e6:>6.0f} µs "
              f"{(with_needs - without) * 1e6:>5.0f} µs  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
