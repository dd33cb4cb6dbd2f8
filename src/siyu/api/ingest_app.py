"""The ingest-only application of ``siyu serve-ingest``: Segment ``/v1/*`` and ``/healthz``, no warehouse.

``app_from_env`` is the uvicorn factory each worker process calls: it opens its own state-DB connection pool and
ingest writer (log-only), and closes them (the segment gets its end-of-stream marker) when the worker stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from siyu.api import segment, unavailable
from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.ingest.process import health, open_ingest_context


def create_ingest_app(ctx: Context) -> FastAPI:
    """The Segment endpoints over an ingest-only Context (closed when the app shuts down)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            ctx.close()  # flush the log, write the end-of-stream marker

    app = FastAPI(
        title="siyu ingestion",
        version="0.1.0",
        description="Segment-compatible ingestion only; the warehouse process loads the ingest log.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx

    @app.exception_handler(SiyuError)
    async def _siyu_error(_request: Request, exc: SiyuError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": exc.message, "field": exc.field})

    unavailable.install(app)  # state DB down → 503, disk full → 507

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        return health(ctx)

    app.include_router(segment.router)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: the ingest app over SIYU_* settings (one per worker process)."""
    return create_ingest_app(open_ingest_context(Settings.from_env()))
