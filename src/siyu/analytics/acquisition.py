"""CAC, ROI and realised LTV per channel, platform, campaign and guide (Ibis expressions, never executed here).

Attribution (documented in docs/metrics-guides.md):

* A customer is *acquired* in a period when they joined the private domain in it (``base.joined``: first guide
  relation or group membership, ``start`` ≤ day ≤ ``end``).
* The channels credited with a customer form their acquisition path: the **lead-in channel** (the channel code of
  their first guide relation, ``joined.channel_id``) and the **origin channel** (the ``channel_id`` of their first
  order when that order came before joining, e.g. a 天猫 purchase whose parcel card brought them in). A channel's
  CAC = its spend in the period / the customers it is credited with; one customer may be credited to two channels.
* **Platform** = the channel's ``kind`` (ad_platform, marketplace, parcel_card, ...), aggregated the same way.
* **Campaign** = ``properties.campaign_id`` of the lead-in touch (the event whose ``message_id`` is the first
  relation's ``source_ref``, the channel code's ``state``); customers without one are ``campaign_id`` NULL.
* **Guide** = the guide of the first relation.  Spend is recorded per channel only, so a guide's or campaign's
  spend is *allocated*: each acquired customer carries the CAC of every channel credited with them, and a group's
  spend is the sum over its customers.
* Realised revenue = non-refunded orders of the acquired customers up to ``as_of`` (their whole history,
  including the purchase that brought them); realised LTV = revenue / customers; ROI = (revenue − spend) / spend.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_orders, customer_relations, in_days, joined, ts
from siyu.analytics.definitions import define

MODULE = "acquisition"


def acquired(t: Tables, start: date, end: date) -> ir.Table:
    """Customers who joined the private domain in the period, with their acquisition path.

    Columns: customer_id, joined_at, lead_in_channel_id, origin_channel_id, guide_id, campaign_id.
    """
    j = joined(t)
    j = j.filter(in_days(j.joined_at, start, end))
    co = customer_orders(t)
    first = co.group_by("customer_id").agg(
        first_order_at=co.ordered_at.min(), first_order_channel=co.channel_id.argmin(co.ordered_at)
    )
    r = customer_relations(t)
    first_rel = r.group_by("customer_id").agg(source_ref=r.source_ref.argmin(r.added_at))
    e = t.events
    lead = e.select(message_id=e.message_id, campaign_id=e.properties["campaign_id"].str)
    lead = lead.filter(lead.campaign_id.notnull())
    x = j.left_join(first, j.customer_id == first.customer_id).select(
        j.customer_id, j.joined_at, j.channel_id, j.guide_id, first.first_order_at, first.first_order_channel
    )
    x = x.left_join(first_rel, x.customer_id == first_rel.customer_id).select(
        x.customer_id,
        x.joined_at,
        x.channel_id,
        x.guide_id,
        x.first_order_at,
        x.first_order_channel,
        first_rel.source_ref,
    )
    x = x.left_join(lead, x.source_ref == lead.message_id)
    before = x.first_order_at.notnull() & (x.first_order_at < x.joined_at) & x.first_order_channel.notnull()
    return x.select(
        customer_id=x.customer_id,
        joined_at=x.joined_at,
        lead_in_channel_id=x.channel_id,
        origin_channel_id=ibis.ifelse(before, x.first_order_channel, x.channel_id),
        guide_id=x.guide_id,
        campaign_id=x.campaign_id,
    )


def credits(acq: ir.Table) -> ir.Table:
    """``(customer_id, channel_id)``: every channel on each acquired customer's path (distinct)."""
    a = acq.select(customer_id=acq.customer_id, channel_id=acq.lead_in_channel_id)
    b = acq.select(customer_id=acq.customer_id, channel_id=acq.origin_channel_id)
    u = a.union(b, distinct=True)
    return u.filter(u.channel_id.notnull())


def revenue_to_date(t: Tables, as_of: date) -> ir.Table:
    """Realised revenue and orders of every customer up to the end of ``as_of``: customer_id, revenue, orders."""
    co = customer_orders(t)
    co = co.filter(co.ordered_at < ts(as_of + timedelta(days=1)))
    return co.group_by("customer_id").agg(revenue=co.amount.sum(), orders=co.count())


def spend_by_channel(t: Tables, start: date, end: date) -> ir.Table:
    """Spend and exposures per channel in the period: channel_id, spend, exposures."""
    s = t.channel_spend
    s = s.filter((s.day >= ibis.literal(start, type="date")) & (s.day <= ibis.literal(end, type="date")))
    return s.group_by("channel_id").agg(spend=s.spend.cast("float64").sum(), exposures=s.exposures.sum())


def _ratios(x: ir.Table) -> ir.Table:
    """Add cac, ltv_realised, roi and ltv_cac to a table with spend, customers, revenue."""
    cust = x.customers.nullif(0)
    spend = x.spend.nullif(0.0)
    return x.mutate(
        cac=x.spend / cust,
        ltv_realised=x.revenue / cust,
        roi=(x.revenue - x.spend) / spend,
        ltv_cac=(x.revenue / cust) / (x.spend / cust).nullif(0.0),
    )


def _with_revenue(acq_like: ir.Table, rev: ir.Table) -> ir.Table:
    j = acq_like.left_join(rev, acq_like.customer_id == rev.customer_id)
    return j.select(*[j[c] for c in acq_like.columns], revenue=j.revenue.fill_null(0.0))


