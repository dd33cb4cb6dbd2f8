"""Campaign services end to end on real SQLite + DuckDB files: assist tiers / pool / cyclic depth, every help
rejection reason, one help per person across identities OneID merged, concurrent helps, the budget cap,
group-buy teams, gifts with the giver's bonus on redeem, invite tree and guide targets."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from siyu.domain.campaign.rules import REASONS
from siyu.domain.models import Identity, Role
from siyu.services import brands, campaigns_stats, oneid, rewards
from siyu.services import campaigns as C
from siyu.services.context import Context

B = "fission"
NOW = datetime(2026, 11, 5, 4, 0)  # inside the window below (UTC)


def phone(i: int) -> Identity:
    return C.parse_identity("phone", f"1380000{i:04d}")


def union(i: int) -> Identity:
    return C.parse_identity("unionid", f"u{i:06d}")


@pytest.fixture
def bctx(ctx: Context) -> Context:
    brands.create_brand(ctx, B, "Fission brand")
    for rid, cost, stock in (
        ("r1", 1.0, None),
        ("r2", 5.0, None),
        ("p1", 3.0, None),
        ("p2", 4.0, None),
        ("small", 2.0, 2),
        ("lead", 10.0, None),
        ("join", 2.0, None),
        ("bonus", 1.5, None),
    ):
        rewards.create_reward(
            ctx,
            B,
            {"id": rid, "name": rid, "kind": "coupon", "config": {"face_value": 10}, "unit_cost": cost, "stock": stock},
        )
    return ctx


def assist_def(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "assist",
        "name": "助力",
        "starts_at": "2026-11-01T00:00:00",
        "ends_at": "2026-11-12T00:00:00",
        "assist": {"tiers": [{"threshold": 2, "reward_id": "r1"}, {"threshold": 4, "pool": ["p1", "p2"]}]},
        "anti_abuse": {"device_per_day": 100, "ip_per_hour": 1000, "person_per_day": 100},
    }
    d.update(over)
    return d


def live(ctx: Context, d: dict[str, Any]) -> str:
    cid = C.create(ctx, B, d)["id"]
    C.launch(ctx, B, cid)
    return cid


def test_assist_tiers_pool_and_cyclic_depth(bctx: Context) -> None:
    cid = live(bctx, assist_def())
    seed = C.join(bctx, B, cid, phone(1), channel="moments", platform="wechat", guide_id="g1", now=NOW)
    assert seed["depth"] == 0 and seed["guide_id"] == "g1" and seed["customer_id"]
    out = [
        C.help(bctx, B, cid, seed["token"], phone(100 + i), device_id=f"d{i}", ip="1.1.1.1", now=NOW) for i in range(4)
    ]
    assert [o["state"] for o in out] == ["counted"] * 4
    prog = C.progress(bctx, B, seed["id"])
    assert prog["helps_counted"] == 4 and prog["complete"] and prog["next_tier"] is None
    assert [(r["what"], r["reward_id"], r["status"]) for r in prog["rewards"]] == [("tier:0", "r1", "granted")]
    # the pool tier waits for the choice; choosing issues it once
    C.choose_reward(bctx, B, seed["id"], 1, "p2")
    C.choose_reward(bctx, B, seed["id"], 1, "p1")  # second choice ignored
    prog = C.progress(bctx, B, seed["id"])
    assert [(r["what"], r["reward_id"]) for r in prog["rewards"]] == [("tier:0", "r1"), ("tier:1", "p2")]
    assert rewards.reward_cost(bctx, B, "campaign") == pytest.approx(1.0 + 4.0)
    # a helper starts their own: depth 1, same guide and channel; their helper is depth 2
    child = C.join(bctx, B, cid, phone(100), sharer_token=seed["token"], now=NOW)
    assert (child["depth"], child["sharer_id"], child["guide_id"], child["channel"]) == (1, seed["id"], "g1", "moments")
    h = C.help(bctx, B, cid, child["token"], phone(200), now=NOW)
    assert h["state"] == "counted"
    listed = C.helps(bctx, B, cid, state="counted")["items"]
    assert {(x["sharer_id"], x["depth"], x["guide_id"], x["channel"], x["platform"]) for x in listed} == {
        (seed["id"], 1, "g1", "moments", "wechat"),
        (child["id"], 2, "g1", "moments", "wechat"),
    }
    t = C.tree(bctx, B, cid, max_depth=5)
    assert t["total"] == 1 and t["nodes"][0]["children"][0]["id"] == child["id"]
    assert t["depths"] == {"0": 1, "1": 1}


def test_every_rejection_reason(bctx: Context) -> None:
    cid = live(
        bctx, assist_def(regions=["广东"], anti_abuse={"device_per_day": 2, "ip_per_hour": 3, "person_per_day": 2})
    )
    s = C.join(bctx, B, cid, phone(1), region="广东", now=NOW)
    s2 = C.join(bctx, B, cid, phone(2), region="广东", now=NOW)
    s3 = C.join(bctx, B, cid, phone(3), region="广东", now=NOW)

    def hp(who: Identity, token: str = s["token"], **kw: Any) -> dict[str, Any]:
        kw.setdefault("region", "广东")
        return C.help(bctx, B, cid, token, who, now=NOW, **kw)

    assert hp(phone(1))["reason"] == "self_help"
    assert hp(phone(10), device_id="dev")["state"] == "counted"
    r = hp(phone(10))
    assert (r["reason"], r["message_zh"], r["message_en"]) == ("already_helped", *REASONS["already_helped"])
    assert hp(phone(11), device_id="dev", token=s2["token"])["state"] == "counted"
    assert hp(phone(12), device_id="dev", token=s2["token"])["reason"] == "device_limit"
    assert hp(phone(13), ip="9.9.9.9")["state"] == "counted"
    assert hp(phone(14), ip="9.9.9.9", token=s2["token"])["state"] == "counted"
    assert hp(phone(15), ip="9.9.9.9", token=s3["token"])["state"] == "counted"
    assert hp(phone(16), ip="9.9.9.9", token=s3["token"])["reason"] == "ip_limit"
    assert hp(phone(17), region="北京")["reason"] == "region"
    assert hp(phone(18), token="nope")["reason"] == "sharer_unknown"
    assert hp(phone(19))["state"] == hp(phone(21))["state"] == "counted"  # s now has 4 = complete
    assert hp(phone(20))["reason"] == "sharer_done"
    # person limit counts accepted helps across the brand's campaigns (today, Asia/Shanghai)
    cid2 = live(bctx, assist_def(name="second"))
    o = C.join(bctx, B, cid2, phone(1), now=NOW)
    assert C.help(bctx, B, cid2, o["token"], phone(10), now=NOW)["state"] == "counted"  # phone 10's 2nd today
    cid3 = live(bctx, assist_def(name="third", anti_abuse={"person_per_day": 2}))
    o3 = C.join(bctx, B, cid3, phone(1), now=NOW)
    assert C.help(bctx, B, cid3, o3["token"], phone(10), now=NOW)["reason"] == "person_limit"
    assert C.help(bctx, B, cid3, o3["token"], phone(10), now=NOW + timedelta(days=1))["state"] == "counted"
    assert C.help(bctx, B, cid, s["token"], phone(30), region="广东", now=NOW - timedelta(days=10))["reason"] == (
        "not_started"
    )
    assert C.help(bctx, B, cid, s["token"], phone(30), region="广东", now=NOW + timedelta(days=10))["reason"] == (
        "ended"
    )
    C.end(bctx, B, cid)
    assert C.help(bctx, B, cid, s["token"], phone(31), region="广东", now=NOW)["reason"] == "ended"
    reasons = C.helps(bctx, B, cid)["by_reason"]
    for code in (
        "self_help",
        "already_helped",
        "device_limit",
        "ip_limit",
        "region",
        "sharer_unknown",
        "sharer_done",
        "not_started",
        "ended",
    ):
        assert reasons.get(code, 0) >= 1, code
    draft = C.create(bctx, B, assist_def(name="draft"))["id"]
    with pytest.raises(C.Refused) as exc:
        C.join(bctx, B, draft, phone(50), now=NOW)
    assert exc.value.code == "not_open"


def test_one_help_per_person_across_merged_identities(bctx: Context) -> None:
    # OneID learns that phone 40 and unionid 40 are one person
    with oneid.observation_transaction(bctx) as tx:
        oneid.add_observations(tx, B, [oneid.Observation("crm", "row-1", NOW, (phone(40), union(40)))])
    oneid.resolve_pending(bctx, B)
    assert oneid.customer_of(bctx, B, phone(40)) == oneid.customer_of(bctx, B, union(40)) is not None
    cid = live(bctx, assist_def())
    s = C.join(bctx, B, cid, phone(1), now=NOW)
    assert C.help(bctx, B, cid, s["token"], phone(40), now=NOW)["state"] == "counted"
    r = C.help(bctx, B, cid, s["token"], union(40), now=NOW)
    assert (r["state"], r["reason"]) == ("rejected", "already_helped")
    # and a sharer cannot help themself under their other identity
    s2 = C.join(bctx, B, cid, union(40), now=NOW)
    assert C.help(bctx, B, cid, s2["token"], phone(40), now=NOW)["reason"] in ("self_help", "already_helped")


def test_unknown_helpers_merged_later_are_caught(bctx: Context) -> None:
    cid = live(bctx, assist_def())
    s = C.join(bctx, B, cid, phone(1), now=NOW)
    a = C.help(bctx, B, cid, s["token"], phone(60), now=NOW)
    b = C.help(bctx, B, cid, s["token"], union(60), now=NOW)  # OneID does not know yet they are one person
    assert a["state"] == b["state"] == "counted"
    C.flush_observations(bctx, B)
    with oneid.observation_transaction(bctx) as tx:
        oneid.add_observations(tx, B, [oneid.Observation("crm", "row-2", NOW, (phone(60), union(60)))])
    oneid.resolve_pending(bctx, B)
    got = C.flush_observations(bctx, B)
    assert got["duplicates_revoked"] == 1
    items = {x["id"]: x for x in C.helps(bctx, B, cid)["items"]}
    assert items[a["help_id"]]["state"] == "counted"
    assert (items[b["help_id"]]["state"], items[b["help_id"]]["reason"]) == ("revoked", "duplicate_person")
    assert C.progress(bctx, B, s["id"])["helps_counted"] == 1


def test_concurrent_helps_never_double_count(bctx: Context) -> None:
    cid = live(bctx, assist_def(assist={"tiers": [{"threshold": 15, "reward_id": "r1"}]}))
    s = C.join(bctx, B, cid, phone(1), now=NOW)
    people = [phone(300 + i % 10) for i in range(60)]  # 10 people, each trying 6 times at once
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def worker(chunk: list[Identity]) -> None:
        barrier.wait()
        for who in chunk:
            r = C.help(bctx, B, cid, s["token"], who, now=NOW)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker, args=(people[i::12],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = [r for r in results if r["state"] == "counted"]
    assert len(results) == 60 and len(counted) == 10
    assert C.progress(bctx, B, s["id"])["helps_counted"] == 10
    assert {r["reason"] for r in results if r["state"] == "rejected"} == {"already_helped"}


def test_budget_cap_is_never_passed(bctx: Context) -> None:
    cid = live(bctx, assist_def(assist={"tiers": [{"threshold": 1, "reward_id": "r2"}]}, budget=12))
    sharers = [C.join(bctx, B, cid, phone(i), now=NOW) for i in range(1, 6)]
    barrier = threading.Barrier(5)

    def go(k: int) -> None:
        barrier.wait()
        C.help(bctx, B, cid, sharers[k]["token"], phone(500 + k), now=NOW)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [r for s in sharers for r in C.progress(bctx, B, s["id"])["rewards"]]
    assert sum(r["status"] == "granted" for r in got) == 2  # 2 × 5.0 ≤ 12 < 3 × 5.0
    assert all("budget" in r["detail"] for r in got if r["status"] == "failed")
    assert C.get(bctx, B, cid)["budget_spent"] == pytest.approx(10.0)


def test_out_of_stock_reward_fails_and_retry_never_issues_twice(bctx: Context) -> None:
    cid = live(bctx, assist_def(assist={"tiers": [{"threshold": 1, "reward_id": "small"}]}))
    sharers = [C.join(bctx, B, cid, phone(i), now=NOW) for i in range(1, 4)]
    for k, s in enumerate(sharers):
        C.help(bctx, B, cid, s["token"], phone(700 + k), now=NOW)
    statuses = [C.progress(bctx, B, s["id"])["rewards"][0]["status"] for s in sharers]
    assert statuses == ["granted", "granted", "failed"]
    # re-running the tier payout (a retry) must not issue a second grant
    from siyu.services.campaigns import participation

    participation._after_count(
        bctx,
        B,
        C.definitions.get_row(bctx, B, cid),
        C.definitions.definition_of(C.definitions.get_row(bctx, B, cid)),
        sharers[0]["id"],
        None,
    )
    assert rewards.list_grants(bctx, B, customer_id=sharers[0]["customer_id"])["total"] == 1


def test_group_buy_team_fills_once_with_different_rewards(bctx: Context) -> None:
    d = assist_def(
        kind="group_buy",
        assist=None,
        group_buy={"team_size": 3, "initiator_reward_id": "lead", "joiner_reward_id": "join"},
    )
    d.pop("assist")
    cid = live(bctx, d)
    team = C.start_team(bctx, B, cid, phone(1), now=NOW)
    assert (team["size"], team["members"], team["slots_left"]) == (3, 1, 2)
    with pytest.raises(C.Refused):
        C.join_team(bctx, B, team["id"], phone(1), now=NOW)
    C.join_team(bctx, B, team["id"], phone(2), now=NOW)
    done = C.join_team(bctx, B, team["id"], phone(3), now=NOW)
    assert (done["status"], done["members"]) == ("complete", 3)
    with pytest.raises(C.Refused) as exc:
        C.join_team(bctx, B, team["id"], phone(4), now=NOW)
    assert exc.value.code in ("team_closed", "team_full")
    got = {m["role"]: C.progress(bctx, B, m["participant_id"])["rewards"][0]["reward_id"] for m in done["member_list"]}
    assert got == {"initiator": "lead", "joiner": "join"}
    late = C.start_team(bctx, B, cid, phone(9), now=NOW)
    with pytest.raises(C.Refused) as exc:
        C.join_team(bctx, B, late["id"], phone(10), now=NOW + timedelta(hours=25))
    assert exc.value.code == "team_closed"


def test_gift_claim_and_bonus_on_redeem(bctx: Context) -> None:
    d = assist_def(kind="gift", gift={"reward_id": "r1", "giver_bonus_reward_id": "bonus", "bonus_on": "redeem"})
    d.pop("assist")
    cid = live(bctx, d)
    g = C.send_gift(bctx, B, cid, phone(1), now=NOW)
    with pytest.raises(C.Refused) as exc:
        C.send_gift(bctx, B, cid, phone(1), now=NOW)
    assert exc.value.code == "gift_limit"
    with pytest.raises(C.Refused) as exc:
        C.claim_gift(bctx, B, g["token"], phone(1), now=NOW)
    assert exc.value.code == "own_gift"
    claimed = C.claim_gift(bctx, B, g["token"], phone(2), now=NOW)
    assert claimed["status"] == "claimed" and claimed["grant_id"] and claimed["bonus_grant_id"] is None
    with pytest.raises(C.Refused) as exc:
        C.claim_gift(bctx, B, g["token"], phone(3), now=NOW)
    assert exc.value.code == "gift_claimed"
    grant = rewards.get_grant(bctx, B, claimed["grant_id"])
    rewards.redeem(bctx, B, order_id="o-1", grant_id=grant["grant_id"], order_amount=100)
    after = C.get_gift(bctx, g["token"])
    assert after["status"] == "redeemed" and after["bonus_grant_id"]
    giver = C.progress(bctx, B, g["giver_id"])
    assert [r["reward_id"] for r in giver["rewards"]] == ["bonus"]


def test_guide_targets_and_visits(bctx: Context) -> None:
    """Guide progress is the stats leaderboard: conversions are people with an order after joining, not counted
    helps (one definition, docs/campaigns.md)."""
    admin = brands.create_user(bctx, B, "admin", "s3cret-pass", Role.ADMIN)
    cid = live(bctx, assist_def(guide_targets=[{"guide_id": "g1", "participants": 4, "new_customers": 2}]))
    s = C.join(bctx, B, cid, phone(1), guide_id="g1", now=NOW)
    C.join(bctx, B, cid, phone(2), guide_id="g2", now=NOW)
    assert C.help(bctx, B, cid, s["token"], phone(900), now=NOW)["state"] == "counted"
    rows = {r["guide_id"]: r for r in campaigns_stats.leaderboard(bctx, admin, cid, now=NOW)["items"]}
    assert rows["g1"]["participants"] == 1 and rows["g1"]["progress_participants"] == 0.25
    assert rows["g1"]["conversions"] == 0 and rows["g1"]["gmv"] == 0  # a counted help is not a conversion
    assert rows["g1"]["new_customers"] == 1 + 1  # the seed was new to the brand, so was the helper
    assert rows["g2"]["target_participants"] == 0 and rows["g2"]["progress_participants"] is None
    assert not hasattr(C, "guide_progress")  # the other definition is gone
    for _ in range(3):
        C.record_visit(bctx, cid, variant="", channel="moments")
    assert C.visits(bctx, B, cid)[0]["views"] == 3


def test_scheduled_tick_flushes_expires_and_ends(bctx: Context) -> None:
    from siyu.services.campaigns.scheduled import tick
    from siyu.workers.schedule import SCHEDULES

    assert any(s.target == "siyu.services.campaigns.scheduled:tick" for s in SCHEDULES)
    cid = live(bctx, assist_def())
    s = C.join(bctx, B, cid, phone(1), now=NOW)
    h = C.help(bctx, B, cid, s["token"], union(77), now=NOW)
    assert C.helps(bctx, B, cid, state="counted")["items"][0]["helper_customer_id"] is None
    d = assist_def(
        kind="group_buy", group_buy={"team_size": 2, "initiator_reward_id": "lead", "joiner_reward_id": "join"}
    )
    d.pop("assist")
    team = C.start_team(bctx, B, live(bctx, d), phone(2), now=NOW)
    got = tick(bctx, now=NOW + timedelta(days=2))
    assert got[B]["observed"] == 1 and got[B]["teams_expired"] == 1 and got[B]["campaigns_ended"] == 0
    helper = C.helps(bctx, B, cid, state="counted")["items"][0]
    assert helper["id"] == h["help_id"] and helper["helper_customer_id"] == oneid.customer_of(bctx, B, union(77))
    assert C.get_team(bctx, B, team["id"])["status"] == "expired"
    assert tick(bctx, now=datetime(2026, 11, 12))[B]["campaigns_ended"] == 2
    assert C.get(bctx, B, cid)["status"] == "ended"
    assert C.help(bctx, B, cid, s["token"], phone(5), now=NOW)["reason"] == "ended"


def test_team_seats_under_concurrent_joins(bctx: Context) -> None:
    d = assist_def(
        kind="group_buy", group_buy={"team_size": 3, "initiator_reward_id": "lead", "joiner_reward_id": "join"}
    )
    d.pop("assist")
    cid = live(bctx, d)
    team = C.start_team(bctx, B, cid, phone(1), now=NOW)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def go(k: int) -> None:
        barrier.wait()
        try:
            C.join_team(bctx, B, team["id"], phone(10 + k), now=NOW)
            got = "joined"
        except C.Refused as err:
            got = err.code
        with lock:
            outcomes.append(got)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("joined") == 2 and set(outcomes) <= {"joined", "team_full", "team_closed"}
    final = C.get_team(bctx, B, team["id"])
    assert (final["members"], final["status"], len(final["member_list"])) == (3, "complete", 3)
    granted = [r for m in final["member_list"] for r in C.progress(bctx, B, m["participant_id"])["rewards"]]
    assert sorted(r["reward_id"] for r in granted) == ["join", "join", "lead"]


def test_helper_reward_non_cyclic_depth_and_region_on_join(bctx: Context) -> None:
    cid = live(
        bctx,
        assist_def(
            assist={"tiers": [{"threshold": 3, "reward_id": "r1"}], "cyclic": False, "helper_reward_id": "bonus"},
            regions=["上海"],
        ),
    )
    with pytest.raises(C.Refused) as exc:
        C.join(bctx, B, cid, phone(1), region="北京", now=NOW)
    assert exc.value.code == "region"
    s = C.join(bctx, B, cid, phone(1), region="上海市", now=NOW)
    # a helper known to OneID gets the thank-you reward once; an unknown one cannot be paid yet
    known = C.join(bctx, B, cid, phone(2), region="上海", now=NOW)
    C.help(bctx, B, cid, s["token"], phone(2), region="上海", now=NOW)
    C.help(bctx, B, cid, s["token"], phone(3), region="上海", now=NOW)
    grants = rewards.list_grants(bctx, B, customer_id=known["customer_id"])["items"]
    assert [g["reward_id"] for g in grants] == ["bonus"]
    with pytest.raises(C.Refused) as exc:  # 循环裂变 off: a helper may not start from the sharer's link
        C.join(bctx, B, cid, phone(3), sharer_token=s["token"], region="上海", now=NOW)
    assert exc.value.code == "depth_limit"
    cid2 = live(bctx, assist_def(name="shallow", max_depth=1))
    a = C.join(bctx, B, cid2, phone(1), now=NOW)
    b = C.join(bctx, B, cid2, phone(2), sharer_token=a["token"], now=NOW)
    with pytest.raises(C.Refused) as exc:
        C.join(bctx, B, cid2, phone(3), sharer_token=b["token"], now=NOW)
    assert (b["depth"], exc.value.code) == (1, "depth_limit")


def test_gift_expires(bctx: Context) -> None:
    d = assist_def(kind="gift", gift={"reward_id": "r1", "claim_hours": 2})
    d.pop("assist")
    cid = live(bctx, d)
    g = C.send_gift(bctx, B, cid, phone(1), now=NOW)
    with pytest.raises(C.Refused) as exc:
        C.claim_gift(bctx, B, g["token"], phone(2), now=NOW + timedelta(hours=3))
    assert exc.value.code == "gift_expired"
    assert C.get_gift(bctx, g["token"])["status"] == "sent"


def test_a_clawed_back_tier_is_issued_again_as_a_new_generation(bctx: Context) -> None:
    """A revoked help drops the sharer below tier 0: the reward is clawed back; when a new help brings them back,
    the tier is issued again under key ``…#2`` (a new grant, budget and stock reserved again); a second round
    makes ``#3``. A claw-back refused because the coupon was used re-issues nothing."""
    cid = live(bctx, assist_def(assist={"tiers": [{"threshold": 2, "reward_id": "small"}]}))
    s = C.join(bctx, B, cid, phone(1), now=NOW)
    first = [C.help(bctx, B, cid, s["token"], phone(100 + i), now=NOW) for i in range(2)]
    granted = C.progress(bctx, B, s["id"])["rewards"]
    assert [(r["what"], r["status"]) for r in granted] == [("tier:0", "granted")]
    assert C.revoke_help(bctx, B, first[0]["help_id"], "carrier_left") == 1
    assert [r["status"] for r in C.progress(bctx, B, s["id"])["rewards"]] == ["clawed_back"]
    assert rewards.get_reward(bctx, B, "small")["stock_left"] == 2  # the stock came back
    C.help(bctx, B, cid, s["token"], phone(200), now=NOW)  # qualifies again
    rows = C.progress(bctx, B, s["id"])["rewards"]
    assert [(r["what"], r["status"]) for r in rows] == [("tier:0", "clawed_back"), ("tier:0", "granted")]
    assert rows[1]["grant_id"] != rows[0]["grant_id"]
    with bctx.sessions() as ses:
        keys = [k for (k,) in ses.execute(text("SELECT key FROM campaign_rewards ORDER BY id"))]
    assert keys == [f"{cid}:{s['id']}:tier:0", f"{cid}:{s['id']}:tier:0#2"]
    # a retry of the same generation is still idempotent
    assert C.progress(bctx, B, s["id"])["rewards"][1]["grant_id"] == rows[1]["grant_id"]
    # the second generation used: the claw-back is refused and nothing more is issued
    rewards.redeem(bctx, B, order_id="o-gen2", grant_id=rows[1]["grant_id"], order_amount=100)
    assert C.revoke_help(bctx, B, first[1]["help_id"], "carrier_left") == 1
    C.help(bctx, B, cid, s["token"], phone(201), now=NOW)
    after = C.progress(bctx, B, s["id"])["rewards"]
    assert [r["status"] for r in after] == ["clawed_back", "granted"] and after[1]["grant_id"] == rows[1]["grant_id"]
    assert rewards.get_reward(bctx, B, "small")["stock_left"] == 1
