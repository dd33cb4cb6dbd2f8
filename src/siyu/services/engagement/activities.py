"""Engagement activities (lottery / check-in / quiz): create, read, list, change status. The config is the
kind's model in ``siyu.domain.engagement``; every reward it names must exist."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from siyu.domain.engagement.checkin import parse_checkin
from siyu.domain.engagement.lottery import parse_lottery
from siyu.domain.engagement.quiz import parse_quiz
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.rewards import get_reward
from siyu.stores.state.engagement_models import EngagementActivityRow
from siyu.stores.state.models import utcnow

KINDS = ("lottery", "checkin", "quiz")
STATUSES = ("active", "paused", "ended")
PARSERS: dict[str, Any] = {"lottery": parse_lottery, "checkin": parse_checkin, "quiz": parse_quiz}


def _reward_ids(kind: str, config: Any) -> list[tuple[str, str]]:
    if kind == "lottery":
        return [(f"config.prizes.{i}.reward_id", p.reward_id) for i, p in enumerate(config.prizes)]
    if kind == "checkin":
        out = [(f"config.streak_rewards.{i}.reward_id", r.reward_id) for i, r in enumerate(config.streak_rewards)]
        if config.daily_reward_id:
            out.append(("config.daily_reward_id", config.daily_reward_id))
        return out
    return []


def validate_config(ctx: Context, brand_id: str, kind: str, config: dict[str, Any]) -> Any:
    """The parsed config of a ``kind`` activity; its rewards must exist in the brand."""
    if kind not in KINDS:
        raise SiyuError(f"kind: {kind!r} is not an activity kind; use one of {', '.join(KINDS)}", "kind")
    parsed = PARSERS[kind](config)
    for field, rid in _reward_ids(kind, parsed):
        if get_reward(ctx, brand_id, rid) is None:
            raise SiyuError(f"{field}: reward {rid!r} does not exist; create it first (siyu rewards create)", field)
    return parsed


def activity_dict(row: EngagementActivityRow) -> dict[str, Any]:
    """An activity as JSON (the quiz's answers included: this is the operator's view)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "config": row.config,
        "status": row.status,
        "starts_at": row.starts_at.isoformat() if row.starts_at else None,
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


def _naive(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise SiyuError(f"{field}: write a date-time like 2026-12-01T00:00:00", field) from None
    if dt.tzinfo is not None:
        from datetime import UTC

        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def create_activity(
    ctx: Context,
    brand_id: str,
    kind: str,
    name: str,
    config: dict[str, Any],
    *,
    starts_at: Any = None,
    ends_at: Any = None,
    activity_id: str | None = None,
    created_by: str = "",
) -> dict[str, Any]:
    """Create an active lottery / check-in / quiz. ``starts_at`` / ``ends_at`` are UTC (or with an offset)."""
    if not name or len(name) > 200:
        raise SiyuError("name must be 1-200 characters", "name")
    parsed = validate_config(ctx, brand_id, kind, config)
    start, end = _naive(starts_at, "starts_at"), _naive(ends_at, "ends_at")
    if start and end and end <= start:
        raise SiyuError("ends_at must be after starts_at", "ends_at")
    aid = activity_id or f"{kind[:3]}_{secrets.token_hex(5)}"
    if len(aid) > 64 or not aid.replace("_", "").replace("-", "").isalnum():
        raise SiyuError("id: 1-64 letters, digits, - or _", "id")
    row = EngagementActivityRow(
        id=aid,
        brand_id=brand_id,
        kind=kind,
        name=name,
        config=parsed.model_dump(mode="json"),
        status="active",
        starts_at=start,
        ends_at=end,
        created_by=created_by,
    )
    with ctx.sessions() as s:
        s.add(row)
        try:
            s.commit()
        except IntegrityError:
            raise Conflict(f"an activity with id {aid!r} already exists", "id") from None
    return activity_dict(row)


def load(ctx: Context, brand_id: str, activity_id: str, kind: str | None = None) -> EngagementActivityRow:
    """The activity row (NotFound when missing, another brand's, or of another kind)."""
    with ctx.sessions() as s:
        row = s.get(EngagementActivityRow, activity_id)
    if row is None or row.brand_id != brand_id or (kind is not None and row.kind != kind):
        raise NotFound(f"{kind or 'activity'} {activity_id!r} not found", "activity_id")
    return row


def require_open(row: EngagementActivityRow, now: datetime) -> None:
    """Raise a Conflict saying why the activity does not take part now (paused, ended, not started)."""
    if row.status != "active":
        raise Conflict(f"{row.name} is {row.status}", "activity_id")
    if row.starts_at and now < row.starts_at:
        raise Conflict(f"{row.name} starts at {row.starts_at:%Y-%m-%d %H:%M} UTC", "activity_id")
    if row.ends_at and now >= row.ends_at:
        raise Conflict(f"{row.name} ended at {row.ends_at:%Y-%m-%d %H:%M} UTC", "activity_id")


def get_activity(ctx: Context, brand_id: str, activity_id: str) -> dict[str, Any]:
    """One activity."""
    return activity_dict(load(ctx, brand_id, activity_id))


def list_activities(ctx: Context, brand_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The brand's activities, newest first."""
    q = select(EngagementActivityRow).where(EngagementActivityRow.brand_id == brand_id)
    if kind:
        q = q.where(EngagementActivityRow.kind == kind)
    with ctx.sessions() as s:
        return [activity_dict(r) for r in s.scalars(q.order_by(EngagementActivityRow.created_at.desc())).all()]


def set_status(ctx: Context, brand_id: str, activity_id: str, status: str) -> dict[str, Any]:
    """Pause, resume (active) or end an activity."""
    if status not in STATUSES:
        raise SiyuError(f"status: use one of {', '.join(STATUSES)}", "status")
    load(ctx, brand_id, activity_id)
    with ctx.sessions() as s:
        row = s.get(EngagementActivityRow, activity_id)
        assert row is not None
        row.status, row.updated_at = status, utcnow()
        s.commit()
        return activity_dict(row)
