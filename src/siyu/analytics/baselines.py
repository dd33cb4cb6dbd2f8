"""Daily series of the key steps that baselines watch (Ibis expressions, never executed here).

The robust statistics (median and MAD of the same weekday over the previous weeks) run in the service over
these small daily series (``siyu.services.metrics.anomalies``); this module defines what each step counts.
Days without any record are absent here and count as 0 in the service.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import EXCLUDED_ORDER_STATUSES, Tables, in_days, local_date
from siyu.analytics.definitions import define

MODULE = "baselines"

# inbound interactions of a customer (互动): the events that count for the `interactions` step
INTERACTION_EVENTS: tuple[str, ...] = ("Message Replied", "Message Clicked", "Coupon Claimed")

# step key → has a channel breakdown
STEPS: dict[str, bool] = {
    "new_contacts": True,
    "losses": True,
    "interactions": False,
    "orders": True,
    "gmv": True,
}


def daily_series(t: Tables, step: str, start: date, end: date, by_channel: bool = False) -> ir.Table:
    """Per day (and per channel when ``by_channel``) the value of ``step``: columns day, [channel_id], value.

    Steps: new_contacts (relations added), losses (relations lost, 删粉 by either side), interactions (inbound
    events: replies, clicks, coupon claims), orders (non-refunded orders), gmv (their amount).
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    if by_channel and not STEPS[step]:
        raise ValueError(f"step {step!r} has no channel breakdown")
    if step in ("new_contacts", "losses"):
        r = t.relations
        col = r.added_at if step == "new_contacts" else r.lost_at
        r = r.filter(col.notnull() & in_days(col, start, end))
        x = r.select(day=local_date(col), channel_id=r.channel_id, value=ibis.literal(1.0))
    elif step == "interactions":
        e = t.events
        e = e.filter(e.event.isin(INTERACTION_EVENTS) & in_days(e.timestamp, start, end))
        x = e.select(day=local_date(e.timestamp), channel_id=ibis.null("string"), value=ibis.literal(1.0))
    else:
        o = t.orders
        o = o.filter(~o.status.isin(EXCLUDED_ORDER_STATUSES) & in_days(o.ordered_at, start, end))
        value = o.amount.cast("float64") if step == "gmv" else ibis.literal(1.0)
        x = o.select(day=local_date(o.ordered_at), channel_id=o.channel_id, value=value)
    keys = ["day", "channel_id"] if by_channel else ["day"]
    return x.group_by(keys).agg(value=x.value.sum()).order_by(keys)


define(
    "baselines.band",
    "基线与异常",
    "Baseline and anomalies",
    "每个关键步骤（新增好友、删粉、互动、订单、GMV）的日值，与过去 N 周（默认 8）同一星期几的值比较：基线 = 中位数，"
    "稳健 z = (实际 − 中位数) ÷ (1.4826 × MAD)（MAD 为 0 时尺度取下限 max(1, 5% × 中位数)）；|z| > 3 记为异常",
    "Each key step's daily value (new contacts, losses, interactions, orders, GMV) against the same weekday of the "
    "previous N weeks (default 8): baseline = median, robust z = (actual − median) ÷ (1.4826 × MAD) (the scale has a "
    "floor of max(1, 5% × median) when MAD is 0); |z| > 3 is flagged",
    "score",
    MODULE,
)
