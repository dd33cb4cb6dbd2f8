"""Authz sweep over every route of the app (``app.routes``): anonymous requests are refused everywhere except the
routes listed public below (a new route must be classified here), and a guide cannot read another guide's customer
through any route that takes a customer id."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.demo import DemoConfig
from tests.support.live import api_login, live_server
from tests.support.stores import empty_data_dir, open_demo

# Routes reachable without a console/API login, each for its reason. (method, path) as in app.routes.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "health check",
    ("GET", "/"): "redirect to the console",
    ("GET", "/openapi.json"): "API description",
    ("GET", "/docs"): "API docs",
    ("GET", "/docs/oauth2-redirect"): "API docs",
    ("GET", "/redoc"): "API docs",
    ("POST", "/api/auth/login"): "login",
    ("POST", "/api/auth/logout"): "forgets the cookie",
    ("GET", "/api/wecom/callback/{brand_id}"): "WeCom URL verification (signed)",
    ("POST", "/api/wecom/callback/{brand_id}"): "WeCom callbacks (signed and encrypted)",
    ("GET", "/m/auth"): "public mobile pages: WeChat OAuth entry",
    ("GET", "/m/c/{campaign_id}"): "campaign page",
    ("POST", "/m/c/{campaign_id}/join"): "join a campaign",
    ("GET", "/m/s/{token}"): "share page",
    ("POST", "/m/s/{token}/choose"): "choose a reward",
    ("GET", "/m/h/{token}"): "help page",
    ("POST", "/m/h/{token}"): "help a friend",
    ("GET", "/m/cq/{campaign_id}.png"): "campaign QR",
    ("GET", "/m/poster/{token}.png"): "share poster",
    ("GET", "/m/t/{team_id}"): "team page",
    ("POST", "/m/t/{team_id}/join"): "join a team",
    ("GET", "/m/g/{token}"): "gift page",
    ("POST", "/m/g/{token}/claim"): "claim a gift",
    ("GET", "/m/l/{activity_id}"): "lottery page",
    ("POST", "/m/l/{activity_id}/draw"): "lottery draw",
    ("GET", "/m/k/{activity_id}"): "check-in page",
    ("POST", "/m/k/{activity_id}"): "check in",
    ("GET", "/m/{brand}/form/{form_id}"): "lead form",
    ("POST", "/m/{brand}/form/{form_id}"): "leave details on a lead form (device-bound CSRF)",
    ("GET", "/console/login"): "console login page",
    ("GET", "/console/favicon.ico"): "console icon",
    ("GET", "/WW_verify_{code}.txt"): "WeCom trusted-domain verification file (fetched by WeCom, no login)",
}
# Routes with their own credential: anonymous must still be refused (401/403), or the route is an OAuth entry.
OWN_CREDENTIAL_PREFIXES = ("/v1/", "/sidebar/")  # write keys; the sidebar's WeCom OAuth session
SIDEBAR_ENTRIES = {"/sidebar/{brand_id}/", "/sidebar/{brand_id}/link"}  # OAuth entry: redirect or error page
NICEGUI_ASSETS = re.compile(r"^/console/_nicegui")  # the UI framework's static assets (no data)


def all_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every endpoint: API routers, the console's pages (under /console)."""
    out: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if hasattr(r, "effective_route_contexts"):  # FastAPI ≥ 0.160 keeps included routers lazily
                for c in r.effective_route_contexts():
                    out.extend((m, prefix + c.path) for m in sorted(c.methods or []) if m != "HEAD")
            elif hasattr(r, "app") and hasattr(r.app, "routes") and getattr(r, "path", ""):
                walk(list(r.app.routes), prefix + r.path)  # a mounted app (the NiceGUI console)
            elif getattr(r, "methods", None):
                out.extend((m, prefix + r.path) for m in sorted(r.methods) if m != "HEAD")

    walk(list(app.routes), "")
    return out


