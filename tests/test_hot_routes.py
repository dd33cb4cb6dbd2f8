"""Hot routes (siyu.api.hot_routes): dispatched ahead of the router, with the app's middlewares and exception
handlers, answering as the routed endpoint would."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from siyu.api.hot_routes import HotRoute, HotRoutes
from siyu.api.nul_guard import NulGuard
from siyu.errors import SiyuError
from tests.support.live import live_server

calls: list[str] = []
threads: dict[str, int] = {}


async def shout(request: Request, token: str) -> Response:
    calls.append(f"hot:{token}")
    threads["loop"] = threading.get_ident()
    if token == "bad":
        raise SiyuError("bad token", "token")
    return PlainTextResponse(f"{request.method} {token} {(await request.body()).decode()}")


def page(request: Request, token: str) -> Response:
    calls.append(f"hot-sync:{token}")
    threads["page"] = threading.get_ident()
    return PlainTextResponse(f"page {token}")


def build() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(SiyuError)
    async def _err(_r: Request, exc: SiyuError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "field": exc.field}, status_code=exc.status_code)

    @app.post("/x/{token}")
    async def routed(request: Request, token: str) -> Response:
        calls.append(f"router:{token}")
        return await shout(request, token)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/other")
    def other() -> dict[str, str]:
        return {"ok": "yes"}

    routes = (HotRoute("POST", "/x/{token}", shout), HotRoute("GET", "/x/{token}", page))
    app.add_middleware(HotRoutes, routes=routes, handlers=app.exception_handlers)
    app.add_middleware(NulGuard)
    return app


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    calls.clear()
    with live_server(build()) as base, httpx.Client(base_url=base, timeout=10) as c:
        yield c


def test_hot_route_is_served_without_the_router(client: httpx.Client) -> None:
    r = client.post("/x/abc", content=b"csrf=1")
    assert (r.status_code, r.text) == (200, "POST abc csrf=1")
    assert calls == ["hot:abc"]  # the routed endpoint never ran
    r = client.get("/x/q")
    assert r.text == "page q" and calls[-1] == "hot-sync:q"
    assert threads["page"] != threads["loop"]  # a sync endpoint runs in the thread pool, off the event loop


def test_errors_answer_through_the_apps_handlers(client: httpx.Client) -> None:
    r = client.post("/x/bad")
    assert r.status_code == 400 and r.json() == {"error": "bad token", "field": "token"}


def test_other_paths_and_methods_reach_the_router(client: httpx.Client) -> None:
    assert (client.get("/other")).json() == {"ok": "yes"}
    assert (client.get("/x/a/b")).status_code == 404  # a parameter never spans a slash
    assert (client.put("/x/a")).status_code == 405


def test_the_outer_middlewares_still_apply(client: httpx.Client) -> None:
    r = client.post("/x/a%00b")
    assert r.status_code == 422 and r.json()["field"] == "path" and calls == []
