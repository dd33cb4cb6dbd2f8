"""Live campaign statistics on a campaign built through the campaign services: every figure (visits, 访问参与率,
参与率, 人均邀请, 新用户参与率, depth distribution, K-factor, completion, reward cost, cost per new customer, 7/30-day
retention, conversions, GMV) against an independent count kept by the test while it drives the services, by
variant, channel and guide; A/B statistics equal to ``compare``/``wilson`` on the counted arms; the leaderboard
against the targets; the fulfilment list and shipping; a guide sees only their own (service and HTTP API)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.journey.sequential import compare, wilson
from siyu.domain.models import Identity, Role
from siyu.errors import NotFound
from siyu.services import brands
from siyu.services import campaigns as camps
from siyu.services import campaigns_stats as stats
from siyu.services.campaigns import people
from siyu.services.campaigns.reports import record_visit
from siyu.services.context import Context
from siyu.services.rewards import create_reward, reward_cost, set_address
from tests.support.live import live_server

BRAND = "cs"
PW = "s3cret-pass"


def phone(i: int) -> Identity:
    return people.parse_identity("phone", f"139{i:08d}")


@dataclass
class World:
    """The campaign and the test's own record of what happened."""

    campaign_id: str
    admin: Any
    guide_user: Any
    now: datetime
    t_join: datetime
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # token → participant dict
    helps: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)  # (sharer token, answer, new)
    visits: Counter[tuple[str, str]] = field(default_factory=Counter)  # (variant, channel) → views
    phones: dict[str, int] = field(default_factory=dict)  # person label → phone index


def _campaign(ctx: Context, now: datetime) -> str:
    create_reward(
        ctx, BRAND, {"id": "c5", "name": "5元券", "kind": "coupon", "config": {"face_value": 5}, "unit_cost": 5}
    )
    create_reward(ctx, BRAND, {"id": "mug", "name": "马克杯", "kind": "physical", "unit_cost": 30, "stock": 50})
    data = {
        "kind": "assist",
        "name": "好友助力领杯子",
        "starts_at": (now - timedelta(days=60)).isoformat(timespec="seconds"),
        "ends_at": (now + timedelta(days=10)).isoformat(timespec="seconds"),
        "timezone": "UTC",
        "assist": {
            "tiers": [{"threshold": 2, "reward_id": "c5"}, {"threshold": 4, "reward_id": "mug"}],
            "cyclic": True,
        },
        "variants": [{"id": "A", "weight": 1}, {"id": "B", "weight": 1}],
        "guide_targets": [
            {"guide_id": "g1", "participants": 4, "new_customers": 8, "conversions": 2, "gmv": 500},
            {"guide_id": "g2", "participants": 2, "new_customers": 2},
            {"guide_id": "g3", "participants": 1},
        ],
    }
    cid = str(camps.create(ctx, BRAND, data, "admin")["id"])
    camps.launch(ctx, BRAND, cid)
    return cid


