"""Reward grants: no overselling under concurrency (real SQLite file / PostgreSQL), idempotency, budget,
unavailability reasons, claw-back rules, coupon redemption and its hook, fulfilment, cost for ROI."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from siyu.services import rewards
from siyu.services.brands import ensure_brand
from siyu.services.context import Context
from siyu.services.errors import Conflict, SiyuError
from siyu.services.rewards import points

B = "rw"


@pytest.fixture
def rctx(ctx: Context) -> Context:
    ensure_brand(ctx, B, "Rewards test")
    return ctx


def _coupon(ctx: Context, stock: int | None = 5, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "10 off 100", "kind": "coupon", "unit_cost": 10.0, "stock": stock}
    data["config"] = {"face_value": 10, "min_spend": 100, "valid_days": 7, **extra.pop("config", {})}
    data.update(extra)
    return rewards.create_reward(ctx, B, data)


def _hammer(ctx: Context, reward_id: str, threads: int, per_thread: int) -> tuple[list[dict], list[Exception]]:
    ok: list[dict] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            try:
                g = rewards.grant(
                    ctx, B, reward_id, f"c{t}-{i}", source="test", source_ref="burst", idempotency_key=f"k{t}-{i}"
                )
                with lock:
                    ok.append(g)
            except Exception as exc:  # collected and checked below
                with lock:
                    errors.append(exc)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ok, errors


@pytest.mark.parametrize("kind", ["coupon", "points"])
def test_no_overselling_under_concurrency(any_ctx: Context, kind: str) -> None:
    ensure_brand(any_ctx, B, "Rewards test")
    stock = 37
    config = {"face_value": 5} if kind == "coupon" else {"points": 10}
    r = rewards.create_reward(any_ctx, B, {"name": "x", "kind": kind, "config": config, "stock": stock, "unit_cost": 2})
    ok, errors = _hammer(any_ctx, r["id"], threads=24, per_thread=4)  # 96 attempts on 37 units
    assert len(ok) == stock
    assert len(errors) == 96 - stock
    assert all(isinstance(e, rewards.RewardUnavailable) and e.reason == "out_of_stock" for e in errors), errors[:3]
    after = rewards.get_reward(any_ctx, B, r["id"])
    assert after is not None
    assert after["stock_left"] == 0 and after["granted"] == stock
    assert after["cost_spent"] == pytest.approx(2 * stock)
    listed = rewards.list_grants(any_ctx, B, reward_id=r["id"], limit=500)
    assert listed["total"] == stock
    assert len({g["customer_id"] for g in listed["items"]}) == stock
    if kind == "coupon":
        assert len({g["code"] for g in ok}) == stock  # generated codes are all different


def test_code_list_hands_each_code_once_under_concurrency(rctx: Context) -> None:
    codes = [f"CODE{i:04d}" for i in range(30)]
    r = rewards.create_reward(rctx, B, {"name": "list", "kind": "virtual", "config": {"codes": codes}})
    assert r["stock_total"] == 30
    ok, errors = _hammer(rctx, r["id"], threads=20, per_thread=3)
    assert sorted(g["code"] for g in ok) == codes
    assert len(errors) == 30
    assert rewards.get_reward(rctx, B, r["id"])["codes_free"] == 0  # type: ignore[index]


def test_same_key_same_grant_and_one_decrement(rctx: Context) -> None:
    r = _coupon(rctx, stock=3)
    results: list[dict] = []
    barrier = threading.Barrier(10)

    def work() -> None:
        barrier.wait()
        results.append(rewards.grant(rctx, B, r["id"], "c1", source="campaign", source_ref="cp1", idempotency_key="K"))

    ts = [threading.Thread(target=work) for _ in range(10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len({g["grant_id"] for g in results}) == 1
    assert rewards.get_reward(rctx, B, r["id"])["stock_left"] == 2  # type: ignore[index]
    with pytest.raises(Conflict, match="already used for reward"):
        rewards.grant(rctx, B, r["id"], "c2", source="campaign", source_ref="cp1", idempotency_key="K")


def test_unavailable_reasons(rctx: Context) -> None:
    r = _coupon(rctx, stock=1)
    rewards.grant(rctx, B, r["id"], "a", source="s", source_ref="", idempotency_key="1")
    with pytest.raises(rewards.RewardUnavailable, match="out of stock") as info:
        rewards.grant(rctx, B, r["id"], "b", source="s", source_ref="", idempotency_key="2")
    assert info.value.reason == "out_of_stock" and info.value.status_code == 409 and r["id"] in info.value.message
    rewards.top_up(rctx, B, r["id"], 2)
    assert rewards.grant(rctx, B, r["id"], "b", source="s", source_ref="", idempotency_key="2")["status"] == "issued"

    budget = _coupon(rctx, stock=None, budget=25.0)  # unit cost 10: two fit, the third would make 30
    for k in ("b1", "b2"):
        rewards.grant(rctx, B, budget["id"], k, source="s", source_ref="", idempotency_key=k)
    with pytest.raises(rewards.RewardUnavailable) as info:
        rewards.grant(rctx, B, budget["id"], "b3", source="s", source_ref="", idempotency_key="b3")
    assert info.value.reason == "budget"

    rewards.update_reward(rctx, B, r["id"], {"status": "inactive"})
    with pytest.raises(rewards.RewardUnavailable) as info:
        rewards.grant(rctx, B, r["id"], "c", source="s", source_ref="", idempotency_key="3")
    assert info.value.reason == "inactive"

    old = _coupon(rctx, valid_until=(datetime.now() - timedelta(days=1)).isoformat())
    with pytest.raises(rewards.RewardUnavailable) as info:
        rewards.grant(rctx, B, old["id"], "c", source="s", source_ref="", idempotency_key="4")
    assert info.value.reason == "expired"
    with pytest.raises(rewards.RewardUnavailable) as info:
        rewards.grant(rctx, B, "nope", "c", source="s", source_ref="", idempotency_key="5")
    assert info.value.reason == "not_found"


def test_bad_definitions_name_the_field(rctx: Context) -> None:
    cases = [
        ({"name": "x", "kind": "coupon", "config": {"face_value": 0}}, "config.face_value"),
        ({"name": "x", "kind": "coupon", "config": {"face_value": 10, "min_spend": 5}}, "config.min_spend"),
        ({"name": "x", "kind": "voucher"}, "kind"),
        ({"name": "x", "kind": "points", "config": {}}, "config.points"),
        ({"name": "x", "kind": "virtual", "config": {}}, "config"),
        ({"name": "x", "kind": "virtual", "config": {"codes": ["AAAA", "AAAA"]}}, "config.codes"),
        ({"name": "x", "kind": "virtual", "config": {"codes": ["AAAA"]}, "stock": 2}, "stock"),
        ({"name": "", "kind": "physical"}, "name"),
    ]
    for data, field in cases:
        with pytest.raises(SiyuError) as info:
            rewards.create_reward(rctx, B, data)
        assert info.value.field == field, (data, info.value.message)


def test_claw_back_rules(rctx: Context) -> None:
    c = _coupon(rctx, stock=2)
    g = rewards.grant(rctx, B, c["id"], "x", source="campaign", source_ref="cp", idempotency_key="c1")
    out = rewards.claw_back(rctx, B, g["grant_id"], "helper deleted the guide")
    assert out["status"] == "clawed_back"
    assert rewards.get_reward(rctx, B, c["id"])["stock_left"] == 2  # type: ignore[index]
    assert rewards.claw_back(rctx, B, g["grant_id"], "again")["status"] == "clawed_back"
    with pytest.raises(Conflict, match="clawed_back"):
        rewards.redeem(rctx, B, code=g["code"], order_id="o1", order_amount=200)

    used = rewards.grant(rctx, B, c["id"], "y", source="campaign", source_ref="cp", idempotency_key="c2")
    rewards.redeem(rctx, B, code=used["code"], order_id="o2", order_amount=150)
    with pytest.raises(Conflict, match="already used"):
        rewards.claw_back(rctx, B, used["grant_id"], "too late")

    gift = rewards.create_reward(rctx, B, {"name": "mug", "kind": "physical", "stock": 3, "unit_cost": 30})
    g1 = rewards.grant(rctx, B, gift["id"], "p", source="lottery", source_ref="l1", idempotency_key="p1")
    assert g1["status"] == "awaiting_address"
    addr = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "浦东新区"}
    with pytest.raises(SiyuError) as info:
        rewards.set_address(rctx, B, g1["grant_id"], addr)
    assert info.value.field == "address.detail"
    with pytest.raises(SiyuError) as info:
        rewards.set_address(rctx, B, g1["grant_id"], {**addr, "detail": "世纪大道100号", "phone": "12345"})
    assert info.value.field == "address.phone"
    with pytest.raises(Conflict, match="no address"):
        rewards.mark_shipped(rctx, B, g1["grant_id"], "顺丰", "SF123")
    assert rewards.set_address(rctx, B, g1["grant_id"], {**addr, "detail": "世纪大道100号"})["status"] == "to_ship"
    assert rewards.mark_shipped(rctx, B, g1["grant_id"], "顺丰", "SF123")["tracking_no"] == "SF123"
    with pytest.raises(Conflict, match="shipped"):
        rewards.claw_back(rctx, B, g1["grant_id"], "no")
    g2 = rewards.grant(rctx, B, gift["id"], "q", source="lottery", source_ref="l1", idempotency_key="p2")
    rewards.claw_back(rctx, B, g2["grant_id"], "fraud")
    fulfil = rewards.list_grants(rctx, B, kind="physical")
    assert {g["status"] for g in fulfil["items"]} == {"shipped", "clawed_back"}
    assert rewards.get_reward(rctx, B, gift["id"])["stock_left"] == 2  # type: ignore[index]
    # cost for ROI: only grants not clawed back
    assert rewards.reward_cost(rctx, B, "campaign", "cp") == pytest.approx(10.0)
    assert rewards.reward_cost(rctx, B, "lottery") == pytest.approx(30.0)
    assert rewards.reward_cost(rctx, B, "campaign", "other") == 0.0
    rewards.top_up(rctx, B, c["id"], 5)
    rewards.grant(rctx, B, c["id"], "z", source="campaign", source_ref="cp:p7", idempotency_key="c3")
    rewards.grant(rctx, B, c["id"], "z", source="campaign", source_ref="cpx:p8", idempotency_key="c4")
    assert rewards.reward_cost(rctx, B, "campaign", "cp") == pytest.approx(20.0)  # cp and cp:p7, not cpx:p8
    assert rewards.reward_cost(rctx, B, "campaign", "c_") == 0.0  # LIKE wildcards are literal


def test_code_list_claw_back_does_not_reissue_the_code(rctx: Context) -> None:
    r = rewards.create_reward(rctx, B, {"name": "v", "kind": "virtual", "config": {"codes": ["AAAA1", "BBBB2"]}})
    g = rewards.grant(rctx, B, r["id"], "x", source="s", source_ref="", idempotency_key="1")
    rewards.claw_back(rctx, B, g["grant_id"], "void")
    assert rewards.get_reward(rctx, B, r["id"])["stock_left"] == 1  # type: ignore[index]
    g2 = rewards.grant(rctx, B, r["id"], "y", source="s", source_ref="", idempotency_key="2")
    assert g2["code"] != g["code"]


def test_points_grant_claw_back_reverses_or_refuses(rctx: Context) -> None:
    r = rewards.create_reward(rctx, B, {"name": "100 pts", "kind": "points", "config": {"points": 100}})
    g = rewards.grant(rctx, B, r["id"], "m", source="checkin", source_ref="a", idempotency_key="1")
    assert points.balance(rctx, B, "m")["balance"] == 100
    rewards.claw_back(rctx, B, g["grant_id"], "abuse")
    assert points.balance(rctx, B, "m")["balance"] == 0
    assert points.ledger_sum(rctx, B, "m") == 0
    g2 = rewards.grant(rctx, B, r["id"], "m", source="checkin", source_ref="b", idempotency_key="2")
    points.spend(rctx, B, "m", 60, source="order", ref="o1")
    with pytest.raises(Conflict, match="points were spent"):
        rewards.claw_back(rctx, B, g2["grant_id"], "abuse")
    assert points.balance(rctx, B, "m")["balance"] == 40
    assert rewards.get_grant(rctx, B, g2["grant_id"])["status"] == "issued"


def test_redeem_checks_and_hook(rctx: Context) -> None:
    seen: list[dict] = []

    def hook(_ctx: Context, g: dict) -> None:
        seen.append(g)

    rewards.on_redeem(hook)
    try:
        c = _coupon(rctx, stock=None)
        now = datetime(2026, 3, 1, 12)
        g = rewards.grant(rctx, B, c["id"], "f", source="gift", source_ref="gift-9", idempotency_key="1", now=now)
        with pytest.raises(SiyuError, match="at least 100") as info:
            rewards.redeem(rctx, B, code=g["code"], order_id="o1", order_amount=99, now=now)
        assert info.value.field == "order_amount"
        late = now + timedelta(days=8)  # valid 7 days
        with pytest.raises(Conflict, match="expired"):
            rewards.redeem(rctx, B, code=g["code"], order_id="o1", order_amount=120, now=late)
        assert seen == []
        out = rewards.redeem(rctx, B, code=g["code"], order_id="o1", order_amount=120, now=now + timedelta(days=1))
        assert out["status"] == "redeemed" and out["order_id"] == "o1"
        assert [(h["source_ref"], h["customer_id"]) for h in seen] == [("gift-9", "f")]
        assert rewards.redeem(rctx, B, code=g["code"], order_id="o1", order_amount=120)["status"] == "redeemed"
        with pytest.raises(Conflict, match="already used on order o1"):
            rewards.redeem(rctx, B, code=g["code"], order_id="o2", order_amount=120)
        assert len(seen) == 1
    finally:
        rewards.remove_redeem_hook(hook)
