"""Campaigns handed to guides: each guide with a target in a running campaign has one open task in their inbox,
due at the campaign's end, until the campaign ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu.domain.models import Role
from siyu.services import campaigns as C
from siyu.services import rewards
from siyu.services.brands import User, create_brand
from siyu.services.campaigns.tasks import open_tasks
from siyu.services.context import Context
from siyu.services.guide_work.inbox import inbox

B = "acme"


def _campaign(ctx: Context) -> str:
    rewards.create_reward(ctx, B, {"id": "r1", "name": "券", "kind": "coupon", "config": {"face_value": 10}})
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    d = {
        "kind": "assist",
        "name": "老带新",
        "timezone": "UTC",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "assist": {"tiers": [{"threshold": 3, "reward_id": "r1"}]},
        "carrier": {"kind": "h5"},
        "guide_targets": [
            {"guide_id": "g1", "participants": 10, "new_customers": 3},
            {"guide_id": "g2", "gmv": 5000},
        ],
    }
    return str(C.create(ctx, B, d)["id"])


def test_a_guide_with_a_target_has_one_task_while_the_campaign_runs(ctx: Context) -> None:
    create_brand(ctx, B, "Acme")
    cid = _campaign(ctx)
    assert open_tasks(ctx, B, "g1") == []  # a draft hands nothing out
    C.launch(ctx, B, cid)

    mine = open_tasks(ctx, B, "g1")
    want = [(f"{cid}:g1", "推广活动「老带新」", "目标 参与 10 · 新客 3")]
    assert [(t["id"], t["title"], t["detail"]) for t in mine] == want
    assert [t["detail"] for t in open_tasks(ctx, B, "g2")] == ["目标 GMV 5000"]
    assert open_tasks(ctx, B, "g3") == []
    assert {t["guide_id"] for t in open_tasks(ctx, B)} == {"g1", "g2"}

    guide = User(1, B, "g1", "g1", Role.GUIDE, "g1", "zh")
    box = inbox(ctx, guide)
    campaign_items = [it for it in box["items"] if it["source"] == "campaign"]
    assert [it["id"] for it in campaign_items] == [f"{cid}:g1"] and not campaign_items[0]["overdue"]

    C.end(ctx, B, cid)
    assert open_tasks(ctx, B) == []
    assert not [it for it in inbox(ctx, guide)["items"] if it["source"] == "campaign"]
