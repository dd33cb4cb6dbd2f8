"""The application of ``siyu serve-public``: the public mobile pages (/m/...) in processes of their own.

A burst of assists is Python work per request (parsing, signatures, rules, rendering); one process uses one
core. ``siyu serve-public --workers N`` serves /m/ from N more processes sharing one port, next to ``siyu serve``
on the same SIYU_DATA_DIR. They write the state database directly (campaign helps: each process's group-commit
writer; on SQLite the batches of the processes take turns, see ``help_writer``) and never open the warehouse:
a request that needs it (``WarehouseElsewhere``) is handed whole to the main process (``--main-url``) before
anything is written, and so is every /m/ request when that happens. Paths outside /m/ get a 404 naming where
the API and console are.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu.api.app import install_guards
from siyu.api.asgi_body import read_body, replaying, send_text
from siyu.api.hot_routes import HotRoutes
from siyu.api.main_proxy import MainProxy
from siyu.api.nul_guard import nul_in_url
from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.heap import freeze_heap
from siyu.services.public_process import WarehouseElsewhere, open_public_context

_HAND_OVER = 299  # internal status of the answer "hand this request to the main process" (never sent)
MAX_BODY = 1 << 20  # the public forms are a few KB
GC_YOUNG = 10_000  # net allocations between collections of the youngest generation (Python's default: 700)


def create_public_app(ctx: Context, main_url: str) -> ASGIApp:
    """The /m/ pages over a warehouse-less Context, handing requests that need the warehouse to ``main_url``."""
    from siyu.public import router as public_router
    from siyu.public.campaign_pages import HOT_ROUTES

    proxy = MainProxy(main_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await proxy.close()
            ctx.close()  # the help writer finishes its queued batch

    # no OpenTelemetry here: FastAPI checks its providers (environment lookups) on every request, and the public
    # pages serve anonymous phones; the main app keeps FastAPI's default
    telemetry: Any = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="siyu public pages",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        telemetry=telemetry,
    )
    app.state.ctx = ctx

    @app.exception_handler(WarehouseElsewhere)
    async def _elsewhere(_request: Request, _exc: WarehouseElsewhere) -> Response:
        return Response(status_code=_HAND_OVER)

    install_guards(app)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "role": "public", "pid": os.getpid(), "main_url": proxy.base_url}

    app.include_router(public_router)
    return HandOver(app, proxy, HotRoutes(app, HOT_ROUTES, app.exception_handlers))


class HandOver:
    """ASGI wrapper: /m/ requests run here with their body kept; an answer of ``_HAND_OVER`` is swallowed and the
    request replayed to the main process. Other paths: 404 naming the main process.

    A hot route (the help page and its POST) is dispatched here, past the app's middleware stack: under a burst
    each layer's wrapping of the request and its answer adds up. It runs under the app's exception handlers (as
    in the stack, ``siyu.api.hot_routes``); a URL with a NUL takes the stack's way (its 422)."""

    def __init__(self, app: FastAPI, proxy: MainProxy, hot: HotRoutes) -> None:
        self.app = app
        self.proxy = proxy
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if not scope["path"].startswith("/m/"):
            where = self.proxy.base_url
            await send_text(send, 404, f"siyu public pages serve /m/ only; the API and console are at {where}")
            return
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await send_text(send, 413, f"the request body is over {MAX_BODY} bytes")
            return
        handed = False

        async def intercept(message: Message) -> None:
            nonlocal handed
            if message["type"] == "http.response.start" and message["status"] == _HAND_OVER:
                handed = True
            if not handed:
                await send(message)

        hot = self.hot.find(scope) if nul_in_url(scope) is None else None
        if hot is not None:
            scope["app"] = self.app  # what the stack sets: the endpoints find the Context on it
            await hot(scope, replaying(body, receive), intercept)
        else:
            await self.app(scope, replaying(body, receive), intercept)
        if handed:
            await self.proxy.forward(scope, body, send)


def app_from_env() -> ASGIApp:
    """uvicorn factory: one public-pages app per worker process (``SIYU_MAIN_URL``: the main process)."""
    settings = Settings.from_env()
    app = create_public_app(open_public_context(settings), os.environ.get("SIYU_MAIN_URL", "http://127.0.0.1:8000"))
    # under a burst the cyclic GC took a tenth of a worker's CPU (measured: 1.3 s of a worker's ~10 s over sign-ins
    # and helps), most of it full collections walking the loaded app; frozen + rarer young collections: 0.2 s
    freeze_heap(young=GC_YOUNG)
    return app
