"""The Huey queue, the embedded (in-process, threaded) consumer and the process's Context registry."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from siyu.config import Settings
from siyu.services.context import Context

log = logging.getLogger(__name__)

_lock = threading.Lock()
_HUEYS: dict[str, Huey] = {}
_CONTEXTS: dict[str, Context] = {}


def queue_key(settings: Settings) -> str:
    """Which queue a settings object names (the Redis URL, or the SQLite queue file)."""
    return settings.huey_url or str(settings.data_dir / "huey.sqlite")


def context_key(settings: Settings) -> str:
    """Registry key of a Context: its data directory."""
    return str(settings.data_dir)


def get_huey(settings: Settings) -> Huey:
    """The Huey instance for these settings (one per queue per process), with siyu's tasks registered.

    SqliteHuey at ``<data_dir>/huey.sqlite`` by default; RedisHuey when ``huey_url`` is ``redis://...``.
    """
    key = queue_key(settings)
    with _lock:
        huey = _HUEYS.get(key)
        if huey is not None:
            return huey
        if settings.huey_url:
            if not settings.huey_url.startswith(("redis://", "rediss://", "unix://")):
                from siyu.services.errors import SiyuError

                raise SiyuError(
                    f"SIYU_REDIS_URL {settings.huey_url!r} is not supported; use redis://host:port/db or leave it "
                    "empty for the embedded SQLite queue",
                    field="huey_url",
                )
            # bounded socket waits (a blocking dequeue waits 1 s), so a lost Redis fails fast and consumers retry
            from redis import ConnectionPool

            pool = ConnectionPool.from_url(
                settings.huey_url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
            )
            huey = RedisHuey("siyu", connection_pool=pool, results=False)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            huey = SqliteHuey("siyu", filename=key, results=False)
        from siyu.workers import tasks

        tasks.register(huey)
        _HUEYS[key] = huey
        return huey


def register_context(ctx: Context) -> None:
    """Make ``ctx`` the Context tasks of its data directory run with (the API app registers its own)."""
    with _lock:
        _CONTEXTS[context_key(ctx.settings)] = ctx


def unregister_context(ctx: Context) -> None:
    with _lock:
        if _CONTEXTS.get(context_key(ctx.settings)) is ctx:
            del _CONTEXTS[context_key(ctx.settings)]


def context_for(key: str) -> Context | None:
    """The registered Context for a data directory, if this process has one."""
    with _lock:
        return _CONTEXTS.get(key)


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A Huey consumer that runs as threads inside another process (no signal handlers)."""

    def _set_signal_handlers(self) -> None:
        return None


def start_consumer(ctx: Context, workers: int = 1) -> EmbeddedConsumer:
    """Register ``ctx`` and start a threaded consumer for its queue; call ``.stop(graceful=True)`` to end it."""
    register_context(ctx)
    huey = get_huey(ctx.settings)
    consumer = EmbeddedConsumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=0.5,
        check_worker_health=False,
        shutdown_timeout=30,
    )
    consumer.start()
    from siyu.services.imports.runner import requeue_interrupted

    requeue_interrupted(ctx)  # jobs a dead process left 'running' start again (imports are idempotent)
    return consumer


def embedded_enabled() -> bool:
    """Whether the API process should run the consumer (``SIYU_HUEY_CONSUMER=off`` disables it)."""
    return os.environ.get("SIYU_HUEY_CONSUMER", "embedded").lower() not in {"off", "0", "false", "no"}


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """FastAPI lifespan: register the app's Context; run the embedded consumer and the scheduler while serving."""
    ctx: Context = app.state.ctx
    register_context(ctx)
    consumer = start_consumer(ctx) if embedded_enabled() else None
    from siyu.workers import schedule

    scheduler = schedule.Scheduler(ctx).start() if schedule.enabled() else None  # periodic jobs (segments, alerts)
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.stop()
        if consumer is not None:
            consumer.stop(graceful=True)
        unregister_context(ctx)
