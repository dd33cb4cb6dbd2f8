"""Channel-code stats (Ibis expressions; ``code_stats`` runs them and fills the day series): the relations of the
contacts a code brought —
adds, losses by who ended them (customer = 删粉, guide = the guide deleted the customer), net = adds − losses.

The code's contacts come from the onboarding log (state DB) as (external_userid, guide_id) pairs; WeCom shows
no scans, only adds and losses.  Days are China days (UTC+8), like the codes' daily caps.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import local_date, ts
from siyu.domain.channel_code import business_day


def code_relations(rel: ir.Table, brand_id: str, pairs: list[tuple[str, str]]) -> ir.Table:
    """The relations of these (external_userid, guide_id) pairs, with the loss kind."""
    keys = ibis.memtable(
        {"external_userid": [p[0] for p in pairs], "guide_id": [p[1] for p in pairs]},
        schema={"external_userid": "string", "guide_id": "string"},
    )
    r = rel.filter(rel.brand_id == brand_id)
    j = r.inner_join(keys, ["external_userid", "guide_id"])
    lost = j.state == "lost"
    return j.select(
        "external_userid",
        "guide_id",
        "added_at",
        "lost_at",
        lost_customer=(lost & (j.lost_by == "customer")).cast("int64"),
        lost_guide=(lost & (j.lost_by == "guide")).cast("int64"),
        lost_other=(lost & ~j.lost_by.isin(["customer", "guide"]).fill_null(False)).cast("int64"),
    )


def by_guide(cr: ir.Table) -> ir.Table:
    """Adds, losses and net per guide."""
    return (
        cr.group_by("guide_id")
        .aggregate(
            adds=cr.count(),
            lost_customer=cr.lost_customer.sum(),
            lost_guide=cr.lost_guide.sum(),
            lost_other=cr.lost_other.sum(),
        )
        .mutate(net=lambda t: t.adds - t.lost_customer - t.lost_guide - t.lost_other)
        .order_by("guide_id")
    )


def by_day(cr: ir.Table, start: date) -> tuple[ir.Table, ir.Table]:
    """Adds per China day (by added_at) and losses per China day (by lost_at), from ``start`` on."""
    lo = ts(start)
    added = cr.filter(cr.added_at >= lo)
    adds = added.group_by(day=local_date(added.added_at)).aggregate(adds=added.count())
    lost = cr.filter(cr.lost_at.notnull() & (cr.lost_at >= lo))
    losses = lost.group_by(day=local_date(lost.lost_at)).aggregate(
        lost_customer=lost.lost_customer.sum(), lost_guide=lost.lost_guide.sum(), lost_other=lost.lost_other.sum()
    )
    return adds, losses


def _day(v: object) -> date:
    return v if isinstance(v, date) and not isinstance(v, datetime) else datetime.fromisoformat(str(v)[:10]).date()


def code_stats(
    rel: ir.Table, brand_id: str, pairs: list[tuple[str, str]], days: int, today: date | None = None
) -> tuple[dict[str, int], list[dict[str, object]], list[dict[str, object]]]:
    """Totals, per-guide rows and a day series (every day of the last ``days``, zeros included) of a code."""
    end = today or business_day(datetime.now(UTC))
    start = end - timedelta(days=days - 1)
    zero = {"adds": 0, "lost_customer": 0, "lost_guide": 0, "lost_other": 0}
    series = {start + timedelta(days=i): {**zero} for i in range(days)}
    if not pairs:
        return {**zero, "net": 0}, [], [{"day": d.isoformat(), **v, "net": 0} for d, v in series.items()]
    cr = code_relations(rel, brand_id, pairs)
    guides = by_guide(cr).execute()
    adds, losses = by_day(cr, start)
    for row in adds.execute().itertuples():
        if (d := _day(row.day)) in series:
            series[d]["adds"] = int(row.adds)
    for row in losses.execute().itertuples():
        if (d := _day(row.day)) in series:
            for k in ("lost_customer", "lost_guide", "lost_other"):
                series[d][k] = int(getattr(row, k))
    g_rows: list[dict[str, object]] = [
        {k: (str(v) if k == "guide_id" else int(v)) for k, v in r.items()} for r in guides.to_dict("records")
    ]
    totals = {k: sum(int(str(r[k])) for r in g_rows) for k in (*zero, "net")}
    day_rows: list[dict[str, object]] = [
        {"day": d.isoformat(), **v, "net": v["adds"] - v["lost_customer"] - v["lost_guide"] - v["lost_other"]}
        for d, v in series.items()
    ]
    return totals, g_rows, day_rows