@pytest.fixture
def world(ctx: Context) -> World:
    brands.create_brand(ctx, BRAND, "Campaign stats")
    admin = brands.create_user(ctx, BRAND, "admin", PW, Role.ADMIN)
    guide_user = brands.create_user(ctx, BRAND, "g1user", PW, Role.GUIDE, guide_id="g1")
    now = datetime.utcnow().replace(microsecond=0)
    # two people are customers before the campaign opens (not new)
    for i in (900, 901):
        people.identify(ctx, BRAND, phone(i), f"pre:{i}", now=True)
    w = World(_campaign(ctx, now), admin, guide_user, now, now - timedelta(days=40))
    t = w.t_join

    def join(i: int, guide: str, channel: str, sharer: str | None = None, at: datetime = t) -> dict[str, Any]:
        p = camps.join(
            ctx, BRAND, w.campaign_id, phone(i), sharer_token=sharer, channel=channel, guide_id=guide, now=at
        )
        w.parts[p["token"]] = p
        w.phones[p["token"]] = i
        return p

    def help_(sharer: dict[str, Any], i: int, new: bool, at: datetime) -> dict[str, Any]:
        ans = camps.help(
            ctx, BRAND, w.campaign_id, sharer["token"], phone(i), device_id=f"d{i}", ip=f"10.0.0.{i % 250}", now=at
        )
        w.helps.append((sharer["token"], ans, new))
        return ans

    s1 = join(1, "g1", "poster")
    s2 = join(2, "g2", "moments")
    s3 = join(900, "g1", "poster")  # an old customer
    for k, i in enumerate((11, 12, 13)):
        help_(s1, i, True, t + timedelta(hours=k + 1))
    help_(s1, 901, False, t + timedelta(hours=5))  # an old customer helps
    help_(s2, 21, True, t + timedelta(hours=2))
    help_(s2, 11, True, t + timedelta(hours=6))  # 11 already helped: rejected
    help_(s1, 1, False, t + timedelta(hours=7))  # self-help: rejected
    help_(s3, 31, True, t + timedelta(days=25))  # joined 15 days ago: counts for 7 d retention only
    people.flush_observations(ctx, BRAND)
    # 循环裂变: helper 11 starts their own (depth 1), and a helper of theirs (depth 2)
    c11 = join(11, "", "", sharer=s1["token"], at=t + timedelta(days=1))
    help_(c11, 41, True, t + timedelta(days=1, hours=1))
    people.flush_observations(ctx, BRAND)
    for variant, channel, n in (("A", "poster", 7), ("B", "poster", 5), ("A", "moments", 3), ("", "", 2)):
        for _ in range(n):
            record_visit(ctx, w.campaign_id, variant=variant, channel=channel, at=t)
        w.visits[(variant, channel)] += n
    return w


def _customer(ctx: Context, i: int) -> str:
    cid = people.person(ctx, BRAND, phone(i)).customer_id
    assert cid
    return cid


def _orders(ctx: Context, w: World, rows: list[tuple[int, datetime, float]]) -> None:
    with ctx.warehouse.transaction() as cur:
        for n, (i, at, amount) in enumerate(rows):
            cur.execute(
                "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount) "
                "VALUES (?, ?, 'phone', ?, ?, ?)",
                [BRAND, f"o{n}", phone(i).value, at, amount],
            )


