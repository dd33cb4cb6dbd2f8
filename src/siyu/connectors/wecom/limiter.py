"""Client-side rate limiting inside WeCom's published limits (per company per API: 10,000/min, 150,000/h)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Calls allowed per API per window; the defaults keep a 10 % margin under WeCom's limits."""

    per_minute: int = 9_000
    per_hour: int = 135_000


class RateLimiter:
    """Sliding-window limiter per API name; ``acquire(api)`` blocks until a call is allowed."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits or Limits()
        self.clock, self.sleep = clock, sleep
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting (reported by benchmarks)

    def _wait_needed(self, api: str, now: float) -> float:
        calls = self._calls[api]
        while calls and calls[0] <= now - 3600:
            calls.popleft()
        wait = 0.0
        if len(calls) >= self.limits.per_hour:
            wait = calls[len(calls) - self.limits.per_hour] + 3600 - now
        if len(calls) >= self.limits.per_minute:
            wait = max(wait, calls[len(calls) - self.limits.per_minute] + 60 - now)
        return wait

    def acquire(self, api: str) -> None:
        """Record a call of ``api``, first sleeping as long as the windows require."""
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_needed(api, now)
                if wait <= 0:
                    self._calls[api].append(now)
                    return
                self.waited += wait
            self.sleep(wait)
