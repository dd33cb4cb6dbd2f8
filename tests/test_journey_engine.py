"""The journey engine on a small seeded demo brand: steps, branches, waits, events, goals, guards, versions,
re-entry, effects and statistics — all through the real state DB and warehouse."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from siyu.config import Settings
from siyu.services import brands
from siyu.services import segments as segment_service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys import facts
from siyu.services.journeys.effects import deliver_effects
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.executor import run_until_idle
from siyu.services.journeys.scheduled import tick
from siyu.services.journeys.senders import RecordingSender, register_sender, unregister_sender
from siyu.services.journeys.stats import journey_stats
from siyu.services.journeys.tasks import finish_task, list_tasks
from siyu.stores.state.journey_models import JourneyEffectRow, JourneyEntryRow, JourneyStepRow, JourneySuppressionRow

BRAND = "jt"
T0 = datetime(2026, 11, 20, 2, 0)  # 10:00 in Asia/Shanghai


@pytest.fixture(scope="module")
def jctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("journeys") / "data"))
    seed_demo(c, DemoConfig(customers=200, brand_id=BRAND))
    yield c
    c.close()


def _user(ctx: Context, username: str) -> User:
    for uid in range(1, 40):
        try:
            u = brands.get_user(ctx, uid)
        except Exception:
            break
        if u.username == username:
            return u
    raise AssertionError(username)


@pytest.fixture(scope="module")
def op(jctx: Context) -> User:
    return _user(jctx, f"{BRAND}.operator")


def _ids(ctx: Context, n: int | None = None) -> list[str]:
    rows = ctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id = ? ORDER BY customer_id", [BRAND])
    ids = [r[0] for r in rows]
    return ids[:n] if n else ids


def _journey(ctx: Context, user: User, d: dict[str, Any], publish: bool = True) -> str:
    j = jdef.create_journey(ctx, user, "j-" + uuid.uuid4().hex[:8], d)
    if publish:
        jdef.publish(ctx, user, j.id, now=T0 - timedelta(hours=1))
    return j.id


def _linear(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A chain of nodes ending in an exit; ``top`` overrides journey fields."""
    all_nodes = [*nodes, {"id": "end", "kind": "exit"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(all_nodes)]
    return {"trigger": {"kind": "manual"}, "start": all_nodes[0]["id"], "nodes": all_nodes, "edges": edges, **top}


def _entries(ctx: Context, jid: str) -> list[JourneyEntryRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(JourneyEntryRow).where(JourneyEntryRow.journey_id == jid)))


def _event(ctx: Context, customer_id: str, event: str, at: datetime, props: dict[str, Any] | None = None) -> None:
    """Store a track event of a customer (through a user_id identifier, as ingestion would)."""
    uid = f"jt-user-{customer_id}"
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id, first_seen_at, last_seen_at) "
            "VALUES (?, 'user_id', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [BRAND, uid, customer_id, at, at],
        )
        cur.execute(
            "INSERT INTO events (brand_id, message_id, type, event, user_id, properties, timestamp, received_at) "
            "VALUES (?, ?, 'track', ?, ?, ?, ?, ?)",
            [BRAND, uuid.uuid4().hex, event, uid, json.dumps(props or {}), at, at],
        )


