"""AIPL stage per person (Alibaba: Awareness, Interest, Purchase, Loyalty) and the flow between two dates.

Each customer gets the highest stage whose signal falls in that stage's window before ``as_of`` (L > P > I > A);
customers with no signal have no stage (they are absent from ``aipl_stage``; the flow calls them ``none``).
Windows end at ``as_of`` (the start of that day, 00:00, like every ``siyu.analytics`` date) and span
``[as_of − days, as_of)``. The defaults (``AiplConfig()``) fit the demo brand's events (docs/demo.md):

- A 认知 (15 days): a touch delivered to them (``Touch Delivered``: lead-in invitations, broadcasts) or a page view
  (``type = 'page'``: mini-program pages — landing/home/activity pages).
- I 兴趣 (15 days): they replied, clicked, claimed a coupon, viewed a product, followed (``Message Replied``,
  ``Message Clicked``, ``Coupon Claimed``, ``Product Viewed``, ``Followed``), added a guide (a WeCom relation
  ``added_at`` in the window) or joined a customer group.
- P 购买 (365 days): at least one revenue order (refunded/cancelled excluded).
- L 忠诚 (365 days): at least ``l_min_orders`` (2) distinct revenue orders, or a ``Product Reviewed`` /
  ``Product Shared`` event (Segment e-commerce spec names; the demo has none of them).
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from siyu.analytics.base import (
    Tables,
    customer_events,
    customer_group_members,
    customer_order_totals,
    customer_relations,
    ts,
)
from siyu.analytics.definitions import define
from siyu.analytics.memo import memoized
from siyu.domain.customer_classes import AIPL_STAGES

MODULE = "aipl"

STAGES: tuple[str, ...] = AIPL_STAGES
STAGE_ZH: dict[str, str] = {"A": "认知", "I": "兴趣", "P": "购买", "L": "忠诚", "none": "无"}
STAGE_EN: dict[str, str] = {"A": "Awareness", "I": "Interest", "P": "Purchase", "L": "Loyalty", "none": "None"}
_LEVEL = {s: i + 1 for i, s in enumerate(STAGES)}


class AiplConfig(BaseModel):
    """Which signals count for each AIPL stage, and each stage's window in days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    a_events: tuple[str, ...] = ("Touch Delivered",)
    a_page_views: bool = True
    i_events: tuple[str, ...] = (
        "Message Replied",
        "Message Clicked",
        "Coupon Claimed",
        "Product Viewed",
        "Followed",
    )
    i_relation_added: bool = True
    i_group_joined: bool = True
    l_events: tuple[str, ...] = ("Product Reviewed", "Product Shared")
    l_min_orders: int = Field(default=2, ge=2)
    a_days: int = Field(default=15, ge=1)
    i_days: int = Field(default=15, ge=1)
    p_days: int = Field(default=365, ge=1)
    l_days: int = Field(default=365, ge=1)


define(
    "aipl.stage",
    "AIPL 阶段",
    "AIPL stage",
    "取满足条件的最高阶段 L > P > I > A：A 近15天被触达(消息送达/页面浏览)；"
    "I 近15天主动互动(回复、点击、领券、浏览商品、"
    "关注、加导购、进群)；P 近365天有购买；L 近365天购买≥2次或有评价/分享",
    "highest stage that applies, L > P > I > A: A reached in the last 15 days (touch delivered, page view); I "
    "engaged in the last 15 days (replied, clicked, claimed a coupon, viewed a product, followed, added a guide, "
    "joined a group); P bought in the last 365 days; L bought ≥ 2 times in 365 days or reviewed/shared",
    "label",
    MODULE,
)
define(
    "aipl.stage_count",
    "AIPL 各阶段人数",
    "people per AIPL stage",
    "统计日各阶段人数（每人取最高阶段）",
    "people in each stage on the as-of date (each at their highest stage)",
    "count",
    MODULE,
)
define(
    "aipl.flow",
    "AIPL 阶段流转",
    "AIPL stage flow",
    "日期1的阶段（或无）→ 日期2的阶段（或无）的人数，含流失（→ 无）",
    "people moving from their stage (or none) on date 1 to their stage (or none) on date 2, drop-outs (→ none) "
    "included",
    "count",
    MODULE,
)


def _since(as_of: date, days: int) -> ir.TimestampScalar:
    return ts(as_of - timedelta(days=days))


