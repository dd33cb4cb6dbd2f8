"""Follow-up records (跟进记录) with their type, content and next follow-up date; the customer's sales stage; the
reminders a next date makes (due ones land in the guide's inbox) and the daily reminder digest.

A guide records follow-ups for their own customers only and reads their own records; admins and operators read
every record of the brand. A new follow-up of a customer closes the customer's open reminders and marks the
customer's pool lead as worked.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from siyu.domain import guide_work as rules
from siyu.domain.brand_time import day_end_utc, day_start_utc
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.guide_work import settings as gw
from siyu.stores.state.guide_work_models import CustomerStageRow, FollowupDigestRow, FollowupRow, PoolLeadRow
from siyu.stores.state.models import BrandRow, utcnow

MAX_CONTENT = 2000
MAX_PAGE_SIZE = 200


def _as_dict(r: FollowupRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "guide_id": r.guide_id,
        "kind": r.kind,
        "content": r.content,
        "stage": r.stage,
        "next_at": r.next_at.isoformat() if r.next_at else None,
        "reminder": r.reminder,
        "created_by": r.created_by,
        "created_at": r.created_at.isoformat(),
    }


def parse_when(value: str | datetime | None, field: str) -> datetime | None:
    """An ISO date or datetime (naive = brand-local) as naive UTC; a bare date means 09:00 local."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(value if "T" in value or " " in value else f"{value}T09:00:00")
        except ValueError:
            raise SiyuError(f"{field} {value!r} is not a date; send YYYY-MM-DD or YYYY-MM-DDTHH:MM", field) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=gw.TZ)
    return at.astimezone(UTC).replace(tzinfo=None)


def record(
    ctx: Context,
    user: User,
    customer_id: str,
    kind: str,
    content: str = "",
    next_at: str | datetime | None = None,
    stage: str | None = None,
    guide_id: str | None = None,
) -> dict[str, Any]:
    """Record a follow-up of ``customer_id`` (a guide: one of their own customers, ``guide_id`` theirs; an
    operator: ``guide_id`` defaults to the customer's guide, so the reminder reaches them)."""
    rules.check_kind(kind)
    if len(content) > MAX_CONTENT:
        raise SiyuError(f"content is at most {MAX_CONTENT} characters", "content")
    when = parse_when(next_at, "next_at")
    if when is not None and when < utcnow() - timedelta(days=1):
        raise SiyuError("next_at is in the past; give the date of the next follow-up", "next_at")
    conf = gw.get_settings(ctx, user.brand_id)
    if stage is not None and stage not in conf.stages:
        raise SiyuError(f"stage {stage!r} is not a sales stage; one of {', '.join(conf.stages)}", "stage")
    gw.require_visible(ctx, user, customer_id)
    if user.role == Role.GUIDE:
        guide_id = user.guide_id
    elif guide_id is not None and guide_id not in gw.guide_map(ctx, user.brand_id):
        raise SiyuError(f"guide_id {guide_id!r} is not a guide of this brand", "guide_id")
    elif guide_id is None:  # an operator's follow-up: the reminder goes to the customer's guide
        from siyu.services.guide_work.pool import owner_of

        guide_id = owner_of(ctx, user.brand_id, customer_id)
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        for old in s.scalars(
            select(FollowupRow).where(
                FollowupRow.brand_id == user.brand_id,
                FollowupRow.customer_id == customer_id,
                FollowupRow.reminder == "open",
            )
        ):
            old.reminder, old.closed_at = "closed", now
        row = FollowupRow(
            brand_id=user.brand_id,
            customer_id=customer_id,
            guide_id=guide_id,
            kind=kind,
            content=content,
            stage=stage,
            next_at=when,
            reminder="open" if when else "none",
            created_by=user.username,
            created_at=now,
        )
        s.add(row)
        if stage is not None:
            _put_stage(s, user, customer_id, stage, now)
        lead = s.get(PoolLeadRow, (user.brand_id, customer_id))
        if lead is not None and lead.owner_guide_id is not None:
            lead.worked_at = now
        s.flush()
        return _as_dict(row)


def _put_stage(s: Any, user: User, customer_id: str, stage: str, now: datetime) -> None:
    cur = s.get(CustomerStageRow, (user.brand_id, customer_id))
    if cur is None:
        s.add(CustomerStageRow(brand_id=user.brand_id, customer_id=customer_id, stage=stage))
        cur = s.get(CustomerStageRow, (user.brand_id, customer_id))
    cur.stage, cur.updated_by, cur.updated_at = stage, user.username, now


def set_stage(ctx: Context, user: User, customer_id: str, stage: str) -> dict[str, Any]:
    """Move a customer to one of the brand's sales stages."""
    conf = gw.get_settings(ctx, user.brand_id)
    if stage not in conf.stages:
        raise SiyuError(f"stage {stage!r} is not a sales stage; one of {', '.join(conf.stages)}", "stage")
    gw.require_visible(ctx, user, customer_id)
    with ctx.sessions() as s, s.begin():
        _put_stage(s, user, customer_id, stage, utcnow())
    return {"customer_id": customer_id, "stage": stage}


