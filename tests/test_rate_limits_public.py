"""Rate limits on every route reachable without a console/API login: each public route of the app is classified
with the limit that guards it (a new public route must be classified here), and the limits added for hostile input
are exercised over HTTP: requests with a wrong write key per address on /v1, failed logins per address across
usernames, and buckets that cannot grow without bound under keys chosen by a client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import brands, write_keys
from siyu.services.context import Context
from siyu.services.rate_limit import TokenBucket
from tests.support.live import live_server
from tests.test_hostile_authz import PUBLIC, all_routes

# every public route → the limit guarding it (where it is enforced)
LIMITS: dict[str, str] = {
    "/healthz": "none needed: constant answer, no I/O",
    "/": "none needed: a redirect",
    "/openapi.json": "none needed: FastAPI caches the schema",
    "/docs": "none needed: static HTML",
    "/docs/oauth2-redirect": "none needed: static HTML",
    "/redoc": "none needed: static HTML",
    "/api/auth/login": "siyu.services.auth.LoginThrottle: per username+address and per address",
    "/api/auth/logout": "none needed: clears a cookie",
    "/api/wecom/callback/{brand_id}": "siyu.services.wecom.callbacks.admit: per brand (GET and POST)",
    "/m/": "siyu.public.visitor.limit_page / limit_post: per IP, device and person",
    "/console/login": "the form posts through LoginThrottle",
    "/console/favicon.ico": "none needed: static",
    "/WW_verify_{code}.txt": "siyu.sidebar.verify: per IP (wecom_verify_file)",
    "/v1/": "per write key (services.ingest.request) and per address for wrong keys (api.segment)",
    "/sidebar/": "per guide session (sidebar.routes._user); sign-ins (?code=, /link) per address (_per_address)",
}


def _limit_of(path: str) -> str | None:
    for prefix in sorted(LIMITS, key=len, reverse=True):
        if path == prefix or (prefix.endswith("/") and prefix != "/" and path.startswith(prefix)):
            return LIMITS[prefix]
    return None


def test_every_public_route_has_a_limit(ctx: Context) -> None:
    paths = {p for _, p in all_routes(create_app(ctx))}
    public = {p for _, p in PUBLIC} | {p for p in paths if p.startswith(("/v1/", "/sidebar/"))}
    unclassified = sorted(p for p in public if _limit_of(p) is None)
    assert not unclassified, f"classify the limit of these public routes in LIMITS: {unclassified}"
    assert any(p.startswith("/v1/") for p in public) and any(p.startswith("/m/") for p in public)


@dataclass
class Live:
    base: str
    key: str


@pytest.fixture
def live(ctx: Context) -> Iterator[Live]:
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "boss", "right-password", Role.ADMIN)
    _, key = write_keys.create_key(ctx, "acme", "app")
    with live_server(create_app(ctx, with_console=False)) as base:
        yield Live(base, key)


def test_wrong_write_keys_are_limited_per_address(live: Live) -> None:
    event = {"userId": "u1", "event": "Viewed", "messageId": "m-ok"}
    with httpx.Client(base_url=live.base) as http:
        assert http.post("/v1/track", json=event, auth=(live.key, "")).status_code == 200
        codes = [http.post("/v1/track", json=event, auth=(f"wrong-{i}", "")).status_code for i in range(70)]
        assert codes[:40] == [401] * 40 and codes[-1] == 429  # burst 50 at 5/s, then refused before parsing
        refused = http.post("/v1/track", json=event, auth=("wrong", ""))
        assert refused.status_code == 429 and refused.json()["field"] == "writeKey"
        assert int(refused.headers["Retry-After"]) >= 1


def test_failed_logins_are_limited_per_address_across_usernames(live: Live) -> None:
    with httpx.Client(base_url=live.base) as http:
        codes = [
            http.post("/api/auth/login", json={"username": f"user{i}", "password": "guess"}).status_code
            for i in range(55)
        ]
        assert codes[:50] == [401] * 50 and codes[50:] == [429] * 5  # 5 × the per-user limit of 10
        last = http.post("/api/auth/login", json={"username": "boss", "password": "right-password"})
        assert last.status_code == 429 and "from this address" in last.json()["error"]


def test_buckets_stay_bounded_and_keep_active_keys() -> None:
    bucket = TokenBucket(rate=0.001, burst=2, max_keys=50)  # nothing refills during the test
    assert bucket.take("attacker") == 0.0 and bucket.take("attacker") == 0.0
    assert bucket.take("attacker") > 0 and bucket.peek("attacker") > 0  # exhausted
    for i in range(10_000):  # keys a client chooses (random addresses, brand ids)
        bucket.take(f"k{i}")
        if i % 10 == 0:
            bucket.take("attacker")  # still active: among the most recently used keys
    assert len(bucket._buckets) <= 50
    assert bucket.peek("attacker") > 0  # its exhausted state survived the pruning
    assert bucket.peek("never-seen") == 0.0

    refilled = TokenBucket(rate=1000.0, burst=1, max_keys=10)  # idle keys refill at once: forgotten first
    for i in range(100):
        refilled.take(f"k{i}")
    assert len(refilled._buckets) <= 10
