"""Entering customers into a journey: re-entry rules and the dedup key of each entry."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.domain.journey import JourneyDefinition
from siyu.services.context import Context
from siyu.services.journeys.cache import definition
from siyu.stores.state.journey_models import JourneyEntryRow, JourneyRow
from siyu.stores.state.models import utcnow

ENTRIES: Table = JourneyEntryRow.__table__  # type: ignore[assignment]


def insert_ignore(session: Session, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping those whose unique key exists (SQLite OR IGNORE / PostgreSQL ON CONFLICT DO NOTHING)."""
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        pk = next(iter(table.primary_key.columns)).name
        # psycopg's executemany reports rowcount -1: count the inserted rows RETURNING gives back instead
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing().returning(table.c[pk])
        return len(session.execute(stmt, rows).all())
    stmt = sqlite.insert(table).prefix_with("OR IGNORE")
    res = session.execute(stmt, rows)
    return int(getattr(res, "rowcount", 0) or 0)


def dedup_key(jd: JourneyDefinition, trigger_key: str) -> str:
    """once: one key for ever; otherwise the trigger's key (the event, the day, the period, the manual request)."""
    return "once" if jd.reentry.mode == "once" else trigger_key[:200]


def enter(
    session: Session,
    ctx: Context,
    journey: JourneyRow,
    customers: list[tuple[str, str]],
    now: datetime | None = None,
) -> int:
    """Enter (customer_id, trigger key) pairs into an active journey in ``session``'s transaction; returns how many
    entries were created (re-entry rules and dedup keys skip the rest)."""
    if journey.status != "active" or journey.published_version is None or not customers:
        return 0
    now = now or utcnow()
    version = journey.published_version
    jd = definition(ctx, journey.id, version)
    ids = list({c for c, _ in customers})
    blocked: set[str] = set()
    if jd.reentry.mode in ("after_exit", "after_days"):
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            q = select(JourneyEntryRow.customer_id, JourneyEntryRow.status, func.max(JourneyEntryRow.entered_at))
            q = q.where(JourneyEntryRow.journey_id == journey.id, JourneyEntryRow.customer_id.in_(part))
            q = q.group_by(JourneyEntryRow.customer_id, JourneyEntryRow.status)
            for cid, status, last in session.execute(q):
                if status == "active":
                    blocked.add(cid)
                elif jd.reentry.mode == "after_days" and last is not None:
                    assert jd.reentry.days is not None
                    if last > now - timedelta(days=jd.reentry.days):
                        blocked.add(cid)
    rows = []
    seen: set[str] = set()
    for cid, key in customers:
        if cid in blocked or cid in seen:
            continue
        seen.add(cid)
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "brand_id": journey.brand_id,
                "journey_id": journey.id,
                "version": version,
                "customer_id": cid,
                "dedup_key": dedup_key(jd, key),
                "status": "active",
                "node_id": jd.start,
                "seq": 0,
                "wake_at": now,
                "waiting_since": None,
                "arm": None,
                "entered_at": now,
                "exited_at": None,
                "exit_reason": None,
                "goal_at": None,
                "goal_value": None,
            }
        )
    return insert_ignore(session, ENTRIES, rows)


def enter_customers(
    ctx: Context, brand_id: str, journey_id: str, customers: list[tuple[str, str]], now: datetime | None = None
) -> int:
    """Enter customers in their own transaction (manual entry, triggers)."""
    with ctx.sessions() as s, s.begin():
        j = s.get(JourneyRow, journey_id)
        if j is None or j.brand_id != brand_id:
            return 0
        total = 0
        for i in range(0, len(customers), 5000):
            total += enter(s, ctx, j, customers[i : i + 5000], now)
        return total
