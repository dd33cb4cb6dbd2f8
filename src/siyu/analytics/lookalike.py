"""Features of every customer for lookalike scoring (基于人群 lookalike), as one Ibis expression.

One row per customer of the brand (records before ``as_of``):
- RFM values: ``last_order_at`` (the service turns it into recency days), ``frequency`` (orders), ``monetary``;
- acquisition channel: ``ch_<i>`` = 1 when the customer joined through ``channels[i]`` (``joined``);
- tags: ``tag_<i>`` = 1 when the customer carries ``tag_ids[i]``;
- behaviour: ``ev_<i>`` = how many track events named ``event_names[i]``, ``page_views``;
- reach: ``active_relation`` (an active guide relation on ``as_of``), ``in_group`` (an active group membership).
The model that scores them is ``siyu.domain.lookalike`` (numpy); ``siyu.services.lookalike`` runs both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import (
    Tables,
    active_between,
    customer_events,
    customer_group_members,
    customer_orders,
    customer_relations,
    joined,
    ts,
)


def _flag(cond: ir.BooleanValue) -> ir.IntegerValue:
    return ibis.cases((cond, 1), else_=0)


def lookalike_features(
    t: Tables,
    as_of: date,
    event_names: Sequence[str] = (),
    channels: Sequence[str] = (),
    tag_ids: Sequence[str] = (),
) -> ir.Table:
    """Customer feature table (see the module docstring for the columns)."""
    at = ts(as_of)
    u = t.customers.select("customer_id")

    o = customer_orders(t)
    o = o.filter(o.ordered_at < at)
    orders = o.group_by("customer_id").agg(
        last_order_at=o.ordered_at.max(), frequency=o.count(), monetary=o.amount.sum()
    )

    e = customer_events(t)
    e = e.filter(e.timestamp < at)
    ev_aggs = {
        f"ev_{i}": ((e.type == "track") & (e.event == name)).cast("int64").sum() for i, name in enumerate(event_names)
    }
    events = e.group_by("customer_id").agg(page_views=(e.type == "page").cast("int64").sum(), **ev_aggs)

    j = joined(t)
    j = j.filter(j.joined_at < at)
    ch = j.select(
        ch_customer_id="customer_id",
        **{f"ch_{i}": _flag(j.channel_id == c) for i, c in enumerate(channels)},
    )

    r = customer_relations(t)
    rel = r.filter(active_between(r.added_at, r.lost_at, at)).select(rel_customer_id="customer_id").distinct()
    gm = customer_group_members(t)
    grp = gm.filter(active_between(gm.joined_at, gm.left_at, at)).select(grp_customer_id="customer_id").distinct()

    out = u.left_join(orders, u.customer_id == orders.customer_id).select(
        u.customer_id, orders.last_order_at, orders.frequency, orders.monetary
    )
    out = out.left_join(events, out.customer_id == events.customer_id).select(
        out, events.page_views, *[events[f"ev_{i}"] for i in range(len(event_names))]
    )
    out = out.left_join(ch, out.customer_id == ch.ch_customer_id).drop("ch_customer_id")
    out = out.left_join(rel, out.customer_id == rel.rel_customer_id)
    out = out.mutate(active_relation=_flag(out.rel_customer_id.notnull())).drop("rel_customer_id")
    out = out.left_join(grp, out.customer_id == grp.grp_customer_id)
    out = out.mutate(in_group=_flag(out.grp_customer_id.notnull())).drop("grp_customer_id")

    if tag_ids:
        it, i = t.identifier_tags, t.identities
        tj = it.filter(it.tag_id.isin(list(tag_ids))).join(i, (it.id_type == i.id_type) & (it.id_value == i.id_value))
        tags = tj.group_by(tag_customer_id=i.customer_id).agg(
            **{f"tag_{k}": (tj.tag_id == tag).cast("int64").max() for k, tag in enumerate(tag_ids)}
        )
        out = out.left_join(tags, out.customer_id == tags.tag_customer_id).drop("tag_customer_id")
    return out


def top_values(t: Tables, as_of: date, limit: int = 20) -> dict[str, ir.Table]:
    """The event names, acquisition channels and tag ids to one-hot: the most frequent ones (value, n)."""
    at = ts(as_of)
    e = t.events.filter((t.events.type == "track") & (t.events.timestamp < at) & t.events.event.notnull())
    ev = e.group_by(value=e.event).agg(n=e.count()).order_by([ibis.desc("n"), "value"]).limit(limit)
    j = joined(t)
    j = j.filter(j.channel_id.notnull() & (j.joined_at < at))
    ch = j.group_by(value=j.channel_id).agg(n=j.count()).order_by([ibis.desc("n"), "value"]).limit(limit)
    it = t.identifier_tags
    tg = it.group_by(value=it.tag_id).agg(n=it.count()).order_by([ibis.desc("n"), "value"]).limit(limit)
    return {"events": ev, "channels": ch, "tags": tg}
