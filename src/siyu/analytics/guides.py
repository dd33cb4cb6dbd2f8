"""Guide (导购) KPIs and the drill-down to a guide's customers (Ibis expressions, never executed here).

* 客群资产数 reachable: ``assets.reachable`` (one definition, in ``siyu.analytics.assets``): distinct customers
  with an active relation with the guide, or a membership of a customer group the guide owns, at the end of
  ``as_of``.
* new customers: distinct customers whose relation with the guide was added in the period.
* GMV, orders, conversions: non-refunded orders in the period whose ``guide_id`` is the guide (the order was
  placed through the guide: store or mini-program order while the relation was active); conversions = distinct
  customers with ≥ 1 such order.
* tasks (journey staff tasks, state DB, counted by ``siyu.services.journeys.tasks.task_kpis``): created for the
  guide in the period — assigned, done, skipped, overdue (open past due), completion = done / assigned.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis.expr.types as ir

from siyu.analytics import assets
from siyu.analytics.base import Tables, customer_orders, customer_relations, ts
from siyu.analytics.definitions import define

MODULE = "guides"


def close_of(day: date) -> date:
    """The instant a day closes (midnight after it), as the date ``reachable_*`` take."""
    return day + timedelta(days=1)


def guide_reach(t: Tables, as_of: date) -> ir.Table:
    """``(guide_id, customer_id)`` reachable at the close of ``as_of`` — the one 客群资产数 definition
    (``siyu.analytics.assets``: active relation with the guide or membership of a group the guide owns)."""
    isl = assets.islands(t, "guide")
    live = isl.filter(assets.active_at(isl, assets.day_end(as_of)))
    return live.select(guide_id=live.unit, customer_id=live.customer_id).distinct()


def guide_orders(t: Tables, start: date, end: date) -> ir.Table:
    """Non-refunded orders in the period credited to a guide (``orders.guide_id``)."""
    co = customer_orders(t)
    return co.filter(
        co.guide_id.notnull() & (co.ordered_at >= ts(start)) & (co.ordered_at < ts(end + timedelta(days=1)))
    )


def guide_kpis(t: Tables, start: date, end: date, as_of: date) -> ir.Table:
    """One row per guide: guide_id, name, store_id, store_name, reachable, new_customers, conversions, orders, gmv."""
    g = t.guides
    st = t.stores.select(s_store_id=t.stores.store_id, store_name=t.stores.name)
    base = g.left_join(st, g.store_id == st.s_store_id).select(g.guide_id, g.name, g.store_id, st.store_name)

    reach = guide_reach(t, as_of)
    reach = reach.group_by("guide_id").agg(reachable=reach.customer_id.nunique())

    r = customer_relations(t)
    r = r.filter((r.added_at >= ts(start)) & (r.added_at < ts(end + timedelta(days=1))))
    new = r.group_by("guide_id").agg(new_customers=r.customer_id.nunique())

    o = guide_orders(t, start, end)
    sales = o.group_by("guide_id").agg(conversions=o.customer_id.nunique(), orders=o.count(), gmv=o.amount.sum())

    x = base.left_join(reach, base.guide_id == reach.guide_id).select(*[base[c] for c in base.columns], reach.reachable)
    x = x.left_join(new, x.guide_id == new.guide_id).select(*[x[c] for c in x.columns], new.new_customers)
    x = x.left_join(sales, x.guide_id == sales.guide_id).select(
        *[x[c] for c in x.columns], sales.conversions, sales.orders, sales.gmv
    )
    return x.select(
        x.guide_id,
        x.name,
        x.store_id,
        x.store_name,
        reachable=x.reachable.fill_null(0),
        new_customers=x.new_customers.fill_null(0),
        conversions=x.conversions.fill_null(0),
        orders=x.orders.fill_null(0),
        gmv=x.gmv.fill_null(0.0),
    ).order_by("guide_id")


def guide_customers(t: Tables, guide_id: str, start: date, end: date, as_of: date) -> ir.Table:
    """The guide's reachable customers at ``as_of`` with their orders in the period.

    Columns: customer_id, name, phone, guide_id, guide_name, orders, gmv (all their orders in the period),
    guide_gmv (the period's orders credited to this guide), last_order_at (last order up to ``as_of``).
    """
    reach = guide_reach(t, as_of)
    mine = reach.filter(reach.guide_id == guide_id).select("customer_id").distinct()
    co = customer_orders(t)
    co = co.filter(co.ordered_at < ts(close_of(as_of)))
    in_period = co.ordered_at >= ts(start)
    in_period &= co.ordered_at < ts(end + timedelta(days=1))
    per = co.group_by("customer_id").agg(
        orders=in_period.sum(),
        gmv=in_period.ifelse(co.amount, 0.0).sum(),
        guide_gmv=(in_period & (co.guide_id == guide_id)).ifelse(co.amount, 0.0).sum(),
        last_order_at=co.ordered_at.max(),
    )
    c = t.customers.select("customer_id", "name", "phone")
    g = t.guides.filter(t.guides.guide_id == guide_id).select(g_guide_id="guide_id", guide_name="name")
    x = mine.left_join(c, mine.customer_id == c.customer_id).select(mine.customer_id, c.name, c.phone)
    x = x.left_join(per, x.customer_id == per.customer_id).select(
        x.customer_id, x.name, x.phone, per.orders, per.gmv, per.guide_gmv, per.last_order_at
    )
    x = x.cross_join(g)
    out = x.select(
        x.customer_id,
        x.name,
        x.phone,
        guide_id=x.g_guide_id,
        guide_name=x.guide_name,
        orders=x.orders.fill_null(0).cast("int64"),
        gmv=x.gmv.fill_null(0.0),
        guide_gmv=x.guide_gmv.fill_null(0.0),
        last_order_at=x.last_order_at,
    )
    return out.order_by([out.gmv.desc(), out.customer_id])


define(
    "guides.new_customers",
    "新增客户",
    "New customers",
    "期间内与该导购新建好友关系的去重客户数",
    "Distinct customers whose relation with the guide was added in the period",
    "count",
    MODULE,
)
define(
    "guides.conversions",
    "成交客户",
    "Conversions",
    "期间内有归属该导购（订单 guide_id）的有效订单的去重客户数",
    "Distinct customers with ≥ 1 non-refunded order credited to the guide (order guide_id) in the period",
    "count",
    MODULE,
)
define(
    "guides.gmv",
    "导购业绩 GMV",
    "Guide GMV",
    "期间内归属该导购（订单 guide_id）的有效订单金额合计（不含退款/取消）",
    "Sum of the period's non-refunded orders credited to the guide (order guide_id)",
    "currency",
    MODULE,
)
define(
    "guides.task_completion",
    "任务完成率",
    "Task completion",
    "期间内分配给该导购的旅程任务中已完成的比例（完成数 / 分配数）；无任务时为空",
    "Share of the journey tasks assigned to the guide in the period that are done (done / assigned); empty "
    "without tasks",
    "ratio",
    MODULE,
)
define(
    "guides.tasks_assigned",
    "分配任务",
    "Tasks assigned",
    "期间内旅程为该导购创建的任务数（打电话、发消息、拜访）",
    "Journey tasks (call, message, visit) created for the guide in the period",
    "count",
    MODULE,
)
define(
    "guides.tasks_overdue",
    "逾期任务",
    "Tasks overdue",
    "期间内分配的任务中，至今仍未完成也未跳过且已过截止时间的任务数",
    "Tasks assigned in the period still open (neither done nor skipped) after their due time",
    "count",
    MODULE,
)
