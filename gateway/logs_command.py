"""`turnroute logs` and `turnroute statusline`: argument handling around gateway.logs_cli."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def resolve_log_path(log_arg: str | None, config_arg: str | None = None) -> Path:
    """--log, else $TURNROUTE_LOG, else the config's log.path, else the default state-dir file."""
    if log_arg:
        return Path(log_arg).expanduser()
    if os.environ.get("TURNROUTE_LOG"):
        return Path(os.environ["TURNROUTE_LOG"]).expanduser()
    from gateway.config import default_config_path

    cfg = Path(config_arg).expanduser() if config_arg else default_config_path()
    try:
        import yaml

        doc = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        path = (doc.get("log") or {}).get("path")
        if path:
            return Path(path).expanduser()
    except Exception:        # unreadable or invalid config: fall back to the default path
        pass
    from gateway.logs import default_log_path

    return default_log_path()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--limit", type=int, default=20, help="how many recent requests (default 20; 0 = all)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    p.add_argument("--route", help="only requests served by this backend")
    p.add_argument("--session", help="only this session (a prefix is enough)")
    p.add_argument("--since", help="only newer than 10m, 2h, 1d or an ISO time")
    p.add_argument("--errors", action="store_true", help="only failed requests")
    p.add_argument("--json", action="store_true", help="print the JSON lines")
    p.add_argument("--stats", action="store_true", help="summary: shares, latency, TTFT, cache hit rate")
    p.add_argument("--log", help="log file (default: $TURNROUTE_LOG, the config's log.path, or the state dir)")
    p.add_argument("--config", help="config whose log.path to read")


def run(args: argparse.Namespace) -> int:
    import orjson

    from gateway import logs_cli

    path = resolve_log_path(args.log, args.config)
    records = logs_cli.filter_records(logs_cli.read_records(path), route=args.route, session=args.session,
                                      since=args.since, errors=args.errors)
    if args.stats:
        from gateway.logstats import compute_stats, format_stats

        print(format_stats(compute_stats(records)))
        return 0
    records = list(records)
    if args.limit:
        records = records[-args.limit:]
    if args.json:
        for rec in records:
            sys.stdout.write(orjson.dumps(rec).decode() + "\n")
    elif records:
        print(logs_cli.format_table(records, fixed=args.follow))
    elif args.follow:
        print(logs_cli.format_table([{}], fixed=True).split("\n", 1)[0])
    else:
        print(f"no requests in {path}" + (" matching the filters" if any(
            (args.route, args.session, args.since, args.errors)) else ""))
    if args.follow:
        sys.stdout.flush()
        for rec in logs_cli.follow(path):
            if not list(logs_cli.filter_records([rec], route=args.route, session=args.session,
                                                since=args.since, errors=args.errors)):
                continue
            line = orjson.dumps(rec).decode() if args.json else logs_cli.format_record_line(rec)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    return 0


def statusline(args: argparse.Namespace) -> int:
    from gateway.statusline import main

    return main(["--log", str(resolve_log_path(args.log))])
