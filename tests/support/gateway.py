"""Run the real gateway (`turnroute serve`) as a subprocess on a free port for a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.support.net import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]


def gateway_config(backends: dict[str, dict[str, Any]], *, rules: list | None = None,
                   default: dict | None = None, log_path: Path, extra: dict | None = None,
                   profile: str = "turnroute.yaml") -> dict:
    """A config dict: the given backends, a shipped profile's routing sections unless rules are given."""
    shipped = yaml.safe_load((REPO / "config" / profile).read_text())
    doc: dict[str, Any] = {"log": {"path": str(log_path)}, "backends": backends}
    if rules is None:
        for key in ("aliases", "markers", "intents", "needs", "rules", "default"):
            if key in shipped:
                doc[key] = shipped[key]
    else:
        doc["rules"] = rules
        doc["default"] = default or {"route": next(iter(backends))}
    doc.update(extra or {})
    return doc


def openai_backend(url: str, *, model: str = "fake-model", tools: bool = True, type: str = "openai",
                   json_schema: bool = False, **kw: Any) -> dict[str, Any]:
    return {"type": type, "url": url, "model": model, "max_output_tokens": kw.pop("max_output_tokens", 64),
            "timeout": {"connect": 1, "read": 60},
            "supports": {"tools": tools, "images": False, "thinking": kw.pop("thinking", False),
                         "json_schema": json_schema}, **kw}


class Gateway:
    """`turnroute serve --config <tmp>` on 127.0.0.1:<free port>; stopped with SIGTERM."""

    def __init__(self, config: dict, tmp: Path, *, env: dict[str, str] | None = None):
        self.config_path = tmp / "turnroute.yaml"
        self.write_config(config)
        self.log_path = Path(config["log"]["path"])
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stderr_path = tmp / f"gateway-{self.port}.stderr"
        full_env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        full_env.pop("TURNROUTE_MODE", None) if "TURNROUTE_MODE" not in (env or {}) else None
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "turnroute.gateway.cli", "serve", "--config", str(self.config_path),
             "--port", str(self.port)],
            cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        try:
            wait_http(self.base + "/api/hello", timeout=60, alive=lambda: self.proc.poll() is None)
        except Exception:
            self.stop()
            raise RuntimeError(f"gateway did not start:\n{self.output()}") from None

    def write_config(self, config: dict) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        os.replace(tmp, self.config_path)

    def output(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def records(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [orjson.loads(line) for line in self.log_path.read_bytes().splitlines() if line.strip()]

    def wait_records(self, n: int, timeout: float = 10.0) -> list[dict]:
        """Log lines are written when a response finishes; give streams a moment."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()
            if len(recs) >= n or time.monotonic() > deadline:
                return recs
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
