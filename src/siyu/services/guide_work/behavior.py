"""WeCom's 联系客户统计 per guide and day (``get_user_behavior_data``): the daily sync and the scorecard's figures.

WeCom answers several members' TOTAL, so the sync asks once per guide (with a ``wecom_userid``) and per window of
at most 30 days; it keeps one row per guide and brand-local day (replaced on every sync, WeCom's figures of the
last days may still move). The scorecard reads, per guide over its period: chats, the average first reply time
weighted by each day's chats (days WeCom gave one), the reply share weighted the same way, and 删除/拉黑
(``negative_feedback_cnt``).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select

from siyu.connectors.wecom.client import WeComClient
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import settings as gw
from siyu.stores.state.guide_work_models import GuideBehaviorDayRow
from siyu.stores.state.models import BrandRow, utcnow

MAX_DAYS = 180  # WeCom keeps 180 days
WINDOW_DAYS = 30  # and answers at most 30 days per call
SCHEDULED_DAYS = 3  # the daily job re-reads the last days (yesterday's figures settle late)


def _unix(day: date) -> int:
    return int(datetime.combine(day, time(0), tzinfo=gw.TZ).timestamp())


def _day(stat_time: int) -> date:
    return datetime.fromtimestamp(int(stat_time), tz=UTC).astimezone(gw.TZ).date()


def _num(v: Any) -> float | None:
    return None if v is None or v == "" else float(v)


def check_days(days: int) -> int:
    """``days`` within 1..180 (error naming ``days`` otherwise)."""
    if not 1 <= days <= MAX_DAYS:
        raise SiyuError(f"days must be 1..{MAX_DAYS} (WeCom keeps {MAX_DAYS} days of 联系客户统计)", "days")
    return days


def sync(
    ctx: Context, brand_id: str, client: WeComClient, days: int = SCHEDULED_DAYS, today: date | None = None
) -> dict[str, Any]:
    """Read the last ``days`` brand-local days up to yesterday (1..180) for every active guide with a WeCom member
    id, one call per guide and 30-day window; store one row per guide and day. Returns counts and the guides
    skipped (no ``wecom_userid``)."""
    check_days(days)
    end = (today or gw.local_day()) - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    guides = gw.guides(ctx, brand_id)
    skipped = [g.guide_id for g in guides if not g.wecom_userid]
    calls = rows = 0
    now = utcnow()
    for g in guides:
        if not g.wecom_userid:
            continue
        got: list[GuideBehaviorDayRow] = []
        w0 = start
        while w0 <= end:
            w1 = min(end, w0 + timedelta(days=WINDOW_DAYS - 1))
            data = client.get_user_behavior_data([str(g.wecom_userid)], _unix(w0), _unix(w1))
            calls += 1
            for d in data:
                got.append(
                    GuideBehaviorDayRow(
                        brand_id=brand_id,
                        guide_id=g.guide_id,
                        day=_day(int(d["stat_time"])),
                        wecom_userid=str(g.wecom_userid),
                        chat_cnt=int(d.get("chat_cnt") or 0),
                        message_cnt=int(d.get("message_cnt") or 0),
                        reply_percentage=_num(d.get("reply_percentage")),
                        avg_reply_time=_num(d.get("avg_reply_time")),
                        negative_feedback_cnt=int(d.get("negative_feedback_cnt") or 0),
                        new_apply_cnt=int(d.get("new_apply_cnt") or 0),
                        new_contact_cnt=int(d.get("new_contact_cnt") or 0),
                        synced_at=now,
                    )
                )
            w0 = w1 + timedelta(days=1)
        B = GuideBehaviorDayRow
        with ctx.sessions() as s, s.begin():
            s.execute(delete(B).where(B.brand_id == brand_id, B.guide_id == g.guide_id, B.day >= start, B.day <= end))
            s.add_all(got)
        rows += len(got)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "guides": len(guides) - len(skipped),
        "calls": calls,
        "rows": rows,
        "skipped_no_wecom_userid": skipped,
    }


def sync_all(ctx: Context) -> dict[str, dict[str, Any]]:
    """The ``guide_work.behavior`` schedule: every brand with a WeCom secret; one brand's failure is logged."""
    from siyu.services.wecom.config import client_for, get_config

    with ctx.sessions() as s:
        brands = [b.id for b in s.scalars(select(BrandRow)) if ((b.settings or {}).get("wecom") or {}).get("secret")]
    out: dict[str, dict[str, Any]] = {}
    for b in brands:
        try:
            client = client_for(get_config(ctx, b))
            try:
                out[b] = sync(ctx, b, client)
            finally:
                client.close()
        except Exception:
            logging.getLogger(__name__).exception("syncing 联系客户统计 of brand %s failed", b)
    return out


def figures(ctx: Context, brand_id: str, start: date, end: date) -> dict[str, dict[str, Any]]:
    """Per guide over brand-local days [start, end]: ``chats``, ``reply_minutes`` (WeCom's avg_reply_time weighted
    by the day's chat_cnt, over days that have one; None without), ``reply_percentage`` (weighted the same way),
    ``negative_feedback``, ``new_contacts`` and ``days`` (rows synced)."""
    B = GuideBehaviorDayRow
    with ctx.sessions() as s:
        rows = list(s.scalars(select(B).where(B.brand_id == brand_id, B.day >= start, B.day <= end)))
    acc: dict[str, dict[str, float]] = {}
    for r in rows:
        a = acc.setdefault(r.guide_id, dict.fromkeys(("chats", "rt_w", "rt", "rp_w", "rp", "neg", "new", "days"), 0.0))
        a["chats"] += r.chat_cnt
        a["neg"] += r.negative_feedback_cnt
        a["new"] += r.new_contact_cnt
        a["days"] += 1
        if r.avg_reply_time is not None and r.chat_cnt > 0:
            a["rt_w"] += r.chat_cnt
            a["rt"] += r.avg_reply_time * r.chat_cnt
        if r.reply_percentage is not None and r.chat_cnt > 0:
            a["rp_w"] += r.chat_cnt
            a["rp"] += r.reply_percentage * r.chat_cnt
    return {
        g: {
            "chats": int(a["chats"]),
            "reply_minutes": round(a["rt"] / a["rt_w"], 1) if a["rt_w"] else None,
            "reply_percentage": round(a["rp"] / a["rp_w"], 2) if a["rp_w"] else None,
            "negative_feedback": int(a["neg"]),
            "new_contacts": int(a["new"]),
            "days": int(a["days"]),
        }
        for g, a in acc.items()
    }
