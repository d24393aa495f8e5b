"""`turnroute` command line: serve, check, route --explain, replay, eval, logs, claude, setup, doctor, init,
statusline.

argparse (not typer/click) and lazy imports: `turnroute statusline` runs on every Claude Code
prompt redraw and must start in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _config_path(arg: str | None) -> Path:
    from turnroute.gateway.paths import default_config_path

    return Path(arg).expanduser() if arg else default_config_path()


def _load(arg: str | None):
    from turnroute.gateway.config import load_config
    from turnroute.router.rules import ConfigError

    path = _config_path(arg)
    try:
        return path, load_config(path)
    except ConfigError as exc:
        print(f"turnroute: invalid config: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from turnroute.gateway.edge.app import create_app
    from turnroute.gateway.edge.doors import api_keys, is_loopback
    from turnroute.gateway.edge.drain import serve

    logging.basicConfig(level=os.environ.get("TURNROUTE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s turnroute %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore", "LiteLLM", "litellm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    path, config = _load(args.config)
    host = args.host or config.host
    port = args.port or config.port
    if not is_loopback(host) and not api_keys(config):
        print(f"turnroute: refusing to listen on {host}: beyond loopback anyone on the network could use "
              "the gateway; set server.api_keys in the config (or TURNROUTE_API_KEYS)", file=sys.stderr)
        return 2
    app = create_app(config, config_path=path, watch=not args.no_reload)
    print(f"turnroute: http://{host}:{port}  config {path}", file=sys.stderr)
    for name, b in config.backends.items():
        via = "direct HTTP" if b.type == "openai" else "LiteLLM"
        where = f"{len(b.serve)} managed mlx_lm.server" if b.serve else ", ".join(b.urls)
        print(f"  backend {name}: {b.model} at {where} ({via})", file=sys.stderr)
    print(f"  requests log: {app.state.gateway.log.path}", file=sys.stderr)
    print(f"  point Claude Code at it: ANTHROPIC_BASE_URL=http://{host}:{port} claude", file=sys.stderr)
    serve(app, app.state.gateway.drain, host=host, port=port, log_level="warning", access_log=False)
    return 0


def _print_defaults() -> int:
    """The built-in intent, marker and needs vocabulary, as YAML a user can paste into a config."""
    import yaml

    from turnroute.router.intents import DEFAULT_ACTION, DEFAULT_ANALYSIS, DEFAULT_MARKERS
    from turnroute.router.needs import DEFAULT_NEEDS_SETS
    from turnroute.router.safeguards.paths import DEFAULT_BUILD_OUTPUT

    markers = {k: list(getattr(DEFAULT_MARKERS, k)) for k in ("compact", "title", "subagent", "background")}
    needs = {k: list(getattr(DEFAULT_NEEDS_SETS, k)) for k in ("change", "search", "ask", "general", "scope")}
    doc = {"intents": {"analysis": list(DEFAULT_ANALYSIS), "action": list(DEFAULT_ACTION)}, "markers": markers,
           "needs": needs}
    print(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100), end="")
    from turnroute.router.safeguards import BUILTIN_RULES

    print(f"# safeguards: built-in rules (names for safeguards.disable): {', '.join(BUILTIN_RULES)}")
    print("# safeguards: build output that rm -rf may clear (safeguards.build_output adds to it):")
    print("#   " + ", ".join(DEFAULT_BUILD_OUTPUT))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    if args.defaults:
        return _print_defaults()
    path, config = _load(args.config)
    rules = config.rules
    print(f"{path}: OK — {len(config.backends)} backends ({', '.join(config.backends)}), "
          f"{len(rules.rules)} rules, default → {rules.default.route}")
    return 0


def _read_capture(path: str) -> tuple[dict, dict]:
    """A request body, or a capture {"headers": {...}, "body": {...}}."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and "body" in data and isinstance(data["body"], dict):
        return data["body"], {k.lower(): v for k, v in (data.get("headers") or {}).items()}
    return data, {}


