"""The seed templates insurance_birthday, dental_no_show, cadence and campaign, each validated and run end to end
on a small seeded brand of its own (customers given the birthdays, attributes and events each needs)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from siyu.config import Settings
from siyu.domain.journey import parse_journey
from siyu.domain.journey import seed_templates as seeds
from siyu.services import brands
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys import facts
from siyu.services.journeys.scheduled import tick
from siyu.services.journeys.senders import RecordingSender, register_sender, unregister_sender
from siyu.services.journeys.templates import build, create_from_template, list_templates
from siyu.stores.state.journey_models import JourneyEffectRow, JourneyEntryRow, JourneyTaskRow

BRAND = "seeds"
# 10:00 Shanghai tomorrow (after the segment refresh stamps members with the real clock)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, hour=2, minute=0, second=0, microsecond=0)
DAY0 = T0.date()  # the local (Shanghai) day of T0 too


@pytest.fixture(scope="module")
def sctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("jseeds") / "data"))
    seed_demo(c, DemoConfig(customers=200, brand_id=BRAND))
    yield c
    c.close()


@pytest.fixture(scope="module")
def op(sctx: Context) -> User:
    return next(brands.get_user(sctx, i) for i in range(1, 30) if brands.get_user(sctx, i).username == "seeds.operator")


@pytest.fixture(autouse=True)
def _one_journey_at_a_time(sctx: Context, op: User) -> Iterator[None]:
    """Stop every journey a test published: a journey left active would go on sending through the next test's
    recording sender (the birthday journey greets whoever's birthday is 15 days after the tick — on some dates a
    seeded customer's)."""
    yield
    for j in jdef.list_journeys(sctx, op):
        if j.status in ("active", "paused"):
            jdef.set_status(sctx, op, j.id, "stopped")


def _ids(ctx: Context) -> list[str]:
    return [
        r[0] for r in ctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id = ? ORDER BY 1", [BRAND])
    ]


def _entries(ctx: Context, jid: str) -> list[JourneyEntryRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(JourneyEntryRow).where(JourneyEntryRow.journey_id == jid)))


def _effects(ctx: Context, jid: str) -> list[JourneyEffectRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(JourneyEffectRow).where(JourneyEffectRow.journey_id == jid)))


def _tasks(ctx: Context, jid: str) -> list[JourneyTaskRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(JourneyTaskRow).where(JourneyTaskRow.journey_id == jid)))


def _event(ctx: Context, customer_id: str, event: str, at: datetime) -> None:
    uid = f"seeds-u-{customer_id}"
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identities VALUES (?, 'user_id', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [BRAND, uid, customer_id, at, at],
        )
        cur.execute(
            "INSERT INTO events (brand_id, message_id, type, event, user_id, properties, timestamp, received_at) "
            "VALUES (?, ?, 'track', ?, ?, '{}', ?, ?)",
            [BRAND, uuid.uuid4().hex, event, uid, at, at],
        )


def test_all_templates_listed_and_valid() -> None:
    ids = {t["id"] for t in list_templates()}
    assert {"insurance_birthday", "dental_no_show", "cadence", "campaign", "win_back", "new_contact"} <= ids
    for b in (seeds.insurance_birthday(), seeds.dental_no_show(), seeds.cadence(), seeds.campaign("2026-12-12")):
        parse_journey(json.loads(json.dumps(b["journey"]).replace(seeds.SEGMENT_PLACEHOLDER, "probe")))
    # the coverage table: a 35-year-old with a 10,000 budget is recommended 800,000
    assert seeds.recommended_cover(35, 10_000) == 800_000
    assert seeds.product_for(35, 10_000, 100_000) == "终身寿险 + 重疾组合"
    assert seeds.product_for(35, 10_000, 500_000) == "重疾险"
    assert seeds.product_for(35, 10_000, 700_000) == "医疗险 / 意外险补充"
    assert seeds.product_for(35, 10_000, 900_000) is None


