"""Customer search and 360 through the real HTTP API, with guide scoping."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from tests.support.live import live_server

PASSWORD = "s3cret-pass"
T0 = datetime(2026, 1, 1, 9, 0, 0)


@dataclass
class Seed:
    """Ids of the seeded customers (assigned by OneID)."""

    zhang: str  # 张三: guide g1's customer, with events, orders, tags
    li: str  # 李四: guide g2's customer (lost by g1)
    wang: str  # 王五: nobody's contact, absorbed another customer
    absorbed: str  # the merged-away id of 王五's second profile


def _oneid() -> Any:
    try:
        mod = importlib.import_module("siyu.services.oneid")
    except ImportError:
        return None
    return mod if hasattr(mod, "resolve_pending") else None


def _observe(cur: Any, ref: str, idents: list[tuple[str, str]], traits: dict[str, Any], at: datetime) -> None:
    cur.execute(
        "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
        "VALUES ('acme', 'test', ?, ?, ?, ?)",
        [ref, at, [{"type": t, "value": v} for t, v in idents], json.dumps(traits, ensure_ascii=False)],
    )


def _direct_identities(cur: Any) -> None:
    """Fallback while siyu.services.oneid is not there: write the OneID result by hand."""
    people = {
        "c-zhang": (
            "张三",
            "+8613800138000",
            [
                ("phone", "+8613800138000"),
                ("external_userid", "wm_zhang"),
                ("user_id", "u_zhang"),
                ("anonymous_id", "a_zhang"),
            ],
        ),
        "c-li": ("李四", "+8613900139000", [("phone", "+8613900139000"), ("external_userid", "wm_li")]),
        "c-wang": ("王五", "+8613700137000", [("phone", "+8613700137000"), ("member_id", "M-5")]),
    }
    for cid, (name, phone, idents) in people.items():
        cur.execute(
            "INSERT INTO customers (brand_id, customer_id, name, phone, created_at, updated_at) "
            "VALUES ('acme', ?, ?, ?, ?, ?)",
            [cid, name, phone, T0, T0],
        )
        for t, v in idents:
            cur.execute("INSERT INTO identities VALUES ('acme', ?, ?, ?, ?, ?)", [t, v, cid, T0, T0])
    cur.execute(
        "INSERT INTO identity_merges (brand_id, merge_id, customer_id, absorbed_customer_id, rule, id_type, "
        "id_value, source_kind, source_ref, merged_at) VALUES "
        "('acme', 'm1', 'c-wang', 'c-wang-old', 'member_id', 'member_id', 'M-5', 'test', 'obs3', ?)",
        [T0],
    )


def seed(ctx: Context) -> Seed:
    """Brand acme, guides g1/g2, users admin/guide1/guide2 and three customers with history."""
    brands.create_brand(ctx, "acme", "Acme 私域")
    brands.create_user(ctx, "acme", "admin", PASSWORD, Role.ADMIN)
    brands.create_user(ctx, "acme", "guide1", PASSWORD, Role.GUIDE, guide_id="g1", display_name="王导购")
    brands.create_user(ctx, "acme", "guide2", PASSWORD, Role.GUIDE, guide_id="g2")
    oneid = _oneid()
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name) VALUES ('acme','g1','王导购'), ('acme','g2','李导购')"
        )
        cur.execute(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, add_way, state, lost_at, lost_by) "
            "VALUES ('acme','wm_zhang','g1',?,'1','active',NULL,NULL),"
            " ('acme','wm_li','g2',?,'qr','active',NULL,NULL),"
            " ('acme','wm_li','g1',?,'qr','lost',?,'customer')",
            [T0, T0, T0, T0 + timedelta(days=3)],
        )
        for i in range(25):
            cur.execute(
                "INSERT INTO events (brand_id, message_id, type, event, user_id, anonymous_id, properties, timestamp,"
                " received_at) VALUES ('acme', ?, 'track', ?, ?, ?, ?, ?, ?)",
                [
                    f"msg-{i:02d}",
                    f"Viewed {i:02d}",
                    "u_zhang" if i % 2 else None,
                    None if i % 2 else "a_zhang",
                    json.dumps({"i": i}),
                    T0 + timedelta(hours=i),
                    T0 + timedelta(hours=i),
                ],
            )
        cur.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount) VALUES "
            "('acme','o1','phone','+8613800138000',?,199.00), ('acme','o2','user_id','u_zhang',?,58.50),"
            " ('acme','o3','phone','+8613900139000',?,10.00)",
            [T0, T0 + timedelta(days=1), T0],
        )
        cur.execute(
            "INSERT INTO order_lines VALUES ('acme','o1',1,'SKU1','面霜',1,99,99),"
            " ('acme','o1',2,'SKU2','精华',1,100,100),"
            " ('acme','o2',1,'SKU3','面膜',1,58.5,58.5)"
        )
        cur.execute("INSERT INTO tags VALUES ('acme','t-vip','VIP会员','manual',NULL)")
        cur.execute("INSERT INTO identifier_tags VALUES ('acme','external_userid','wm_zhang','t-vip','manual',?)", [T0])
        if oneid is None:
            _direct_identities(cur)
        else:
            _observe(
                cur,
                "obs1",
                [
                    ("phone", "+8613800138000"),
                    ("external_userid", "wm_zhang"),
                    ("user_id", "u_zhang"),
                    ("anonymous_id", "a_zhang"),
                ],
                {"name": "张三"},
                T0,
            )
            _observe(cur, "obs2", [("phone", "+8613900139000"), ("external_userid", "wm_li")], {"name": "李四"}, T0)
            _observe(cur, "obs3", [("phone", "+8613700137000")], {"name": "王五"}, T0)
            _observe(cur, "obs4", [("member_id", "M-5")], {"city": "上海"}, T0 + timedelta(minutes=1))
    if oneid is not None:
        oneid.resolve_pending(ctx, "acme")  # 王五 is two customers (phone / member id) until obs5 links them
        with ctx.warehouse.transaction() as cur:
            _observe(cur, "obs5", [("member_id", "M-5"), ("phone", "+8613700137000")], {}, T0 + timedelta(minutes=2))
        oneid.resolve_pending(ctx, "acme")

    def cid(id_type: str, value: str) -> str:
        rows = ctx.warehouse.fetch(
            "SELECT customer_id FROM identities WHERE brand_id='acme' AND id_type=? AND id_value=?", [id_type, value]
        )
        assert rows, f"{id_type}:{value} was not resolved"
        return str(rows[0][0])

    wang = cid("phone", "+8613700137000")
    merged = ctx.warehouse.fetch(
        "SELECT absorbed_customer_id FROM identity_merges WHERE brand_id='acme' AND customer_id=?", [wang]
    )
    assert merged, "王五's two profiles should have been merged"
    return Seed(cid("phone", "+8613800138000"), cid("phone", "+8613900139000"), wang, str(merged[0][0]))


@pytest.fixture
def api(ctx: Context) -> Any:
    data = seed(ctx)
    with live_server(create_app(ctx, with_console=False)) as base:
        yield base, data


def _token(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_admin_sees_full_360(api: Any) -> None:
    base, s = api
    h = _token(base, "admin")
    r = httpx.get(f"{base}/api/customers/{s.zhang}", headers=h, params={"events_limit": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["profile"]["name"] == "张*" and body["pii"] == "masked"  # personal data masked by default
    assert {(i["id_type"], i["id_value"]) for i in body["identities"]} >= {
        ("phone", "138****8000"),
        ("external_userid", "****"),
        ("user_id", "u_zhang"),  # the brand's own ids stay
    }
    clear = httpx.post(f"{base}/api/customers/{s.zhang}/reveal", headers=h).json()  # audited (test_pii_masking)
    assert clear["profile"]["name"] == "张三"
    assert {(i["type"], i["value"]) for i in clear["identities"]} >= {
        ("phone", "+8613800138000"),
        ("external_userid", "wm_zhang"),
    }
    assert [(x["guide_id"], x["guide_name"], x["state"]) for x in body["relations"]] == [("g1", "王导购", "active")]
    assert [t["name"] for t in body["tags"]] == ["VIP会员"]
    orders = {o["order_id"]: o for o in body["orders"]}
    assert set(orders) == {"o1", "o2"}
    assert orders["o1"]["lines_count"] == 2 and float(orders["o1"]["amount"]) == 199.0
    assert orders["o2"]["lines_count"] == 1
    ev = body["events"]
    assert ev["total"] == 25 and len(ev["items"]) == 10
    assert ev["items"][0]["event"] == "Viewed 24"  # newest first
    r3 = httpx.get(f"{base}/api/customers/{s.zhang}", headers=h, params={"events_limit": 10, "events_page": 3})
    assert [e["event"] for e in r3.json()["events"]["items"]] == [f"Viewed {i:02d}" for i in range(4, -1, -1)]

    li = httpx.get(f"{base}/api/customers/{s.li}", headers=h).json()
    states = sorted((x["guide_name"], x["state"]) for x in li["relations"])
    assert states == [("李导购", "active"), ("王导购", "lost")]
    assert [o["order_id"] for o in li["orders"]] == ["o3"]


def test_search_by_phone_name_tag_and_paging(api: Any) -> None:
    base, s = api
    h = _token(base, "admin")

    def ids(q: str, **params: Any) -> list[str]:
        r = httpx.get(f"{base}/api/customers", headers=h, params={"q": q, **params})
        assert r.status_code == 200, r.text
        return [c["customer_id"] for c in r.json()["items"]]

    assert ids("138 0013 8000") == [s.zhang]  # normalised to +86
    assert ids("李") == [s.li]
    assert ids("VIP会员") == [s.zhang]
    assert ids(s.wang) == [s.wang]
    assert ids("wm_li") == [s.li]
    everyone = httpx.get(f"{base}/api/customers", headers=h, params={"page_size": 2}).json()
    assert everyone["total"] == 3 and len(everyone["items"]) == 2
    page2 = httpx.get(f"{base}/api/customers", headers=h, params={"page_size": 2, "page": 2}).json()
    assert len(page2["items"]) == 1
    assert {c["customer_id"] for c in everyone["items"] + page2["items"]} == {s.zhang, s.li, s.wang}
    bad = httpx.get(f"{base}/api/customers", headers=h, params={"page_size": 500})
    assert bad.status_code == 400 and bad.json()["field"] == "page_size"
    bad_ev = httpx.get(f"{base}/api/customers/{s.zhang}", headers=h, params={"events_limit": 0})
    assert bad_ev.status_code == 400 and bad_ev.json()["field"] == "events_limit"


def test_guide_sees_only_own_customers(api: Any) -> None:
    base, s = api
    g1 = _token(base, "guide1")
    found = httpx.get(f"{base}/api/customers", headers=g1).json()
    assert found["total"] == 1 and [c["customer_id"] for c in found["items"]] == [s.zhang]
    assert httpx.get(f"{base}/api/customers", headers=g1, params={"q": "李四"}).json()["total"] == 0
    assert httpx.get(f"{base}/api/customers/{s.zhang}", headers=g1).status_code == 200
    for other in (s.li, s.wang, s.absorbed):  # g1 lost 李四: no longer visible
        assert httpx.get(f"{base}/api/customers/{other}", headers=g1).status_code == 404
    g2 = _token(base, "guide2")
    assert [c["customer_id"] for c in httpx.get(f"{base}/api/customers", headers=g2).json()["items"]] == [s.li]
    assert httpx.get(f"{base}/api/customers/{s.zhang}", headers=g2).status_code == 404


def test_merged_away_id_redirects_and_merge_history(api: Any) -> None:
    base, s = api
    h = _token(base, "admin")
    r = httpx.get(f"{base}/api/customers/{s.absorbed}", headers=h, params={"events_limit": 5})
    assert r.status_code == 307
    assert r.headers["location"].split("?")[0].endswith(f"/api/customers/{s.wang}")
    assert "events_limit=5" in r.headers["location"]
    body = httpx.get(f"{base}/api/customers/{s.absorbed}", headers=h, follow_redirects=True).json()
    assert body["customer_id"] == s.wang
    assert any(m["absorbed_customer_id"] == s.absorbed for m in body["merges"])
    assert httpx.get(f"{base}/api/customers/nobody", headers=h).status_code == 404


def test_console_mount_keeps_api_docs_and_ingestion(ctx: Context) -> None:
    seed(ctx)
    with live_server(create_app(ctx)) as base:
        root = httpx.get(f"{base}/")
        assert root.status_code == 307 and root.headers["location"] == "/console/"
        assert httpx.get(f"{base}/console/", follow_redirects=True).url.path == "/console/login"
        assert "私域" in httpx.get(f"{base}/console/login").text
        assert httpx.get(f"{base}/docs").status_code == 200
        paths = httpx.get(f"{base}/openapi.json").json()["paths"]
        assert "/api/customers/{customer_id}" in paths and any(p.startswith("/v1/") for p in paths)
        assert httpx.post(f"{base}/v1/track", json={}).status_code in (400, 401)  # ingestion answers, not 404
        assert httpx.get(f"{base}/api/customers").status_code == 401
        h = _token(base, "admin")
        assert httpx.get(f"{base}/api/customers", headers=h).json()["total"] == 3


def test_concurrent_requests_all_answer(api: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base, s = api
    h = _token(base, "admin")

    def hit(i: int) -> tuple[int, int]:
        if i % 2:
            r = httpx.get(f"{base}/api/customers", headers=h, params={"q": "张三"}, timeout=60)
            return r.status_code, r.json()["total"]
        r = httpx.get(f"{base}/api/customers/{s.zhang}", headers=h, timeout=60)
        return r.status_code, r.json()["events"]["total"]

    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(hit, range(32)))
    assert results == {(200, 1), (200, 25)}
