"""The campaigns' periodic job (schedule ``campaigns.tick``): for every brand with open campaigns, record helpers'
identities for OneID and link helps to customers (``flush_observations``: catches a person who helped twice
under two identities), expire overdue teams, and end campaigns past their end time."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from siyu.services.campaigns.definitions import _rows, utcnow
from siyu.services.campaigns.people import flush_observations
from siyu.services.campaigns.teams import expire_teams
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignRow

log = logging.getLogger(__name__)


def tick(ctx: Context, now: datetime | None = None) -> dict[str, Any]:
    """One run over every brand with a pilot / live campaign; returns what was done per brand."""
    now = now or utcnow()
    with ctx.sessions() as s:
        brands = sorted(
            set(s.scalars(select(CampaignRow.brand_id).where(CampaignRow.status.in_(("pilot", "live")))).all())
        )
    out: dict[str, Any] = {}
    for b in brands:
        try:
            flushed = flush_observations(ctx, b)
            expired = expire_teams(ctx, b, now)
            with ctx.sessions() as s, s.begin():
                ended = s.scalars(
                    select(CampaignRow.id).where(
                        CampaignRow.brand_id == b, CampaignRow.status.in_(("pilot", "live")), CampaignRow.ends_at <= now
                    )
                ).all()
                if ended:
                    s.execute(update(CampaignRow).where(CampaignRow.id.in_(ended)).values(status="ended", ended_at=now))
            for cid in ended:
                _rows.pop(cid, None)
            out[b] = {**flushed, "teams_expired": expired, "campaigns_ended": len(ended)}
        except Exception:  # one brand's failure does not stop the others
            log.exception("campaigns tick failed for brand %s", b)
    return out
