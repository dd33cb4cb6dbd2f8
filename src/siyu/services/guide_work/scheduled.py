"""The guide workspace's scheduled jobs (``siyu.workers.schedule``): the daily follow-up reminder digest and the
return of unworked pool leads (``daily``, run hourly: the digest is one row per guide and brand-local day, kept
current; a lead returns within the hour after its days run out), and the Moments completion poll
(``moments.poll_all``)."""

from __future__ import annotations

from typing import Any

from siyu.services.context import Context
from siyu.services.guide_work import followups, pool, pool_feed


def daily(ctx: Context) -> dict[str, Any]:
    """Write today's reminder digests, feed the pool (campaign helpers before the carrier action) and settle leads
    whose customer added a guide, and return leads without a follow-up in the brand's ``return_days``."""
    fed = pool_feed.run_all(ctx)
    return {"reminded": followups.daily_digests(ctx), "pool": fed, "returned": pool.return_unworked(ctx)}
