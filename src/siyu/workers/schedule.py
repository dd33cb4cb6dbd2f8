"""A small schedule registry: jobs that run every N minutes, queued on Huey by a thread of the API process.

Each entry of ``SCHEDULES`` names a target ``"package.module:function"`` called as ``function(ctx)`` through
``siyu.workers.tasks.enqueue_call`` (so it runs in the Huey consumer, serialised with the other background work).
The ``Scheduler`` thread starts with the app (``lifespan``, attached to the segments router) and queues each job
``every_minutes`` after the previous one; the first run is one interval after start. ``SIYU_SCHEDULER=off``
disables it (e.g. when several API processes share a queue: keep it on in one).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from siyu.services.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """A job: its name, how often (minutes) and what to call (``module:function`` taking the Context)."""

    name: str
    every_minutes: float
    target: str


# every area adds its periodic jobs here
SCHEDULES: tuple[Schedule, ...] = (
    Schedule("segments.refresh", 60.0, "siyu.services.segments:refresh_all"),
    Schedule("metrics.anomalies", 1440.0, "siyu.services.metrics.anomalies:check_all_brands"),
    Schedule("clv.refit", 1440.0, "siyu.services.clv.scheduled:refit_due"),  # refits per SIYU_CLV_REFIT_DAYS
    Schedule("wecom.callbacks", 1.0, "siyu.services.wecom.processing:recover"),
    Schedule("wecom.codes.rotation", 15.0, "siyu.services.wecom.channel_codes:refresh_due"),  # daily caps reset
    Schedule("wecom.ops", 30.0, "siyu.services.wecom.ops_scheduled:refresh_all"),  # transfers, 群发 results, tag rules
    Schedule("journeys.tick", 1.0, "siyu.services.journeys.scheduled:tick"),  # triggers, due steps, effects
    Schedule("campaigns.tick", 5.0, "siyu.services.campaigns.scheduled:tick"),  # OneID for helpers, teams, end
    Schedule("messaging.outbox", 1.0, "siyu.services.messaging.outbox:process_due"),  # retries, stuck sends
    Schedule("guide_work.daily", 60.0, "siyu.services.guide_work.scheduled:daily"),  # digest of the day, pool returns
    Schedule("guide_work.moments", 15.0, "siyu.services.guide_work.moments:poll_all"),  # who posted Moments
    Schedule("guide_work.behavior", 1440.0, "siyu.services.guide_work.behavior:sync_all"),  # 联系客户统计 per guide
    Schedule("engagement.daily", 1440.0, "siyu.services.engagement.scheduled:daily"),  # points expiry, member tiers
)

Runner = Callable[[Context, str], None]


def queue_runner(ctx: Context, target: str) -> None:
    """Queue ``target`` on the Context's Huey queue (the default way a schedule runs)."""
    from siyu.workers.tasks import enqueue_call

    enqueue_call(ctx, target)


class Scheduler:
    """Runs due schedules from a daemon thread; ``tick(now)`` is the testable step."""

    def __init__(
        self,
        ctx: Context,
        schedules: tuple[Schedule, ...] = SCHEDULES,
        runner: Runner = queue_runner,
        tick_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for s in schedules:
            if s.every_minutes <= 0 or ":" not in s.target:
                raise ValueError(f"schedule {s.name!r}: every_minutes > 0 and target 'module:function' needed")
        self.ctx = ctx
        self.schedules = schedules
        self.runner = runner
        self.tick_seconds = tick_seconds
        self.clock = clock
        start = clock()
        self.next_run: dict[str, float] = {s.name: start + s.every_minutes * 60 for s in schedules}
        self.runs: dict[str, int] = {s.name: 0 for s in schedules}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, now: float) -> list[Schedule]:
        """The schedules whose time has come."""
        return [s for s in self.schedules if now >= self.next_run[s.name]]

    def tick(self, now: float | None = None) -> list[str]:
        """Run every due schedule once and set its next time; returns the names run."""
        now = self.clock() if now is None else now
        ran: list[str] = []
        for s in self.due(now):
            self.next_run[s.name] = now + s.every_minutes * 60
            try:
                self.runner(self.ctx, s.target)
                self.runs[s.name] += 1
                ran.append(s.name)
            except Exception:  # one failing job must not stop the others
                log.exception("scheduled job %s failed", s.name)
        return ran

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.tick()

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="siyu-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def enabled() -> bool:
    """Whether this process runs the scheduler (``SIYU_SCHEDULER=off`` disables it)."""
    return os.environ.get("SIYU_SCHEDULER", "on").lower() not in {"off", "0", "false", "no"}
