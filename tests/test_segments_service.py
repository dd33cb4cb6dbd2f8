"""Segment storage (versions; Alembic on SQLite and PostgreSQL), materialised membership with entered/exited
across refreshes, the schedule registry (unit and through the real Huey consumer), the lookalike model."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from siyu.domain import lookalike as model
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services import segments as svc
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound
from siyu.stores.state.db import MIGRATIONS_DIR, alembic_config
from siyu.workers import start_consumer
from siyu.workers.schedule import SCHEDULES, Schedule, Scheduler, queue_runner

BRAND = "segs"


def admin(brand: str = BRAND) -> User:
    return User(0, brand, "op", "op", Role.OPERATOR, None, "zh")


def put_customers(ctx: Context, rows: dict[str, str]) -> None:
    """Replace the brand's customers with ``{customer_id: city}``."""
    with ctx.warehouse.transaction() as cur:
        cur.execute("DELETE FROM customers WHERE brand_id = ?", [BRAND])
        for cid, city in rows.items():
            cur.execute(
                "INSERT INTO customers (brand_id, customer_id, name, city, traits) VALUES (?, ?, ?, ?, '{}')",
                [BRAND, cid, cid.upper(), city],
            )


# --- storage & migration ----------------------------------------------------------------------------------------


def test_versions_and_migration_on_both_state_backends(any_ctx: Context) -> None:
    with any_ctx.engine.connect() as con:
        tables = set(sa.inspect(con).get_table_names())
        head = con.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    script_head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert {"segments", "segment_versions"} <= tables and head == script_head

    brands.create_brand(any_ctx, BRAND, "Segments")
    user = admin()
    first = {"kind": "trait", "field": "city", "value": "上海"}
    info = svc.create_segment(any_ctx, user, "上海客户", first, description="city")
    assert (info.version, info.definition, info.member_count) == (1, first, 0)
    with pytest.raises(Conflict) as dup:
        svc.create_segment(any_ctx, user, "上海客户", first)
    assert dup.value.field == "name"

    second = {"kind": "trait", "field": "city", "op": "in", "value": ["上海", "杭州"]}
    assert svc.update_segment(any_ctx, user, info.id, definition=first).version == 1  # same definition: no version
    updated = svc.update_segment(any_ctx, user, info.id, name="沪杭客户", definition=second)
    assert (updated.version, updated.name, updated.definition) == (2, "沪杭客户", second)
    assert [v["definition"] for v in svc.versions(any_ctx, user, info.id)] == [first, second]
    assert [s.id for s in svc.list_segments(any_ctx, user)] == [info.id]

    with pytest.raises(Forbidden):
        svc.create_segment(any_ctx, User(0, BRAND, "g", "g", Role.GUIDE, "g01", "zh"), "x", first)
    with pytest.raises(NotFound):
        svc.get_segment(any_ctx, admin("other"), info.id)  # another brand's segment is invisible
    svc.delete_segment(any_ctx, user, info.id)
    assert svc.list_segments(any_ctx, user) == []
    with any_ctx.engine.connect() as con:
        assert con.execute(sa.text("SELECT count(*) FROM segment_versions")).scalar() == 2


def test_migration_downgrades_and_upgrades_on_sqlite(ctx: Context) -> None:
    cfg = alembic_config(ctx.engine)
    command.downgrade(cfg, "0002_webhook_deliveries")
    with ctx.engine.connect() as con:
        assert "segments" not in sa.inspect(con).get_table_names()
    command.upgrade(cfg, "head")
    with ctx.engine.connect() as con:
        assert {"segments", "segment_versions"} <= set(sa.inspect(con).get_table_names())


# --- materialisation ----------------------------------------------------------------------------------------------


def stays(ctx: Context, segment_id: str) -> list[tuple[str, Any, Any]]:
    h = svc.history(ctx, BRAND, segment_id).sort_values(["customer_id", "entered_at"])
    return [
        (
            r.customer_id,
            r.entered_at.to_pydatetime(),
            None if str(r.exited_at) == "NaT" else r.exited_at.to_pydatetime(),
        )
        for r in h.itertuples()
    ]


