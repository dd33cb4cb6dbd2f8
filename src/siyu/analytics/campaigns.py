"""Campaign outcomes that need the warehouse (Ibis): whether a campaign's new customers came back after 7 / 30
days, and the orders (conversions, GMV) of the people a campaign brought.

The people come from the state DB (``siyu.services.campaigns_stats``) as a memtable ``(customer_id, t0)`` — t0 =
when the person joined the campaign (naive UTC)."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from siyu.analytics.base import Tables, customer_events, customer_orders

COHORT_SCHEMA = {"customer_id": "string", "t0": "timestamp"}


def cohort_table(frame: pd.DataFrame) -> ir.Table:
    """A memtable ``(customer_id, t0)`` of the people to look at from a frame with those columns (one row per
    customer: the earliest t0)."""
    f = frame[["customer_id", "t0"]].dropna()
    f = f.assign(customer_id=f["customer_id"].astype(str), t0=pd.to_datetime(f["t0"]))
    first = f.groupby("customer_id", as_index=False).agg(t0=("t0", "min"))
    return ibis.memtable(first, schema=COHORT_SCHEMA)


def activity(t: Tables) -> ir.Table:
    """Every order and event with its ``customer_id`` and time ``at`` (refunded orders excluded)."""
    o = customer_orders(t)
    e = customer_events(t)
    return o.select(customer_id=o.customer_id, at=o.ordered_at).union(
        e.select(customer_id=e.customer_id, at=e.timestamp)
    )


def retained(t: Tables, cohort: ir.Table, days: tuple[int, ...]) -> ir.Table:
    """``(customer_id, r<d> for d in days)``: ``r<d>`` = 1 when the customer has an order or an event in
    [t0 + 1 day, t0 + d days] — came back after the day they joined. Only cohort customers with some activity
    after t0 appear (the others are 0 everywhere)."""
    a = activity(t)
    j = cohort.inner_join(a, cohort.customer_id == a.customer_id)
    j = j.filter(j.at >= j.t0 + ibis.interval(days=1))
    return j.group_by(customer_id=j.customer_id).aggregate(
        **{f"r{d}": (j.at <= j.t0 + ibis.interval(days=d)).cast("int64").max() for d in days}
    )


def orders_after(t: Tables, cohort: ir.Table, until: datetime) -> ir.Table:
    """``(customer_id, orders, gmv)`` of the cohort's orders placed in [t0, ``until``] (refunds excluded)."""
    o = customer_orders(t)
    j = cohort.inner_join(o, cohort.customer_id == o.customer_id)
    j = j.filter((j.ordered_at >= j.t0) & (j.ordered_at <= ibis.literal(until, type="timestamp")))
    return j.group_by(customer_id=j.customer_id).aggregate(orders=j.order_id.nunique(), gmv=j.amount.sum())
