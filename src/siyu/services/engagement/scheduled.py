"""The daily engagement job (``siyu.workers.schedule``): expire points lots past their date and recompute the
member tiers of every brand that has a tier scheme."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from siyu.services.context import Context
from siyu.services.engagement.tiers import recompute
from siyu.services.rewards.points import expire_due
from siyu.stores.state.engagement_models import PointsEntryRow, TierSchemeRow

log = logging.getLogger(__name__)


def daily(ctx: Context, now: datetime | None = None) -> dict[str, Any]:
    """Run for every brand with points or a tier scheme; one brand's failure is logged, the others still run.
    Returns ``{brand: {expired, tiers}}``."""
    with ctx.sessions() as s:
        with_points = set(s.scalars(select(PointsEntryRow.brand_id).distinct()).all())
        with_scheme = set(s.scalars(select(TierSchemeRow.brand_id)).all())
    out: dict[str, Any] = {}
    for brand in sorted(with_points | with_scheme):
        try:
            done: dict[str, Any] = {"expired": expire_due(ctx, brand, now) if brand in with_points else 0}
            if brand in with_scheme:
                r = recompute(ctx, brand, now=now)
                done["tiers"] = {k: r[k] for k in ("members", "upgraded", "downgraded")}
            out[brand] = done
        except Exception:  # one brand must not stop the others
            log.exception("engagement daily job failed for brand %s", brand)
            out[brand] = {"error": True}
    return out
