"""The guide scorecard: the leaderboard of ``siyu.services.metrics.guides`` (客群资产数, adds, conversions, orders,
GMV, journey tasks) with losses and reply time (WeCom's 联系客户统计 when synced, ``guide_work.behavior``, else
``siyu.analytics.guide_work`` from events), journey tasks done on time,
Moments tasks done, and the operator's targets per guide and month with attainment; plus a guide's own page.

A guide sees every guide's customer figures (as on the leaderboard) but the work figures (tasks, Moments) and
targets of their own row only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from siyu.analytics import guide_work as analytics
from siyu.domain.brand_time import brand_today, day_end_utc, day_start_utc
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import behavior
from siyu.services.guide_work import settings as gw
from siyu.services.metrics import fetch_frame, tables
from siyu.services.metrics import guides as leaderboard_service
from siyu.stores.state.guide_work_models import GuideTargetRow, MomentTaskGuideRow, MomentTaskRow
from siyu.stores.state.journey_models import JourneyTaskRow
from siyu.stores.state.models import utcnow

# metric → True when higher is better (attainment = actual / target) or False (met when actual ≤ target)
TARGET_METRICS: dict[str, bool] = {
    "reachable": True,
    "new_customers": True,
    "conversions": True,
    "gmv": True,
    "tasks_on_time": True,
    "moments_done": True,
    "losses": False,
    "reply_minutes": False,
}
WORK_FIELDS = ("tasks_on_time", "moments_assigned", "moments_done", "moments_completion")
EXTRA_SORTS = ("losses", "reply_minutes", "tasks_on_time", "moments_done")


def _period(value: str | None, end: date) -> str:
    p = value or end.strftime("%Y-%m")
    try:
        datetime.strptime(p, "%Y-%m")
    except ValueError:
        raise SiyuError(f"period {p!r} is not a month; write YYYY-MM, e.g. 2026-11", "period") from None
    return p


def check_period(period: str) -> str:
    """A month ``YYYY-MM`` (error naming ``period`` otherwise)."""
    return _period(period, brand_today())


def set_target(ctx: Context, user: User, guide_id: str, period: str, metric: str, value: float) -> dict[str, Any]:
    """Set (or replace) a guide's target of one metric for a month (admins and operators)."""
    gw.require_manager(user, "set guide targets")
    if metric not in TARGET_METRICS:
        raise SiyuError(f"metric {metric!r} cannot take a target; one of {', '.join(TARGET_METRICS)}", "metric")
    _period(period, brand_today())
    if guide_id not in gw.guide_map(ctx, user.brand_id):
        raise SiyuError(f"guide_id {guide_id!r} is not an active guide of this brand", "guide_id")
    if not 0 <= value <= 1e12:
        raise SiyuError("value must be 0 or more", "value")
    with ctx.sessions() as s, s.begin():
        key = (user.brand_id, guide_id, period, metric)
        r = s.get(GuideTargetRow, key)
        if r is None:
            r = GuideTargetRow(brand_id=user.brand_id, guide_id=guide_id, period=period, metric=metric, value=value)
            s.add(r)
        r.value, r.set_by, r.set_at = float(value), user.username, utcnow()
    return {"guide_id": guide_id, "period": period, "metric": metric, "value": float(value)}


def targets(ctx: Context, brand_id: str, period: str) -> dict[str, dict[str, float]]:
    """guide_id → metric → target of a month."""
    with ctx.sessions() as s:
        rows = s.scalars(
            select(GuideTargetRow).where(GuideTargetRow.brand_id == brand_id, GuideTargetRow.period == period)
        )
        out: dict[str, dict[str, float]] = {}
        for r in rows:
            out.setdefault(r.guide_id, {})[r.metric] = r.value
    return out


def tasks_on_time(ctx: Context, brand_id: str, start: datetime, end: datetime) -> dict[str, int]:
    """Per guide: journey tasks created in [start, end) (naive UTC) and done by their due time."""
    T = JourneyTaskRow
    q = (
        select(T.guide_id, func.count())
        .where(
            T.brand_id == brand_id,
            T.guide_id.is_not(None),
            T.created_at >= start,
            T.created_at < end,
            T.status == "done",
            T.done_at <= T.due_at,
        )
        .group_by(T.guide_id)
    )
    with ctx.sessions() as s:
        return {str(g): int(n) for g, n in s.execute(q).all()}


