"""Daily check-in (签到): one check-in per person per local day (unique key), streaks across days / months in the
activity's time zone, rewards at streak lengths (paid through ``rewards.grant``; a reward that is unavailable
is reported, the check-in still counts) and make-up cards."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from siyu.domain.engagement.checkin import CheckinConfig, check_makeup, current_streak, reached, streak_at
from siyu.domain.engagement.common import local_day, zone
from siyu.services.context import Context
from siyu.services.engagement.activities import load, require_open
from siyu.services.errors import Conflict, SiyuError
from siyu.services.rewards import RewardUnavailable, grant
from siyu.stores.state.engagement_models import CheckinRow
from siyu.stores.state.models import utcnow

HISTORY_DAYS = 400


def _utc_midnight(day: date, tz: str) -> datetime:
    """Local midnight of ``day`` as naive UTC."""
    return datetime.combine(day, time.min, zone(tz)).astimezone(UTC).replace(tzinfo=None)


def _days(ctx: Context, activity_id: str, customer_id: str, since: date) -> set[date]:
    with ctx.sessions() as s:
        rows = s.scalars(
            select(CheckinRow.day).where(
                CheckinRow.activity_id == activity_id,
                CheckinRow.customer_id == customer_id,
                CheckinRow.day >= since.isoformat(),
            )
        ).all()
    return {date.fromisoformat(d) for d in rows}


def _pay(
    ctx: Context, brand_id: str, activity_id: str, customer_id: str, todo: list[tuple[str, str]], now: datetime
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for reward_id, key in todo:
        try:
            g = grant(
                ctx,
                brand_id,
                reward_id,
                customer_id,
                source="checkin",
                source_ref=activity_id,
                idempotency_key=key,
                now=now,
            )
            out.append({"reward_id": reward_id, "grant": g})
        except RewardUnavailable as exc:
            out.append({"reward_id": reward_id, "grant": None, "unavailable": exc.reason, "message": exc.message})
    return out


def _record(
    ctx: Context,
    brand_id: str,
    row_cfg: CheckinConfig,
    activity_id: str,
    customer_id: str,
    day: date,
    today: date,
    makeup: bool,
    now: datetime,
) -> dict[str, Any]:
    days = _days(ctx, activity_id, customer_id, today - timedelta(days=HISTORY_DAYS))
    # lengths already rewarded: the live streak, or (for a make-up) the run that ends the day before the filled day
    before = max(current_streak(days, today), streak_at(days, day - timedelta(days=1)))
    after_days = days | {day}
    after = current_streak(after_days, today)
    start = today - timedelta(days=after - 1) if streak_at(after_days, today) else today - timedelta(days=after)
    rec = CheckinRow(
        brand_id=brand_id,
        activity_id=activity_id,
        customer_id=customer_id,
        day=day.isoformat(),
        streak=streak_at(after_days, day),
        makeup=makeup,
        grants=[],
        created_at=now,
    )
    with ctx.sessions() as s:
        s.add(rec)
        try:
            s.commit()
        except IntegrityError:
            raise Conflict(f"already checked in on {day.isoformat()}", "day") from None
    key = f"checkin:{activity_id}:{customer_id}"
    todo: list[tuple[str, str]] = []
    if row_cfg.daily_reward_id and not makeup:
        todo.append((row_cfg.daily_reward_id, f"{key}:{day.isoformat()}:daily"))
    if after > before:
        for reward in reached(row_cfg, before, after):
            n = next(n for n in range(before + 1, after + 1) if reward in reached(row_cfg, n - 1, n))
            todo.append((reward.reward_id, f"{key}:{start.isoformat()}:{n}:{reward.days}"))
    paid = _pay(ctx, brand_id, activity_id, customer_id, todo, now)
    ids = [p["grant"]["grant_id"] for p in paid if p["grant"]]
    if ids:
        with ctx.sessions() as s:
            got = s.get(CheckinRow, rec.id)
            assert got is not None
            got.grants = ids
            s.commit()
    return {
        "activity_id": activity_id,
        "customer_id": customer_id,
        "day": day.isoformat(),
        "makeup": makeup,
        "streak": after,
        "rewards": paid,
    }


def check_in(
    ctx: Context, brand_id: str, activity_id: str, customer_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """Check in today (local day): ``{day, streak, rewards: [{reward_id, grant | unavailable}]}``. A second
    check-in the same day is a Conflict."""
    now = now or utcnow()
    row = load(ctx, brand_id, activity_id, "checkin")
    require_open(row, now)
    cfg = CheckinConfig.model_validate(row.config)
    today = local_day(now, cfg.timezone)
    return _record(ctx, brand_id, cfg, activity_id, customer_id, today, today, False, now)


def make_up(
    ctx: Context, brand_id: str, activity_id: str, customer_id: str, day: str, now: datetime | None = None
) -> dict[str, Any]:
    """Fill a missed past day with a make-up card (补签) when the activity allows it; the streak and its
    rewards are recomputed (a streak length already rewarded is not paid twice)."""
    now = now or utcnow()
    row = load(ctx, brand_id, activity_id, "checkin")
    require_open(row, now)
    cfg = CheckinConfig.model_validate(row.config)
    today = local_day(now, cfg.timezone)
    try:
        missed = date.fromisoformat(day)
    except ValueError:
        raise SiyuError("day: write the date as YYYY-MM-DD", "day") from None
    days = _days(ctx, activity_id, customer_id, today - timedelta(days=HISTORY_DAYS))
    month_start = today.replace(day=1)
    with ctx.sessions() as s:
        used = int(
            s.scalar(
                select(func.count()).where(
                    CheckinRow.activity_id == activity_id,
                    CheckinRow.customer_id == customer_id,
                    CheckinRow.makeup.is_(True),
                    CheckinRow.created_at >= _utc_midnight(month_start, cfg.timezone),
                )
            )
            or 0
        )
    check_makeup(cfg, days, missed, today, used)
    return _record(ctx, brand_id, cfg, activity_id, customer_id, missed, today, True, now)


def checkin_status(
    ctx: Context, brand_id: str, activity_id: str, customer_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """Today's state for a customer: checked in today?, the live streak, the days checked in this local month,
    and the next streak reward."""
    now = now or utcnow()
    row = load(ctx, brand_id, activity_id, "checkin")
    cfg = CheckinConfig.model_validate(row.config)
    today = local_day(now, cfg.timezone)
    days = _days(ctx, activity_id, customer_id, today - timedelta(days=HISTORY_DAYS))
    streak = current_streak(days, today)
    upcoming = sorted((r for r in cfg.streak_rewards if r.days > streak), key=lambda r: r.days)
    return {
        "activity_id": activity_id,
        "customer_id": customer_id,
        "today": today.isoformat(),
        "checked_in_today": today in days,
        "streak": streak,
        "month_days": sorted(d.isoformat() for d in days if (d.year, d.month) == (today.year, today.month)),
        "next_reward": {"days": upcoming[0].days, "reward_id": upcoming[0].reward_id} if upcoming else None,
    }
