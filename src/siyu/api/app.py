"""The FastAPI application: ingestion (/v1), REST API (/api), console (/) on one app."""

from __future__ import annotations

import duckdb
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu.api.nul_guard import NulGuard
from siyu.api.validation import http_error, out_of_range, siyu_error, validation_error
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.workers import lifespan as workers_lifespan


def create_app(ctx: Context, with_console: bool = True) -> FastAPI:
    """Build the app over an open Context. ``with_console`` mounts the NiceGUI operator console."""
    app = FastAPI(
        title="siyu API",
        version="0.1.0",
        description="siyu (私域) — Segment-compatible ingestion, customer 360, imports. Console at /.",
        lifespan=workers_lifespan,  # runs the embedded Huey consumer (background imports) while serving
    )
    app.state.ctx = ctx

    install_guards(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Routers: one line per area.
    from siyu.api import routers

    for router in routers.all_routers():
        app.include_router(router)

    if with_console:
        from siyu.console import mount

        mount.mount_console(app, ctx)
    return app


def install_guards(app: FastAPI) -> None:
    """The error shape and guards every siyu app shares (the main app and ``serve-public``'s): SiyuError,
    validation, HTTP and overflow errors in the project's shape, outages as 503 / 507, the NUL guard, and the
    public hot routes dispatched ahead of the router under those handlers."""
    app.add_exception_handler(SiyuError, siyu_error)  # the service's refusal: its status, message and field
    app.add_exception_handler(RequestValidationError, validation_error)  # 422 in the project's shape, naming the field
    app.add_exception_handler(StarletteHTTPException, http_error)  # unreadable bodies, unknown paths: same shape
    for overflow in (OverflowError, duckdb.OutOfRangeException):  # huge numbers past every bound: 422, not 500
        app.add_exception_handler(overflow, out_of_range)

    from siyu.api import unavailable

    unavailable.install(app)  # state DB / Redis down → 503, disk full → 507 (no stack traces, no hangs)

    from siyu.api.hot_routes import HotRoutes
    from siyu.public.campaign_pages import HOT_ROUTES

    # inner to NulGuard (added later = outer); the app's exception handlers, as the router would use them
    app.add_middleware(HotRoutes, routes=HOT_ROUTES, handlers=app.exception_handlers)
    app.add_middleware(NulGuard)  # NUL characters in path / query / JSON body: 422 naming where, not a 500 deep down