def test_branches_tasks_tags_attributes_and_sends_on_the_demo_brand(jctx: Context, op: User, tmp_path: Path) -> None:
    vip = {"kind": "orders", "op": "gte", "value": 5}
    d = {
        "trigger": {"kind": "manual"},
        "start": "cond",
        "nodes": [
            {"id": "cond", "kind": "condition", "branches": [{"name": "vip", "condition": vip}]},
            {"id": "task", "kind": "action", "action": {"type": "task", "task_kind": "call", "title": "VIP 回访"}},
            {"id": "tag", "kind": "action", "action": {"type": "tag", "tag": "旅程测试"}},
            {"id": "attr", "kind": "action", "action": {"type": "attribute", "field": "traits.jt_seen", "value": 1}},
            {"id": "sms", "kind": "action", "action": {"type": "send", "channel": "sms", "content": "欢迎"}},
            {"id": "end", "kind": "exit"},
        ],
        "edges": [
            {"from": "cond", "to": "task", "branch": "vip"},
            {"from": "cond", "to": "tag", "branch": "else"},
            {"from": "task", "to": "end"},
            {"from": "tag", "to": "attr"},
            {"from": "attr", "to": "sms"},
            {"from": "sms", "to": "end"},
        ],
    }
    jid = _journey(jctx, op, d)
    ids = _ids(jctx, 120)
    sender = RecordingSender(tmp_path / "sent.sqlite")
    register_sender("sms", sender)
    try:
        assert enter_customers(jctx, BRAND, jid, [(c, "m") for c in ids], T0) == 120
        assert run_until_idle(jctx, T0) == 2 * 120 + _else_steps(jctx, ids, vip)  # cond + exit + each path
        assert deliver_effects(jctx, T0)["done"] >= 1
    finally:
        unregister_sender("sms")
    expected_vip = facts.matching(jctx, BRAND, vip, ids)
    assert 0 < len(expected_vip) < len(ids)  # both branches are used
    with jctx.sessions() as s:
        took = {
            c: b
            for c, b in s.execute(
                select(JourneyEntryRow.customer_id, JourneyStepRow.branch)
                .join(JourneyStepRow, JourneyStepRow.entry_id == JourneyEntryRow.id)
                .where(JourneyEntryRow.journey_id == jid, JourneyStepRow.node_id == "cond")
            )
        }
    assert {c for c, b in took.items() if b == "vip"} == expected_vip
    # tasks went to each VIP's own guide
    guides = facts.guides_of(jctx, BRAND, sorted(expected_vip))
    tasks = list_tasks(jctx, op, status="open", page_size=500)["items"]
    mine = [t for t in tasks if t["journey_id"] == jid]
    assert {t["customer_id"] for t in mine} == expected_vip
    assert all(t["guide_id"] == guides.get(t["customer_id"]) for t in mine)
    assert all(t["customer_url"] == f"/customers/{t['customer_id']}" for t in mine)
    others = sorted(set(ids) - expected_vip)
    # the tag and the attribute landed in the warehouse; the sender got one message per customer
    tagged = jctx.warehouse.fetch(
        "SELECT DISTINCT i.customer_id FROM identifier_tags t JOIN identities i ON i.brand_id = t.brand_id AND "
        "i.id_type = t.id_type AND i.id_value = t.id_value WHERE t.brand_id = ? AND t.tag_id = 'journey:旅程测试'",
        [BRAND],
    )
    assert sorted(r[0] for r in tagged) == others
    seen = jctx.warehouse.fetch(
        "SELECT customer_id FROM customers WHERE brand_id = ? AND json_extract(traits, '$.jt_seen')::INT = 1", [BRAND]
    )
    assert sorted(r[0] for r in seen) == others
    assert sorted(c for _, _, c, _ in sender.sent()) == others
    # the segment language sees the journey's tag
    count = segment_service.preview(jctx, op, {"kind": "tag", "tags": ["旅程测试"]}, sample=0)["count"]
    assert count == len(others)
    # statistics per node
    st = journey_stats(jctx, op, jid)
    nodes = {n["id"]: n for n in st["nodes"]}
    assert nodes["cond"]["passed"] == {"vip": len(expected_vip), "else": len(others)}
    assert nodes["sms"]["effects"] == {"done": len(others)}
    assert nodes["end"]["entered"] == 120 and st["exited"] == 120 and st["exits"] == {"completed": 120}


def _else_steps(ctx: Context, ids: list[str], vip: dict[str, Any]) -> int:
    """Steps beyond cond+exit: the VIP path has 1 (task), the other path 3 (tag, attr, sms)."""
    v = len(facts.matching(ctx, BRAND, vip, ids))
    return v * 1 + (len(ids) - v) * 3