def _event_levels(t: Tables, as_of: date, c: AiplConfig) -> ir.Table | None:
    """Per customer, the highest level their events reach (one pass over the longest event window)."""
    windows = [
        d
        for d, used in ((c.a_days, c.a_events or c.a_page_views), (c.i_days, c.i_events), (c.l_days, c.l_events))
        if used
    ]
    if not windows:
        return None
    e = customer_events(t)
    e = e.filter((e.timestamp >= _since(as_of, max(windows))) & (e.timestamp < ts(as_of)))
    track = e.type == "track"
    cases: list[tuple[ir.BooleanValue, int]] = []
    if c.l_events:
        cases.append((track & e.event.isin(list(c.l_events)) & (e.timestamp >= _since(as_of, c.l_days)), _LEVEL["L"]))
    if c.i_events:
        cases.append((track & e.event.isin(list(c.i_events)) & (e.timestamp >= _since(as_of, c.i_days)), _LEVEL["I"]))
    a_cond: ir.BooleanValue | None = track & e.event.isin(list(c.a_events)) if c.a_events else None
    if c.a_page_views:
        a_cond = (e.type == "page") if a_cond is None else a_cond | (e.type == "page")
    if a_cond is not None:
        cases.append((a_cond & (e.timestamp >= _since(as_of, c.a_days)), _LEVEL["A"]))
    lv = e.select("customer_id", level=ibis.cases(*cases, else_=0).cast("int8"))
    lv = lv.filter(lv.level > 0)
    return lv.group_by("customer_id").agg(level=lv.level.max())


def _order_levels(t: Tables, as_of: date, c: AiplConfig) -> list[ir.Table]:
    """Customers at P (≥ 1 order in the P window) and at L (≥ l_min_orders orders in the L window)."""

    def at_level(days: int, min_orders: int, stage: str) -> ir.Table:
        tot = customer_order_totals(t, as_of, as_of - timedelta(days=days))
        tot = tot.filter(tot.orders >= min_orders)
        return tot.select("customer_id", level=ibis.literal(_LEVEL[stage], type="int8"))

    if c.p_days == c.l_days:  # one pass: L where enough orders, else P
        tot = customer_order_totals(t, as_of, as_of - timedelta(days=c.p_days))
        level = ibis.cases((tot.orders >= c.l_min_orders, _LEVEL["L"]), else_=_LEVEL["P"]).cast("int8")
        return [tot.select("customer_id", level=level)]
    return [at_level(c.p_days, 1, "P"), at_level(c.l_days, c.l_min_orders, "L")]


@memoized
def aipl_stage(t: Tables, as_of: date, config: AiplConfig | None = None) -> ir.Table:
    """Each customer's highest AIPL stage on ``as_of``. Columns: customer_id, stage ('A', 'I', 'P', 'L')."""
    c = config or AiplConfig()
    parts: list[ir.Table] = _order_levels(t, as_of, c)
    ev = _event_levels(t, as_of, c)
    if ev is not None:
        parts.append(ev)
    i_level = ibis.literal(_LEVEL["I"], type="int8")
    if c.i_relation_added:
        r = customer_relations(t)
        r = r.filter((r.added_at >= _since(as_of, c.i_days)) & (r.added_at < ts(as_of)))
        parts.append(r.select("customer_id", level=i_level))
    if c.i_group_joined:
        g = customer_group_members(t)
        g = g.filter((g.joined_at >= _since(as_of, c.i_days)) & (g.joined_at < ts(as_of)))
        parts.append(g.select("customer_id", level=i_level))

    u = parts[0]
    for p in parts[1:]:
        u = u.union(p)
    best = u.group_by("customer_id").agg(level=u.level.max())
    stage = ibis.cases(*[(best.level == lvl, s) for s, lvl in _LEVEL.items()])
    return best.select("customer_id", stage=stage)


def aipl_counts(stages: ir.Table) -> ir.Table:
    """People per stage. Columns: stage, customers."""
    return stages.group_by("stage").agg(customers=stages.count()).order_by("stage")


@memoized
def aipl_transitions(t: Tables, date1: date, date2: date, config: AiplConfig | None = None) -> ir.Table:
    """Each person's stage on date1 and on date2, ``'none'`` where they had no stage (entries and drop-outs).

    Columns: customer_id, from_stage, to_stage (people without a stage on either date are not listed).
    """
    s1 = aipl_stage(t, date1, config).rename(from_stage="stage", id1="customer_id")
    s2 = aipl_stage(t, date2, config).rename(to_stage="stage", id2="customer_id")
    ids = s1.select(customer_id=s1.id1).union(s2.select(customer_id=s2.id2), distinct=True)
    j = ids.left_join(s1, ids.customer_id == s1.id1).left_join(s2, ids.customer_id == s2.id2)
    return j.select(
        customer_id=ids.customer_id,
        from_stage=j.from_stage.fill_null("none"),
        to_stage=j.to_stage.fill_null("none"),
    )


def aipl_flow(transitions: ir.Table) -> ir.Table:
    """People per (from_stage, to_stage) of ``aipl_transitions``. Columns: from_stage, to_stage, customers."""
    tr = transitions
    return tr.group_by("from_stage", "to_stage").agg(customers=tr.count()).order_by("from_stage", "to_stage")
