"""Token buckets (requests per second with a burst allowance), and the per-process limiters kept on a Context."""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from siyu.errors import TooManyRequests

if TYPE_CHECKING:
    from siyu.services.context import Context


MAX_KEYS = 100_000  # keys a bucket remembers; past it idle (full) keys are forgotten, then the oldest half


class TokenBucket:
    """Token buckets keyed by a string (write key id, IP, ...); ``take`` returns 0 when allowed, else seconds to
    wait. At most ``max_keys`` keys are kept, so keys chosen by a client (random IPs or brand ids) cannot grow
    memory without bound."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, updated monotonic)
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        """Forget keys whose bucket has refilled (same as unknown); if that is not enough, the oldest half."""
        full = [k for k, (t, u) in self._buckets.items() if t + (now - u) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for k in by_age[: len(by_age) // 2 + 1]:
                del self._buckets[k]

    def peek(self, key: str) -> float:
        """Seconds until ``key`` would have one token (0.0 when it has one now); spends nothing."""
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            return 0.0
        return (1.0 - tokens) / self.rate if self.rate > 0 else math.inf

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens for ``key``; return 0.0 if allowed, else the seconds until it would be."""
        now = time.monotonic()
        with self._lock:
            if key not in self._buckets and len(self._buckets) >= self.max_keys:
                self._prune(now)
            tokens, updated = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - updated) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate if self.rate > 0 else math.inf

    def close(self) -> None:
        self._buckets.clear()


def context_bucket(ctx: Context, name: str, rate: float, burst: int) -> TokenBucket:
    """The token bucket ``name`` of this Context (made on first use; tests may replace it in ``ctx.extras``)."""
    bucket = ctx.extras.get(name)
    if not isinstance(bucket, TokenBucket):
        bucket = ctx.extras.setdefault(name, TokenBucket(rate, burst))
    return bucket


def check_rate(ctx: Context, name: str, rate: float, burst: int, key: str, what: str = "requests") -> None:
    """Spend one token of ``key`` in bucket ``name``; ``TooManyRequests`` (HTTP 429) naming the wait when empty."""
    wait = context_bucket(ctx, name, rate, burst).take(key)
    if wait > 0:
        raise TooManyRequests(f"too many {what}; retry in {math.ceil(wait)} s", "rate")
