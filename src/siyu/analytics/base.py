"""Brand-scoped tables and the customer-level views every metric starts from.

Records keep the raw identifiers they arrived with (an order's ``customer_ref``, a relation's
``external_userid``, an event's ``user_id``/``anonymous_id``); the customer they belong to is found by joining
``identities`` (OneID's identifier → customer map).  Records whose identifier OneID has not resolved yet are
left out of customer-level views (they count again as soon as OneID resolves them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.analytics.memo import ExprMemo, memoized
from siyu.domain.brand_time import UTC_OFFSET, day_start_utc

TABLE_NAMES: tuple[str, ...] = (
    "events",
    "orders",
    "order_lines",
    "identities",
    "customers",
    "relations",
    "group_members",
    "guides",
    "stores",
    "channels",
    "channel_spend",
    "touchpoints",
    "tags",
    "identifier_tags",
)

# JSON columns; an engine without a JSON type (Spark, Parquet) holds them as text, typed JSON again on binding
JSON_COLUMNS: dict[str, tuple[str, ...]] = {"events": ("properties", "traits", "context"), "customers": ("traits",)}

# order statuses that are not revenue
EXCLUDED_ORDER_STATUSES: tuple[str, ...] = ("refunded", "cancelled")


@dataclass(frozen=True)
class Tables:
    """The warehouse tables of one brand, each already filtered to ``brand_id``.

    ``memo`` holds the expressions built on these tables by ``@memoized`` builders (not data); a copy made with
    ``dataclasses.replace`` starts with an empty one.
    """

    brand_id: str
    events: ir.Table
    orders: ir.Table
    order_lines: ir.Table
    identities: ir.Table
    customers: ir.Table
    relations: ir.Table
    group_members: ir.Table
    guides: ir.Table
    stores: ir.Table
    channels: ir.Table
    channel_spend: ir.Table
    touchpoints: ir.Table
    tags: ir.Table
    identifier_tags: ir.Table
    memo: ExprMemo = field(default_factory=ExprMemo, init=False, repr=False, compare=False, hash=False)

    @classmethod
    def of(cls, backend: Any, brand_id: str) -> Tables:
        """Bind every table of ``backend`` (any Ibis backend holding the warehouse schema) to one brand."""
        tabs = {}
        for name in TABLE_NAMES:
            t = backend.table(name)
            texts = [c for c in JSON_COLUMNS.get(name, ()) if t[c].type().is_string()]
            if texts:
                t = t.mutate(**{c: t[c].cast("json") for c in texts})
            tabs[name] = t.filter(t.brand_id == brand_id)
        return cls(brand_id=brand_id, **tabs)


def ts(value: date | datetime) -> ir.TimestampScalar:
    """A timestamp literal: a datetime is a naive UTC instant; a date means the brand-local midnight opening it
    (``siyu.domain.brand_time``), so ``[ts(start), ts(end + 1 day))`` is the brand's days start..end."""
    if not isinstance(value, datetime):
        value = day_start_utc(value)
    return ibis.literal(value, type="timestamp")


def in_days(col: ir.TimestampValue, start: date, end: date) -> ir.BooleanValue:
    """``col`` falls on one of the brand-local days ``start``..``end`` (both inclusive)."""
    return (col >= ts(start)) & (col < ts(end + timedelta(days=1)))


def local_time(col: ir.TimestampValue) -> ir.TimestampValue:
    """A stored (naive UTC) time as the brand-local wall clock: take ``.date()``/``.month()`` of this, not of the
    stored value, to bucket by the brand's days and months."""
    return col + ibis.interval(seconds=int(UTC_OFFSET.total_seconds()))


def local_date(col: ir.TimestampValue) -> ir.DateValue:
    """The brand-local calendar day of a stored (naive UTC) time."""
    return local_time(col).date()


@memoized
def ids_of(t: Tables, id_type: str) -> ir.Table:
    """``(id_value, customer_id)`` of one identifier type."""
    i = t.identities
    return i.filter(i.id_type == id_type).select(id_value=i.id_value, customer_id=i.customer_id)


@memoized
def customer_orders(t: Tables, include_refunded: bool = False) -> ir.Table:
    """Orders with their ``customer_id``; ``amount`` as float64. Refunded/cancelled orders are excluded by default.

    Columns: customer_id, order_id, ordered_at, amount, status, channel_id, store_id, guide_id.
    """
    o = t.orders
    if not include_refunded:
        o = o.filter(~o.status.isin(EXCLUDED_ORDER_STATUSES))
    i = t.identities
    j = o.join(i, (o.customer_ref_type == i.id_type) & (o.customer_ref == i.id_value))
    return j.select(
        customer_id=i.customer_id,
        order_id=o.order_id,
        ordered_at=o.ordered_at,
        amount=o.amount.cast("float64"),
        status=o.status,
        channel_id=o.channel_id,
        store_id=o.store_id,
        guide_id=o.guide_id,
    )


@memoized
def customer_relations(t: Tables) -> ir.Table:
    """WeCom relations (customer ↔ guide) with ``customer_id`` and the guide's ``store_id``.

    Columns: customer_id, external_userid, guide_id, store_id, added_at, lost_at, lost_by, state, add_way,
    channel_id, source_ref.
    """
    r = t.relations
    ids = ids_of(t, "external_userid")
    g = t.guides.select(g_guide_id=t.guides.guide_id, store_id=t.guides.store_id)
    j = r.join(ids, r.external_userid == ids.id_value).left_join(g, r.guide_id == g.g_guide_id)
    return j.select(
        customer_id=ids.customer_id,
        external_userid=r.external_userid,
        guide_id=r.guide_id,
        store_id=g.store_id,
        added_at=r.added_at,
        lost_at=r.lost_at,
        lost_by=r.lost_by,
        state=r.state,
        add_way=r.add_way,
        channel_id=r.channel_id,
        source_ref=r.source_ref,
    )


