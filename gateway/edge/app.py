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
from turnroute.gateway.edge.handlers import Gateway, json_response
from turnroute.gateway.errors import envelope_bytes
from turnroute.gateway.observe.live import make_ui_router

#: Seconds after start-up at which LiteLLM is imported in the background (see lifespan).
WARM_IMPORT_DELAY = 3.0


def create_app(config: Config, *, config_path: str | Path | None = None, watch: bool = True) -> FastAPI:
    gw = Gateway(config, config_path=config_path)

    async def lifespan(app: FastAPI):
        warm = None
        if any(b.config.type == "litellm" for b in gw.backends.values()):
            # Import LiteLLM (seconds of CPU) a little after start-up, so the first requests on
            # the direct route are not slowed by it holding the GIL; a LiteLLM request that comes
            # sooner imports it on demand.
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

    async def health() -> Response:
        return json_response(await gw.health())

    async def models() -> Response:
        return json_response(gw.models())

    async def metrics() -> Response:
        data, ctype = gw.metrics.render()
        return Response(data, media_type=ctype)

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.include_router(make_ui_router(gw.log))
    return app
