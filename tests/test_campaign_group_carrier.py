"""The ``wecom_group`` carrier end to end: helps wait until the helper joins the campaign's customer group, which
the local WeCom server reports byte for byte as WeCom does (``change_external_chat`` update / add_member, which
does not name the joiner; siyu fetches ``groupchat/get`` and compares). Joining another group, or being in the
group already, does not count; the sharer's tier reward follows the counted help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from siyu.services import campaigns as C
from siyu.services import rewards
from tests.test_wecom_callbacks import Env, callbacks, env, wait_for  # noqa: F401  (env is a fixture)
from tests.wecom_server import actions

B = "acme"


def _campaign(ctx: Any, chat_id: str) -> str:
    rewards.create_reward(
        ctx, B, {"id": "r1", "name": "券", "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 1.0}
    )
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    d = {
        "kind": "assist",
        "name": "进群助力",
        "timezone": "UTC",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "assist": {"tiers": [{"threshold": 1, "reward_id": "r1"}]},
        "carrier": {"kind": "wecom_group", "chat_id": chat_id},
        "anti_abuse": {"device_per_day": 100, "ip_per_hour": 1000, "person_per_day": 100},
    }
    cid = str(C.create(ctx, B, d)["id"])
    C.launch(ctx, B, cid)
    return cid


def test_a_help_counts_when_the_helper_joins_the_campaign_group(env: Env) -> None:  # noqa: F811
    ctx, srv = env.ctx, env.srv
    old = actions.new_contact(srv, "老群友")
    group = actions.add_group(srv, "guide0001", [old.external_userid], "活动群")
    other_group = actions.add_group(srv, "guide0001", [], "别的群")
    # the warehouse knows the group as it is before the campaign (the full sync or an earlier callback)
    actions.chat_event(srv, group, "update", UpdateDetail="change_name")
    wait_for(lambda: [r.status for r in callbacks(ctx)] == ["done"])
    cid = _campaign(ctx, group)
    sharer = C.join(ctx, B, cid, C.parse_identity("phone", "13800000001"), guide_id="g1")
    joiner, stray = actions.new_contact(srv, "新朋友"), actions.new_contact(srv, "走错群")
    answers = {
        c.external_userid: C.help(ctx, B, cid, sharer["token"], C.parse_identity("external_userid", c.external_userid))
        for c in (joiner, stray, old)
    }
    assert {a["state"] for a in answers.values()} == {"pending_carrier"}

    actions.join_group(srv, group, joiner.external_userid, scene=3)
    actions.join_group(srv, other_group, stray.external_userid)
    wait_for(lambda: len(callbacks(ctx)) == 3 and all(r.status == "done" for r in callbacks(ctx)))
    rows = callbacks(ctx)
    assert "1 campaign help(s) counted" in (rows[1].result or ""), rows[1].result

    states = {h["helper_identity"].split(":", 1)[1]: h["state"] for h in C.helps(ctx, B, cid)["items"]}
    assert states == {
        joiner.external_userid: "counted",  # joined the campaign's group after helping
        stray.external_userid: "pending_carrier",  # joined another group
        old.external_userid: "pending_carrier",  # was in the group already: no join happened
    }
    prog = C.progress(ctx, B, sharer["id"])
    assert prog["helps_counted"] == 1 and [r["reward_id"] for r in prog["rewards"]] == ["r1"]
    counted = next(h for h in C.helps(ctx, B, cid, state="counted")["items"])
    assert counted["guide_id"] == "g1"  # still traced to the sharer's guide

    # the same member joining again later (left and came back) does not count twice; "later" = another second:
    # WeCom's retries repeat the payload byte for byte, so an identical event in the same second is a retry
    srv.advance(2)
    actions.join_group(srv, group, joiner.external_userid)
    wait_for(lambda: len(callbacks(ctx)) == 4 and callbacks(ctx)[3].status == "done")
    assert C.progress(ctx, B, sharer["id"])["helps_counted"] == 1
