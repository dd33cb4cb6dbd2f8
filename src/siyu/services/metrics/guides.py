"""Guide KPIs: the leaderboard (per store, sortable) and the drill-down to one guide's customers.

A guide user sees the leaderboard's figures (they are per guide, not per customer) but drills down only into
their own customers. Phone numbers in the drill-down are shown in full to admins, masked for other roles.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from siyu.analytics import guides as analytics
from siyu.display import money_cents
from siyu.domain.brand_time import day_end_utc, day_start_utc
from siyu.domain.models import Role
from siyu.domain.pii import mask_phone
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError
from siyu.services.journeys.tasks import KPI_FIELDS, task_kpis
from siyu.services.metrics import restrict, scope, tables
from siyu.services.metrics.acquisition import records, resolve_period

SORT_FIELDS: tuple[str, ...] = (
    "gmv",
    "reachable",
    "new_customers",
    "conversions",
    "orders",
    "task_completion",
    "guide_id",
)
TASK_SORTS = ("task_completion",)  # figures a guide sees only for themself: not a ranking they may sort by
DEFAULT_DAYS = 30


def leaderboard(
    ctx: Context,
    user: User,
    start: str | date | None = None,
    end: str | date | None = None,
    as_of: str | date | None = None,
    store_id: str | None = None,
    sort: str = "gmv",
) -> dict[str, Any]:
    """Per guide: reachable (客群资产数), new customers, conversions, orders, GMV, rank, and the journey tasks
    created in the period (brand-local days): assigned, done, skipped, overdue, completion rate (done / assigned;
    None without tasks). A guide sees the task figures of their own row only."""
    if sort not in SORT_FIELDS:
        raise SiyuError(f"sort {sort!r} is not known; use one of {', '.join(SORT_FIELDS)}", "sort")
    if sort in TASK_SORTS and user.role == Role.GUIDE:
        raise SiyuError("a guide sees only their own task figures and cannot rank guides by them", "sort")
    brand = user.brand_id
    p = resolve_period(ctx, brand, start, end, as_of, days=DEFAULT_DAYS)
    t = tables(ctx, brand)
    frame = analytics.guide_kpis(t, p.start, p.end, p.as_of).execute()
    if store_id:
        known = set(frame["store_id"].dropna())
        if store_id not in known:
            raise SiyuError(f"store_id {store_id!r} is not a store of this brand; one of {sorted(known)}", "store_id")
        frame = frame[frame["store_id"] == store_id]
    tasks = task_kpis(ctx, brand, day_start_utc(p.start), day_end_utc(p.end))
    empty = dict.fromkeys(KPI_FIELDS[:-1], 0) | {"task_completion": None}
    for f in KPI_FIELDS:
        frame[f] = [tasks.get(g, empty)[f] for g in frame["guide_id"]]
    frame = frame.sort_values([sort, "guide_id"], ascending=[sort == "guide_id", True], na_position="last").reset_index(
        drop=True
    )
    frame["rank"] = range(1, len(frame) + 1)
    out = records(frame)
    for r in out:  # money in cents, not float noise
        r["gmv"] = money_cents(r.get("gmv"))
    if user.role == Role.GUIDE:  # other guides' tasks are theirs: figures left out
        for r in out:
            if r["guide_id"] != user.guide_id:
                r.update(dict.fromkeys(KPI_FIELDS))
    return {"period": p.as_dict(), "sort": sort, "store_id": store_id, "rows": out, "task_completion_available": True}


def guide_customers(
    ctx: Context,
    user: User,
    guide_id: str,
    start: str | date | None = None,
    end: str | date | None = None,
    as_of: str | date | None = None,
) -> dict[str, Any]:
    """The guide's reachable customers with orders/GMV in the period and last order; a guide only their own."""
    brand = user.brand_id
    if user.role == Role.GUIDE and guide_id != user.guide_id:
        raise NotFound(f"guide {guide_id!r} not found (a guide sees only their own customers)", "guide_id")
    t = tables(ctx, brand)
    g = t.guides
    if int(g.filter(g.guide_id == guide_id).count().execute()) == 0:
        raise NotFound(f"guide {guide_id!r} is not a guide of brand {brand!r}", "guide_id")
    p = resolve_period(ctx, brand, start, end, as_of, days=DEFAULT_DAYS)
    expr = restrict(analytics.guide_customers(t, guide_id, p.start, p.end, p.as_of), scope(ctx, user))
    frame = expr.execute().sort_values(["gmv", "customer_id"], ascending=[False, True])
    if user.role != Role.ADMIN:
        frame["phone"] = frame["phone"].map(lambda p: mask_phone(p) if p else p)
    return {
        "period": p.as_dict(),
        "guide_id": guide_id,
        "phone_masked": user.role != Role.ADMIN,
        "rows": records(frame),
    }
