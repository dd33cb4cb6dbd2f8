"""Operator reads: participants, helps with reasons, the invite tree (nested, depth-limited, paged) and visit
counters (``record_visit``). ``guide_id`` restricts every read to that guide's participants / helps (a guide sees
only their own). Per-guide targets against actuals are the leaderboard of ``siyu.services.campaigns_stats`` (the
one definition of a guide's conversions and GMV)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.brand_time import local_day
from siyu.services.campaigns.definitions import get_row, utcnow
from siyu.services.campaigns.participation import participant_dict
from siyu.services.context import Context
from siyu.stores.state.campaign_models import (
    CampaignHelpRow,
    CampaignParticipantRow,
    CampaignVisitRow,
)

MAX_PAGE = 500


def participants(
    ctx: Context, brand_id: str, campaign_id: str, *, guide_id: str | None = None, page: int = 1, size: int = 50
) -> dict[str, Any]:
    """Participants, newest first (paged)."""
    get_row(ctx, brand_id, campaign_id)
    size = max(1, min(size, MAX_PAGE))
    with ctx.sessions() as s:
        q = select(CampaignParticipantRow).where(CampaignParticipantRow.campaign_id == campaign_id)
        if guide_id is not None:
            q = q.where(CampaignParticipantRow.guide_id == guide_id)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        rows = s.scalars(
            q.order_by(CampaignParticipantRow.first_seen_at.desc(), CampaignParticipantRow.id)
            .offset((max(page, 1) - 1) * size)
            .limit(size)
        ).all()
    return {"total": int(total or 0), "page": page, "size": size, "items": [participant_dict(p) for p in rows]}


def help_dict(h: CampaignHelpRow) -> dict[str, Any]:
    return {
        "id": h.id,
        "campaign_id": h.campaign_id,
        "sharer_id": h.sharer_id,
        "helper_customer_id": h.helper_customer_id,
        "helper_identity": f"{h.helper_id_type}:{h.helper_id_value}",
        "variant": h.variant,
        "channel": h.channel,
        "platform": h.platform,
        "depth": h.depth,
        "guide_id": h.guide_id,
        "new_customer": h.new_customer,
        "state": h.state,
        "reason": h.reason,
        "device_id": h.device_id,
        "ip": h.ip,
        "created_at": h.created_at.isoformat(),
        "counted_at": h.counted_at.isoformat() if h.counted_at else None,
        "revoked_at": h.revoked_at.isoformat() if h.revoked_at else None,
    }


def helps(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    *,
    state: str | None = None,
    guide_id: str | None = None,
    page: int = 1,
    size: int = 50,
) -> dict[str, Any]:
    """Help attempts (newest first) with state and reason, plus counts by state and by rejection reason."""
    get_row(ctx, brand_id, campaign_id)
    size = max(1, min(size, MAX_PAGE))
    with ctx.sessions() as s:
        q = select(CampaignHelpRow).where(CampaignHelpRow.campaign_id == campaign_id)
        if guide_id is not None:
            q = q.where(CampaignHelpRow.guide_id == guide_id)
        sub = q.subquery()
        counts = s.execute(select(sub.c.state, sub.c.reason, func.count()).group_by(sub.c.state, sub.c.reason)).all()
        if state:
            q = q.where(CampaignHelpRow.state == state)
        rows = s.scalars(q.order_by(CampaignHelpRow.id.desc()).offset((max(page, 1) - 1) * size).limit(size)).all()
    by_state: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for st, reason, n in counts:
        by_state[st] = by_state.get(st, 0) + n
        if reason:
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "by_state": by_state,
        "by_reason": by_reason,
        "page": page,
        "size": size,
        "items": [help_dict(h) for h in rows],
    }


def tree(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    *,
    root: str | None = None,
    max_depth: int = 3,
    page: int = 1,
    size: int = 50,
    guide_id: str | None = None,
) -> dict[str, Any]:
    """The invite tree as nested JSON: the seeds (or the children of ``root``) paged, each with its children
    down to ``max_depth`` levels (≤ 10); a node whose children were cut says ``more``. Guides see only their
    participants' subtrees."""
    get_row(ctx, brand_id, campaign_id)
    max_depth = max(0, min(max_depth, 10))
    size = max(1, min(size, MAX_PAGE))
    with ctx.sessions() as s:
        rows = s.execute(
            select(
                CampaignParticipantRow.id,
                CampaignParticipantRow.sharer_id,
                CampaignParticipantRow.depth,
                CampaignParticipantRow.helps_counted,
                CampaignParticipantRow.new_customer,
                CampaignParticipantRow.guide_id,
                CampaignParticipantRow.variant,
                CampaignParticipantRow.customer_id,
            ).where(CampaignParticipantRow.campaign_id == campaign_id)
        ).all()
    kids: dict[str | None, list[Any]] = {}
    by_id = {}
    for r in rows:
        kids.setdefault(r.sharer_id, []).append(r)
        by_id[r.id] = r
    for v in kids.values():
        v.sort(key=lambda r: r.id)
    tops = kids.get(root, [])
    if guide_id is not None:
        tops = [r for r in tops if r.guide_id == guide_id]

    def node(r: Any, left: int) -> dict[str, Any]:
        children = kids.get(r.id, [])
        out = {
            "id": r.id,
            "depth": r.depth,
            "helps_counted": r.helps_counted,
            "new_customer": r.new_customer,
            "guide_id": r.guide_id,
            "variant": r.variant,
            "customer_id": r.customer_id,
            "children_count": len(children),
        }
        if left > 0:
            out["children"] = [node(c, left - 1) for c in children[:size]]
            out["more"] = len(children) > size
        else:
            out["more"] = bool(children)
        return out

    chosen = tops[(max(page, 1) - 1) * size : max(page, 1) * size]
    depths: dict[int, int] = {}
    for r in rows:
        depths[r.depth] = depths.get(r.depth, 0) + 1
    return {
        "total": len(tops),
        "page": page,
        "size": size,
        "depths": {str(k): v for k, v in sorted(depths.items())},
        "nodes": [node(r, max_depth) for r in chosen],
    }