def test_insurance_birthday(sctx: Context, op: User) -> None:
    birthday_md = DAY0 + timedelta(days=15)
    people = {  # customer → (age, budget, cover held)
        0: (35, 10_000, 100_000),  # gap 700k → large
        1: (50, 3_000, 0),  # R 150k → small
        2: (25, 20_000, 1_600_000),  # R 2M, gap 400k → medium
        3: (65, 20_000, 900_000),  # R 400k → no gap: greeting
    }
    ids = _ids(sctx)
    chosen = {ids[i]: v for i, v in people.items()}
    with sctx.warehouse.write_lock, sctx.warehouse.transaction() as cur:
        cur.execute(  # nobody else has that birthday
            "UPDATE customers SET birthday = NULL WHERE brand_id = ? AND month(birthday) = ? AND day(birthday) = ?",
            [BRAND, birthday_md.month, birthday_md.day],
        )
        for cid, (age, budget, held) in chosen.items():
            traits = {"age": age, "budget": budget, "cover_held": held, "active_hours": "19:00-21:00"}
            cur.execute(
                "UPDATE customers SET birthday = ?, traits = json_merge_patch(coalesce(traits, '{}'::JSON), ?::JSON) "
                "WHERE brand_id = ? AND customer_id = ?",
                [birthday_md.replace(year=birthday_md.year - age), json.dumps(traits), BRAND, cid],
            )
    sender = RecordingSender(Path(sctx.settings.data_dir) / "ins-wecom.sqlite")
    register_sender("wecom_1to1", sender)
    try:
        j = create_from_template(sctx, op, "insurance_birthday", "生日关怀")
        assert j.definition["trigger"] == {"kind": "date", "field": "birthday", "offset_days": -15, "annual": True}
        jdef.publish(sctx, op, j.id, now=T0)
        tick(sctx, T0 + timedelta(minutes=1))
        es = {e.customer_id: e for e in _entries(sctx, j.id)}
        assert set(es) == set(chosen)
        expected = {c: seeds.product_for(*v) for c, v in chosen.items()}
        # the product is stored on the customer at once; the call waits for the customer's active hours (19:00)
        rows = sctx.warehouse.fetch(
            "SELECT customer_id, json_extract_string(traits, '$.recommended_product') FROM customers "
            "WHERE brand_id = ? AND customer_id IN (?, ?, ?, ?)",
            [BRAND, *chosen],
        )
        assert dict(rows) == expected
        assert not _tasks(sctx, j.id)
        assert {es[c].node_id for c, p in expected.items() if p} == {
            "hours_gap_large",
            "hours_gap_medium",
            "hours_gap_small",
        }
        assert es[ids[3]].status == "exited" and len(sender.sent()) == 1  # the birthday greeting only
        tick(sctx, T0 + timedelta(hours=9, minutes=1))  # 19:01 local
        tasks = {t.customer_id: t for t in _tasks(sctx, j.id)}
        assert set(tasks) == {c for c, p in expected.items() if p}
        guides = facts.guides_of(sctx, BRAND, sorted(tasks))
        for c, t in tasks.items():
            assert t.kind == "call" and expected[c] in t.title and expected[c] in t.script
            assert t.guide_id == guides.get(c)
            assert t.created_at.hour == 11  # 19:00 Shanghai = the start of the customer's active hours
    finally:
        unregister_sender("wecom_1to1")
    assert {e.exit_reason for e in _entries(sctx, j.id)} == {"completed"}


