"""Triggers: who enters each active journey now (events, segment entries/exits, date attributes, cadences), and
wake-ups of customers waiting for an event or leaving on a goal.

Each active journey keeps a cursor (``journeys.cursor``): the last instant (event / segment triggers, wake-ups),
the last local day (date triggers) or the last period (cadence) already handled, so a tick after a crash picks up
where the last committed one stopped; dedup keys make a repeated entry harmless.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from siyu.domain.journey import JourneyDefinition
from siyu.domain.journey.definition import CadenceTrigger, DateTrigger, EventTrigger, SegmentTrigger, WaitEventNode
from siyu.services.context import Context
from siyu.services.journeys import facts
from siyu.services.journeys.cache import definition
from siyu.services.journeys.entries import enter
from siyu.stores.state.journey_models import JourneyEntryRow, JourneyRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)
MAX_CATCH_UP_DAYS = 31


def _local_day(now: datetime, tz: str) -> date:
    from datetime import UTC

    return now.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()


def _since(j: JourneyRow, key: str) -> datetime:
    cur = j.cursor or {}
    text = cur.get(key) or cur.get("since")
    return datetime.fromisoformat(text) if text else (j.published_at or utcnow())


def candidates(
    ctx: Context, j: JourneyRow, jd: JourneyDefinition, now: datetime
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The (customer, trigger key) pairs a journey's trigger yields since its cursor, and the new cursor."""
    t = jd.trigger
    cursor = dict(j.cursor or {})
    out: list[tuple[str, str]] = []
    if isinstance(t, EventTrigger):
        since = _since(j, "event_at")
        for r in facts.events_between(ctx, j.brand_id, t.event, t.where, since, now):
            out.append((r["customer_id"], "ev:" + str(r["message_id"])))
        cursor["event_at"] = now.isoformat()
    elif isinstance(t, SegmentTrigger):
        first = "segment_at" not in cursor
        if first and t.include_current and t.on == "entry":
            for r in facts.segment_changes(ctx, j.brand_id, t.segment_id, "entry", datetime(1970, 1, 1)):
                if r["exited_at"] is None and r["at"] is not None and r["at"] <= now:
                    out.append((r["customer_id"], f"seg:entry:{r['at'].isoformat()}"))
        else:
            since = _since(j, "segment_at")
            for r in facts.segment_changes(ctx, j.brand_id, t.segment_id, t.on, since):
                at = r["at"]
                if at is not None and at <= now:
                    out.append((r["customer_id"], f"seg:{t.on}:{at.isoformat()}"))
        cursor["segment_at"] = (now + timedelta(microseconds=1)).isoformat()
    elif isinstance(t, DateTrigger):
        today = _local_day(now, jd.timezone)
        last = date.fromisoformat(cursor["day"]) if "day" in cursor else today - timedelta(days=1)
        day = max(last + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS))
        while day <= today:
            target = day - timedelta(days=t.offset_days)
            for cid in facts.date_matches(ctx, j.brand_id, t.field, target, t.annual):
                out.append((cid, f"date:{day.isoformat()}"))
            day += timedelta(days=1)
        cursor["day"] = today.isoformat()
    elif isinstance(t, CadenceTrigger):
        today = _local_day(now, jd.timezone)
        if today >= t.start:
            period = (today - t.start).days // t.every_days
            if cursor.get("period") != period:
                out = [(cid, f"cad:{period}") for cid in facts.audience(ctx, j.brand_id, t.segment_id)]
                cursor["period"] = period
    return out, cursor


def poll_triggers(ctx: Context, now: datetime | None = None, brand_id: str | None = None) -> dict[str, int]:
    """Enter the customers every active journey's trigger yields now; returns entries created per journey."""
    now = now or utcnow()
    with ctx.sessions() as s:
        q = select(JourneyRow).where(JourneyRow.status == "active")
        if brand_id:
            q = q.where(JourneyRow.brand_id == brand_id)
        journeys = list(s.scalars(q))
    done: dict[str, int] = {}
    for j in journeys:
        assert j.published_version is not None
        jd = definition(ctx, j.id, j.published_version)
        if jd.trigger.kind == "manual":
            continue
        try:
            pairs, cursor = candidates(ctx, j, jd, now)
        except Exception:  # one journey's failing trigger must not stop the others
            log.exception("trigger of journey %s failed", j.id)
            continue
        with ctx.sessions() as s, s.begin():
            row = s.get(JourneyRow, j.id)
            if row is None or row.status != "active":
                continue
            n = 0
            for i in range(0, len(pairs), 5000):
                n += enter(s, ctx, row, pairs[i : i + 5000], now)
            row.cursor = cursor
        done[j.id] = n
    return done


def wake_on_events(ctx: Context, now: datetime | None = None) -> int:
    """Wake entries whose awaited event or goal event happened since the last check (they are then run now)."""
    now = now or utcnow()
    with ctx.sessions() as s:
        journeys = list(s.scalars(select(JourneyRow).where(JourneyRow.status.in_(("active", "paused")))))
    woken = 0
    for j in journeys:
        since = _since(j, "wake_at")
        names: set[str] = set()
        with ctx.sessions() as s:
            versions = set(
                s.scalars(
                    select(JourneyEntryRow.version)
                    .where(JourneyEntryRow.journey_id == j.id, JourneyEntryRow.status == "active")
                    .distinct()
                )
            )
        for v in versions:
            jd = definition(ctx, j.id, v)
            if jd.goal is not None:
                names.add(jd.goal.event)
            names |= {n.event for n in jd.nodes if isinstance(n, WaitEventNode)}
        if names:
            who = facts.customers_with_events(ctx, j.brand_id, sorted(names), since, now)
            if who:
                ids = list(who)
                with ctx.sessions() as s, s.begin():
                    for i in range(0, len(ids), 500):
                        res = s.execute(
                            update(JourneyEntryRow)
                            .where(
                                JourneyEntryRow.journey_id == j.id,
                                JourneyEntryRow.status == "active",
                                JourneyEntryRow.customer_id.in_(ids[i : i + 500]),
                                JourneyEntryRow.wake_at > now,
                            )
                            .values(wake_at=now)
                        )
                        woken += int(getattr(res, "rowcount", 0) or 0)
        with ctx.sessions() as s, s.begin():
            row = s.get(JourneyRow, j.id)
            if row is not None:
                row.cursor = {**(row.cursor or {}), "wake_at": now.isoformat()}
    return woken
