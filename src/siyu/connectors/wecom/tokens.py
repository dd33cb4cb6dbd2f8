"""Access-token cache: one token per (corpid, secret), refreshed before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Fetch = Callable[[str, str], tuple[str, int]]  # (corpid, secret) -> (access_token, expires_in)


@dataclass
class _Token:
    value: str
    refresh_at: float


class TokenCache:
    """Cached tokens, refreshed ``margin`` seconds (at most a fifth of the lifetime) before expiry."""

    def __init__(self, margin: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.margin, self.clock = margin, clock
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, corpid: str, secret: str, fetch: Fetch) -> str:
        """A valid token for this app secret (``fetch`` ed when missing or about to expire)."""
        key = (corpid, secret)
        with self._lock:
            tok = self._tokens.get(key)
            if tok is None or self.clock() >= tok.refresh_at:
                value, ttl = fetch(corpid, secret)
                self.fetches += 1
                tok = _Token(value, self.clock() + ttl - min(self.margin, ttl / 5))
                self._tokens[key] = tok
            return tok.value

    def invalidate(self, corpid: str, secret: str, value: str) -> None:
        """Drop ``value`` if it is still the cached token (another thread may already have refreshed it)."""
        with self._lock:
            tok = self._tokens.get((corpid, secret))
            if tok is not None and tok.value == value:
                del self._tokens[(corpid, secret)]