def test_every_figure_against_an_independent_count(ctx: Context, world: World) -> None:
    w = world
    t = w.t_join
    # orders: 12 comes back on day 3 (7 d + 30 d), 13 on day 20 (30 d only), 21 on its join day (neither),
    # 41 on day 9 after joining; 900 (old) buys too — conversions / GMV count everyone brought
    _orders(
        ctx,
        w,
        [
            (12, t + timedelta(days=3), 100.0),
            (13, t + timedelta(days=20), 80.0),
            (21, t + timedelta(hours=3), 50.0),
            (41, t + timedelta(days=10, hours=2), 20.0),
            (900, t + timedelta(days=2), 70.0),
        ],
    )
    st = stats.campaign_stats(ctx, w.admin, w.campaign_id, now=w.now)
    tot = st["totals"]

    # -- the test's own count -------------------------------------------------------------------------------
    parts = list(w.parts.values())
    counted = [(tok, a, new) for tok, a, new in w.helps if a["state"] == "counted"]
    rejected = Counter(a["reason"] for _, a, _ in w.helps if a["state"] == "rejected")
    assert rejected == {"already_helped": 1, "self_help": 1}
    visits = sum(w.visits.values())
    helpers = len(counted)
    assert (len(parts), helpers, visits) == (4, 7, 17)
    new_helpers = sum(1 for _, _, new in counted if new)
    assert new_helpers == 6
    # people: 4 participants + 7 helpers, helper 11 is also a participant → 10 distinct persons
    people_n = len({w.phones[tok] for tok in w.parts} | {i for i in (11, 12, 13, 901, 21, 31, 41)})
    assert people_n == 10
    new_people = {1, 2, 11, 12, 13, 21, 31, 41}  # 900 and 901 were customers before the campaign
    per_sharer = Counter(tok for tok, _, _ in counted)
    completed = sum(1 for tok in w.parts if per_sharer[tok] >= 2)  # tier 1 at 2 helps
    assert completed == 1  # only s1 (4 helps); s2 1, s3 1, c11 1
    cost = 5.0 + 30.0  # s1 reached both tiers
    assert tot["visits"] == visits
    assert tot["participants"] == len(parts)
    assert tot["helpers"] == helpers
    assert tot["helps_attempted"] == len(w.helps)
    assert tot["people"] == people_n
    assert tot["new_customers"] == len(new_people)
    assert tot["visit_participation"] == pytest.approx(len(parts) / visits)
    assert tot["participation"] == pytest.approx(people_n / visits)
    assert tot["invites_per_participant"] == pytest.approx(helpers / len(parts))
    assert tot["new_user_share"] == pytest.approx(new_helpers / helpers)
    assert tot["k_factor"] == pytest.approx(1 / 4)  # one invited participant (11) of four
    assert tot["completion_rate"] == pytest.approx(completed / len(parts))
    assert tot["reward_cost"] == pytest.approx(cost)
    s1 = next(p for p in parts if w.phones[p["token"]] == 1)
    assert reward_cost(ctx, BRAND, "campaign", f"{w.campaign_id}:{s1['id']}") == pytest.approx(cost)
    assert sum(reward_cost(ctx, BRAND, "campaign", f"{w.campaign_id}:{p['id']}") for p in parts) == pytest.approx(cost)
    assert tot["cost_per_new_customer"] == pytest.approx(cost / len(new_people))
    # retention: every new person joined ≥ 7 d ago; 31 joined 15 d ago → not yet eligible for 30 d
    assert (tot["retention_7d_eligible"], tot["retention_7d_retained"]) == (8, 1)  # 12
    assert (tot["retention_30d_eligible"], tot["retention_30d_retained"]) == (7, 3)  # 12, 13, 41 (day 9)
    assert tot["retention_7d"] == pytest.approx(1 / 8)
    # conversions: people brought with an order after they joined: 12, 13, 21, 41, 900
    assert (tot["conversions"], tot["gmv"]) == (5, 320.0)
    # depth: participants 3 at 0, 1 at 1; counted helps by depth: 6 at 1 (helpers of seeds), 1 at 2
    assert st["depth"] == [
        {"depth": 0, "participants": 3, "helpers": 0},
        {"depth": 1, "participants": 1, "helpers": 6},
        {"depth": 2, "participants": 0, "helpers": 1},
    ]
    assert [f["value"] for f in st["funnel"]] == [visits, len(parts), helpers, len(new_people)]
    assert sum(d["participants"] for d in st["daily"]) == len(parts)
    assert sum(d["visits"] for d in st["daily"]) == visits

    # -- by variant / channel / guide ------------------------------------------------------------------------
    var_of = {tok: p["variant"] for tok, p in w.parts.items()}
    by_v = {r["key"]: r for r in st["by_variant"]}
    for v in ("A", "B"):
        mine = [tok for tok in w.parts if var_of[tok] == v]
        r = by_v.get(v, {"participants": 0, "helpers": 0, "visits": 0})
        assert r["participants"] == len(mine)
        assert r["helpers"] == sum(1 for tok, _, _ in counted if var_of[tok] == v)
        assert r["visits"] == sum(n for (vv, _), n in w.visits.items() if vv == v)
    by_c = {r["key"]: r for r in st["by_channel"]}
    # c11 inherits the channel and the guide of its sharer
    assert by_c["poster"]["participants"] == 3 and by_c["moments"]["participants"] == 1
    assert by_c["poster"]["visits"] == 12 and by_c["moments"]["visits"] == 3
    by_g = {r["key"]: r for r in st["by_guide"]}
    # c11 inherits g1 from its sharer
    assert by_g["g1"]["participants"] == 3 and by_g["g2"]["participants"] == 1
    assert by_g["g1"]["helpers"] == 6 and by_g["g2"]["helpers"] == 1
    assert by_g["g1"]["reward_cost"] == pytest.approx(cost) and by_g["g2"]["reward_cost"] == 0
    assert by_g["g1"]["visits"] == 0  # visits are not per guide

    # -- A/B: the same statistics as journeys ----------------------------------------------------------------
    ab = st["ab"]
    assert [a["variant"] for a in ab["variants"]] == ["A", "B"] and ab["comparator"] == "A"
    for arm in ab["variants"]:
        mine = [tok for tok in w.parts if var_of[tok] == arm["variant"]]
        x = sum(1 for tok in mine if per_sharer[tok] >= 2)
        assert (arm["n"], arm["completed"]) == (len(mine), x)
        assert arm["ci95"] == list(wilson(x, len(mine)))
    a, b = ab["variants"]
    c = compare(a["n"], a["completed"], b["n"], b["completed"], 0.05)
    assert ab["comparisons"][0]["p_value"] == c.p_value and ab["comparisons"][0]["ready"] is False

    # -- leaderboard ------------------------------------------------------------------------------------------
    lb = stats.leaderboard(ctx, w.admin, w.campaign_id, now=w.now)["items"]
    assert [r["guide_id"] for r in lb] == ["g1", "g2", "g3"]
    g1 = lb[0]
    # g1: participants 1, 900, 11; new: 1, 11, 12, 13, 31, 41 (helpers of s1/s3/c11) → 6
    assert (g1["participants"], g1["new_customers"], g1["conversions"], g1["gmv"]) == (3, 6, 4, 270.0)
    assert g1["progress_participants"] == pytest.approx(3 / 4) and g1["progress_gmv"] == pytest.approx(270 / 500)
    g2 = lb[1]
    assert (g2["participants"], g2["new_customers"], g2["conversions"]) == (1, 2, 1)
    assert lb[2]["participants"] == 0 and lb[2]["progress_participants"] == 0

    # -- a guide sees only their own --------------------------------------------------------------------------
    gs = stats.campaign_stats(ctx, w.guide_user, w.campaign_id, now=w.now)
    assert gs["scope"]["guide_id"] == "g1"
    assert gs["totals"]["participants"] == 3 and gs["totals"]["helpers"] == 6
    assert gs["totals"]["visits"] is None
    assert {r["key"] for r in gs["by_guide"]} == {"g1"}
    assert [r["guide_id"] for r in stats.leaderboard(ctx, w.guide_user, w.campaign_id)["items"]] == ["g1"]


