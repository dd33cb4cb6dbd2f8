"""Login for the API and the console: signed tokens, brute-force throttling, per-user language."""

from __future__ import annotations

import threading
import time
from collections import deque

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from siyu.services.brands import User, authenticate, get_user
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError, Unauthorized
from siyu.stores.state.models import UserRow

TOKEN_MAX_AGE_SECONDS = 12 * 3600
LOGIN_MAX_FAILURES = 10
LOGIN_WINDOW_SECONDS = 60.0
LANGUAGES = ("zh", "en")


class TooManyAttempts(SiyuError):
    """Too many failed logins for one username from one address."""

    status_code = 429


class LoginThrottle:
    """Counts failed logins per (username, client address) in a sliding window, and per client address across
    usernames (password spraying: ``ADDRESS_FACTOR`` times the per-user limit)."""

    ADDRESS_FACTOR = 5
    MAX_KEYS = 100_000  # past it, keys without a failure in the window are forgotten

    def __init__(self, max_failures: int = LOGIN_MAX_FAILURES, window: float = LOGIN_WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        if key not in self._failures and len(self._failures) >= self.MAX_KEYS:
            for k in [k for k, q in self._failures.items() if not q or now - q[-1] > self.window]:
                del self._failures[k]
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def check(self, username: str, client: str) -> None:
        """Raise TooManyAttempts when the username from this address, or this address, is over its limit."""
        with self._lock:
            now = time.monotonic()
            for key, limit, who in (
                ((username, client), self.max_failures, f"for {username!r}"),
                (("", client), self.max_failures * self.ADDRESS_FACTOR, "from this address"),
            ):
                q = self._recent(key, now)
                if len(q) >= limit:
                    wait = int(self.window - (now - q[0])) + 1
                    raise TooManyAttempts(f"too many failed logins {who}; wait {wait} s and try again", "password")

    def fail(self, username: str, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent((username, client), now).append(now)
            self._recent(("", client), now).append(now)

    def succeed(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop((username, client), None)


def throttle(ctx: Context) -> LoginThrottle:
    """The process's login throttle (kept in ``ctx.extras``)."""
    found = ctx.extras.get("login_throttle")
    if not isinstance(found, LoginThrottle):
        found = LoginThrottle()
        ctx.extras["login_throttle"] = found
    return found


def _serializer(ctx: Context) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.settings.secret_key, salt="siyu-auth")


def login(ctx: Context, username: str, password: str, client: str = "") -> User:
    """Check a password (throttled per username + client address); raise Unauthorized when wrong."""
    if not username:
        raise SiyuError("username is required", field="username")
    limiter = throttle(ctx)
    limiter.check(username, client)
    user = authenticate(ctx, username, password)
    if user is None:
        limiter.fail(username, client)
        raise Unauthorized("wrong username or password", field="password")
    limiter.succeed(username, client)
    return user


def issue_token(ctx: Context, user: User) -> str:
    """A signed, time-limited token naming the user."""
    return str(_serializer(ctx).dumps({"uid": user.id, "u": user.username}))


def user_from_token(ctx: Context, token: str) -> User:
    """The user a token names; Unauthorized when it is forged, expired or the user is gone."""
    try:
        data = _serializer(ctx).loads(token, max_age=TOKEN_MAX_AGE_SECONDS)
    except SignatureExpired as exc:
        raise Unauthorized("session expired; log in again") from exc
    except BadSignature as exc:
        raise Unauthorized("invalid token; log in again") from exc
    try:
        user = get_user(ctx, int(data["uid"]))
    except (NotFound, KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("the user of this token no longer exists") from exc
    with ctx.sessions() as s:
        row = s.get(UserRow, user.id)
        if row is None or not row.active:
            raise Unauthorized("this user is disabled")
    return user


def set_language(ctx: Context, user_id: int, language: str) -> None:
    """Store the user's console language ('zh' or 'en')."""
    if language not in LANGUAGES:
        raise SiyuError(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    with ctx.sessions() as s:
        row = s.get(UserRow, user_id)
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        row.language = language
        s.commit()
