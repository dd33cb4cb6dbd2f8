"""Hot routes: a few public endpoints served ahead of FastAPI's router (the campaign help page and its POST).

Under a burst of assists the router costs more than the endpoint: FastAPI matches the path against every route
of every included router, solves the dependencies and wraps the call in its telemetry — ~0.3 ms a request on
this machine, a third of the help POST. The endpoints named here keep their FastAPI routes (the OpenAPI schema,
``url_path_for``), but a request for them is dispatched straight to the same endpoint function by this ASGI
middleware, which sits inside the app's own middlewares (NUL guard) and runs the endpoint under the app's
exception handlers (a ``SiyuError`` or a database outage answers exactly as through the router).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[..., Response | Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute:
    """``method`` + ``path`` (FastAPI syntax: ``/m/h/{token}``) served by ``endpoint(request, **path_params)``: a
    coroutine function on the event loop, any other in the thread pool (as FastAPI runs it)."""

    method: str
    path: str
    endpoint: Endpoint

    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression with one named group per parameter (no ``/`` inside one)."""
        return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path))


class HotRoutes:
    """ASGI middleware dispatching ``routes`` without the router (see the module docstring)."""

    def __init__(self, app: ASGIApp, routes: Sequence[HotRoute], handlers: dict[Any, Callable[..., Any]]) -> None:
        self.app = app
        self.routes = [(r.method, r.pattern(), ExceptionMiddleware(_asgi(r), handlers=handlers)) for r in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handled = self.find(scope)
        await (self.app if handled is None else handled)(scope, receive, send)

    def find(self, scope: Scope) -> ASGIApp | None:
        """The hot route serving ``scope`` (its path parameters set in the scope), or None."""
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            for m, pattern, handled in self.routes:
                found = pattern.fullmatch(path) if m == method else None
                if found is not None:
                    scope["path_params"] = found.groupdict()
                    return handled
        return None


def _asgi(route: HotRoute) -> ASGIApp:
    is_async = inspect.iscoroutinefunction(route.endpoint)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        params = scope["path_params"]
        if is_async:
            response = await route.endpoint(request, **params)  # type: ignore[misc]
        else:
            response = await run_in_threadpool(route.endpoint, request, **params)
        await response(scope, receive, send)

    return app