def test_entered_and_exited_across_refreshes(ctx: Context) -> None:
    brands.create_brand(ctx, BRAND, "Segments")
    put_customers(ctx, {"a": "上海", "b": "上海", "c": "杭州"})
    user = admin()
    seg = svc.create_segment(ctx, user, "上海", {"kind": "trait", "field": "city", "value": "上海"}, refresh=False)
    t1, t2, t3 = datetime(2026, 11, 1, 2), datetime(2026, 11, 1, 3), datetime(2026, 11, 1, 4)

    r1 = svc.refresh_segment(ctx, BRAND, seg.id, now=t1)
    assert (r1["members"], r1["entered"], r1["exited"]) == (2, 2, 0)
    assert stays(ctx, seg.id) == [("a", t1, None), ("b", t1, None)]

    put_customers(ctx, {"a": "北京", "b": "上海", "c": "上海"})  # a leaves, c comes in, b stays
    r2 = svc.refresh_segment(ctx, BRAND, seg.id, now=t2)
    assert (r2["members"], r2["entered"], r2["exited"]) == (2, 1, 1)
    assert stays(ctx, seg.id) == [("a", t1, t2), ("b", t1, None), ("c", t2, None)]
    assert [e["customer_id"] for e in svc.entries_since(ctx, BRAND, seg.id, t2)] == ["c"]

    put_customers(ctx, {"a": "上海", "b": "上海", "c": "上海"})  # a comes back: a new stay
    r3 = svc.refresh_segment(ctx, BRAND, seg.id, now=t3)
    assert (r3["members"], r3["entered"], r3["exited"]) == (3, 1, 0)
    assert stays(ctx, seg.id) == [("a", t1, t2), ("a", t3, None), ("b", t1, None), ("c", t2, None)]
    assert svc.refresh_segment(ctx, BRAND, seg.id, now=t3)["entered"] == 0  # idempotent
    page = svc.members(ctx, user, seg.id, page_size=2)
    assert page["total"] == 3 and [i["customer_id"] for i in page["items"]] == ["a", "c"]  # newest entries first
    assert svc.get_segment(ctx, user, seg.id).member_count == 3

    # a new version is applied at the next refresh; the members who still match keep their stay
    svc.update_segment(
        ctx, user, seg.id, definition={"kind": "trait", "field": "customer_id", "op": "in", "value": ["b"]}
    )
    assert stays(ctx, seg.id)[2] == ("b", t1, None)
    svc.delete_segment(ctx, user, seg.id)
    assert all(exited is not None for _, _, exited in stays(ctx, seg.id))


# --- schedule ---------------------------------------------------------------------------------------------------


def test_scheduler_runs_due_jobs_on_time(ctx: Context) -> None:
    calls: list[str] = []
    now = [1000.0]

    def runner(_ctx: Context, target: str) -> None:
        if target.endswith(":boom"):
            raise RuntimeError("boom")
        calls.append(target)

    jobs = (Schedule("a", 10, "m:a"), Schedule("b", 30, "m:b"), Schedule("bad", 10, "m:boom"))
    s = Scheduler(ctx, jobs, runner=runner, clock=lambda: now[0])
    assert s.tick(1000.0 + 9 * 60) == []
    assert s.tick(1000.0 + 10 * 60) == ["a"]  # the failing job is logged, the others still run
    assert s.tick(1000.0 + 15 * 60) == []
    assert s.tick(1000.0 + 30 * 60) == ["a", "b"]
    assert calls == ["m:a", "m:a", "m:b"] and s.runs == {"a": 2, "b": 1, "bad": 0}
    assert any(x.target == "siyu.services.segments:refresh_all" for x in SCHEDULES)
    with pytest.raises(ValueError):
        Scheduler(ctx, (Schedule("x", 0, "m:f"),))


def test_scheduled_refresh_runs_on_the_huey_consumer(ctx: Context) -> None:
    brands.create_brand(ctx, BRAND, "Segments")
    put_customers(ctx, {"a": "上海", "b": "杭州"})
    seg = svc.create_segment(ctx, admin(), "上海", {"kind": "trait", "field": "city", "value": "上海"}, refresh=False)
    consumer = start_consumer(ctx)
    try:
        job = next(x for x in SCHEDULES if x.name == "segments.refresh")
        Scheduler(ctx, (job,), runner=queue_runner).tick(time.monotonic() + job.every_minutes * 60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and svc.get_segment(ctx, admin(), seg.id).refreshed_at is None:
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)
    assert svc.get_segment(ctx, admin(), seg.id).member_count == 1


# --- lookalike model ----------------------------------------------------------------------------------------------