def list_followups(
    ctx: Context, user: User, customer_id: str | None = None, page: int = 1, page_size: int = 50
) -> dict[str, Any]:
    """Follow-ups newest first (a guide: their own records; a customer's records need the customer visible)."""
    if page < 1:
        raise SiyuError(f"page must be 1 or more (got {page})", "page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SiyuError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})", "page_size")
    q = select(FollowupRow).where(FollowupRow.brand_id == user.brand_id)
    if customer_id:
        gw.require_visible(ctx, user, customer_id)
        q = q.where(FollowupRow.customer_id == customer_id)
    if user.role == Role.GUIDE:
        q = q.where(FollowupRow.guide_id == (user.guide_id or ""))
    with ctx.sessions() as s:
        total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = s.scalars(
            q.order_by(FollowupRow.created_at.desc(), FollowupRow.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        stage = s.get(CustomerStageRow, (user.brand_id, customer_id)) if customer_id else None
    return {
        "items": [_as_dict(r) for r in rows],
        "total": total,
        "page": page,
        "page_size": page_size,
        "stage": stage.stage if stage else None,
    }


def stage_counts(ctx: Context, user: User) -> dict[str, Any]:
    """Customers per sales stage, in the brand's stage order (a guide: their own customers)."""
    conf = gw.get_settings(ctx, user.brand_id)
    with ctx.sessions() as s:
        rows = s.execute(
            select(CustomerStageRow.customer_id, CustomerStageRow.stage).where(
                CustomerStageRow.brand_id == user.brand_id
            )
        ).all()
    ids = [r[0] for r in rows]
    mine = gw.visible(ctx, user, ids) if user.role == Role.GUIDE else set(ids)
    counts = Counter(st for cid, st in rows if cid in mine)
    return {"stages": [{"stage": st, "customers": counts.get(st, 0)} for st in conf.stages]}


def reminders(ctx: Context, brand_id: str, guide_id: str | None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Open reminders (next follow-up dates) due by ``until`` (all open when None), soonest first."""
    q = select(FollowupRow).where(FollowupRow.brand_id == brand_id, FollowupRow.reminder == "open")
    if guide_id is not None:
        q = q.where(FollowupRow.guide_id == guide_id)
    if until is not None:
        q = q.where(FollowupRow.next_at <= until)
    with ctx.sessions() as s:
        return [_as_dict(r) for r in s.scalars(q.order_by(FollowupRow.next_at, FollowupRow.id).limit(2000))]


def close_reminder(ctx: Context, user: User, followup_id: int) -> dict[str, Any]:
    """Dismiss an open reminder (a guide: only their own)."""
    with ctx.sessions() as s, s.begin():
        r = s.get(FollowupRow, followup_id)
        mine = r is not None and r.brand_id == user.brand_id
        if r is not None and mine and user.role == Role.GUIDE:
            mine = r.guide_id == user.guide_id
        if r is None or not mine:
            raise NotFound(f"follow-up {followup_id} not found (or not yours)", "followup_id")
        if r.reminder != "open":
            raise Conflict(f"the reminder of follow-up {followup_id} is {r.reminder}", "reminder")
        r.reminder, r.closed_at = "closed", utcnow()
        return _as_dict(r)


def daily_digests(ctx: Context, now: datetime | None = None) -> dict[str, int]:
    """The daily reminder: for every brand and guide with open reminders, the count due today (brand-local) and
    overdue, written once per day (``followup_digests``); returns guides reminded per brand."""
    now = now or utcnow()
    day = gw.local_day(now)
    start, end = day_start_utc(day), day_end_utc(day)
    done: dict[str, int] = {}
    with ctx.sessions() as s, s.begin():
        brands = list(s.scalars(select(BrandRow.id)))
        for b in brands:
            rows = s.execute(
                select(FollowupRow.guide_id, FollowupRow.next_at).where(
                    FollowupRow.brand_id == b,
                    FollowupRow.reminder == "open",
                    FollowupRow.guide_id.is_not(None),
                    FollowupRow.next_at < end,
                )
            ).all()
            per: dict[str, list[int]] = {}
            for g, at in rows:
                c = per.setdefault(str(g), [0, 0])
                c[0 if at is not None and at >= start else 1] += 1
            for g, (due, overdue) in per.items():
                key = (b, g, day.isoformat())
                d = s.get(FollowupDigestRow, key)
                if d is None:
                    s.add(FollowupDigestRow(brand_id=b, guide_id=g, day=day.isoformat(), due=due, overdue=overdue))
                else:
                    d.due, d.overdue = due, overdue
            if per:
                done[b] = len(per)
    return done


def digest(ctx: Context, brand_id: str, guide_id: str, now: datetime | None = None) -> dict[str, Any] | None:
    """Today's reminder digest of a guide (None when the daily job has not written one)."""
    day = gw.local_day(now).isoformat()
    with ctx.sessions() as s:
        d = s.get(FollowupDigestRow, (brand_id, guide_id, day))
    return {"day": d.day, "due": d.due, "overdue": d.overdue} if d else None