def test_fulfilment_and_api(ctx: Context, world: World) -> None:
    w = world
    items = stats.fulfilment(ctx, w.admin, w.campaign_id)["items"]
    assert len(items) == 1 and items[0]["status"] == "awaiting_address" and items[0]["reward_id"] == "mug"
    gid = items[0]["grant_id"]
    set_address(
        ctx,
        BRAND,
        gid,
        {
            "name": "张三",
            "phone": "13900000001",
            "province": "上海",
            "city": "上海",
            "district": "黄浦区",
            "detail": "人民路1号",
        },
    )
    brands.create_user(ctx, BRAND, "g2user", PW, Role.GUIDE, guide_id="g2")
    with live_server(create_app(ctx)) as base:

        def login(u: str) -> dict[str, str]:
            tok = httpx.post(f"{base}/api/auth/login", json={"username": u, "password": PW}).json()["token"]
            return {"Authorization": f"Bearer {tok}"}

        h, g1, g2 = login("admin"), login("g1user"), login("g2user")
        url = f"{base}/api/campaigns/{w.campaign_id}"
        api = httpx.get(f"{url}/stats", headers=h).json()
        local = stats.campaign_stats(ctx, w.admin, w.campaign_id)
        for k in ("visits", "participants", "helpers", "new_customers", "reward_cost", "k_factor"):
            assert api["totals"][k] == local["totals"][k]
        assert httpx.get(f"{url}/stats", headers=g2).json()["totals"]["participants"] == 1
        assert [r["guide_id"] for r in httpx.get(f"{url}/leaderboard", headers=g2).json()["items"]] == ["g2"]
        # the mug belongs to g1's participant: g2 neither sees nor ships it
        assert httpx.get(f"{url}/fulfilment", headers=g2).json()["items"] == []
        bad = httpx.post(f"{url}/fulfilment/{gid}/ship", headers=g2, json={"carrier": "顺丰", "tracking_no": "SF1"})
        assert bad.status_code == 404
        got = httpx.get(f"{url}/fulfilment", headers=g1).json()["items"]
        assert [(x["grant_id"], x["status"]) for x in got] == [(gid, "to_ship")]
        bad = httpx.post(f"{url}/fulfilment/{gid}/ship", headers=h, json={"carrier": "顺丰", "tracking_no": "SF 1"})
        assert bad.status_code == 400 and bad.json()["field"] == "tracking_no"
        ok = httpx.post(f"{url}/fulfilment/{gid}/ship", headers=h, json={"carrier": "顺丰", "tracking_no": "SF100"})
        assert ok.status_code == 200 and ok.json()["status"] == "shipped"
        assert httpx.get(f"{url}/fulfilment?status=shipped", headers=h).json()["items"][0]["tracking_no"] == "SF100"
        assert httpx.get(f"{base}/api/campaigns/nope/stats", headers=h).status_code == 404
        assert httpx.get(f"{url}/stats").status_code == 401
    with pytest.raises(NotFound):
        stats.campaign_stats(ctx, w.admin, "cp_other")


