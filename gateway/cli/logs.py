"""`turnroute logs` and `turnroute statusline`: their arguments, over `observe.reader` and `observe.table`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def resolve_log_path(log_arg: str | None, config_arg: str | None = None) -> Path:
    """The log `turnroute serve` would write with this config (see `paths.log_path`)."""
    from turnroute.gateway.paths import default_config_path, log_path

    configured = None
    if not log_arg and not os.environ.get("TURNROUTE_LOG"):
        cfg = Path(config_arg).expanduser() if config_arg else default_config_path()
        try:
            import yaml

            doc = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
            configured = (doc.get("log") or {}).get("path")
        except Exception:        # unreadable or invalid config: the default path
            configured = None
    return log_path(log_arg, configured)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--limit", type=int, default=20, help="how many recent requests (default 20; 0 = all)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    p.add_argument("--route", help="only requests served by this backend")
    p.add_argument("--session", help="only this session (a prefix is enough)")
    p.add_argument("--since", help="only newer than 10m, 2h, 1d or an ISO time")
    p.add_argument("--errors", action="store_true", help="only failed requests")
    p.add_argument("--json", action="store_true", help="print the JSON lines")
    p.add_argument("--stats", action="store_true", help="summary: shares, latency, TTFT, cache hit rate")
    p.add_argument("--safeguards", action="store_true",
                   help="tool calls auto mode's safety check flagged (or could not judge), one per row")
    p.add_argument("--log", help="log file (default: $TURNROUTE_LOG, the config's log.path, or the state dir)")
    p.add_argument("--config", help="config whose log.path to read")


def run(args: argparse.Namespace) -> int:
    import orjson

    from turnroute.gateway.observe import reader, table

    path = resolve_log_path(args.log, args.config)
    records = reader.filter_records(reader.read_records(path), route=args.route, session=args.session,
                                      since=args.since, errors=args.errors)
    if args.stats:
        from turnroute.gateway.observe.stats import compute_stats, format_stats

        print(format_stats(compute_stats(records)))
        return 0
    if args.safeguards:
        return _safeguards(args, path, records)
    records = list(records)
    if args.limit:
        records = records[-args.limit:]
    if args.json:
        for rec in records:
            sys.stdout.write(orjson.dumps(rec).decode() + "\n")
    elif records:
        print(table.format_table(records, fixed=args.follow))
    elif args.follow:
        print(table.format_table([{}], fixed=True).split("\n", 1)[0])
    else:
        print(f"no requests in {path}" + (" matching the filters" if any(
            (args.route, args.session, args.since, args.errors)) else ""))
    if args.follow:
        sys.stdout.flush()
        for rec in reader.follow(path):
            if not list(reader.filter_records([rec], route=args.route, session=args.session,
                                                since=args.since, errors=args.errors)):
                continue
            line = orjson.dumps(rec).decode() if args.json else table.format_record_line(rec)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    return 0


def _safeguards(args: argparse.Namespace, path: Path, records) -> int:
    import orjson

    from turnroute.gateway.observe import reader
    from turnroute.gateway.observe.verdicts import format_verdicts, verdict_rows

    def show(rows: list, fixed: bool, header: bool) -> None:
        if args.json:
            sys.stdout.write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
        elif rows or header:
            text = format_verdicts(rows, fixed=fixed)
            print(text if header else text.split("\n", 1)[-1])

    rows = list(verdict_rows(records))
    show(rows[-args.limit:] if args.limit else rows, args.follow, True)
    if args.follow:
        sys.stdout.flush()
        for rec in reader.follow(path):
            if list(reader.filter_records([rec], route=args.route, session=args.session, since=args.since,
                                          errors=args.errors)):
                show(list(verdict_rows([rec])), True, False)
                sys.stdout.flush()
    return 0


def statusline(args: argparse.Namespace) -> int:
    from turnroute.gateway.observe.statusline import main

    return main(resolve_log_path(args.log))