def test_an_invalid_definition_is_rejected_naming_node_and_field(jctx: Context, op: User) -> None:
    bad = _linear({"id": "w", "kind": "wait", "mode": "duration"})
    with pytest.raises(Exception) as exc:
        jdef.create_journey(jctx, op, "bad", bad)
    assert exc.value.errors[0]["node_id"] == "w" and exc.value.errors[0]["field"] == "minutes"  # type: ignore[attr-defined]


def test_waits_hold_until_their_time_and_active_hours_are_used(jctx: Context, op: User) -> None:
    ids = _ids(jctx)[:3]
    with jctx.warehouse.write_lock, jctx.warehouse.transaction() as cur:
        cur.execute(
            "UPDATE customers SET traits = json_merge_patch(coalesce(traits, '{}'::JSON), "
            '\'{"active_hours": "19:00-21:00"}\'::JSON) WHERE brand_id = ? AND customer_id = ?',
            [BRAND, ids[0]],
        )
    jid = _journey(
        jctx,
        op,
        _linear(
            {"id": "w1", "kind": "wait", "minutes": 60},
            {"id": "w2", "kind": "wait", "mode": "time_of_day", "at": "11:30"},
        ),
    )
    enter_customers(jctx, BRAND, jid, [(c, "m") for c in ids], T0)
    run_until_idle(jctx, T0)
    assert {e.node_id for e in _entries(jctx, jid)} == {"w1"}
    run_until_idle(jctx, T0 + timedelta(minutes=59))
    assert {e.node_id for e in _entries(jctx, jid)} == {"w1"}  # not a minute early
    run_until_idle(jctx, T0 + timedelta(minutes=60))
    es = {e.customer_id: e for e in _entries(jctx, jid)}
    assert {e.node_id for e in es.values()} == {"w2"}
    # 11:30 Shanghai = 03:30 UTC the same day; the customer active 19:00-21:00 is woken at 19:00 (11:00 UTC)
    assert es[ids[1]].wake_at == datetime(2026, 11, 20, 3, 30)
    assert es[ids[0]].wake_at == datetime(2026, 11, 20, 11, 0)
    run_until_idle(jctx, datetime(2026, 11, 20, 3, 30))
    es = {e.customer_id: e for e in _entries(jctx, jid)}
    assert es[ids[1]].status == "exited" and es[ids[0]].status == "active"


def test_wait_for_event_branches_on_the_event_or_the_timeout_and_goal_exits_early(jctx: Context, op: User) -> None:
    d = {
        "trigger": {"kind": "manual"},
        "goal": {"event": "JT Purchased"},
        "start": "we",
        "nodes": [
            {"id": "we", "kind": "wait_event", "event": "JT Clicked", "timeout_minutes": 120},
            {"id": "hit", "kind": "wait", "minutes": 600},
            {"id": "miss", "kind": "exit"},
            {"id": "end", "kind": "exit"},
        ],
        "edges": [
            {"from": "we", "to": "hit", "branch": "event"},
            {"from": "we", "to": "miss", "branch": "timeout"},
            {"from": "hit", "to": "end"},
        ],
    }
    jid = _journey(jctx, op, d)
    a, b, c = _ids(jctx)[10:13]
    enter_customers(jctx, BRAND, jid, [(x, "m") for x in (a, b, c)], T0)
    run_until_idle(jctx, T0)
    _event(jctx, a, "JT Clicked", T0 + timedelta(minutes=30))
    _event(jctx, c, "JT Clicked", T0 + timedelta(minutes=31))
    tick(jctx, T0 + timedelta(minutes=40))  # the event wakes a and c at once (no wait for the timeout)
    es = {e.customer_id: e for e in _entries(jctx, jid)}
    assert es[a].node_id == "hit" and es[c].node_id == "hit" and es[b].node_id == "we"
    _event(jctx, c, "JT Purchased", T0 + timedelta(minutes=50))
    tick(jctx, T0 + timedelta(minutes=60))  # goal: c leaves early from the 10-hour wait
    tick(jctx, T0 + timedelta(minutes=121))  # b times out
    es = {e.customer_id: e for e in _entries(jctx, jid)}
    assert (es[c].status, es[c].exit_reason, es[c].goal_at) == ("exited", "goal", T0 + timedelta(minutes=50))
    assert (es[b].status, es[b].node_id, es[b].exit_reason) == ("exited", "miss", "completed")
    assert es[a].status == "active" and es[a].node_id == "hit"
    st = journey_stats(jctx, op, jid)
    assert st["goal_reached"] == 1 and {n["id"]: n for n in st["nodes"]}["we"]["passed"] == {"event": 2, "timeout": 1}