def by_channel(t: Tables, start: date, end: date, as_of: date) -> ir.Table:
    """Per channel: name, kind, spend, exposures, customers, revenue, cac, ltv_realised, roi, ltv_cac."""
    cred = _with_revenue(credits(acquired(t, start, end)), revenue_to_date(t, as_of))
    agg = cred.group_by("channel_id").agg(customers=cred.customer_id.nunique(), revenue=cred.revenue.sum())
    sp = spend_by_channel(t, start, end)
    ch = t.channels.select("channel_id", "name", "kind")
    x = ch.left_join(sp, ch.channel_id == sp.channel_id).select(ch.channel_id, ch.name, ch.kind, sp.spend, sp.exposures)
    x = x.left_join(agg, x.channel_id == agg.channel_id).select(
        x.channel_id,
        x.name,
        x.kind,
        spend=x.spend.fill_null(0.0),
        exposures=x.exposures.fill_null(0),
        customers=agg.customers.fill_null(0),
        revenue=agg.revenue.fill_null(0.0),
    )
    return _ratios(x).order_by("channel_id")


def by_platform(t: Tables, start: date, end: date, as_of: date) -> ir.Table:
    """Per platform (channel kind): spend, customers (distinct), revenue and the ratios."""
    ch = t.channels.select("channel_id", "kind")
    cred = _with_revenue(credits(acquired(t, start, end)), revenue_to_date(t, as_of))
    ck = cred.join(ch, cred.channel_id == ch.channel_id).select(cred.customer_id, ch.kind, cred.revenue).distinct()
    agg = ck.group_by("kind").agg(customers=ck.customer_id.nunique(), revenue=ck.revenue.sum())
    sp = spend_by_channel(t, start, end)
    spk = sp.join(ch, sp.channel_id == ch.channel_id).group_by(ch.kind).agg(spend=sp.spend.sum())
    kinds = ch.select("kind").distinct()
    x = kinds.left_join(spk, kinds.kind == spk.kind).select(kinds.kind, spend=spk.spend.fill_null(0.0))
    x = x.left_join(agg, x.kind == agg.kind).select(
        x.kind, x.spend, customers=agg.customers.fill_null(0), revenue=agg.revenue.fill_null(0.0)
    )
    return _ratios(x).order_by("kind")


def customer_costs(t: Tables, start: date, end: date, as_of: date) -> ir.Table:
    """Each acquired customer with the spend allocated to them (Σ CAC of the channels on their path) and revenue.

    Columns: customer_id, joined_at, lead_in_channel_id, origin_channel_id, guide_id, campaign_id, cost, revenue.
    """
    acq = acquired(t, start, end)
    ch = by_channel(t, start, end, as_of)
    ch = ch.filter(ch.customers > 0).select(c_channel_id=ch.channel_id, cac=ch.cac)
    cred = credits(acq)
    cc = cred.join(ch, cred.channel_id == ch.c_channel_id)
    cost = cc.group_by(cc.customer_id).agg(cost=cc.cac.sum())
    x = acq.left_join(cost, acq.customer_id == cost.customer_id).select(
        *[acq[c] for c in acq.columns], cost=cost.cost.fill_null(0.0)
    )
    return _with_revenue(x, revenue_to_date(t, as_of))


def by_attribute(t: Tables, start: date, end: date, as_of: date, column: str) -> ir.Table:
    """Per ``column`` of ``customer_costs`` (``guide_id`` or ``campaign_id``): allocated spend, customers, revenue."""
    c = customer_costs(t, start, end, as_of)
    agg = c.group_by(column).agg(spend=c.cost.sum(), customers=c.customer_id.nunique(), revenue=c.revenue.sum())
    return _ratios(agg).order_by(column)


def totals(t: Tables, start: date, end: date, as_of: date) -> ir.Table:
    """One row for the brand: spend (all channels), customers (distinct), revenue and the ratios."""
    sp = spend_by_channel(t, start, end)
    acq = _with_revenue(acquired(t, start, end), revenue_to_date(t, as_of))
    a = acq.aggregate(customers=acq.customer_id.nunique(), revenue=acq.revenue.sum())
    s = sp.aggregate(spend=sp.spend.sum())
    x = a.cross_join(s)
    x = x.select(spend=x.spend.fill_null(0.0), customers=x.customers, revenue=x.revenue.fill_null(0.0))
    return _ratios(x)


define(
    "acquisition.cac",
    "获客成本 CAC",
    "Customer acquisition cost (CAC)",
    "渠道在期间的投放花费 ÷ 期间经该渠道加入私域的客户数（获客路径：首个导购关系的引流渠道 + 入域前首单的渠道）；"
    "导购/活动按其客户所在渠道的 CAC 分摊花费",
    "A channel's spend in the period ÷ customers who joined the private domain in the period with that channel on "
    "their path (lead-in channel of the first guide relation + the channel of a first order placed before joining); "
    "guides and campaigns carry the CAC of their customers' channels (allocated spend)",
    "currency",
    MODULE,
)
define(
    "acquisition.roi",
    "投资回报率 ROI",
    "Return on investment (ROI)",
    "(期间获客的客户至统计日的已实现收入 − 花费) ÷ 花费",
    "(realised revenue to date of the customers acquired in the period − spend) ÷ spend",
    "ratio",
    MODULE,
)
define(
    "acquisition.ltv_realised",
    "已实现 LTV",
    "Realised LTV",
    "期间获客的客户至统计日的已实现收入（不含退款/取消订单）÷ 客户数；预测 LTV 见 CLV（clv.ltv_cac）",
    "Realised revenue to date (refunded/cancelled orders excluded) of the customers acquired in the period ÷ "
    "customers; predicted LTV: see CLV (clv.ltv_cac)",
    "currency",
    MODULE,
)
define(
    "acquisition.ltv_cac",
    "LTV/CAC",
    "LTV/CAC",
    "已实现 LTV ÷ CAC（> 1 表示获客已回本）",
    "Realised LTV ÷ CAC (> 1: acquisition has paid back)",
    "ratio",
    MODULE,
)
