"""What the gateway says about itself: `/health` and `/v1/models`.

Apart from the request handlers because nothing here routes or translates a request: these read
the backend pool (reachability, context windows, managed servers) and the config.
"""

from __future__ import annotations

import asyncio
from typing import Any

from turnroute.gateway.backends import Backend
from turnroute.gateway.edge.handlers import Gateway

__all__ = ["health_report", "model_list"]


async def health_report(gw: Gateway) -> dict[str, Any]:
    """Each backend's reachability, model and window, without generating anything; "ok" means a
    request could be served now (at least one backend answers)."""
    async def probe(b: Backend) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(b.health(), timeout=b.config.connect_timeout + 2)
        except Exception as exc:
            return {"ok": False, "error": type(exc).__name__}
    names = list(gw.backends)
    results, _ = await asyncio.gather(asyncio.gather(*(probe(gw.backends[n]) for n in names)),
                                      gw.backends.refresh_windows())
    windows = gw.backends.windows()
    backends = {n: {"type": gw.backends[n].config.type, "model": gw.backends[n].config.model,
                    "context_window": windows.get(n), **r}
                for n, r in zip(names, results)}
    for n, entry in backends.items():
        if (managed := gw.managed.status(n)) is not None:
            entry["managed"] = managed
    return {"ok": any(r.get("ok") for r in results), "gateway": "turnroute", "config": gw.config.source,
            "config_error": gw.watcher.last_error if gw.watcher else None, "backends": backends}


def model_list(gw: Gateway) -> dict[str, Any]:
    """Backends and aliases; `max_input_tokens` (Anthropic's name) is each one's context window."""
    windows = gw.backends.windows()

    def limits(name: str) -> dict[str, Any]:
        return {"max_input_tokens": windows.get(name), "max_tokens": gw.backends[name].config.max_output_tokens}
    data = [{"type": "model", "id": name, "display_name": f"{name} ({b.config.model})",
             "created_at": "2026-01-01T00:00:00Z", **limits(name)} for name, b in gw.backends.items()]
    data += [{"type": "model", "id": alias, "display_name": f"{alias} → {target}",
              "created_at": "2026-01-01T00:00:00Z", **limits(target)}
             for alias, target in gw.config.rules.aliases.items()
             if alias not in gw.backends and target in gw.backends]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


