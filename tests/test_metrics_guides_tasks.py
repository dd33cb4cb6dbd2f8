"""Journey task completion in the guide KPIs: assigned / done / skipped / overdue / completion per guide on the
leaderboard, checked against an independent count of the tasks table, over HTTP; a guide sees only their own."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.demo.seed import ensure_logins
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.executor import run_until_idle
from siyu.services.journeys.tasks import finish_task, list_tasks
from siyu.services.metrics import guides
from siyu.stores.state.models import utcnow
from tests.support.live import api_login, live_server

BRAND = "gk"
ADMIN = User(0, BRAND, "t", "t", Role.ADMIN, None, "zh")
IN_PERIOD = datetime(2026, 10, 15, 2, 0)  # 10:00 on 15 Oct in Asia/Shanghai
BEFORE = datetime(2026, 9, 30, 15, 30)  # 23:30 on 30 Sep local: outside a period starting 1 Oct
Q = {"start": "2026-10-01", "end": "2026-10-31"}


@pytest.fixture(scope="module")
def tctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("guide_tasks") / "data"))
    seed_demo(c, DemoConfig(customers=300, brand_id=BRAND))
    ensure_logins(c, BRAND)
    yield c
    c.close()


def _journey(ctx: Context, due_hours: float) -> str:
    task = {"type": "task", "task_kind": "call", "title": "回访", "due_hours": due_hours}
    d = {
        "trigger": {"kind": "manual"},
        "start": "t",
        "nodes": [{"id": "t", "kind": "action", "action": task}, {"id": "end", "kind": "exit"}],
        "edges": [{"from": "t", "to": "end"}],
    }
    j = jdef.create_journey(ctx, ADMIN, "tasks-" + uuid.uuid4().hex[:6], d)
    jdef.publish(ctx, ADMIN, j.id, now=BEFORE - timedelta(days=1))
    return j.id


def _independent(ctx: Context, now: datetime) -> dict[str, dict[str, int]]:
    """Per guide, from the raw table: tasks created in October (local days), by outcome."""
    lo, hi = datetime(2026, 9, 30, 16), datetime(2026, 10, 31, 16)  # [1 Oct, 1 Nov) Asia/Shanghai in UTC
    out: dict[str, Counter[str]] = defaultdict(Counter)
    with ctx.sessions() as s:
        rows = s.execute(
            text("SELECT guide_id, status, due_at, created_at FROM journey_tasks WHERE brand_id = :b"), {"b": BRAND}
        ).all()
    for guide, status, due, created in rows:
        created = datetime.fromisoformat(str(created))
        if guide is None or not lo <= created < hi:
            continue
        c = out[guide]
        c["tasks_assigned"] += 1
        c[f"tasks_{status}"] += 1
        if status == "open" and datetime.fromisoformat(str(due)) < now:
            c["tasks_overdue"] += 1
    return {g: dict(c) for g, c in out.items()}


def test_task_completion_on_the_leaderboard(tctx: Context) -> None:
    ids = [
        r[0] for r in tctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id = ? ORDER BY 1", [BRAND])
    ]
    soon, later, early = _journey(tctx, 1), _journey(tctx, 24 * 90), _journey(tctx, 1)
    enter_customers(tctx, BRAND, soon, [(c, "m") for c in ids[:150]], IN_PERIOD)
    enter_customers(tctx, BRAND, later, [(c, "m") for c in ids[150:]], IN_PERIOD)
    enter_customers(tctx, BRAND, early, [(c, "m") for c in ids[:40]], BEFORE)  # September: not counted
    run_until_idle(tctx, IN_PERIOD)
    tasks = list_tasks(tctx, ADMIN, status="open", page_size=500)["items"]
    assert len(tasks) == 340
    rnd = random.Random(7)
    for t in tasks:
        pick = rnd.random()
        if t["guide_id"] and pick < 0.45:
            finish_task(tctx, ADMIN, t["id"], "done")
        elif t["guide_id"] and pick < 0.6:
            finish_task(tctx, ADMIN, t["id"], "skipped", "客户已到店")
    expected = _independent(tctx, utcnow())
    assert len(expected) >= 5 and sum(c.get("tasks_overdue", 0) for c in expected.values()) > 0

    with live_server(create_app(tctx, with_console=False)) as base:
        admin = api_login(base, f"{BRAND}.admin", "siyu-admin")
        board = httpx.get(f"{base}/api/metrics/guides", params=Q, headers=admin, timeout=60)
        assert board.status_code == 200, board.text
        assert board.json()["task_completion_available"]
        rows = board.json()["rows"]
        for r in rows:
            c = expected.get(r["guide_id"], {})
            got = {k: r[k] for k in ("tasks_assigned", "tasks_done", "tasks_skipped", "tasks_overdue")}
            assert got == {k: c.get(k, 0) for k in got}, r["guide_id"]
            rate = c.get("tasks_done", 0) / c["tasks_assigned"] if c.get("tasks_assigned") else None
            assert r["task_completion"] == (pytest.approx(rate, abs=1e-4) if rate is not None else None)
        ranked = httpx.get(f"{base}/api/metrics/guides", params={**Q, "sort": "task_completion"}, headers=admin)
        rates = [r["task_completion"] for r in ranked.json()["rows"] if r["task_completion"] is not None]
        assert rates == sorted(rates, reverse=True) and len(rates) == len(expected)

        # a guide: their own task figures, nobody else's; and no ranking by them
        guide = api_login(base, f"{BRAND}.guide1", "siyu-guide")
        mine = httpx.get(f"{base}/api/metrics/guides", params=Q, headers=guide, timeout=60).json()["rows"]
        own = next(r for r in mine if r["guide_id"] == "g01")
        assert own["tasks_assigned"] == expected["g01"]["tasks_assigned"] > 0
        others = [r for r in mine if r["guide_id"] != "g01"]
        assert others and all(r["tasks_assigned"] is None and r["task_completion"] is None for r in others)
        assert all(r["gmv"] is not None for r in others)  # the rest of the leaderboard stays visible
        bad = httpx.get(f"{base}/api/metrics/guides", params={**Q, "sort": "task_completion"}, headers=guide)
        assert bad.status_code == 400 and bad.json()["field"] == "sort"
    # the service agrees with the API for a store filter too
    st = guides.leaderboard(tctx, ADMIN, Q["start"], Q["end"], store_id=rows[0]["store_id"])
    assert all(r["tasks_assigned"] == expected.get(r["guide_id"], {}).get("tasks_assigned", 0) for r in st["rows"])