def cmd_route(args: argparse.Namespace) -> int:
    from turnroute.gateway.pipeline import override_for
    from turnroute.gateway.tokens import TokenCounter
    from turnroute.router.explain import describe_features, explain
    from turnroute.router.safeguards.explain import format_safeguard_rows, safeguard_rows

    _, config = _load(args.config)
    body, headers = _read_capture(args.request)
    endpoint = "count_tokens" if args.count_tokens else "messages"
    f = config.rules.features(body, headers, endpoint=endpoint, input_tokens=TokenCounter().count(body))
    decision = config.rules.decide(f, override=override_for(headers))
    checks = safeguard_rows(config.safeguards, body)
    if args.json:
        print(json.dumps({"features": dict(describe_features(f)), "backend": decision.backend,
                          "rule": decision.rule, "reason": decision.reason,
                          "strip_tools": decision.strip_tools, "fallback": list(decision.fallback),
                          "safeguards": checks}, indent=2))
        return 0
    print("Features")
    for key, value in describe_features(f):
        print(f"  {key:<14} {value}")
    print()
    print(explain(decision, config.rules))
    if checks or "safeguards" in body:
        print()
        print(format_safeguard_rows(checks, config.safeguards, has_context="safeguards" in body))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from turnroute.router.replay import format_replay, replay_inputs

    _, new = _load(args.config)
    _, old = _load(args.baseline)   # None → the default config
    from turnroute.router.replay import parse_capture

    src = Path(args.source)
    files = sorted(src.glob("*.json*")) if src.is_dir() else [src]
    items = [item for p in files for item in parse_capture(p.read_text(encoding="utf-8"))]
    rows = replay_inputs(items, old.rules, new.rules)
    print(format_replay(rows, changed_only=args.changed))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import yaml

    from turnroute.router.evaluate import report, score, summary, turns_of

    _, config = _load(args.config)
    here = Path(__file__).resolve().parents[2] / "tests" / "eval"
    paths = ([Path(c) for c in args.corpus] if args.corpus else
             [here / "corpus.yaml", *sorted((here / "sessions").glob("*.yaml")), here / "heldout.yaml"])
    turns = []
    for path in paths:
        try:
            turns += turns_of(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
            print(f"turnroute: cannot read corpus {path}: {exc}", file=sys.stderr)
            return 2
    splits = {"held-out": [t for t in turns if t.heldout], "training": [t for t in turns if not t.heldout]}
    starved = 0
    for name in (("held-out", "training") if args.split == "all" else (args.split,)):
        outcomes = score(splits[name], config.rules)
        starved += len(summary(outcomes)["starved"])
        print(report(outcomes, title=f"{name} split", show_wrong=args.wrong))
        print()
    return 1 if starved else 0


def cmd_logs(args: argparse.Namespace) -> int:
    from turnroute.gateway.cli.logs import run

    return run(args)


def cmd_statusline(args: argparse.Namespace) -> int:
    from turnroute.gateway.cli.logs import statusline

    return statusline(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="turnroute", description="A routing gateway for Claude Code.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", help="YAML config (default: $TURNROUTE_CONFIG, ~/.config/turnroute/turnroute.yaml, shipped)")
    s.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default from config: 8400)")
    s.add_argument("--no-reload", action="store_true", help="do not watch the config file")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check", help="validate a config without serving")
    c.add_argument("--config")
    c.add_argument("--defaults", action="store_true",
                   help="print the built-in intents and markers (to copy into a config and tune)")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("route", help="show how a request would be routed")
    r.add_argument("request", help="a request body JSON file, or a capture {headers, body}")
    r.add_argument("--explain", action="store_true", help="print features, every rule and the verdict (default)")
    r.add_argument("--count-tokens", action="store_true", help="treat it as a count_tokens request")
    r.add_argument("--json", action="store_true")
    r.add_argument("--config")
    r.set_defaults(func=cmd_route)

    rp = sub.add_parser("replay", help="which decisions would a rule change alter?")
    rp.add_argument("source", help="a requests log (JSONL) or a directory/file of captured request bodies")
    rp.add_argument("--config", required=True, help="the candidate config")
    rp.add_argument("--baseline", help="the config to compare against (default: the one `serve` would use)")
    rp.add_argument("--changed", action="store_true", help="only show turns whose decision changes")
    rp.set_defaults(func=cmd_replay)

    ev = sub.add_parser("eval", help="score the routing rules on a labelled corpus of Claude Code turns")
    ev.add_argument("--config")
    ev.add_argument("--corpus", action="append", help="corpus YAML, repeatable (default: this checkout's "
                    "tests/eval/corpus.yaml, sessions/*.yaml and heldout.yaml)")
    ev.add_argument("--split", choices=("held-out", "training", "all"), default="held-out")
    ev.add_argument("--wrong", action="store_true", help="also list every wrong verdict with its evidence")
    ev.set_defaults(func=cmd_eval)

    from turnroute.gateway.cli.logs import add_arguments

    lg = sub.add_parser("logs", help="read the per-request routing log")
    add_arguments(lg)
    lg.set_defaults(func=cmd_logs)

    cl = sub.add_parser("claude", help="run Claude Code through the gateway (starting it if needed)",
                        description="turnroute claude [--config FILE] [claude arguments…]")
    cl.add_argument("claude_args", nargs="*", help="passed to claude unchanged")

    su = sub.add_parser("setup", help="point Claude Code's settings.json at the gateway (--undo restores it)")
    su.add_argument("--yes", "-y", action="store_true", help="write without asking")
    su.add_argument("--undo", action="store_true", help="restore the settings file as it was before setup")
    su.add_argument("--config", help="the gateway config whose address to use")
    su.set_defaults(func=cmd_setup)

    dr = sub.add_parser("doctor", help="check the config, backends, models and Claude Code's settings")
    dr.add_argument("--config")
    dr.set_defaults(func=cmd_doctor)

    it = sub.add_parser("init", help="write an editable copy of the shipped config to the user config folder")
    it.add_argument("--force", action="store_true", help="overwrite an existing copy")
    it.set_defaults(func=cmd_init)

    st = sub.add_parser("statusline", help="one line for Claude Code's statusLine setting")
    st.add_argument("--log", help="log file (default: the gateway's default)")
    st.set_defaults(func=cmd_statusline)
    return p


def cmd_setup(args: argparse.Namespace) -> int:
    from turnroute.gateway.cli.setup import run

    return run(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from turnroute.gateway.cli.doctor import run

    return run(args)


def cmd_init(args: argparse.Namespace) -> int:
    from turnroute.gateway.paths import config_dir, shipped_config

    dest = config_dir() / "turnroute.yaml"
    if dest.exists() and not args.force:
        print(f"{dest} already exists (edit it, or --force to replace it with the shipped config)")
        return 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(shipped_config().read_bytes())
    print(f"wrote {dest}: edit it; `turnroute serve` uses it from now on")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["claude"]:    # every later argument is Claude Code's, options included
        from turnroute.gateway.cli.claude import main as claude_main

        return claude_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
