"""Clear answers when a backing component is down or full, instead of a hang or a 500 with a stack trace.

- the state database refuses or drops connections (PostgreSQL restarting, SQLite locked) → 503 + Retry-After
- the job queue (Redis) is unreachable → 503 + Retry-After
- the disk under the data directory is full (ingest log, DuckDB, uploads) → 507 Insufficient Storage

Nothing was acknowledged in these cases: clients retry (Segment's libraries retry 5xx with backoff).
"""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_FULL = {errno.ENOSPC, errno.EDQUOT}


def _answer(status: int, message: str, field: str) -> JSONResponse:
    body = {"success": False, "error": message, "field": field}
    return JSONResponse(status_code=status, content=body, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a full disk or an exhausted quota."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        if "No space left on device" in str(seen):  # DuckDB and Arrow report ENOSPC in their message
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _state_down(_request: Request, exc: Exception) -> JSONResponse:
        if disk_full(exc):
            return _full()
        log.warning("state database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _answer(
            503, "the state database is unavailable (restarting or unreachable); nothing was saved, retry", "database"
        )

    @app.exception_handler(OSError)
    async def _os_error(_request: Request, exc: OSError) -> JSONResponse:
        if disk_full(exc):
            return _full()
        raise exc

    try:
        from redis import exceptions as redis_exc
    except ImportError:  # redis is only needed with SIYU_REDIS_URL
        return

    @app.exception_handler(redis_exc.ConnectionError)
    @app.exception_handler(redis_exc.TimeoutError)
    async def _queue_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("job queue unavailable: %s", exc)
        return _answer(503, "the job queue (Redis) is unavailable; retry shortly", "queue")


def _full() -> JSONResponse:
    log.error("disk full under the data directory")
    return _answer(
        507,
        "the server's disk is full; nothing from this request was acknowledged — retry after space is freed",
        "storage",
    )
