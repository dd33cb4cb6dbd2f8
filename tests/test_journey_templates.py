"""The win-back and new-contact templates end to end on a small seeded demo brand: the audience segment, the
journey triggered on it, guide tasks, coupons, channel tags, sends, the holdout, goal exits and the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.cli.main import app as cli_app
from siyu.config import Settings
from siyu.services import brands
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys import facts
from siyu.services.journeys.scheduled import tick
from siyu.services.journeys.senders import RecordingSender, register_sender, unregister_sender
from siyu.services.journeys.stats import journey_stats
from siyu.services.journeys.templates import build, create_from_template
from siyu.stores.state.journey_models import JourneyEffectRow, JourneyEntryRow, JourneyTaskRow

BRAND = "tpl"
# 10:00 Shanghai tomorrow (outside quiet hours, after the segment refresh stamps members with the real clock)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, hour=2, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def tctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("jtpl") / "data"))
    seed_demo(c, DemoConfig(customers=1000, brand_id=BRAND))
    yield c
    c.close()


@pytest.fixture(scope="module")
def op(tctx: Context) -> User:
    return next(brands.get_user(tctx, i) for i in range(1, 30) if brands.get_user(tctx, i).username == "tpl.operator")


def _entries(ctx: Context, jid: str) -> dict[str, JourneyEntryRow]:
    with ctx.sessions() as s:
        return {e.customer_id: e for e in s.scalars(select(JourneyEntryRow).where(JourneyEntryRow.journey_id == jid))}


def _members(ctx: Context, segment_id: str) -> set[str]:
    rows = ctx.warehouse.fetch(
        "SELECT customer_id FROM segment_members WHERE brand_id = ? AND segment_id = ? AND exited_at IS NULL",
        [BRAND, segment_id],
    )
    return {r[0] for r in rows}


def test_win_back_template(tctx: Context, op: User) -> None:
    j = create_from_template(tctx, op, "win_back", "重要挽留唤醒")
    seg = j.definition["trigger"]["segment_id"]
    members = _members(tctx, seg)
    ids = [r[0] for r in tctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id = ?", [BRAND])]
    assert members == facts.matching(tctx, BRAND, build(tctx, BRAND, "win_back", {})["segment"], ids)
    assert len(members) >= 10, len(members)
    jdef.publish(tctx, op, j.id, now=T0)
    tick(tctx, T0 + timedelta(minutes=1))  # the current members enter (include_current)
    es = _entries(tctx, j.id)
    assert set(es) == members
    st = journey_stats(tctx, op, j.id)
    arms = {a["arm"]: a["customers"] for a in st["experiments"][0]["arms"]}
    assert arms["win_back"] + arms["holdout"] == len(members) and arms["holdout"] < arms["win_back"]
    treated = {c for c, e in es.items() if e.arm == "ab:win_back"}
    with tctx.sessions() as s:
        tasks = list(s.scalars(select(JourneyTaskRow).where(JourneyTaskRow.journey_id == j.id)))
        coupons = list(
            s.scalars(
                select(JourneyEffectRow).where(JourneyEffectRow.journey_id == j.id, JourneyEffectRow.kind == "coupon")
            )
        )
    guides = facts.guides_of(tctx, BRAND, sorted(treated))
    assert {t.customer_id for t in tasks} == treated and all(t.guide_id == guides.get(t.customer_id) for t in tasks)
    assert all(t.kind == "call" and "好久不见" in t.script for t in tasks)
    assert {c.customer_id for c in coupons} == treated and {c.status for c in coupons} == {"done"}  # placeholder
    assert all(es[c].node_id == "window" for c in members)
    # a treated customer orders: the goal ends their stay early; the rest leave after the 14-day window
    buyer = sorted(treated)[0]
    uid = "tpl-u-" + buyer
    at = T0 + timedelta(days=2)
    with tctx.warehouse.write_lock, tctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identities VALUES (?, 'user_id', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [BRAND, uid, buyer, at, at],
        )
        cur.execute(
            "INSERT INTO events (brand_id, message_id, type, event, user_id, properties, timestamp, received_at) "
            "VALUES (?, ?, 'track', 'Order Completed', ?, '{\"revenue\": 199.5}', ?, ?)",
            [BRAND, uuid.uuid4().hex, uid, at, at],
        )
    tick(tctx, at + timedelta(minutes=1))
    es = _entries(tctx, j.id)
    assert (es[buyer].exit_reason, es[buyer].goal_at, es[buyer].goal_value) == ("goal", at, 199.5)
    assert sum(e.status == "active" for e in es.values()) == len(members) - 1
    tick(tctx, T0 + timedelta(days=15))
    es = _entries(tctx, j.id)
    assert {e.exit_reason for c, e in es.items() if c != buyer} == {"completed"}
    st = journey_stats(tctx, op, j.id)
    assert st["goal_reached"] == 1 and st["exits"] == {"goal": 1, "completed": len(members) - 1}
    assert st["goal_value"] == 199.5  # the order's revenue is attributed to the journey (and to its arm)
    assert {a["arm"]: a["revenue"] for a in st["experiments"][0]["arms"]} == {"win_back": 199.5, "holdout": 0.0}
    conv = {a["arm"]: a["conversions"] for a in st["experiments"][0]["arms"]}
    assert conv == {"win_back": 1, "holdout": 0} and st["experiments"][0]["verdict"]["decision"] == "too_early"


def test_new_contact_template(tctx: Context, op: User, tmp_path: Path) -> None:
    j = create_from_template(tctx, op, "new_contact", "新客欢迎", {"new_days": 60})
    seg = j.definition["trigger"]["segment_id"]
    members = _members(tctx, seg)
    assert len(members) >= 5, len(members)
    sender = RecordingSender(tmp_path / "wecom.sqlite")
    register_sender("wecom_1to1", sender)
    try:
        jdef.publish(tctx, op, j.id, now=T0)
        tick(tctx, T0 + timedelta(minutes=1))
        es = _entries(tctx, j.id)
        assert set(es) == members and {e.node_id for e in es.values()} == {"wait3"}
        sent = sender.sent()
        assert len(sent) == 2 * len(members)  # welcome + group invitation, each once per customer
        assert {c for _, _, c, _ in sent} == members
        # one channel tag per customer who came through a channel
        for ch in build(tctx, BRAND, "new_contact", {"new_days": 60})["journey"]["nodes"][1]["branches"]:
            who = facts.matching(tctx, BRAND, ch["condition"], sorted(members))
            tagged = tctx.warehouse.fetch(
                "SELECT DISTINCT i.customer_id FROM identifier_tags t JOIN identities i ON i.brand_id = t.brand_id "
                "AND i.id_type = t.id_type AND i.id_value = t.id_value WHERE t.brand_id = ? AND t.tag_id = ?",
                [BRAND, "journey:渠道:" + ch["name"]],
            )
            assert {r[0] for r in tagged} == who
        tick(tctx, T0 + timedelta(days=3, minutes=2))
    finally:
        unregister_sender("wecom_1to1")
    es = _entries(tctx, j.id)
    no_purchase = facts.matching(
        tctx, BRAND, {"kind": "lifecycle", "stages": ["new_no_purchase"], "new_days": 63}, sorted(members)
    )
    with tctx.sessions() as s:
        offered = set(
            s.scalars(
                select(JourneyEffectRow.customer_id).where(
                    JourneyEffectRow.journey_id == j.id, JourneyEffectRow.node_id == "offer"
                )
            )
        )
    assert offered == no_purchase and {e.status for e in es.values()} == {"exited"}


def test_template_errors_and_cli(tctx: Context, op: User, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SiyuError, match="unknown template"):
        create_from_template(tctx, op, "lottery", "x")
    with pytest.raises(SiyuError, match="bad template parameters"):
        create_from_template(tctx, op, "win_back", "x", {"colour": "red"})
    monkeypatch.setenv("SIYU_DATA_DIR", str(tctx.settings.data_dir))
    r = CliRunner().invoke(
        cli_app, ["journeys", "template", BRAND, "win_back", "CLI 挽留", "--params", json.dumps({"p_alive_below": 0.2})]
    )
    assert r.exit_code == 0, r.output
    assert r.output.split()[1] == "draft"
