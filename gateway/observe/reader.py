"""Reading the request log: all files, filtered, followed, or one session's newest line.

Readers are tolerant: a torn last line (a writer killed mid-write, or a line being appended right
now) is skipped, never an error. Light imports only: the status line uses ``last_for_session`` and
must start fast.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Record", "read_records", "parse_since", "filter_records", "follow", "last_for_session",
           "is_error", "record_time"]

Record = dict[str, Any]


# --------------------------------------------------------------------------- reading
def _rotated(path: Path) -> list[Path]:
    """Rotated siblings path.N, oldest (highest N) first."""
    found: list[tuple[int, Path]] = []
    try:
        for p in path.parent.glob(path.name + ".*"):
            suffix = p.name[len(path.name) + 1:]
            if suffix.isdigit():
                found.append((int(suffix), p))
    except OSError:
        return []
    return [p for _, p in sorted(found, reverse=True)]


def _parse_line(line: bytes) -> Record | None:
    line = line.strip()
    if not line:
        return None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # torn or foreign line
    return rec if isinstance(rec, dict) else None


def read_records(path: str | os.PathLike[str], *, include_rotated: bool = True) -> Iterator[Record]:
    """Yield records oldest first (rotated files first when ``include_rotated``)."""
    path = Path(path)
    files = (_rotated(path) if include_rotated else []) + [path]
    for f in files:
        try:
            with open(f, "rb") as fh:
                for line in fh:
                    rec = _parse_line(line)
                    if rec is not None:
                        yield rec
        except FileNotFoundError:
            continue


# --------------------------------------------------------------------------- filtering
_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(since: datetime | str, *, now: datetime | None = None) -> datetime:
    """``"10m"``/``"2h"``/``"1d"``/``"30s"``/``"1w"`` ago, or an ISO date/time (naive = local)."""
    if isinstance(since, datetime):
        return since if since.tzinfo else since.astimezone()
    m = _REL.match(since)
    if m:
        now = now or datetime.now(timezone.utc)
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        dt = datetime.fromisoformat(since.strip())
    except ValueError:
        raise ValueError(f"--since: expected e.g. 10m, 2h, 1d or an ISO time, got {since!r}") from None
    return dt if dt.tzinfo else dt.astimezone()


def record_time(rec: Record) -> datetime | None:
    ts = rec.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def is_error(rec: Record) -> bool:
    """An error is an error type, or an HTTP status ≥ 400 (499 = client disconnect included)."""
    status = rec.get("status")
    return rec.get("error") is not None or (isinstance(status, int) and status >= 400)


def filter_records(records: Iterable[Record], route: str | None = None, session: str | None = None,
                   since: datetime | str | None = None, errors: bool = False) -> Iterator[Record]:
    """Lazily filter. ``session`` matches a prefix (the table shows 8 characters)."""
    cutoff = parse_since(since) if since is not None else None
    for rec in records:
        if route is not None and rec.get("route") != route:
            continue
        if session is not None and not str(rec.get("session") or "").startswith(session):
            continue
        if cutoff is not None:
            ts = record_time(rec)
            if ts is None or ts < cutoff:
                continue
        if errors and not is_error(rec):
            continue
        yield rec


# --------------------------------------------------------------------------- follow / tail
def follow(path: str | os.PathLike[str], poll: float = 0.25, *, from_start: bool = False,
           stop: Callable[[], bool] | None = None) -> Iterator[Record]:
    """Yield records as lines are appended (``tail -F``): waits for the file, survives rotation.

    A partial line is held until its newline arrives. On rotation (the inode at ``path`` changed,
    or the file shrank) the old descriptor is drained first, then the new file is read from 0.
    ``stop`` (checked every poll) ends the generator — for tests and Ctrl-C-free shutdown.
    """
    path = Path(path)
    fh = None
    buf = b""
    first = True
    while True:
        if fh is None:
            try:
                fh = open(path, "rb")
                if first and not from_start:
                    fh.seek(0, os.SEEK_END)
                first = False
                buf = b""
            except FileNotFoundError:
                first = False  # a file created later is read from its start
        if fh is not None:
            chunk = fh.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    rec = _parse_line(line)
                    if rec is not None:
                        yield rec
                continue
            try:
                st = os.stat(path)
                rotated = st.st_ino != os.fstat(fh.fileno()).st_ino or st.st_size < fh.tell()
            except FileNotFoundError:
                rotated = False  # between rename and re-create: keep the old one for now
            if rotated:
                rest = fh.read()  # drain anything written to the old file before rotation
                old_ino = os.fstat(fh.fileno()).st_ino
                fh.close()
                fh = None
                for line in (buf + rest).split(b"\n"):
                    rec = _parse_line(line)
                    if rec is not None:
                        yield rec
                buf = b""
                # Several rotations since the last poll: the files between ours and the live
                # one were written and rotated away meanwhile; read them whole, oldest first.
                yield from _rotated_since(path, old_ino)
                continue
        if stop is not None and stop():
            if fh is not None:
                fh.close()
            return
        time.sleep(poll)


def _rotated_since(path: Path, ino: int) -> Iterator[Record]:
    """Records of the rotated files newer than the one with inode `ino`, oldest first."""
    newer: list[Path] = []
    for p in reversed(_rotated(path)):         # path.1 (newest) first
        try:
            if os.stat(p).st_ino == ino:
                break
        except FileNotFoundError:
            continue
        newer.append(p)
    else:
        return                                  # ours is gone (or never rotated): nothing known
    for p in reversed(newer):
        yield from read_records(p, include_rotated=False)


def _scan_backwards(path: Path, session: str | None, block: int = 65536) -> Record | None:
    # cheap byte pre-filter: the writer emits compact orjson, so the pair appears verbatim
    needle = None if session is None else orjson.dumps({"session": session})[1:-1]
    try:
        fh = open(path, "rb")
    except (FileNotFoundError, IsADirectoryError):
        return None
    with fh:
        pos = fh.seek(0, os.SEEK_END)
        tail = b""  # bytes after the current block that do not yet form a full line start
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            data = fh.read(pos - start) + tail
            pos = start
            lines = data.split(b"\n")
            tail = lines[0] if pos > 0 else b""  # may be cut: finish it with the next block
            candidates = lines[1:] if pos > 0 else lines
            for line in reversed(candidates):
                if needle is not None and needle not in line:
                    continue
                rec = _parse_line(line)
                if rec is not None and (needle is None or rec.get("session") == session):
                    return rec
    return None


def last_for_session(path: str | os.PathLike[str], session: str | None) -> Record | None:
    """The newest record of ``session`` (newest overall when None), reading backwards in blocks.

    Only the blocks needed are read, so this stays fast on a 10 MiB log; a torn last line is
    skipped. Looks in ``path`` then ``path.1`` (right after a rotation the live file is short).
    """
    path = Path(path)
    for f in (path, path.with_name(path.name + ".1")):
        rec = _scan_backwards(f, session)
        if rec is not None:
            return rec
    return None
