"""Campaigns over real HTTP: the operator API (validation naming the field, lifecycle, a guide seeing only their
own participants / helps / tree / targets and not allowed to change anything), and the wecom_guide carrier end to
end: a help waits for the carrier, the local WeCom server emits the add of the campaign's channel code, the help
counts and the tier reward is granted; the helper deletes the guide within min_keep_days and the help is revoked
and the reward clawed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from siyu.services import campaigns as C
from siyu.services import rewards
from tests.test_wecom_codes_flow import Env, code_body, scan, wait_for
from tests.test_wecom_codes_flow import env as env
from tests.wecom_server import actions

B = "acme"


def _login(base: str, user: str) -> dict[str, str]:
    tok = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": "s3cret-pass"}).json()["token"]
    return {"Authorization": f"Bearer {tok}"}


def definition(**over: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(tzinfo=None)
    d: dict[str, Any] = {
        "kind": "assist",
        "name": "老带新助力",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "timezone": "UTC",
        "assist": {"tiers": [{"threshold": 1, "reward_id": "coupon10"}]},
    }
    return d | over


def test_api_lifecycle_validation_and_guide_scope(env: Env) -> None:
    rewards.create_reward(
        env.ctx, B, {"id": "coupon10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 3}
    )
    h, base = env.h, env.base
    bad = httpx.post(
        f"{base}/api/campaigns",
        json=definition(assist={"tiers": [{"threshold": 30, "reward_id": "coupon10"}]}),
        headers=h,
    )
    assert bad.status_code == 400 and "assist.tiers.0.threshold" in bad.text and "max_threshold" in bad.text
    missing = httpx.post(
        f"{base}/api/campaigns/validate",
        json=definition(assist={"tiers": [{"threshold": 3, "reward_id": "nope"}]}),
        headers=h,
    ).json()
    assert (
        missing["ok"] is False
        and missing["errors"][0]["field"] == "rewards"
        and "nope" in missing["errors"][0]["message"]
    )
    r = httpx.post(f"{base}/api/campaigns", json=definition(), headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert httpx.post(f"{base}/api/campaigns/{cid}/pilot", headers=h).status_code == 400  # no pilot section
    assert httpx.post(f"{base}/api/campaigns/{cid}/launch", headers=h).json()["status"] == "live"
    upd = httpx.put(f"{base}/api/campaigns/{cid}", json=definition(name="改名"), headers=h).json()
    assert (upd["version"], upd["name"]) == (2, "改名")
    # two sharers, one per guide; a helper for each
    s1 = C.join(env.ctx, B, cid, C.parse_identity("phone", "13900000001"), guide_id="g1")
    s2 = C.join(env.ctx, B, cid, C.parse_identity("phone", "13900000002"), guide_id="g2")
    C.help(env.ctx, B, cid, s1["token"], C.parse_identity("phone", "13900000011"))
    C.help(env.ctx, B, cid, s2["token"], C.parse_identity("phone", "13900000012"))
    C.help(env.ctx, B, cid, s2["token"], C.parse_identity("phone", "13900000002"))  # self-help, rejected
    g = _login(base, "wang")  # guide g1
    parts = httpx.get(f"{base}/api/campaigns/{cid}/participants", headers=g).json()
    assert [p["id"] for p in parts["items"]] == [s1["id"]]
    assert {p["id"] for p in httpx.get(f"{base}/api/campaigns/{cid}/participants", headers=h).json()["items"]} == {
        s1["id"],
        s2["id"],
    }
    helps = httpx.get(f"{base}/api/campaigns/{cid}/helps", headers=g).json()
    assert {x["sharer_id"] for x in helps["items"]} == {s1["id"]} and helps["by_reason"] == {}
    all_helps = httpx.get(f"{base}/api/campaigns/{cid}/helps", headers=h).json()
    assert all_helps["by_reason"] == {"self_help": 1} and all_helps["by_state"]["counted"] == 2
    assert [n["id"] for n in httpx.get(f"{base}/api/campaigns/{cid}/tree", headers=g).json()["nodes"]] == [s1["id"]]
    assert [x["guide_id"] for x in httpx.get(f"{base}/api/campaigns/{cid}/guides", headers=g).json()["items"]] == ["g1"]
    # one definition of a guide's figures: /guides is the stats leaderboard (conversions = orders after joining)
    board = httpx.get(f"{base}/api/campaigns/{cid}/leaderboard", headers=h).json()["items"]
    assert httpx.get(f"{base}/api/campaigns/{cid}/guides", headers=h).json()["items"] == board
    assert {r["guide_id"]: (r["helpers"], r["conversions"]) for r in board} == {"g1": (1, 0), "g2": (1, 0)}
    for method, path in (("post", ""), ("put", f"/{cid}"), ("post", f"/{cid}/end")):
        resp = httpx.request(method.upper(), f"{base}/api/campaigns{path}", json=definition(), headers=g)
        assert resp.status_code == 403, (method, path, resp.text)
    assert httpx.get(f"{base}/api/campaigns/{cid}/tree?depth=11", headers=h).status_code == 422  # limits
    assert httpx.get(f"{base}/api/campaigns/nope", headers=h).status_code == 404
    assert httpx.get(f"{base}/api/campaigns", headers=g).json()["items"][0]["participants"] == 2


def test_wecom_guide_carrier_counts_on_add_and_revokes_on_delete(env: Env) -> None:
    rewards.create_reward(
        env.ctx, B, {"id": "coupon10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 3}
    )
    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1"}], fallback_guide_id=None, group_rules=[]),
        headers=env.h,
    ).json()
    d = definition(carrier={"kind": "wecom_guide", "channel_code_id": code["id"]}, anti_abuse={"min_keep_days": 7})
    bad = httpx.post(
        f"{env.base}/api/campaigns",
        json=definition(carrier={"kind": "wecom_guide", "channel_code_id": 999}),
        headers=env.h,
    )
    assert bad.status_code == 400 and "carrier.channel_code_id" in bad.text
    cid = httpx.post(f"{env.base}/api/campaigns", json=d, headers=env.h).json()["id"]
    httpx.post(f"{env.base}/api/campaigns/{cid}/launch", headers=env.h).raise_for_status()
    sharer = C.join(env.ctx, B, cid, C.parse_identity("unionid", "oSharer00000000000000000001"), guide_id="g1")
    helper_union = "oHelper00000000000000000001"
    h = C.help(env.ctx, B, cid, sharer["token"], C.parse_identity("unionid", helper_union), device_id="d1")
    assert h["state"] == "pending_carrier" and h["carrier"]["channel_code_id"] == code["id"]
    assert C.progress(env.ctx, B, sharer["id"])["helps_pending"] == 1
    # someone else adds through the same code: nothing of this help changes
    scan(env, code["config_id"])
    # the helper adds the guide through the campaign's code
    contact = actions.new_contact(env.srv, "李四", unionid=helper_union)
    userid, ext = scan(env, code["config_id"], contact=contact)

    def counted() -> dict[str, Any] | None:
        items = C.helps(env.ctx, B, cid, state="counted")["items"]
        return items[0] if items else None

    got = wait_for(counted)
    assert got["id"] == h["help_id"] and got["guide_id"] == "g1"
    prog = wait_for(
        lambda: (p := C.progress(env.ctx, B, sharer["id"]))["rewards"] and p["rewards"][0]["status"] != "pending" and p
    )
    assert (prog["helps_counted"], prog["helps_pending"]) == (1, 0)
    assert [(r["what"], r["status"]) for r in prog["rewards"]] == [("tier:0", "granted")]
    # the helper deletes the guide the same day (within min_keep_days = 7): the help is revoked, reward clawed back
    actions.customer_deletes(env.srv, userid, ext)
    wait_for(lambda: C.helps(env.ctx, B, cid, state="revoked")["items"])
    rev = C.helps(env.ctx, B, cid, state="revoked")["items"][0]
    assert (rev["id"], rev["reason"]) == (h["help_id"], "carrier_left")
    prog = wait_for(lambda: (p := C.progress(env.ctx, B, sharer["id"]))["rewards"][0]["status"] == "clawed_back" and p)
    assert prog["helps_counted"] == 0
    assert rewards.get_grant(env.ctx, B, prog["rewards"][0]["grant_id"])["status"] != "issued"
    # the same person cannot help again (one help per person per campaign)
    again = C.help(env.ctx, B, cid, sharer["token"], C.parse_identity("unionid", helper_union))
    assert again["reason"] == "already_helped"


def test_delete_after_min_keep_days_keeps_the_help(env: Env) -> None:
    rewards.create_reward(
        env.ctx, B, {"id": "coupon10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 3}
    )
    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1"}], fallback_guide_id=None, group_rules=[]),
        headers=env.h,
    ).json()
    d = definition(carrier={"kind": "wecom_guide", "channel_code_id": code["id"]}, anti_abuse={"min_keep_days": 3})
    cid = C.create(env.ctx, B, d)["id"]
    C.launch(env.ctx, B, cid)
    sharer = C.join(env.ctx, B, cid, C.parse_identity("phone", "13900000001"), guide_id="g1")
    helper = C.parse_identity("unionid", "oHelper00000000000000000002")
    C.help(env.ctx, B, cid, sharer["token"], helper)
    at = datetime.now(UTC).replace(tzinfo=None)
    assert C.confirm_carrier(env.ctx, B, [helper], code_id=code["id"], guide_id="g1", ref="t", at=at) == 1
    assert C.confirm_carrier(env.ctx, B, [helper], code_id=code["id"], guide_id="g1", ref="t", at=at) == 0  # once
    assert C.on_carrier_lost(env.ctx, B, [helper], "g2", at + timedelta(days=1)) == 0  # another guide
    assert C.on_carrier_lost(env.ctx, B, [helper], "g1", at + timedelta(days=3)) == 0  # kept 3 days: stays
    assert C.progress(env.ctx, B, sharer["id"])["helps_counted"] == 1
    assert C.on_carrier_lost(env.ctx, B, [helper], "g1", at + timedelta(days=2, hours=23)) == 1
