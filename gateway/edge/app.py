"""The ASGI app: which URL goes to which handler, and what runs at start-up and shutdown.

Routes are added as plain functions over the `Gateway` (handlers.py): the app object itself holds
no logic, so reading this file tells you every URL the gateway answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from turnroute.gateway.backends.litellm_backend import warm_import
from turnroute.gateway.config import Config, ConfigWatcher
from turnroute.gateway.edge.doors import Doors, api_keys
from turnroute.gateway.edge.handlers import Gateway, json_response
from turnroute.gateway.edge.status import health_report, model_list
from turnroute.gateway.errors import envelope_bytes
from turnroute.gateway.observe.live import make_ui_router
from turnroute.gateway.observe.record import add_known_secret

#: Seconds after start-up at which LiteLLM is imported in the background (see lifespan).
WARM_IMPORT_DELAY = 3.0


def create_app(config: Config, *, config_path: str | Path | None = None, watch: bool = True) -> FastAPI:
    gw = Gateway(config, config_path=config_path)

    async def lifespan(app: FastAPI):
        warm = None
        if config.edge.preload_litellm and any(b.config.type == "litellm" for b in gw.backends.values()):
            # Importing LiteLLM costs ~130 MB and seconds of CPU: by default the first LiteLLM
            # request pays for it (in a thread); preloading imports it a little after start-up.
            warm = asyncio.get_running_loop().call_later(WARM_IMPORT_DELAY, warm_import)
        gw.backends.refresh_windows_soon()      # context windows the servers report (LM Studio)
        gw.managed.start()
        if watch and config_path:
            gw.watcher = ConfigWatcher(config_path, gw.apply)
            gw.watcher.start()
        try:
            yield
        finally:
            if warm is not None:
                warm.cancel()
            if gw.watcher:
                await gw.watcher.stop()
            await gw.aclose()

    app = FastAPI(title="turnroute", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gw

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not_found_error", 405: "invalid_request_error"}.get(exc.status_code, "api_error")
        return Response(envelope_bytes(kind, f"{request.method} {request.url.path}: {exc.detail}"),
                        status_code=exc.status_code, media_type="application/json")

    app.add_api_route("/v1/messages", gw.messages, methods=["POST"])
    app.add_api_route("/v1/messages/count_tokens", gw.count_tokens, methods=["POST"])

    async def hello() -> Response:
        return json_response({"ok": True, "name": "turnroute"})

    for path in ("/", "/api/hello"):
        app.add_api_route(path, hello, methods=["GET", "HEAD"])

    async def health(request: Request) -> Response:
        report = await health_report(gw)
        status = 200 if report["ok"] else 503
        if not request.scope.get("state", {}).get("authorized", True):
            report = {"ok": report["ok"]}     # without the key: up or down, nothing about the setup
        return json_response(report, status)

    async def models() -> Response:
        return json_response(model_list(gw))

    async def metrics() -> Response:
        data, ctype = gw.metrics.render()
        return Response(data, media_type=ctype)

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.include_router(make_ui_router(gw.log))
    keys = api_keys(config)
    for key in keys:
        add_known_secret(key)              # scrubbed verbatim should a key ever reach a log line
    app.add_middleware(Doors, allowed_hosts=config.edge.allowed_hosts, allowed_origins=config.edge.allowed_origins,
                       api_keys=keys, on_reject=gw.refused)
    return app