def test_reentry_rules_and_dedup_keys(jctx: Context, op: User) -> None:
    ids = _ids(jctx)[20:22]
    pairs = [(c, "k1") for c in ids]
    once = _journey(jctx, op, _linear({"id": "w", "kind": "wait", "minutes": 10}))
    assert enter_customers(jctx, BRAND, once, pairs, T0) == 2
    assert enter_customers(jctx, BRAND, once, [(c, "k2") for c in ids], T0) == 0  # once: never again
    after_exit = _journey(jctx, op, _linear({"id": "w", "kind": "wait", "minutes": 10}, reentry={"mode": "after_exit"}))
    assert enter_customers(jctx, BRAND, after_exit, pairs, T0) == 2
    assert enter_customers(jctx, BRAND, after_exit, [(c, "k2") for c in ids], T0) == 0  # still inside
    run_until_idle(jctx, T0 + timedelta(minutes=10))
    assert enter_customers(jctx, BRAND, after_exit, pairs, T0) == 0  # same dedup key: the same entry
    assert enter_customers(jctx, BRAND, after_exit, [(c, "k2") for c in ids], T0) == 2
    days = _journey(
        jctx,
        op,
        _linear(
            {"id": "x", "kind": "exit"},
            start="x",
            nodes=[{"id": "x", "kind": "exit"}],
            edges=[],
            reentry={"mode": "after_days", "days": 3},
        ),
    )
    assert enter_customers(jctx, BRAND, days, pairs, T0) == 2
    run_until_idle(jctx, T0)
    assert enter_customers(jctx, BRAND, days, [(c, "k2") for c in ids], T0 + timedelta(days=2)) == 0
    assert enter_customers(jctx, BRAND, days, [(c, "k3") for c in ids], T0 + timedelta(days=3, seconds=1)) == 2


def test_guards_cap_across_journeys_quiet_hours_and_suppression(jctx: Context, op: User, tmp_path: Path) -> None:
    ids = _ids(jctx)[180:184]  # not touched by the tests before (the cap counts every journey)
    guards = {"frequency_cap": {"max": 2, "per_days": 7}, "quiet_hours": {"start": "21:00", "end": "09:00"}}
    send = {"type": "send", "channel": "sms", "content": "x"}
    j1 = _journey(
        jctx,
        op,
        _linear(
            {"id": "s1", "kind": "action", "action": send},
            {"id": "s2", "kind": "action", "action": send},
            guards=guards,
        ),
    )
    j2 = _journey(jctx, op, _linear({"id": "s3", "kind": "action", "action": send}, guards=guards))
    with jctx.sessions() as s, s.begin():
        s.add(JourneySuppressionRow(brand_id=BRAND, customer_id=ids[3], channel="sms", reason="退订"))
    night = datetime(2026, 11, 20, 14, 0)  # 22:00 Shanghai: quiet
    enter_customers(jctx, BRAND, j1, [(c, "m") for c in ids], night)
    run_until_idle(jctx, night)
    es = _entries(jctx, j1)
    assert {e.node_id for e in es} == {"s1"} and {e.wake_at for e in es} == {datetime(2026, 11, 21, 1, 0)}
    morning = datetime(2026, 11, 21, 1, 0)  # 09:00 Shanghai
    run_until_idle(jctx, morning)
    enter_customers(jctx, BRAND, j2, [(c, "m") for c in ids], morning)
    run_until_idle(jctx, morning)
    with jctx.sessions() as s:
        out = s.execute(
            select(JourneyStepRow.node_id, JourneyStepRow.outcome, JourneyEntryRow.customer_id)
            .join(JourneyEntryRow, JourneyEntryRow.id == JourneyStepRow.entry_id)
            .where(JourneyEntryRow.journey_id.in_((j1, j2)), JourneyStepRow.node_id.in_(("s1", "s2", "s3")))
        ).all()
        effects = s.scalar(select(JourneyEffectRow.key).where(JourneyEffectRow.customer_id == ids[3]))
    got = {(n, c): o for n, o, c in out}
    for c in ids[:3]:  # two touches allowed in 7 days, the third (other journey) is capped
        assert (got[("s1", c)], got[("s2", c)], got[("s3", c)]) == ("ok", "ok", "capped")
    assert {got[(n, ids[3])] for n in ("s1", "s2", "s3")} == {"suppressed"} and effects is None