def test_dental_no_show(sctx: Context, op: User) -> None:
    t = build(sctx, BRAND, "dental_no_show", {})["journey"]
    ticket = next(n for n in t["nodes"] if n["id"] == "ticket")["branches"]
    ids = _ids(sctx)[10:]
    lead = sorted(facts.matching(sctx, BRAND, ticket[0]["condition"], ids))[0]
    high = sorted(facts.matching(sctx, BRAND, ticket[1]["condition"], ids))[0]
    noshow = next(c for c in ids if c not in (lead, high))
    sender = RecordingSender(Path(sctx.settings.data_dir) / "dental-wecom.sqlite")
    register_sender("wecom_1to1", sender)
    try:
        j = create_from_template(sctx, op, "dental_no_show", "预约未到店")
        jdef.publish(sctx, op, j.id, now=T0 - timedelta(hours=1))
        for c in (lead, high, noshow):
            _event(sctx, c, "Booking Missed", T0 - timedelta(minutes=30))
        tick(sctx, T0)
        assert {e.customer_id: e.node_id for e in _entries(sctx, j.id)} == {c: "day2" for c in (lead, high, noshow)}
        tick(sctx, T0 + timedelta(days=1, hours=1))  # day 2, 11:00 → incentive, waiting for a visit
        es = {e.customer_id: e.node_id for e in _entries(sctx, j.id)}
        assert es == {c: "visit" for c in (lead, high, noshow)}
        assert {c for _, _, c, _ in sender.sent()} == {lead, high, noshow}
        for c in (lead, high):
            _event(sctx, c, "Visit Completed", T0 + timedelta(days=3))
        tick(sctx, T0 + timedelta(days=3, minutes=5))
        tasks = {t.customer_id: t for t in _tasks(sctx, j.id)}
        assert set(tasks) == {lead} and tasks[lead].title == "引流客户二次项目"
        assert {e.customer_id: e.node_id for e in _entries(sctx, j.id)}[high] == "care_wait"
        tick(sctx, T0 + timedelta(days=7, hours=1))  # a week: the no-show gets a call; the high-ticket a referral ask
        tasks = {t.customer_id: t for t in _tasks(sctx, j.id)}
        assert set(tasks) == {lead, noshow} and tasks[noshow].title == "爽约客户改约"
    finally:
        unregister_sender("wecom_1to1")
    refer = {e.customer_id for e in _effects(sctx, j.id) if e.node_id == "referral"}
    care = {e.customer_id for e in _effects(sctx, j.id) if e.node_id == "care"}
    assert refer == care == {high}
    es = _entries(sctx, j.id)
    assert {e.status for e in es} == {"exited"} and sum(e.goal_at is not None for e in es) == 2


def test_campaign_calendar(sctx: Context, op: User) -> None:
    start = DAY0 + timedelta(days=12)
    cal = seeds.campaign_dates(start, 10)
    assert cal["warmup"] == start - timedelta(days=10)
    assert cal["during"] == [start, start + timedelta(days=5)]
    assert cal["encore"] == [start + timedelta(days=10), start + timedelta(days=11)]
    with pytest.raises(SiyuError, match="bad template parameters"):
        create_from_template(sctx, op, "campaign", "大促坏", {"start": "12/12"})
    sender = RecordingSender(Path(sctx.settings.data_dir) / "camp-mass.sqlite")
    register_sender("wecom_mass", sender)
    try:
        j = create_from_template(sctx, op, "campaign", "双十二", {"start": start.isoformat(), "days": 10})
        jdef.publish(sctx, op, j.id, now=T0)
        tick(sctx, T0 + timedelta(minutes=1))
        members = {e.customer_id for e in _entries(sctx, j.id)}
        assert len(members) >= 20 and not sender.sent()
        sent_on: dict[date, set[str]] = {}
        for d in range(0, 25):
            day = DAY0 + timedelta(days=d)
            before = {e.key for e in _effects(sctx, j.id)}
            tick(sctx, T0 + timedelta(days=d, minutes=5))
            new = [e for e in _effects(sctx, j.id) if e.key not in before]
            if new:
                sent_on[day] = {e.node_id for e in new}
                assert len(new) == len(members)
    finally:
        unregister_sender("wecom_mass")
    assert sent_on == {
        cal["warmup"]: {"warmup"},
        cal["during"][0]: {"during1"},
        cal["during"][1]: {"during2"},
        cal["encore"][0]: {"encore1"},
        cal["encore"][1]: {"encore2"},
    }
    assert len(sender.sent()) == 5 * len(members)


def test_cadence_every_three_days(sctx: Context, op: User) -> None:
    """Runs after the campaign (simulated days 30–36: the daily WeCom cap counts sends from local midnight on)."""
    sender = RecordingSender(Path(sctx.settings.data_dir) / "cad-mass.sqlite")
    register_sender("wecom_mass", sender)
    try:
        j = create_from_template(sctx, op, "cadence", "三天一次", {"start": (DAY0 + timedelta(days=30)).isoformat()})
        members = set(facts.audience(sctx, BRAND, j.definition["trigger"]["segment_id"]))
        assert len(members) >= 20
        jdef.publish(sctx, op, j.id, now=T0 + timedelta(days=30))
        for day in range(7):  # days 0, 3 and 6 are activity days
            tick(sctx, T0 + timedelta(days=30 + day, minutes=1))
            sends = len(sender.sent())
            assert sends == len(members) * (day // 3 + 1), (day, sends)
    finally:
        unregister_sender("wecom_mass")
    assert {e.exit_reason for e in _entries(sctx, j.id)} == {"completed"}
