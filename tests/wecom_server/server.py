"""The local WeCom server: a FastAPI app answering ``/cgi-bin/...`` as WeCom documents, run with uvicorn.

``WeComServer`` holds the company (``state.Company``), the issued tokens, per-API rate counters and injected
failures; ``with running(server) as base_url`` serves it on a random 127.0.0.1 port.  Every answer is HTTP 200
with ``errcode``/``errmsg`` (judge by errcode, as WeCom says).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.wecom_server.codes import WeComErr, need
from tests.wecom_server.state import Company

Handler = Callable[["WeComServer", dict[str, Any]], dict[str, Any]]


class WeComServer:
    """A company on a fake WeCom: configure limits, seed it, inject failures, emit callbacks."""

    def __init__(
        self,
        corpid: str = "wwlocal0000000001",
        secrets_: dict[str, str] | None = None,
        token_ttl: int = 7200,
        rate_limit: int = 10_000,
        rate_window: float = 60.0,
        welcome_window: float = 20.0,
        transfer_delay: float = 86400.0,
        moment_job_delay: float = 0.0,
    ) -> None:
        self.company = Company(corpid)
        self.secrets = secrets_ or {"contact-secret": "customer contact"}
        self.token_ttl = token_ttl
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.welcome_window = welcome_window
        self.transfer_delay = transfer_delay
        self.moment_job_delay = moment_job_delay  # seconds until an add_moment_task job is done
        self.offset = 0.0  # advance() moves the server's clock forward
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}  # token -> expiry (server clock)
        self.calls: dict[str, deque[float]] = defaultdict(deque)
        self.counts: dict[str, int] = defaultdict(int)  # api -> calls answered (all outcomes)
        self.injected: dict[str, deque[int]] = defaultdict(deque)  # api (or "*") -> errcodes to answer next
        self.callback: Any = None  # tests.wecom_server.callbacks.Emitter, set by connect_callbacks
        self.sent: list[dict[str, Any]] = []  # callbacks emitted (decrypted fields)
        self.busy_seconds = 0.0  # time spent answering (benchmarks separate it from the client's own time)
        self.app = self._build()

    # -- clock and controls ---------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the server clock forward (token expiry, welcome window, 24 h transfers)."""
        with self.lock:
            self.offset += seconds

    def inject(self, api: str, errcode: int, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``api`` (``list``, ``batch/get_by_user``, ``*``...) with ``errcode``."""
        with self.lock:
            self.injected[api].extend([errcode] * times)

    def connect_callbacks(self, url: str, token: str, aes_key: str) -> Any:
        """Send this company's callbacks to ``url`` (encrypted with ``token``/``aes_key``); returns the Emitter."""
        from tests.wecom_server.callbacks import Emitter

        self.callback = Emitter(url, token, aes_key, self.company.corpid)
        return self.callback

    def expire_tokens(self) -> None:
        """Invalidate every token early (WeCom may do this)."""
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}

    # -- request plumbing -----------------------------------------------------------------------------------
    def _token(self, q: dict[str, Any]) -> None:
        tok = q.get("access_token")
        need(bool(tok), 41001)
        exp = self.tokens.get(str(tok))
        need(exp is not None, 40014)
        need(self.now() < (exp or 0.0), 42001)

    def _rate(self, api: str) -> None:
        t = time.monotonic()
        window = self.calls[api]
        while window and window[0] <= t - self.rate_window:
            window.popleft()
        need(len(window) < self.rate_limit, 45009, f"{self.rate_limit} per {self.rate_window:g}s for {api}")
        window.append(t)

    def handle(self, api: str, q: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return self._handle(api, q)
        finally:
            self.busy_seconds += time.perf_counter() - t0

    def _handle(self, api: str, q: dict[str, Any]) -> dict[str, Any]:
        from tests.wecom_server.routes import ROUTES

        with self.lock:
            self.counts[api] += 1
            for key in (api, "*"):
                if self.injected[key]:
                    raise WeComErr(self.injected[key].popleft(), "injected")
            if api == "gettoken":
                return self._gettoken(q)
            handler = ROUTES.get(api)
            need(handler is not None, 40058, f"unknown api {api}")
            self._token(q)
            self._rate(api)
            assert handler is not None
            return handler(self, q)

    def _gettoken(self, q: dict[str, Any]) -> dict[str, Any]:
        need(q.get("corpid") == self.company.corpid, 40013)
        need(q.get("corpsecret") in self.secrets, 40001)
        tok = secrets.token_urlsafe(96)[:128]
        self.tokens[tok] = self.now() + self.token_ttl
        return {"access_token": tok, "expires_in": self.token_ttl}

    def _build(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"ok": "yes"}

        @app.api_route("/cgi-bin/{api:path}", methods=["GET", "POST"])
        async def cgi(api: str, request: Request) -> JSONResponse:
            q: dict[str, Any] = dict(request.query_params)
            if request.method == "POST" and request.headers.get("content-type", "").startswith("multipart/form-data"):
                form = await request.form()  # media/upload: the file parts, as (filename, bytes, content type)
                files = {}
                for key, part in form.multi_items():
                    if not isinstance(part, str):
                        files[key] = (part.filename or "", await part.read(), part.content_type or "")
                q["files"] = files
            elif request.method == "POST":
                raw = await request.body()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return JSONResponse(WeComErr(47001).body(secrets.token_hex(8)))
                if not isinstance(body, dict):
                    return JSONResponse(WeComErr(47001).body(secrets.token_hex(8)))
                q = {**body, "access_token": q.get("access_token")}
            name = api.removeprefix("externalcontact/") if api.startswith("externalcontact/") else api
            try:
                out = {"errcode": 0, "errmsg": "ok", **self.handle(name, q)}
            except WeComErr as err:
                out = err.body(secrets.token_hex(8))
            return JSONResponse(out)

        from tests.wecom_server.routes_jssdk import mount

        mount(app, self)  # the OAuth authorize page (/connect/oauth2/authorize)
        return app


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(server: WeComServer) -> Iterator[str]:
    """Serve ``server`` with uvicorn on a random 127.0.0.1 port in a thread; yields the base URL."""
    from tests.support.live import live_server

    with live_server(server.app) as base:
        yield base
