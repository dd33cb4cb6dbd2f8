"""One WeCom call, done right: rate limit, token, retries on -1, one token refresh, back-off on 45009/45033."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from siyu.connectors.wecom.errors import WeComError, WeComUnavailable
from siyu.connectors.wecom.limiter import Limits, RateLimiter
from siyu.connectors.wecom.tokens import TokenCache

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
BUSY_RETRIES = 3
TOKEN_ERRORS = {40014, 42001}
LIMIT_ERRORS = {45009, 45033}

_CACHES: dict[str, TokenCache] = {}
_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_caches_lock = threading.Lock()


@dataclass(frozen=True)
class Backoff:
    """Waits after 45009/45033: ``first`` seconds, doubling up to ``cap``, at most ``attempts`` times."""

    first: float = 1.0
    cap: float = 60.0
    attempts: int = 6

    def delay(self, n: int) -> float:
        return float(min(self.cap, self.first * 2**n))


class Transport:
    """Calls ``/cgi-bin/...`` for one app (corpid, secret) and returns the JSON answer with errcode 0."""

    def __init__(
        self,
        corpid: str,
        secret: str,
        base_url: str = DEFAULT_BASE,
        http: httpx.Client | None = None,
        limits: Limits | None = None,
        backoff: Backoff | None = None,
        tokens: TokenCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.corpid, self.secret, self.base = corpid, secret, base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
        # one limiter per company per process (WeCom counts per company per API); explicit limits: a private one
        self.limiter = RateLimiter(limits, sleep=sleep) if limits else shared_limiter(self.base, corpid)
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.tokens = tokens or shared_cache(self.base)
        self._stats_lock = threading.Lock()
        self.stats = {"calls": 0, "busy_retries": 0, "token_refreshes": 0, "backoffs": 0, "backoff_seconds": 0.0}

    def _count(self, key: str, n: float = 1) -> None:
        with self._stats_lock:  # clients are shared by fetch threads
            self.stats[key] += n

    def close(self) -> None:
        self.http.close()

    def _request(
        self, method: str, path: str, params: dict[str, Any], body: Any, files: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        for attempt in range(BUSY_RETRIES + 1):
            try:
                if files:  # multipart/form-data (media uploads)
                    r = self.http.request(method, self.base + path, params=params, files=files)
                else:
                    r = self.http.request(method, self.base + path, params=params, json=body)
                out = orjson.loads(r.content)
                if not isinstance(out, dict) or ("errcode" not in out and "access_token" not in out):
                    raise ValueError(f"HTTP {r.status_code}: not a WeCom answer")
                return out
            except (httpx.TransportError, ValueError, orjson.JSONDecodeError) as err:
                if attempt == BUSY_RETRIES:
                    raise WeComUnavailable(path, str(err)) from err
                self.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def _fetch_token(self, corpid: str, secret: str) -> tuple[str, int]:
        params = {"corpid": corpid, "corpsecret": secret}
        for attempt in range(BUSY_RETRIES + 1):
            out = self._request("GET", "/cgi-bin/gettoken", params, None)
            code = int(out.get("errcode", 0))
            if code == 0:
                return str(out["access_token"]), int(out.get("expires_in", 7200))
            if code != -1 or attempt == BUSY_RETRIES:
                raise WeComError("gettoken", code, str(out.get("errmsg", "")))
            self.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def call(
        self,
        api: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        path: str = "",
        files: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``/cgi-bin/externalcontact/<api>`` (POST with ``body``, GET with ``query`` only); ``path`` names
        another ``/cgi-bin/...`` endpoint (JS-SDK tickets, OAuth, media) with the same token, retry and limit
        handling; ``files`` POSTs multipart/form-data (httpx ``files``)."""
        path = path or f"/cgi-bin/externalcontact/{api}"
        busy = refreshed = limited = 0
        while True:
            self.limiter.acquire(api)
            token = self.tokens.get(self.corpid, self.secret, self._fetch_token)
            self._count("calls", 1)
            out = self._request(
                "POST" if body is not None or files else "GET",
                path,
                {**(query or {}), "access_token": token},
                body,
                files,
            )
            code = int(out.get("errcode", 0))
            if code == 0:
                return out
            msg = str(out.get("errmsg", ""))
            if code == -1 and busy < BUSY_RETRIES:
                busy += 1
                self._count("busy_retries", 1)
                self.sleep(0.1 * 2**busy)
            elif code in TOKEN_ERRORS and not refreshed:
                refreshed = 1
                self._count("token_refreshes", 1)
                self.tokens.invalidate(self.corpid, self.secret, token)
            elif code in LIMIT_ERRORS and limited < self.backoff.attempts:
                wait = self.backoff.delay(limited)
                limited += 1
                self._count("backoffs", 1)
                self._count("backoff_seconds", wait)
                log.warning("WeCom %s answered %s; backing off %.1f s", api, code, wait)
                self.sleep(wait)
            else:
                raise WeComError(api, code, msg)


def shared_cache(base_url: str) -> TokenCache:
    """The process's token cache for one WeCom endpoint (tokens are per (corpid, secret))."""
    with _caches_lock:
        cache = _CACHES.get(base_url)
        if cache is None:
            cache = _CACHES[base_url] = TokenCache()
        return cache


def shared_limiter(base_url: str, corpid: str) -> RateLimiter:
    """The process's rate limiter for one company (every client of that company shares its windows)."""
    with _caches_lock:
        limiter = _LIMITERS.get((base_url, corpid))
        if limiter is None:
            limiter = _LIMITERS[(base_url, corpid)] = RateLimiter()
        return limiter