def test_pause_holds_and_a_new_version_drains_the_old(jctx: Context, op: User) -> None:
    v1 = _linear(
        {"id": "w", "kind": "wait", "minutes": 30},
        {"id": "t1", "kind": "action", "action": {"type": "tag", "tag": "v1"}},
    )
    jid = _journey(jctx, op, v1)
    ids = _ids(jctx)[40:44]
    enter_customers(jctx, BRAND, jid, [(c, "m") for c in ids[:2]], T0)
    run_until_idle(jctx, T0)
    jdef.set_status(jctx, op, jid, "paused")
    assert run_until_idle(jctx, T0 + timedelta(hours=1)) == 0  # held
    assert enter_customers(jctx, BRAND, jid, [(ids[2], "m")], T0) == 0  # no new entries while paused
    jdef.set_status(jctx, op, jid, "active")
    v2 = _linear(
        {"id": "w", "kind": "wait", "minutes": 30},
        {"id": "t2", "kind": "action", "action": {"type": "tag", "tag": "v2"}},
    )
    jdef.update_journey(jctx, op, jid, definition=v2)
    jdef.publish(jctx, op, jid, now=T0)
    enter_customers(jctx, BRAND, jid, [(c, "m") for c in ids[2:]], T0)
    run_until_idle(jctx, T0 + timedelta(hours=1))
    with jctx.sessions() as s:
        rows = s.execute(
            select(JourneyEntryRow.customer_id, JourneyEntryRow.version, JourneyStepRow.node_id)
            .join(JourneyStepRow, JourneyStepRow.entry_id == JourneyEntryRow.id)
            .where(JourneyEntryRow.journey_id == jid, JourneyStepRow.node_id.in_(("t1", "t2")))
        ).all()
    assert sorted(rows) == sorted([(c, 1, "t1") for c in ids[:2]] + [(c, 2, "t2") for c in ids[2:]])
    assert journey_stats(jctx, op, jid, version=1)["exited"] == 2


def test_start_journey_and_guide_tasks_are_their_own(jctx: Context, op: User) -> None:
    target = _journey(
        jctx,
        op,
        _linear({"id": "t", "kind": "action", "action": {"type": "task", "title": "跟进", "task_kind": "visit"}}),
    )
    jid = _journey(
        jctx, op, _linear({"id": "go", "kind": "action", "action": {"type": "start_journey", "journey_id": target}})
    )
    guide = _user(jctx, f"{BRAND}.guide1")
    theirs = [c for c, g in facts.guides_of(jctx, BRAND, _ids(jctx)).items() if g == guide.guide_id][:3]
    other = [c for c, g in facts.guides_of(jctx, BRAND, _ids(jctx)).items() if g != guide.guide_id][:3]
    enter_customers(jctx, BRAND, jid, [(c, "m") for c in theirs + other], T0)
    run_until_idle(jctx, T0)
    assert len(_entries(jctx, target)) == 6
    seen = list_tasks(jctx, guide, status="open", page_size=500)["items"]
    assert {t["customer_id"] for t in seen if t["journey_id"] == target} == set(theirs)
    assert all(t["guide_id"] == guide.guide_id for t in seen)
    mine = next(t for t in seen if t["journey_id"] == target)
    foreign = next(
        t
        for t in list_tasks(jctx, op, page_size=500)["items"]
        if t["journey_id"] == target and t["customer_id"] in other
    )
    with pytest.raises(Exception, match="not one of your tasks"):
        finish_task(jctx, guide, foreign["id"], "done")
    assert finish_task(jctx, guide, mine["id"], "done", "已电话")["status"] == "done"
    with pytest.raises(Exception, match="done already"):
        finish_task(jctx, guide, mine["id"], "skipped")
    with pytest.raises(Forbidden):
        jdef.create_journey(jctx, guide, "x", _linear({"id": "w", "kind": "wait", "minutes": 5}))


