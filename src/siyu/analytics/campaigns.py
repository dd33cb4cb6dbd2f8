"""Campaign outcomes that need the warehouse (Ibis): whether a campaign's new customers came back after 7 / 30
days, and the orders (conversions, GMV) of the people a campaign brought.

The people come from the state DB (``siyu.services.campaigns_stats``) as a memtable ``(customer_id, t0)`` — t0 =
when the person joined the campaign (naive UTC)."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_events, customer_orders

COHORT_SCHEMA = {"customer_id": "string", "t0": "timestamp"}


def cohort_table(rows: list[tuple[str, datetime]]) -> ir.Table:
    """A memtable ``(customer_id, t0)`` of the people to look at (one row per customer: the earliest t0)."""
    first: dict[str, datetime] = {}
    for cid, t0 in rows:
        if cid and (cid not in first or t0 < first[cid]):
            first[cid] = t0
    return ibis.memtable(
        {"customer_id": list(first), "t0": list(first.values())},
        schema=COHORT_SCHEMA,
    )


def activity(t: Tables) -> ir.Table:
    """Every order and event with its ``customer_id`` and time ``at`` (refunded orders excluded)."""
    o = customer_orders(t)
    e = customer_events(t)
    return o.select(customer_id=o.customer_id, at=o.ordered_at).union(
        e.select(customer_id=e.customer_id, at=e.timestamp)
    )


def retained(t: Tables, cohort: ir.Table, days: int) -> ir.Table:
    """``(customer_id, retained)``: 1 when the customer has an order or an event in [t0 + 1 day, t0 + ``days``
    days] — came back after the day they joined — else 0. Only customers of ``cohort``."""
    a = activity(t)
    j = cohort.inner_join(a, cohort.customer_id == a.customer_id)
    hit = (
        j.filter((j.at >= j.t0 + ibis.interval(days=1)) & (j.at <= j.t0 + ibis.interval(days=days)))
        .select(h_id=j.customer_id)
        .distinct()
    )
    out = cohort.left_join(hit, cohort.customer_id == hit.h_id)
    return out.select(customer_id=out.customer_id, retained=out.h_id.notnull().cast("int64"))


def orders_after(t: Tables, cohort: ir.Table, until: datetime) -> ir.Table:
    """``(customer_id, orders, gmv)`` of the cohort's orders placed in [t0, ``until``] (refunds excluded)."""
    o = customer_orders(t)
    j = cohort.inner_join(o, cohort.customer_id == o.customer_id)
    j = j.filter((j.ordered_at >= j.t0) & (j.ordered_at <= ibis.literal(until, type="timestamp")))
    return j.group_by(customer_id=j.customer_id).aggregate(orders=j.order_id.nunique(), gmv=j.amount.sum())
