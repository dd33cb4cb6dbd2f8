"""The journey coupon action grants the reward it names through the rewards service, keyed by the step: a repeated
delivery returns the first grant (stock taken once); an exhausted reward fails the effect for good; a coupon name
that is no reward of the catalogue is recorded only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from siyu.domain.models import Role
from siyu.services import brands, rewards
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.effects import deliver_effects
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.executor import run_until_idle
from siyu.stores.state.journey_models import JourneyEffectRow

ADMIN = User(0, "cp", "ops", "ops", Role.ADMIN, None, "zh")
T0 = datetime(2026, 11, 20, 2, 0)


def _journey(ctx: Context, coupon: str) -> str:
    d = {
        "trigger": {"kind": "manual"},
        "start": "c",
        "nodes": [
            {"id": "c", "kind": "action", "action": {"type": "coupon", "coupon": coupon}},
            {"id": "end", "kind": "exit"},
        ],
        "edges": [{"from": "c", "to": "end"}],
    }
    j = jdef.create_journey(ctx, ADMIN, "coupon-" + uuid.uuid4().hex[:6], d)
    jdef.publish(ctx, ADMIN, j.id, now=T0 - timedelta(hours=1))
    return j.id


def _effects(ctx: Context, jid: str) -> dict[str, tuple[str, str | None]]:
    with ctx.sessions() as s:
        rows = s.execute(
            select(JourneyEffectRow.customer_id, JourneyEffectRow.status, JourneyEffectRow.error).where(
                JourneyEffectRow.journey_id == jid
            )
        ).all()
    return {str(c): (str(st), e) for c, st, e in rows}


def test_coupon_action_grants_once_per_step(ctx: Context) -> None:
    brands.create_brand(ctx, "cp", "Coupons")
    rewards.create_reward(
        ctx, "cp", {"id": "c10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}, "stock": 2}
    )
    jid = _journey(ctx, "c10")
    assert enter_customers(ctx, "cp", jid, [(c, "m") for c in ("a", "b", "c")], T0) == 3
    run_until_idle(ctx, T0)
    out = deliver_effects(ctx, T0)
    assert (out["done"], out["failed"]) == (2, 1)
    effects = _effects(ctx, jid)
    failed = [c for c, (st, _) in effects.items() if st == "failed"]
    assert len(failed) == 1 and "out_of_stock" in str(effects[failed[0]][1])
    # a worker killed before the effects were marked: delivering again grants nothing more
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(JourneyEffectRow).where(JourneyEffectRow.journey_id == jid).values(status="pending", attempts=0)
        )
    again = deliver_effects(ctx, T0)
    assert (again["done"], again["failed"]) == (2, 1)
    reward = rewards.get_reward(ctx, "cp", "c10")
    assert reward is not None and reward["stock_left"] == 0 and reward["granted"] == 2
    granted = rewards.list_grants(ctx, "cp", reward_id="c10")
    items = granted["items"] if isinstance(granted, dict) else granted
    assert sorted(g["customer_id"] for g in items) == sorted(c for c in effects if c not in failed)
    assert all(g["source"] == "journey" and g["source_ref"] == f"{jid}:c" for g in items)
    # a template's coupon name that is no reward id: recorded only, nothing granted
    jid2 = _journey(ctx, "挽留券 ¥30")
    enter_customers(ctx, "cp", jid2, [("a", "m")], T0)
    run_until_idle(ctx, T0)
    assert deliver_effects(ctx, T0)["done"] == 1
    assert "recorded only" in str(_effects(ctx, jid2)["a"][1])