def test_lookalike_lift_real_signal_vs_random_seed() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    x = rng.normal(size=(n, 6))
    logit = -3.0 + 1.6 * x[:, 0] - 1.2 * x[:, 1]  # a real pattern on two features
    seed = rng.random(n) < 1 / (1 + np.exp(-logit))
    signal = model.evaluate(x, seed, holdout=0.3, rng_seed=1)
    assert signal.lift > 2.5, signal
    assert signal.hidden == round(seed.sum() * 0.3)

    lifts = [model.evaluate(x, rng.random(n) < 0.1, holdout=0.3, rng_seed=k).lift for k in range(5)]
    assert 0.6 < float(np.mean(lifts)) < 1.4, lifts  # no pattern: about what a random pick finds

    m = model.fit(x, seed)
    assert m.weights[0] > 0 > m.weights[1] and abs(m.weights[0]) > 5 * abs(m.weights[4])
    with pytest.raises(ValueError):
        model.fit(x, np.zeros(n, dtype=bool))


def test_default_as_of_is_the_day_after_the_data(ctx: Context) -> None:
    brands.create_brand(ctx, BRAND, "Segments")
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount) "
            "VALUES (?, 'o1', 'phone', '+8613800138000', '2026-05-04 10:00:00', 10)",
            [BRAND],
        )
    assert svc.default_as_of(ctx, BRAND) == date(2026, 5, 5)


def test_tag_conditions_any_all_by_id_or_name(ctx: Context) -> None:
    brands.create_brand(ctx, BRAND, "Segments")
    put_customers(ctx, {"a": "上海", "b": "上海", "c": "杭州", "d": "杭州"})
    ids = {"a": [("phone", "+8613800000001"), ("unionid", "u_a")], "b": [("phone", "+8613800000002")], "c": []}
    attached = [("phone", "+8613800000001", "t_vip"), ("unionid", "u_a", "t_new"), ("phone", "+8613800000002", "t_vip")]
    attached += [("phone", "+8613800000009", "t_new")]  # an identifier OneID has not resolved: nobody's
    with ctx.warehouse.transaction() as cur:
        for cid, pairs in ids.items():
            for t, v in pairs:
                cur.execute(
                    "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES (?, ?, ?, ?)",
                    [BRAND, t, v, cid],
                )
        for tag_id, name in (("t_vip", "VIP会员"), ("t_new", "新客")):
            cur.execute("INSERT INTO tags VALUES (?, ?, ?, 'manual', NULL)", [BRAND, tag_id, name])
        for t, v, tag in attached:
            cur.execute("INSERT INTO identifier_tags VALUES (?, ?, ?, ?, 'manual', '2026-01-01')", [BRAND, t, v, tag])
    # the reference, by hand: customer → tag ids through identities
    owner = {(t, v): cid for cid, pairs in ids.items() for t, v in pairs}
    has: dict[str, set[str]] = {}
    for t, v, tag in attached:
        if (t, v) in owner:
            has.setdefault(owner[(t, v)], set()).add(tag)
    user = admin()

    def count_ids(definition: dict[str, Any]) -> set[str]:
        out = svc.preview(ctx, user, definition, as_of="2026-11-01", sample=200)
        return {s["customer_id"] for s in out["sample"]}

    assert count_ids({"kind": "tag", "tags": ["VIP会员"]}) == {c for c, tags in has.items() if "t_vip" in tags}
    assert count_ids({"kind": "tag", "tags": ["t_new", "VIP会员"], "match": "all"}) == {
        c for c, tags in has.items() if {"t_new", "t_vip"} <= tags
    }
    assert count_ids({"kind": "tag", "tags": ["t_new"]}) == {"a"}
    assert count_ids({"kind": "not", "condition": {"kind": "tag", "tags": ["t_vip"]}}) == {"c", "d"}
    assert count_ids({"kind": "identity", "id_type": "unionid"}) == {"a"}


def test_the_app_runs_the_scheduler_while_serving(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from siyu.api.app import create_app
    from tests.support.live import live_server

    def running() -> bool:
        return any(t.name == "siyu-scheduler" and t.is_alive() for t in threading.enumerate())

    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")
    with live_server(create_app(ctx, with_console=False)):
        assert running()
    assert not running()
    monkeypatch.setenv("SIYU_SCHEDULER", "off")
    with live_server(create_app(ctx, with_console=False)):
        assert not running()