def test_event_segment_date_and_cadence_triggers(jctx: Context, op: User) -> None:
    ids = _ids(jctx)[60:64]
    ev = _journey(
        jctx,
        op,
        _linear(
            {"id": "w", "kind": "wait", "minutes": 5},
            trigger={
                "kind": "event",
                "event": "JT Booked",
                "where": [{"property": "store", "op": "eq", "value": "s1"}],
            },
            reentry={"mode": "after_exit"},
        ),
    )
    _event(jctx, ids[0], "JT Booked", T0 - timedelta(minutes=10), {"store": "s1"})
    _event(jctx, ids[1], "JT Booked", T0 - timedelta(minutes=10), {"store": "s2"})  # filtered out
    _event(jctx, ids[2], "JT Booked", T0 - timedelta(hours=3), {"store": "s1"})  # before publishing
    tick(jctx, T0)
    assert {e.customer_id for e in _entries(jctx, ev)} == {ids[0]}
    tick(jctx, T0 + timedelta(minutes=1))  # the same event does not enter twice
    assert len(_entries(jctx, ev)) == 1
    # date: 15 days before the birthday
    bday = jctx.warehouse.fetch(
        "SELECT customer_id, birthday FROM customers WHERE brand_id = ? AND birthday IS NOT NULL LIMIT 1", [BRAND]
    )
    assert bday, "the demo brand has birthdays"
    cid, born = bday[0]
    dt = _journey(
        jctx,
        op,
        _linear(
            {"id": "w", "kind": "wait", "minutes": 5},
            trigger={"kind": "date", "field": "birthday", "offset_days": -15, "annual": True},
        ),
    )
    day = datetime(2026, born.month, born.day, 2, 0) - timedelta(days=15)
    with jctx.sessions() as s, s.begin():
        from siyu.stores.state.journey_models import JourneyRow

        r = s.get(JourneyRow, dt)
        assert r is not None
        r.cursor = {"day": (day - timedelta(days=1)).date().isoformat()}
    tick(jctx, day)
    entered = {e.customer_id for e in _entries(jctx, dt)}
    assert cid in entered
    same = jctx.warehouse.fetch(
        "SELECT count(*) FROM customers WHERE brand_id = ? AND month(birthday) = ? AND day(birthday) = ?",
        [BRAND, born.month, born.day],
    )[0][0]
    assert len(entered) == same
    # cadence: every 3 days, the whole brand
    cad = _journey(
        jctx,
        op,
        _linear(
            {"id": "x", "kind": "wait", "minutes": 1},
            trigger={"kind": "cadence", "every_days": 3, "start": "2026-11-01"},
            reentry={"mode": "after_exit"},
        ),
    )
    tick(jctx, T0)
    tick(jctx, T0 + timedelta(hours=1))  # same period: nobody again
    assert len(_entries(jctx, cad)) == len(_ids(jctx))
    tick(jctx, T0 + timedelta(days=3))
    assert len(_entries(jctx, cad)) == 2 * len(_ids(jctx))


