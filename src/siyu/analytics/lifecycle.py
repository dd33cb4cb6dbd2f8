"""New/old lifecycle stage (新客未购 … 老客复购) of the private-domain customers on a date.

Population: customers who joined the private domain before ``as_of`` (``base.joined``: first guide relation or
group membership; ``as_of`` is the start of that day, 00:00). "New" = joined within ``new_days`` before as_of
(``joined_at ≥ as_of − new_days``), otherwise "old". Purchases = distinct revenue orders (refunded/cancelled
excluded) placed before as_of, at any time — also before joining (a marketplace buyer invited into WeCom by the
card in their parcel has bought). Stages:

- new_no_purchase 新客未购: new, 0 orders; new_purchased 新客已购: new, ≥ 1 order;
- old_no_purchase 老客未购: old, 0 orders; old_purchased_once 老客已购: old, 1 order;
- old_repurchased 老客复购: old, ≥ 2 orders.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_order_totals, joined, ts
from siyu.analytics.definitions import define
from siyu.analytics.memo import memoized

MODULE = "lifecycle"

LIFECYCLE_ZH: dict[str, str] = {
    "new_no_purchase": "新客未购",
    "new_purchased": "新客已购",
    "old_no_purchase": "老客未购",
    "old_purchased_once": "老客已购",
    "old_repurchased": "老客复购",
}

define(
    "lifecycle.stage",
    "新老客生命周期",
    "new/old lifecycle stage",
    "统计日前已加入私域的客户；近 N 天（默认30）加入为新客，否则老客；按统计日前的有效订单数分：新客 0/≥1，老客 0/1/≥2",
    "customers who joined the private domain before the as-of date; joined within the last N days (default 30) = "
    "new, else old; by revenue orders before the as-of date: new 0 / ≥ 1, old 0 / 1 / ≥ 2",
    "label",
    MODULE,
)
define(
    "lifecycle.stage_count",
    "生命周期各阶段人数",
    "customers per lifecycle stage",
    "统计日各生命周期阶段的客户数",
    "customers in each lifecycle stage on the as-of date",
    "count",
    MODULE,
)


@memoized
def lifecycle_stage(t: Tables, as_of: date, new_days: int = 30) -> ir.Table:
    """Lifecycle stage of every customer who joined before ``as_of``. Columns: customer_id, stage."""
    if new_days <= 0:
        raise ValueError("new_days must be a positive number of days")
    at = ts(as_of)
    j = joined(t)
    j = j.filter(j.joined_at < at)
    n = customer_order_totals(t, as_of).select("customer_id", "orders")
    x = j.left_join(n, j.customer_id == n.customer_id)
    orders = x.orders.fill_null(0)
    is_new = x.joined_at >= ts(as_of - timedelta(days=new_days))
    stage = ibis.cases(
        (is_new & (orders == 0), "new_no_purchase"),
        (is_new, "new_purchased"),
        (orders == 0, "old_no_purchase"),
        (orders == 1, "old_purchased_once"),
        else_="old_repurchased",
    )
    return x.select(customer_id=x.customer_id, stage=stage)


def lifecycle_counts(stages: ir.Table) -> ir.Table:
    """Customers per lifecycle stage. Columns: stage, customers."""
    return stages.group_by("stage").agg(customers=stages.count()).order_by("stage")