def concrete(path: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@dataclass
class Env:
    base: str
    app: FastAPI
    ctx: Context


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_demo(Path(tmp) / "data", DemoConfig(customers=200))
        app = create_app(ctx)
        with live_server(app) as base:
            yield Env(base, app, ctx)
        ctx.close()


def test_every_route_refuses_anonymous_unless_listed_public(env: Env) -> None:
    routes = all_routes(env.app)
    assert len(routes) > 250 and ("GET", "/console/customers") in routes
    wrong: list[str] = []
    for method, path in routes:
        if (method, path) in PUBLIC or NICEGUI_ASSETS.match(path):
            continue
        body = {} if method in ("POST", "PUT", "PATCH") else None
        resp = httpx.request(method, env.base + concrete(path), json=body, follow_redirects=False, timeout=60)
        code = resp.status_code
        if path.startswith("/console"):
            ok = code in (302, 303, 307) and resp.headers["location"].endswith("/console/login")
        elif path in SIDEBAR_ENTRIES:
            ok = code in (302, 303, 307, 400, 401, 403, 404) and code < 500
        elif path.startswith(OWN_CREDENTIAL_PREFIXES):
            ok = code in (401, 403, 422)  # 422: the request itself is malformed (checked before the credential)
        else:
            ok = code in (401, 403)
        if not ok:
            wrong.append(f"{method} {path} -> {code} {resp.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_public_routes_exist_and_do_not_fail(env: Env) -> None:
    """The list above names real routes (no stale entries) and none of them answers 5xx to a stranger."""
    routes = set(all_routes(env.app))
    stale = [k for k in PUBLIC if k not in routes]
    assert not stale, stale
    for method, path in PUBLIC:
        resp = httpx.request(method, env.base + concrete(path), follow_redirects=False, timeout=60)
        assert resp.status_code < 500, (method, path, resp.status_code, resp.text[:200])


def customer_routes() -> list[tuple[str, str]]:
    """Every API route that takes a customer id in its path (found from the app, not listed by hand)."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(Settings(data_dir=empty_data_dir(Path(tmp) / "data")))
        try:
            routes = all_routes(create_app(ctx, with_console=False))
        finally:
            ctx.close()
    return sorted((m, p) for m, p in routes if "{customer_id}" in p and p.startswith("/api/"))


@dataclass
class Guides:
    """guide1's headers, and a customer of guide2's that guide1 does not have."""

    g1: dict[str, str]
    g2: dict[str, str]
    other: dict[str, Any]


@pytest.fixture(scope="module")
def guides(env: Env) -> Guides:
    g1 = api_login(env.base, "guide1", "siyu-guide")
    g2 = api_login(env.base, "guide2", "siyu-guide")
    theirs = httpx.get(f"{env.base}/api/customers", params={"page_size": 5}, headers=g2).json()["items"]
    mine = {c["customer_id"] for c in httpx.get(f"{env.base}/api/customers", headers=g1).json()["items"]}
    assert theirs, "guide2 has customers in the demo brand"
    return Guides(g1, g2, next(c for c in theirs if c["customer_id"] not in mine))


@pytest.mark.parametrize(("method", "path"), customer_routes())
def test_guide_cannot_reach_another_guides_customer(env: Env, guides: Guides, method: str, path: str) -> None:
    other = guides.other
    body = {"points": 1, "source": "manual", "customer_id": other["customer_id"], "day": "2026-01-01"}
    url = env.base + concrete(path.replace("{customer_id}", other["customer_id"]))
    resp = httpx.request(method, url, headers=guides.g1, json=body if method != "GET" else None, timeout=60)
    assert resp.status_code in (403, 404), (resp.status_code, resp.text[:300])
    if other.get("name"):
        assert other["name"] not in resp.text
    # the owner reads it: the refusal above is about ownership, not about the route
    own = httpx.get(f"{env.base}/api/customers/{other['customer_id']}", headers=guides.g2)
    assert own.status_code == 200 and own.json()["customer_id"] == other["customer_id"]