def record_visit(
    ctx: Context,
    campaign_id: str,
    *,
    variant: str = "",
    channel: str = "",
    page: str = "campaign",
    at: datetime | None = None,
    views: int = 1,
) -> None:
    """Count a page view (``views`` of them; per Asia/Shanghai day, variant, channel and page) — for 访问参与率."""
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    at = at or utcnow()
    day = local_day(at).isoformat()
    key = (
        CampaignVisitRow.campaign_id == campaign_id,
        CampaignVisitRow.day == day,
        CampaignVisitRow.variant == variant[:32],
        CampaignVisitRow.channel == channel[:64],
        CampaignVisitRow.page == page[:32],
    )
    for _ in range(3):
        with ctx.sessions() as s, s.begin():
            res = s.execute(update(CampaignVisitRow).where(*key).values(views=CampaignVisitRow.views + views))
            if getattr(res, "rowcount", 0) == 1:
                return
        try:
            with ctx.sessions() as s, s.begin():
                s.add(
                    CampaignVisitRow(
                        campaign_id=campaign_id,
                        day=day,
                        variant=variant[:32],
                        channel=channel[:64],
                        page=page[:32],
                        views=views,
                    )
                )
            return
        except IntegrityError:
            continue


def visits(ctx: Context, brand_id: str, campaign_id: str) -> list[dict[str, Any]]:
    """Visit counters of a campaign."""
    get_row(ctx, brand_id, campaign_id)
    with ctx.sessions() as s:
        rows = s.scalars(select(CampaignVisitRow).where(CampaignVisitRow.campaign_id == campaign_id)).all()
    return [{"day": r.day, "variant": r.variant, "channel": r.channel, "page": r.page, "views": r.views} for r in rows]