@memoized
def customer_group_members(t: Tables) -> ir.Table:
    """Customer-group memberships with ``customer_id``. Columns: customer_id, touchpoint_id, joined_at, left_at."""
    m = t.group_members
    i = t.identities
    j = m.join(i, (m.id_type == i.id_type) & (m.id_value == i.id_value))
    return j.select(customer_id=i.customer_id, touchpoint_id=m.touchpoint_id, joined_at=m.joined_at, left_at=m.left_at)


@memoized
def customer_events(t: Tables) -> ir.Table:
    """Events with ``customer_id`` (through ``user_id``, else ``anonymous_id``); unresolved events are left out.

    Columns: customer_id, message_id, type, event, name, properties, timestamp.
    """
    e = t.events
    by_user = ids_of(t, "user_id").rename(u_value="id_value", u_customer="customer_id")
    by_anon = ids_of(t, "anonymous_id").rename(a_value="id_value", a_customer="customer_id")
    j = e.left_join(by_user, e.user_id == by_user.u_value).left_join(by_anon, e.anonymous_id == by_anon.a_value)
    out = j.select(
        customer_id=ibis.coalesce(j.u_customer, j.a_customer),
        message_id=j.message_id,
        type=j.type,
        event=j.event,
        name=j.name,
        properties=j.properties,
        timestamp=j.timestamp,
    )
    return out.filter(out.customer_id.notnull())


def active_between(start: ir.Column, end: ir.Column, at: ir.Scalar) -> ir.BooleanColumn:
    """True where the span [start, end) contains instant ``at`` (a NULL end = still going)."""
    return (start <= at) & (end.isnull() | (end > at))


@memoized
def reachable_relations(t: Tables, at: date | datetime) -> ir.Table:
    """Relations active at instant ``at`` (added at or before, not lost by then)."""
    r = customer_relations(t)
    return r.filter(active_between(r.added_at, r.lost_at, ts(at)))


@memoized
def reachable_customers(t: Tables, at: date | datetime) -> ir.Table:
    """Distinct ``customer_id`` reachable at ``at``: an active guide relation or a customer-group membership."""
    a = ts(at)
    rel = reachable_relations(t, at).select("customer_id")
    gm = customer_group_members(t)
    grp = gm.filter(active_between(gm.joined_at, gm.left_at, a)).select("customer_id")
    return rel.union(grp, distinct=True)


@memoized
def joined(t: Tables) -> ir.Table:
    """When each customer joined the private domain and through which channel.

    ``joined_at`` = first guide relation or group membership; ``channel_id`` = the channel of their first guide
    relation (NULL when they joined through a group only). Columns: customer_id, joined_at, channel_id, guide_id.
    """
    r = customer_relations(t)
    first_rel = r.group_by("customer_id").agg(
        rel_at=r.added_at.min(),
        channel_id=r.channel_id.argmin(r.added_at),
        guide_id=r.guide_id.argmin(r.added_at),
    )
    gm = customer_group_members(t)
    first_grp = gm.group_by("customer_id").agg(grp_at=gm.joined_at.min())
    j = first_rel.outer_join(first_grp, first_rel.customer_id == first_grp.customer_id)
    return j.select(
        customer_id=ibis.coalesce(j.customer_id, j.customer_id_right),
        joined_at=ibis.least(j.rel_at, j.grp_at),
        channel_id=j.channel_id,
        guide_id=j.guide_id,
    )


@memoized
def customer_order_totals(t: Tables, end: date | datetime, start: date | datetime | None = None) -> ir.Table:
    """Per customer, their revenue orders placed in ``[start, end)`` (``start`` None = all before ``end``).

    Same orders as ``customer_orders`` (refunded/cancelled excluded), but aggregated per order reference first and
    only then linked to customers through ``identities`` — the join sees one row per reference instead of one per
    order (several times faster on large brands). ``orders`` counts order rows (``order_id`` is unique within a
    brand). Columns: customer_id, orders, amount (float64), first_at, last_at.
    """
    o = t.orders
    cond = ~o.status.isin(EXCLUDED_ORDER_STATUSES) & (o.ordered_at < ts(end))
    if start is not None:
        cond = cond & (o.ordered_at >= ts(start))
    o = o.filter(cond)
    per_ref = o.group_by("customer_ref_type", "customer_ref").agg(
        n=o.count(), amt=o.amount.sum(), first_at=o.ordered_at.min(), last_at=o.ordered_at.max()
    )
    i = t.identities
    j = per_ref.join(i, (per_ref.customer_ref_type == i.id_type) & (per_ref.customer_ref == i.id_value))
    j = j.select(customer_id=i.customer_id, n=j.n, amt=j.amt, first_at=j.first_at, last_at=j.last_at)
    return j.group_by("customer_id").agg(
        orders=j.n.sum().cast("int64"),
        amount=j.amt.sum().cast("float64"),
        first_at=j.first_at.min(),
        last_at=j.last_at.max(),
    )
