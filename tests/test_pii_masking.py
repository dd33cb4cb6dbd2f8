"""Personal data masked by default: the masking helpers (siyu.domain.pii), the customer search and 360 over HTTP,
and the reveal: admins always, operators when the brand allows it, guides for their own customers only; every reveal
is an audit-log entry naming the fields, never the values."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from siyu.domain.models import Role
from siyu.domain.pii import mask_address, mask_email, mask_identifier, mask_name, mask_phone, mask_record, mask_token
from siyu.services import brands
from siyu.services.context import Context
from tests.test_customers_api import PASSWORD, api  # noqa: F401  (the live server over the seeded brand)


def test_masking_helpers() -> None:
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+14155550123") == "+14****0123"
    assert mask_phone("12345") == "*****"
    assert mask_email("zhang@qq.com") == "z***@qq.com" and mask_email("@x.cn") == "****@x.cn"
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***" and mask_name("John Smith") == "J***"
    assert mask_name("王") == "*" and mask_name("") == ""
    assert mask_token("wmLYde8ec3e03626b62356ebe71039a8") == "wmLY****39a8" and mask_token("short") == "****"
    assert mask_identifier("unionid", "oLYuc6375e9567223bb16fa2d30a") == "oLYu****d30a"
    assert mask_identifier("member_id", "M-5") == "M-5"  # the brand's own ids are not personal data
    addr = {"name": "李四", "phone": "13900139000", "province": "上海市", "city": "上海市", "district": "浦东新区"}
    masked = mask_address({**addr, "detail": "世纪大道100号"})
    assert masked == {**addr, "name": "李*", "phone": "139****9000", "detail": "世纪****"}
    row = mask_record({"name": "张三", "phone": "+8613800138000", "email": "a@b.cn", "city": "上海", "address": addr})
    assert row["city"] == "上海" and row["name"] == "张*" and row["address"]["phone"] == "139****9000"
    assert mask_record({"name": "VIP会员", "phone": "x"}, ()) == {"name": "VIP会员", "phone": "x"}


def _token(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _reveals(base: str, admin: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/api/audit", params={"action": "pii.reveal"}, headers=admin)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_search_and_360_are_masked(api: Any) -> None:  # noqa: F811
    base, s = api
    h = _token(base, "admin")
    found = httpx.get(f"{base}/api/customers", headers=h, params={"q": "13800138000"}).json()  # search by clear
    assert [(c["customer_id"], c["name"], c["phone"]) for c in found["items"]] == [(s.zhang, "张*", "138****8000")]
    everyone = httpx.get(f"{base}/api/customers", headers=h).json()["items"]
    text = str(everyone)
    assert all(raw not in text for raw in ("张三", "李四", "王五", "8613800138000", "13900139000", "13700137000"))

    view = httpx.get(f"{base}/api/customers/{s.wang}", headers=h).json()
    assert view["profile"]["phone"] == "137****7000" and view["profile"]["name"] == "王*"
    assert ("member_id", "M-5") in {(i["id_type"], i["id_value"]) for i in view["identities"]}
    assert "13700137000" not in str(view)  # the merge history's identifiers too
    assert _reveals(base, h) == []  # reading masked data is not a reveal


def test_reveal_by_role_is_audited(api: Any, ctx: Context) -> None:  # noqa: F811
    base, s = api
    brands.create_user(ctx, "acme", "op", PASSWORD, Role.OPERATOR)
    admin, op, g1, g2 = (_token(base, u) for u in ("admin", "op", "guide1", "guide2"))

    def reveal(who: dict[str, str], cid: str, reason: str = "") -> httpx.Response:
        return httpx.post(f"{base}/api/customers/{cid}/reveal", headers=who, json={"reason": reason})

    got = reveal(admin, s.zhang, "客户来电核实")
    assert got.status_code == 200, got.text
    assert got.json()["profile"] == {"name": "张三", "phone": "+8613800138000", "email": None}
    assert ("external_userid", "wm_zhang") in {(i["type"], i["value"]) for i in got.json()["identities"]}

    refused = reveal(op, s.zhang)  # operators: only when the brand allows it
    assert refused.status_code == 403 and refused.json()["field"] == "role"
    assert "operators_may_reveal" in refused.json()["error"]
    settings_url = f"{base}/api/pii/settings"
    assert httpx.get(settings_url, headers=op).json() == {"operators_may_reveal": False, "you_may_reveal": False}
    denied = httpx.put(settings_url, headers=op, json={"operators_may_reveal": True})
    assert denied.status_code == 403 and denied.json()["field"] == "role"  # only an admin opens it
    bad = httpx.put(settings_url, headers=admin, json={"operators_may_reveal": "perhaps"})
    assert bad.status_code in (400, 422) and "operators_may_reveal" in bad.json()["field"]
    assert httpx.put(settings_url, headers=admin, json={"operators_may_reveal": True}).status_code == 200
    assert httpx.get(settings_url, headers=op).json() == {"operators_may_reveal": True, "you_may_reveal": True}
    assert reveal(op, s.li).json()["profile"]["name"] == "李四"
    [changed] = httpx.get(f"{base}/api/audit", params={"action": "pii.settings"}, headers=admin).json()["items"]
    assert changed["actor"] == "admin" and changed["detail"] == {"operators_may_reveal": True}

    assert reveal(g1, s.zhang).json()["profile"]["phone"] == "+8613800138000"  # the guide's own customer
    for who, other in ((g1, s.li), (g2, s.zhang), (g1, s.wang)):
        assert reveal(who, other).status_code == 404  # another guide's customer: not found, nothing revealed
    assert reveal(admin, "nobody").status_code == 404
    long = reveal(admin, s.zhang, "x" * 201)
    assert long.status_code in (400, 422) and long.json()["field"].endswith("reason")
    assert httpx.post(f"{base}/api/customers/{s.zhang}/reveal").status_code == 401

    entries = _reveals(base, admin)
    assert [(e["actor"], e["actor_role"], e["target"]) for e in entries] == [
        ("guide1", "guide", s.zhang),
        ("op", "operator", s.li),
        ("admin", "admin", s.zhang),
    ]
    assert entries[-1]["detail"]["reason"] == "客户来电核实"
    assert {"name", "phone", "external_userid"} <= set(entries[-1]["detail"]["fields"])
    assert "13800138000" not in str(entries) and "张三" not in str(entries)  # fields, never values


@pytest.mark.parametrize("role", ["admin"])
def test_masked_360_keeps_everything_else(api: Any, role: str) -> None:  # noqa: F811
    base, s = api
    view = httpx.get(f"{base}/api/customers/{s.zhang}", headers=_token(base, role)).json()
    assert [t["name"] for t in view["tags"]] == ["VIP会员"]  # tag names are not personal names
    assert [(r["guide_name"], r["external_userid"]) for r in view["relations"]] == [("王导购", "****")]
    assert {o["order_id"] for o in view["orders"]} == {"o1", "o2"}


def test_segment_members_and_preview_are_masked(api: Any) -> None:  # noqa: F811
    base, s = api
    h = _token(base, "admin")
    definition = {"kind": "trait", "field": "customer_id", "op": "in", "value": [s.zhang, s.li]}
    made = httpx.post(f"{base}/api/segments", headers=h, json={"name": "两位", "definition": definition})
    assert made.status_code in (200, 201), made.text
    members = httpx.get(f"{base}/api/segments/{made.json()['id']}/members", headers=h).json()["items"]
    assert sorted((m["name"], m["phone"]) for m in members) == [("张*", "138****8000"), ("李*", "139****9000")]
    preview = httpx.post(f"{base}/api/segments/preview", headers=h, json={"definition": definition}).json()
    assert preview["count"] == 2 and {m["name"] for m in preview["sample"]} == {"张*", "李*"}
    assert "13800138000" not in str(preview) + str(members)


def test_fulfilment_addresses_are_masked_and_clear_is_an_audited_reveal(api: Any, ctx: Context) -> None:  # noqa: F811
    from siyu.services import rewards

    base, s = api
    brands.create_user(ctx, "acme", "op", PASSWORD, Role.OPERATOR)
    rewards.create_reward(ctx, "acme", {"id": "mug", "name": "马克杯", "kind": "physical"})
    gid = rewards.grant(ctx, "acme", "mug", s.zhang, source="manual", source_ref="t", idempotency_key="k")["grant_id"]
    addr = {"name": "张三", "phone": "13800138000", "province": "浙江省", "city": "杭州市", "district": "西湖区"}
    rewards.set_address(ctx, "acme", gid, {**addr, "detail": "文三路 90 号"})
    admin, op, g1, g2 = (_token(base, u) for u in ("admin", "op", "guide1", "guide2"))
    url = f"{base}/api/rewards/fulfilment"

    [masked] = httpx.get(url, headers=admin).json()["items"]
    assert masked["address"] == {**addr, "name": "张*", "phone": "138****8000", "detail": "文三****"}
    assert httpx.get(f"{base}/api/rewards/grants/{gid}", headers=g1).json()["address"]["phone"] == "138****8000"
    assert "13800138000" not in httpx.get(f"{base}/api/rewards/grants", headers=admin).text
    assert _reveals(base, admin) == []

    [clear] = httpx.get(url, headers=admin, params={"pii": "clear"}).json()["items"]
    assert clear["address"]["detail"] == "文三路 90 号" and clear["address"]["phone"] == "13800138000"
    refused = httpx.get(url, headers=op, params={"pii": "clear"})
    assert refused.status_code == 403 and refused.json()["field"] == "role"
    [own] = httpx.get(url, headers=g1, params={"pii": "clear"}).json()["items"]  # the guide's own customer
    assert own["address"]["name"] == "张三"
    assert httpx.get(url, headers=g2, params={"pii": "clear"}).json()["items"] == []  # nothing of theirs
    entries = _reveals(base, admin)
    assert [(e["actor"], e["target"], e["detail"]["rows"]) for e in entries] == [
        ("guide2", "fulfilment", 0),
        ("guide1", "fulfilment", 1),
        ("admin", "fulfilment", 1),
    ]