def moments_done(ctx: Context, brand_id: str, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """Per guide: (Moments tasks published to them in [start, end), of which posted)."""
    G, M = MomentTaskGuideRow, MomentTaskRow
    q = (
        select(G.guide_id, func.count(), func.sum(case((G.status == "done", 1), else_=0)))
        .join(M, and_(M.id == G.task_id))
        .where(G.brand_id == brand_id, G.status != "invalid", M.created_at >= start, M.created_at < end)
        .group_by(G.guide_id)
    )
    with ctx.sessions() as s:
        return {str(g): (int(n), int(d or 0)) for g, n, d in s.execute(q).all()}


def _attainment(actual: Any, target: float | None, higher: bool) -> dict[str, Any] | None:
    if target is None:
        return None
    if actual is None:
        return {"target": target, "actual": None, "attainment": None, "met": None}
    a = float(actual)
    if higher:
        return {
            "target": target,
            "actual": a,
            "attainment": round(a / target, 4) if target else None,
            "met": a >= target,
        }
    return {"target": target, "actual": a, "attainment": None, "met": a <= target}


def _wecom_figures(r: dict[str, Any], b: dict[str, Any] | None) -> None:
    """WeCom's 联系客户统计 on a scorecard row: its reply time (weighted by chats) replaces the event-based one when
    present (``reply_source`` wecom | events | None), plus reply share, 删除/拉黑 and chats."""
    if b is not None and b["reply_minutes"] is not None:
        r["reply_minutes"], r["reply_source"] = b["reply_minutes"], "wecom"
    else:
        r["reply_source"] = "events" if r["reply_minutes"] is not None else None
    r["reply_percentage"] = b["reply_percentage"] if b else None
    r["negative_feedback"] = b["negative_feedback"] if b else None
    r["chats"] = b["chats"] if b else None


def scorecard(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    as_of: str | date | None = None,
    store_id: str | None = None,
    sort: str = "gmv",
    period: str | None = None,
) -> dict[str, Any]:
    """The leaderboard with losses, reply time, tasks on time, Moments and targets (month ``period``, default the
    month of ``end``); ``sort`` may also be one of the scorecard's own figures."""
    if sort in EXTRA_SORTS:
        if user.role == Role.GUIDE and sort in ("tasks_on_time", "moments_done"):
            raise SiyuError("a guide sees only their own work figures and cannot rank guides by them", "sort")
        base = leaderboard_service.leaderboard(ctx, user, start, end, as_of, store_id, "gmv")
    else:
        base = leaderboard_service.leaderboard(ctx, user, start, end, as_of, store_id, sort)
    p = base["period"]
    d0, d1 = date.fromisoformat(p["start"]), date.fromisoformat(p["end"])
    t = tables(ctx, user.brand_id)
    losses = fetch_frame(ctx, analytics.guide_losses(t, d0, d1)).set_index("guide_id")["losses"].to_dict()
    rep = fetch_frame(ctx, analytics.guide_replies(t, d0, d1)).set_index("guide_id")
    utc0, utc1 = day_start_utc(d0), day_end_utc(d1)
    on_time = tasks_on_time(ctx, user.brand_id, utc0, utc1)
    mom = moments_done(ctx, user.brand_id, utc0, utc1)
    chats = behavior.figures(ctx, user.brand_id, d0, d1)
    month = _period(period, d1)
    goals = targets(ctx, user.brand_id, month)
    rows = base["rows"]
    for r in rows:
        g = r["guide_id"]
        r["losses"] = int(losses.get(g, 0))
        minutes = rep["reply_minutes"].get(g) if g in rep.index else None
        r["reply_minutes"] = None if minutes is None or minutes != minutes else round(float(minutes), 1)
        added = int(rep["added"].get(g, 0)) if g in rep.index else 0
        r["replied_share"] = round(int(rep["replied"].get(g, 0)) / added, 4) if added else None
        _wecom_figures(r, chats.get(g))
        a, d = mom.get(g, (0, 0))
        r["tasks_on_time"] = on_time.get(g, 0)
        r["moments_assigned"], r["moments_done"] = a, d
        r["moments_completion"] = round(d / a, 4) if a else None
        own = user.role != Role.GUIDE or g == user.guide_id
        r["targets"] = (
            {
                m: _attainment(r.get(m), goals.get(g, {}).get(m), hi)
                for m, hi in TARGET_METRICS.items()
                if m in goals.get(g, {})
            }
            if own
            else {}
        )
        if not own:
            r.update(dict.fromkeys(WORK_FIELDS))
    if sort in EXTRA_SORTS:
        desc = sort != "reply_minutes" and sort != "losses"
        rows.sort(key=lambda r: (r[sort] is None, -(r[sort] or 0) if desc else (r[sort] or 0), r["guide_id"]))
        for i, r in enumerate(rows, 1):
            r["rank"] = i
    return {**base, "sort": sort, "rows": rows, "target_period": month}


def me(
    ctx: Context, user: User, start: str | None = None, end: str | None = None, period: str | None = None
) -> dict[str, Any]:
    """A guide's own page: their scorecard row (with rank by GMV among all guides), targets and inbox counts."""
    if user.role != Role.GUIDE or not user.guide_id:
        raise SiyuError("the personal page is for guide users; use the scorecard with a guide filter", "role")
    from siyu.services.guide_work import inbox as inbox_service

    card = scorecard(ctx, user, start, end, None, None, "gmv", period)
    mine = next((r for r in card["rows"] if r["guide_id"] == user.guide_id), None)
    box = inbox_service.inbox(ctx, user)
    return {
        "period": card["period"],
        "target_period": card["target_period"],
        "guide_id": user.guide_id,
        "row": mine,
        "guides": len(card["rows"]),
        "inbox": {"total": box["total"], "overdue": box["overdue"], "counts": box["counts"]},
    }