def test_cli(ctx: Context, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from siyu.cli.main import app as cli_app

    w = world
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    r = runner.invoke(cli_app, ["campaign-stats", "show", w.campaign_id, "--brand", BRAND, "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)["totals"]
    local = stats.campaign_stats(ctx, w.admin, w.campaign_id)["totals"]
    assert {k: got[k] for k in ("participants", "helpers", "visits", "k_factor")} == {
        k: local[k] for k in ("participants", "helpers", "visits", "k_factor")
    }
    r = runner.invoke(cli_app, ["campaign-stats", "show", w.campaign_id, "--brand", BRAND], terminal_width=220)
    assert r.exit_code == 0 and "访问参与率" in r.output and "k_factor" in r.output
    r = runner.invoke(
        cli_app, ["campaign-stats", "leaderboard", w.campaign_id, "--brand", BRAND, "--as-guide", "g2", "--json"]
    )
    assert [x["guide_id"] for x in json.loads(r.output)["items"]] == ["g2"]
    r = runner.invoke(cli_app, ["campaign-stats", "leaderboard", w.campaign_id, "--brand", BRAND], terminal_width=200)
    assert r.exit_code == 0 and "3 / 4" in r.output  # g1: 3 participants of a target of 4
    r = runner.invoke(cli_app, ["campaign-stats", "fulfilment", w.campaign_id, "--brand", BRAND], terminal_width=200)
    assert r.exit_code == 0 and "mug" in r.output
    r = runner.invoke(cli_app, ["campaign-stats", "show", "cp_nope", "--brand", BRAND])
    assert r.exit_code == 2 and "not found" in r.output


def test_a_recent_answer_is_reused_only_when_asked(ctx: Context, world: World) -> None:
    w = world
    first = stats.campaign_stats(ctx, w.admin, w.campaign_id, max_age=60)
    record_visit(ctx, w.campaign_id, variant="A", channel="poster")
    assert stats.campaign_stats(ctx, w.admin, w.campaign_id, max_age=60) is first  # a dashboard poll
    fresh = stats.campaign_stats(ctx, w.admin, w.campaign_id)
    assert fresh["totals"]["visits"] == first["totals"]["visits"] + 1
    # another scope never shares an answer
    assert stats.campaign_stats(ctx, w.guide_user, w.campaign_id, max_age=60)["totals"]["visits"] is None


def _open(ctx: Context, data: dict[str, Any]) -> str:
    now = datetime.utcnow().replace(microsecond=0)
    base = {
        "name": data["kind"],
        "starts_at": (now - timedelta(days=1)).isoformat(timespec="seconds"),
        "ends_at": (now + timedelta(days=10)).isoformat(timespec="seconds"),
        "timezone": "UTC",
    }
    cid = str(camps.create(ctx, BRAND, base | data, "admin")["id"])
    camps.launch(ctx, BRAND, cid)
    return cid


def test_completion_of_teams_and_gifts(ctx: Context) -> None:
    brands.create_brand(ctx, BRAND, "Campaign stats")
    admin = brands.create_user(ctx, BRAND, "admin", PW, Role.ADMIN)
    for rid, cost in (("lead", 8.0), ("join", 3.0), ("card", 6.0)):
        create_reward(
            ctx, BRAND, {"id": rid, "name": rid, "kind": "coupon", "config": {"face_value": 5}, "unit_cost": cost}
        )
    # group-buy, teams of 3: team 1 fills up, team 2 stays at 2 of 3
    gb = _open(
        ctx,
        {"kind": "group_buy", "group_buy": {"team_size": 3, "initiator_reward_id": "lead", "joiner_reward_id": "join"}},
    )
    t1 = camps.start_team(ctx, BRAND, gb, phone(1), channel="poster", guide_id="g1")
    t2 = camps.start_team(ctx, BRAND, gb, phone(2), channel="moments", guide_id="g2")
    for i in (11, 12):
        camps.join_team(ctx, BRAND, t1["id"], phone(i))
    camps.join_team(ctx, BRAND, t2["id"], phone(21))
    st = stats.campaign_stats(ctx, admin, gb)
    tot = st["totals"]
    assert (tot["completion_units"], tot["completed"], tot["completion_rate"]) == (2, 1, 0.5)
    assert tot["participants"] == 5 and tot["invited_participants"] == 3  # joiners join with the leader as sharer
    assert tot["reward_cost"] == pytest.approx(8.0 + 2 * 3.0)  # the full team's leader + two joiners
    by_g = {r["key"]: r for r in st["by_guide"]}
    assert (by_g["g1"]["completed"], by_g["g1"]["completion_units"]) == (1, 1)
    assert (by_g["g2"]["completed"], by_g["g2"]["completion_units"]) == (0, 1)
    # gift: three gifts sent, two claimed
    gf = _open(ctx, {"kind": "gift", "gift": {"reward_id": "card", "max_gifts_per_giver": 2}})
    gifts = [camps.send_gift(ctx, BRAND, gf, phone(i), channel="poster", guide_id="g1") for i in (31, 31, 32)]
    for n, g in enumerate(gifts[:2]):
        camps.claim_gift(ctx, BRAND, g["token"], phone(40 + n))
    tot = stats.campaign_stats(ctx, admin, gf)["totals"]
    assert (tot["completion_units"], tot["completed"]) == (3, 2)
    assert tot["participants"] == 4  # two givers, two friends who claimed
    assert tot["reward_cost"] == pytest.approx(2 * 6.0)


def test_record_visit_counts_several_views_at_once(world: World, ctx: Context) -> None:
    w = world
    t = datetime(2026, 5, 3, 4, 0)
    record_visit(ctx, w.campaign_id, channel="sms", page="help", at=t, views=5)
    record_visit(ctx, w.campaign_id, channel="sms", page="help", at=t, views=2)
    record_visit(ctx, w.campaign_id, channel="sms", page="help", at=t)
    got = [v for v in camps.visits(ctx, BRAND, w.campaign_id) if v["channel"] == "sms" and v["page"] == "help"]
    assert [v["views"] for v in got] == [8]
    with pytest.raises(ValueError, match="views must be at least 1"):
        record_visit(ctx, w.campaign_id, channel="sms", at=t, views=0)
