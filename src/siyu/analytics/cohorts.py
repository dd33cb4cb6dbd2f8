"""Cohorts: retention and cumulative revenue by cohort month × months since, optionally by channel.

A customer's cohort is the calendar month they joined the private domain (``basis='joined'``, ``base.joined``;
channel = the channel of their first guide relation, ``'none'`` when they joined through a group only) or, for
brands without WeCom data such as Online Retail, the month of their first revenue order (``basis='first_order'``;
channel = that order's sales channel, ``'none'`` when it has none). Only customers whose cohort starts before
``as_of`` (00:00 of that day) count, and only revenue orders (refunded/cancelled excluded) placed before it.

For cohort month ``c`` and ``k`` = 0, 1, … up to the month holding the last day before as_of:

- active = cohort customers with ≥ 1 order in calendar month ``c + k`` (orders before month ``c`` ignored);
- retention = active / cohort size;
- revenue = Σ amount of those orders; cumulative_revenue = Σ revenue over months 0…k;
  cumulative_revenue_per_customer = cumulative_revenue / cohort size.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_orders, joined, local_time, ts
from siyu.analytics.definitions import define

MODULE = "cohorts"

Basis = Literal["joined", "first_order"]

define(
    "cohorts.retention",
    "同期群留存率",
    "cohort retention",
    "加入月 c 的客户中，在第 c+k 个自然月有有效订单的人数 / 该月加入人数",
    "customers of join month c with a revenue order in calendar month c + k / customers who joined in month c",
    "ratio",
    MODULE,
)
define(
    "cohorts.cumulative_revenue",
    "同期群累计收入",
    "cohort cumulative revenue",
    "加入月 c 的客户在第 c…c+k 个自然月的订单金额之和（人均 = 除以该月加入人数）",
    "Σ order amount of the customers of join month c in calendar months c … c + k (per customer = ÷ cohort size)",
    "currency",
    MODULE,
)


def _month_index(col: ir.TimestampColumn) -> ir.IntegerColumn:
    """year × 12 + month − 1 of the brand-local month a stored time falls in."""
    local = local_time(col)
    return (local.year() * 12 + local.month() - 1).cast("int64")


def cohort_members(t: Tables, as_of: date, basis: Basis = "joined") -> ir.Table:
    """Each customer's cohort. Columns: customer_id, cohort_idx (year × 12 + month − 1), channel_id."""
    at = ts(as_of)
    if basis == "joined":
        j = joined(t)
        j = j.filter(j.joined_at < at)
        return j.select("customer_id", cohort_idx=_month_index(j.joined_at), channel_id=j.channel_id.fill_null("none"))
    if basis == "first_order":
        o = customer_orders(t)
        o = o.filter(o.ordered_at < at)
        f = o.group_by("customer_id").agg(first_at=o.ordered_at.min(), channel_id=o.channel_id.argmin(o.ordered_at))
        return f.select("customer_id", cohort_idx=_month_index(f.first_at), channel_id=f.channel_id.fill_null("none"))
    raise ValueError("basis must be 'joined' or 'first_order'")


def cohort_table(
    t: Tables,
    as_of: date,
    basis: Basis = "joined",
    by_channel: bool = False,
    members: ir.Table | None = None,
) -> ir.Table:
    """Cohort × months-since grid (every month up to as_of, zero months included).

    ``members`` (from ``cohort_members``, possibly restricted to a guide's customers) defaults to all.
    Columns: cohort_month (first day), [channel_id,] months_since, cohort_size, active, retention, revenue,
    cumulative_revenue, cumulative_revenue_per_customer.
    """
    m = members if members is not None else cohort_members(t, as_of, basis)
    keys = ["cohort_idx", "channel_id"] if by_channel else ["cohort_idx"]
    last = as_of - timedelta(days=1)
    last_idx = last.year * 12 + last.month - 1
    sizes = m.group_by(keys).agg(cohort_size=m.count())
    grid = sizes.mutate(months_since=ibis.range(0, ibis.literal(last_idx + 1) - sizes.cohort_idx).unnest())

    o = customer_orders(t)
    o = o.filter(o.ordered_at < ts(as_of))
    mo = m.join(o, m.customer_id == o.customer_id)
    mo = mo.select(*keys, customer_id=m.customer_id, amount=mo.amount, k=_month_index(mo.ordered_at) - mo.cohort_idx)
    mo = mo.filter(mo.k >= 0)
    act = mo.group_by([*keys, "k"]).agg(active=mo.customer_id.nunique(), revenue=mo.amount.sum())

    cond = [grid[k] == act[k] for k in keys] + [grid.months_since == act.k]
    g = grid.left_join(act, cond)
    g = g.select(
        *[grid[k] for k in keys],
        months_since=grid.months_since,
        cohort_size=grid.cohort_size,
        active=g.active.fill_null(0).cast("int64"),
        revenue=g.revenue.fill_null(0.0).cast("float64"),
    )
    w = ibis.cumulative_window(group_by=[g[k] for k in keys], order_by=g.months_since)
    out = g.mutate(
        retention=g.active.cast("float64") / g.cohort_size,
        cumulative_revenue=g.revenue.sum().over(w),
    )
    out = out.mutate(cumulative_revenue_per_customer=out.cumulative_revenue / out.cohort_size)
    year = (out.cohort_idx // 12).cast("int32")
    month = (out.cohort_idx % 12 + 1).cast("int32")
    cols = ["cohort_month", *keys[1:], "months_since", "cohort_size", "active", "retention", "revenue"]
    out = out.mutate(cohort_month=ibis.date(year, month, 1))
    return out.select(*cols, "cumulative_revenue", "cumulative_revenue_per_customer").order_by(
        ["cohort_month", *keys[1:], "months_since"]
    )