def test_channel_daily_cap_allows_one_wecom_mass_message_per_local_day(jctx: Context, op: User) -> None:
    ids = _ids(jctx)[190:192]
    mass = {"type": "send", "channel": "wecom_mass", "content": "大促预热"}
    d = _linear(
        {"id": "m1", "kind": "action", "action": mass},
        {"id": "m2", "kind": "action", "action": mass},
        {"id": "w", "kind": "wait", "mode": "time_of_day", "at": "09:00", "use_active_hours": False},
        {"id": "m3", "kind": "action", "action": mass},
        guards={"channel_daily_caps": {"wecom_mass": 1}},
    )
    jid = _journey(jctx, op, d)
    enter_customers(jctx, BRAND, jid, [(c, "m") for c in ids], T0)
    run_until_idle(jctx, T0)  # 10:00 local: m1 sends, m2 is capped for today, the wait goes to 09:00 tomorrow
    run_until_idle(jctx, T0 + timedelta(days=1))
    with jctx.sessions() as s:
        got = s.execute(
            select(JourneyStepRow.node_id, JourneyStepRow.outcome)
            .join(JourneyEntryRow, JourneyEntryRow.id == JourneyStepRow.entry_id)
            .where(JourneyEntryRow.journey_id == jid, JourneyStepRow.node_id.in_(("m1", "m2", "m3")))
        ).all()
    assert sorted(got) == sorted([("m1", "ok"), ("m2", "channel_capped"), ("m3", "ok")] * 2)


def test_start_journey_into_an_inactive_journey_is_a_failed_effect(jctx: Context, op: User) -> None:
    target = _journey(jctx, op, _linear({"id": "w", "kind": "wait", "minutes": 5}), publish=False)  # a draft
    jid = _journey(
        jctx, op, _linear({"id": "go", "kind": "action", "action": {"type": "start_journey", "journey_id": target}})
    )
    cid = _ids(jctx)[195]
    enter_customers(jctx, BRAND, jid, [(cid, "m")], T0)
    run_until_idle(jctx, T0)
    with jctx.sessions() as s:
        eff = s.scalars(select(JourneyEffectRow).where(JourneyEffectRow.journey_id == jid)).one()
    assert (eff.status, eff.error) == ("failed", f"journey {target!r} not found or not active")
    assert _entries(jctx, target) == [] and _entries(jctx, jid)[0].exit_reason == "completed"


def test_wait_for_a_segment_condition_is_checked_until_the_timeout(jctx: Context, op: User) -> None:
    flag = {"kind": "trait", "field": "traits.jt_ready", "op": "eq", "value": "yes"}
    d = {
        "trigger": {"kind": "manual"},
        "start": "ws",
        "nodes": [
            {"id": "ws", "kind": "wait_segment", "condition": flag, "check_minutes": 60, "timeout_minutes": 180},
            {"id": "yes", "kind": "exit"},
            {"id": "no", "kind": "exit"},
        ],
        "edges": [{"from": "ws", "to": "yes", "branch": "matched"}, {"from": "ws", "to": "no", "branch": "timeout"}],
    }
    jid = _journey(jctx, op, d)
    a, b = _ids(jctx)[196:198]
    enter_customers(jctx, BRAND, jid, [(a, "m"), (b, "m")], T0)
    run_until_idle(jctx, T0)
    assert {e.wake_at for e in _entries(jctx, jid)} == {T0 + timedelta(minutes=60)}  # next check in an hour
    with jctx.warehouse.write_lock, jctx.warehouse.transaction() as cur:
        cur.execute(
            "UPDATE customers SET traits = json_merge_patch(coalesce(traits, '{}'::JSON), "
            '\'{"jt_ready": "yes"}\'::JSON) WHERE brand_id = ? AND customer_id = ?',
            [BRAND, a],
        )
    run_until_idle(jctx, T0 + timedelta(minutes=60))
    es = {e.customer_id: e for e in _entries(jctx, jid)}
    assert (es[a].status, es[a].node_id) == ("exited", "yes") and es[b].wake_at == T0 + timedelta(minutes=120)
    run_until_idle(jctx, T0 + timedelta(minutes=180))
    es = {e.customer_id: e for e in _entries(jctx, jid)}
    assert (es[b].status, es[b].node_id) == ("exited", "no")
    bad = json.loads(json.dumps(d))
    bad["nodes"][0]["condition"] = {"kind": "trait", "field": "nope"}
    with pytest.raises(Exception) as exc:
        jdef.validate(bad)
    assert exc.value.errors[0]["node_id"] == "ws" and exc.value.errors[0]["field"] == "condition.field"  # type: ignore[attr-defined]
