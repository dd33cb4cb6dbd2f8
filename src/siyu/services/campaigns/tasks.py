"""Campaign work handed to guides (seed 004: every activity goes to the guides with KPIs): one open task per guide
with a target in a running campaign, shown in the guide's inbox (``siyu.services.guide_work.inbox``).

A task is open while the campaign is in pilot or live and its end has not passed; it is due at the campaign's end.
Progress against the targets is on the campaign's leaderboard (``siyu.services.campaigns_stats.leaderboard``), not
recomputed here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from siyu.services.campaigns.definitions import utcnow
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignRow

TARGET_LABELS = (("participants", "参与"), ("new_customers", "新客"), ("conversions", "转化"), ("gmv", "GMV"))


def open_tasks(
    ctx: Context, brand_id: str, guide_id: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Open campaign tasks of one guide (``None``: of every guide): ``id`` (campaign:guide), ``title``,
    ``guide_id``, ``due_at`` (the campaign's end), ``detail`` (the targets), ``campaign_id``."""
    now = now or utcnow()
    with ctx.sessions() as s:
        rows = s.scalars(
            select(CampaignRow).where(
                CampaignRow.brand_id == brand_id, CampaignRow.status.in_(("pilot", "live")), CampaignRow.ends_at > now
            )
        ).all()
    out: list[dict[str, Any]] = []
    for row in rows:
        for t in (row.definition or {}).get("guide_targets") or []:
            g = str(t.get("guide_id") or "")
            if not g or (guide_id is not None and g != guide_id):
                continue
            goals = " · ".join(f"{label} {t[k]:g}" for k, label in TARGET_LABELS if float(t.get(k) or 0) > 0)
            out.append(
                {
                    "id": f"{row.id}:{g}",
                    "campaign_id": row.id,
                    "title": f"推广活动「{row.name}」",
                    "customer_id": None,
                    "guide_id": g,
                    "due_at": row.ends_at.isoformat(),
                    "detail": f"目标 {goals}" if goals else "",
                }
            )
    return out
