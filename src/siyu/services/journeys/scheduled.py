"""The journey tick (scheduled on the Huey queue by ``siyu.workers.schedule``): triggers, wake-ups, due steps,
effects. ``tick`` runs batches until nothing is due or ``budget_seconds`` is spent (the next tick goes on)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from siyu.services.context import Context
from siyu.services.journeys.effects import deliver_effects
from siyu.services.journeys.executor import ConcurrentRun, run_due
from siyu.services.journeys.triggers import poll_triggers, wake_on_events

log = logging.getLogger(__name__)
_TICK = threading.Lock()  # one tick at a time per process (queued ticks that find one running return at once)


def tick(ctx: Context, now: datetime | None = None, budget_seconds: float = 50.0) -> dict[str, Any]:
    """One round of the engine; returns what it did (``{"skipped": True}`` when a tick is already running)."""
    if not _TICK.acquire(blocking=False):
        return {"skipped": True}
    try:
        return _tick(ctx, now, budget_seconds)
    finally:
        _TICK.release()


def _tick(ctx: Context, now: datetime | None, budget_seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    entered = poll_triggers(ctx, now)
    woken = wake_on_events(ctx, now)
    steps = 0
    while time.monotonic() - started < budget_seconds:
        try:
            n = run_due(ctx, now)
        except (ConcurrentRun, IntegrityError, OperationalError) as exc:  # another worker (process) moved first
            log.info("a journey batch met another worker (%s); read again", type(exc).__name__)
            time.sleep(0.05)
            continue
        if n == 0:
            break
        steps += n
    effects = deliver_effects(ctx, now)
    while effects["done"] + effects["failed"] + effects["retry"] >= 500 and time.monotonic() - started < budget_seconds:
        more = deliver_effects(ctx, now)
        for k in effects:
            effects[k] += more[k]
        if more["done"] + more["failed"] == 0:
            break
    return {"entered": sum(entered.values()), "woken": woken, "steps": steps, "effects": effects}
