"""The request log writer: one JSON line per request, written so that no line is lost.

Why it is built this way:
  * Every line is one ``os.write`` on an ``O_APPEND`` descriptor. There is no userspace buffer, so
    a SIGTERM or an interpreter crash cannot lose a line that ``end()`` already returned from, and
    several processes appending to the same file never interleave bytes within a line.
  * Requests still running at shutdown are registered by ``begin()`` and written by
    ``flush_in_flight()`` (called from the app's shutdown hook, and from ``atexit`` as a backstop),
    so a killed server still leaves a line for each request it had accepted.
  * Lines are built by ``record.redact()`` (fixed keys, secrets scrubbed); the last ones are kept
    in memory for the live page (/ui), which polls them.
"""

from __future__ import annotations

import atexit
import errno
import os
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from turnroute.gateway.observe.record import LogRecord, new_record, redact
from turnroute.gateway.paths import default_log_path

__all__ = ["RequestLog", "new_record", "default_log_path"]


def _flush_at_exit(ref: weakref.ReferenceType[RequestLog]) -> None:
    log = ref()
    if log is not None:
        log.flush_in_flight()


class RequestLog:
    """Append-only JSONL request log with size rotation and an in-memory tail for /ui.

    Thread-safe; safe to share one file between processes (O_APPEND writes, rotation under an
    advisory ``flock`` with re-checks, and each writer reopens when the path's inode changed).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 10 * 1024 * 1024,
                 keep: int = 5, log_prompts: bool = False, recent_size: int = 1000) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes
        self.keep = keep
        self.log_prompts = log_prompts
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ino: int | None = None
        self._need_nl = False
        self._opened_once = False
        self._in_flight: dict[int, tuple[LogRecord, float]] = {}
        self._recent: deque[LogRecord] = deque(maxlen=recent_size)
        self.write_errors = 0
        atexit.register(_flush_at_exit, weakref.ref(self))

    # ----------------------------------------------------------------- per request
    def begin(self, record: LogRecord) -> LogRecord:
        """Register a request as in flight (so shutdown can still log it); returns the record."""
        with self._lock:
            self._in_flight[id(record)] = (record, time.monotonic())
        return record

    def end(self, record: LogRecord) -> LogRecord | None:
        """Write the finished request as one line; returns the line as written (redacted).

        Fills ``latency_ms`` from ``begin()`` and ``uncached_tokens`` from prompt − cached when the
        caller left them None. A record already written by ``flush_in_flight()`` is not written
        twice (returns None). Never raises for I/O errors: losing a log line must not fail a reply.
        """
        with self._lock:
            entry = self._in_flight.pop(id(record), None)
            if entry is None and record.get("_flushed") is True:
                return None
        if entry is not None and record.get("latency_ms") is None:
            record["latency_ms"] = round((time.monotonic() - entry[1]) * 1000, 1)
        return self._emit(record)

    def flush_in_flight(self, status: int | str = "interrupted") -> int:
        """Write a line for every request still in flight; returns how many were written.

        ``status`` is the HTTP status field (an int); a string is taken as the *error type* instead
        (default ``"interrupted"``), keeping ``status`` whatever the request had already sent (200
        once a stream started) or None. Called at shutdown, on SIGTERM and at exit.
        """
        with self._lock:
            pending = list(self._in_flight.values())
            self._in_flight.clear()
            for record, _ in pending:
                record["_flushed"] = True  # not in schema: dropped by redact(); end() is a no-op
        now = time.monotonic()
        for record, started in pending:
            if isinstance(status, int):
                record["status"] = status
                record["error"] = record.get("error") or "interrupted"
            else:
                record["error"] = record.get("error") or status
            if record.get("latency_ms") is None:
                record["latency_ms"] = round((now - started) * 1000, 1)
            self._emit(record)
        return len(pending)

    @property
    def in_flight(self) -> int:
        """Number of requests begun and not yet ended."""
        with self._lock:
            return len(self._in_flight)

    # ----------------------------------------------------------------- readers (for /ui)
    def recent(self, n: int = 100) -> list[LogRecord]:
        """The last ``n`` written records, oldest first (copies of the redacted lines)."""
        with self._lock:
            items = list(self._recent)
        return [dict(r) for r in items[-n:]] if n > 0 else []

    # ----------------------------------------------------------------- writing
    def _emit(self, record: LogRecord) -> LogRecord:
        if record.get("uncached_tokens") is None:
            p, c = record.get("prompt_tokens"), record.get("cached_tokens")
            if isinstance(p, int) and isinstance(c, int):
                record["uncached_tokens"] = max(p - c, 0)
        if not self.log_prompts:
            record.pop("prompt", None)
        line_rec = redact(record)
        line = orjson.dumps(line_rec) + b"\n"
        with self._lock:
            self._recent.append(line_rec)
            try:
                self._write(line)
            except OSError:
                self.write_errors += 1
                self._close_fd()
        return line_rec

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                     0o600)
        st = os.fstat(fd)
        self._fd, self._ino = fd, st.st_ino
        # A torn last line (writer killed mid-write, disk full) must not swallow our first line.
        # Checked on the first open only: a concurrent writer can make the check see a line in
        # progress, which costs at worst one blank line (readers skip blank lines).
        if self._opened_once:
            return
        self._opened_once = True
        rfd = None
        try:
            rfd = os.open(self.path, os.O_RDONLY)
            self._need_nl = st.st_size > 0 and os.pread(rfd, 1, st.st_size - 1) != b"\n"
        except OSError:
            self._need_nl = False
        finally:
            if rfd is not None:
                os.close(rfd)

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = self._ino = None

    def _write(self, line: bytes) -> None:
        """One write per line (caller holds the lock); reopen if another process rotated."""
        if self._fd is None:
            self._open()
        else:
            try:
                if os.stat(self.path).st_ino != self._ino:
                    self._close_fd()
                    self._open()
            except FileNotFoundError:
                self._close_fd()
                self._open()
        assert self._fd is not None
        if self._need_nl:
            line, self._need_nl = b"\n" + line, False
        view = memoryview(line)
        while view:  # a regular-file write is complete in practice; loop only for safety
            n = os.write(self._fd, view)
            view = view[n:]
        if self.max_bytes > 0 and os.fstat(self._fd).st_size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        """path → path.1 → … → path.keep, under an advisory lock shared by all writers.

        Races are tolerated: after taking the lock we re-check that the file at ``path`` is still
        the big one (another process may have rotated already); a missing file is skipped.
        """
        lock_fd: int | None = None
        try:
            import fcntl
            lock_fd = os.open(f"{self.path}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            pass  # no lock available: the re-checks below still keep races harmless
        try:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return
            if st.st_ino != self._ino or st.st_size < self.max_bytes:
                return  # someone else rotated
            base = str(self.path)
            if self.keep <= 0:
                os.unlink(base)
            else:
                for i in range(self.keep - 1, 0, -1):
                    try:
                        os.replace(f"{base}.{i}", f"{base}.{i + 1}")
                    except FileNotFoundError:
                        pass
                os.replace(base, f"{base}.1")
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.write_errors += 1
        finally:
            self._close_fd()  # next write opens a fresh file at path
            if lock_fd is not None:
                os.close(lock_fd)  # closing releases the flock

    def close(self) -> None:
        """Flush in-flight requests and close the descriptor (idempotent)."""
        self.flush_in_flight()
        with self._lock:
            self._close_fd()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self._close_fd()
        except Exception:
            pass
