"""Login, token/cookie/Basic authentication and the brute-force limit, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from tests.support.live import live_server

PASSWORD = "correct-horse"


@pytest.fixture
def base(any_ctx: Context) -> Iterator[str]:
    brands.create_brand(any_ctx, "acme", "Acme")
    brands.create_user(any_ctx, "acme", "op", PASSWORD, Role.OPERATOR)
    with live_server(create_app(any_ctx, with_console=False)) as url:
        yield url


def test_login_token_cookie_and_basic(base: str) -> None:
    assert httpx.get(f"{base}/api/auth/me").status_code == 401
    r = httpx.post(f"{base}/api/auth/login", json={"username": "op", "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["token"]
    assert r.json()["user"]["role"] == "operator"
    assert "httponly" in r.headers["set-cookie"].lower()
    me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "op"
    with httpx.Client(base_url=base) as client:  # the cookie alone authenticates
        assert client.post("/api/auth/login", json={"username": "op", "password": PASSWORD}).status_code == 200
        assert client.get("/api/auth/me").json()["username"] == "op"
        client.post("/api/auth/logout")
        assert client.get("/api/auth/me").status_code == 401
    assert httpx.get(f"{base}/api/auth/me", auth=("op", PASSWORD)).status_code == 200
    assert httpx.get(f"{base}/api/auth/me", auth=("op", "wrong-password")).status_code == 401
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert httpx.get(f"{base}/api/customers").status_code == 401


def test_wrong_password_and_brute_force_limit(base: str) -> None:
    for _ in range(10):
        r = httpx.post(f"{base}/api/auth/login", json={"username": "op", "password": "nope-nope"})
        assert r.status_code == 401 and r.json()["field"] == "password"
    blocked = httpx.post(f"{base}/api/auth/login", json={"username": "op", "password": PASSWORD})
    assert blocked.status_code == 429 and "wait" in blocked.json()["error"]
    # Basic auth is throttled by the same counter.
    assert httpx.get(f"{base}/api/auth/me", auth=("op", PASSWORD)).status_code == 429
    # Another username is not affected.
    assert httpx.post(f"{base}/api/auth/login", json={"username": "ghost", "password": "x"}).status_code == 401
