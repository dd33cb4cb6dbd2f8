"""Inheritance (在职/离职继承) against the local WeCom server over HTTP: chunks of 100, pending until the server's
clock passes 24 h, relations moved (lost_by=transfer, add_way 202), the third transfer in 90 days refused with its
reason, and a transfer_fail callback through a live siyu app marking the customer refused."""

from __future__ import annotations

import time
from typing import Any

from siyu.api.app import create_app
from siyu.services.context import Context
from siyu.services.wecom import inheritance
from tests.support.live import live_server
from tests.test_wecom_ops_env import ADMIN, KEY, TOKEN, wecom_brand
from tests.wecom_server import actions


def rel(ctx: Context, ext: str) -> dict[str, tuple[Any, ...]]:
    rows = ctx.warehouse.fetch(
        "SELECT guide_id, state, lost_by, add_way FROM relations WHERE brand_id = 'acme' AND external_userid = ?",
        [ext],
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def wait_for(fn: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out := fn():
            return out
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_transfer_pending_then_done_and_90_day_limit(ctx: Context) -> None:
    with wecom_brand(ctx, guides=3, per_guide=105) as env:
        mine = sorted(e for u, e in env.srv.company.relations if u == "guide0001")
        t = inheritance.start(ctx, ADMIN, "g1", "g2")
        assert env.srv.counts["transfer_customer"] == 2  # 100 + 5
        assert t["customers"] == 105 and t["totals"]["waiting"] == 105
        t = inheritance.refresh(ctx, ADMIN, t["id"])
        assert t["totals"]["waiting"] == 105
        assert rel(ctx, mine[0])["g1"][0] == "active" and "g2" not in rel(ctx, mine[0])  # pending: nothing moved
        env.srv.advance(86_400 + 5)
        t = inheritance.refresh(ctx, ADMIN, t["id"])
        assert t["totals"]["done"] == 105 and t["totals"]["waiting"] == 0
        r = rel(ctx, mine[0])
        assert r["g1"][:2] == ("lost", "transfer") and r["g2"] == ("active", None, "202")
        assert all(c["takeover_at"] for c in t["customer_rows"][:5])

        # second transfer of mine[0] (back, as 离职继承), then a third within 90 days: refused with the reason
        seg = env.segment([mine[0]], "回转")
        back = inheritance.start(ctx, ADMIN, "g2", "g1", segment_id=seg, resigned=True)
        assert env.srv.counts["resigned/transfer_customer"] == 1 and back["totals"]["waiting"] == 1
        env.srv.advance(86_400 + 5)
        assert inheritance.refresh(ctx, ADMIN, back["id"])["totals"]["done"] == 1
        third = inheritance.start(ctx, ADMIN, "g1", "g2", segment_id=seg)
        row = third["customer_rows"][0]
        assert (row["status"], row["errcode"]) == ("failed", 40128)
        assert "transferred too often" in row["reason"] and "2 times in 90 days" in row["reason"]
        assert rel(ctx, mine[0])["g1"][0] == "active"  # nothing moved
        listed = inheritance.list_transfers(ctx, ADMIN)
        assert [x["totals"]["failed"] for x in listed][:1] == [1]


def test_transfer_fail_callback_marks_customer(ctx: Context) -> None:
    with (
        wecom_brand(ctx, guides=2, per_guide=3) as env,
        live_server(create_app(ctx, with_console=False)) as base,
    ):
        env.srv.connect_callbacks(f"{base}/api/wecom/callback/acme", TOKEN, KEY)
        t = inheritance.start(ctx, ADMIN, "g1", "g2")
        ext = t["customer_rows"][0]["external_userid"]
        actions.transfer_fails(env.srv, "guide0002", ext, "customer_refused")

        def refused() -> dict[str, Any] | None:
            row = inheritance.get(ctx, ADMIN, t["id"], status="refused")["customer_rows"]
            return row[0] if row else None

        row = wait_for(refused)
        assert row["external_userid"] == ext and "customer refused" in row["reason"]
        env.srv.advance(86_400 + 5)
        done = inheritance.refresh(ctx, ADMIN, t["id"])
        assert done["totals"] == {"waiting": 0, "done": 2, "refused": 1, "limit": 0, "failed": 0}
        assert rel(ctx, ext)["g1"][0] == "active" and "g2" not in rel(ctx, ext)  # the refused customer stays


def test_models_match_migration_0009(ctx: Context) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import siyu.stores.state.wecom_ops_models  # noqa: F401 - registers the tables
    from siyu.stores.state.models import Base

    with ctx.engine.connect() as con:
        diff = compare_metadata(MigrationContext.configure(con), Base.metadata)
    assert [d for d in diff if "wecom_" in str(d)] == []


def test_schedule_completes_transfers_and_applies_rules(ctx: Context) -> None:
    from siyu.services.wecom import ops_scheduled, tag_rules
    from siyu.workers.schedule import SCHEDULES

    assert any(s.target == "siyu.services.wecom.ops_scheduled:refresh_all" for s in SCHEDULES)
    with wecom_brand(ctx, guides=2, per_guide=2) as env:
        t = inheritance.start(ctx, ADMIN, "g1", "g2")
        seg = env.segment([e for u, e in env.srv.company.relations if u == "guide0002"])
        rule = tag_rules.create_rule(ctx, ADMIN, seg, tag_name="自动")
        assert ops_scheduled.refresh_all(ctx) == {"acme": {"transfers": 1, "mass_sends": 0, "tag_rules": 1}}
        assert inheritance.get(ctx, ADMIN, t["id"])["totals"]["waiting"] == 2
        assert tag_rules.get_rule(ctx, ADMIN, rule["id"])["marked"] == 2
        env.srv.advance(86_400 + 5)
        ops_scheduled.refresh_all(ctx)
        assert inheritance.get(ctx, ADMIN, t["id"])["totals"]["done"] == 2
        assert ops_scheduled.refresh_all(ctx)["acme"]["transfers"] == 0  # nothing waits any more
