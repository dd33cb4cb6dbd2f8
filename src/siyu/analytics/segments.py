"""Customer segments compiled to ONE Ibis expression returning the matching ``customer_id`` (distinct).

Dates follow ``siyu.analytics``: ``as_of`` is the instant 00:00 of that day; records before it count, a window of
``w`` days is ``[as_of − w days, as_of)``.  "Days ago" of a record = calendar days from its day to ``as_of``
(yesterday = 1), turned into timestamp bounds here so no backend-specific date arithmetic is needed.

Set algebra: a leaf condition yields the customer ids it matches; ``and`` = intersection (``not`` children are
subtracted), ``or`` = union, ``not`` = the brand's customers minus the inner set.  Count and sum conditions that a
zero satisfies (``clicked < 2 times``) include customers without any record.  ``ne`` / ``not_in`` on a customer
field also match customers whose field is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

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
from siyu.analytics.definitions import define
from siyu.domain.brand_time import as_naive_utc, local_to_utc
from siyu.domain.segment_def import (
    CUSTOMER_FIELDS,
    AiplCondition,
    AndCondition,
    ChannelCondition,
    ClvCondition,
    Condition,
    EventCondition,
    GroupCondition,
    GuideCondition,
    IdentityCondition,
    LifecycleCondition,
    NotCondition,
    OrCondition,
    OrderCondition,
    RfmCondition,
    StoreCondition,
    TagCondition,
    TraitCondition,
)

MODULE = "segments"

define(
    "segments.members",
    "分群人数",
    "Segment members",
    "满足分群定义（条件的 且/或/非 组合）的客户数；按计划（每小时）刷新时记录每位客户的进入与退出时间",
    "customers matching the definition (AND/OR/NOT of its conditions); each scheduled refresh (hourly) records "
    "when a customer entered and exited",
    "count",
    MODULE,
)
define(
    "segments.live_count",
    "实时人数",
    "Live count",
    "编辑时即时计算的满足定义的客户数（截至统计日期 0 点之前的数据；导购只计自己的客户）",
    "customers matching the definition being edited, computed on the fly (data before 00:00 of the as-of day; a "
    "guide counts only their own customers)",
    "count",
    MODULE,
)
define(
    "segments.lookalike_lift",
    "相似人群前 10% 提升度",
    "Lookalike top-decile lift",
    "留出 20% 种子客户不参与训练；对其余客户打分，前 10% 中找回的留出种子占比 ÷ 10%（1 = 随机）",
    "hide 20% of the seed from training; score everyone else; share of the hidden seed found in the top 10% ÷ 10% "
    "(1 = random)",
    "ratio",
    MODULE,
)


@dataclass(frozen=True)
class Env:
    """What every condition compiler needs: the brand's tables and the 'as of' instant.

    ``substitute`` may replace a leaf's expression (e.g. by a cached result while a definition is edited).
    """

    t: Tables
    as_of: date
    substitute: Callable[[Any, ir.Table], ir.Table] | None = None

    @property
    def at(self) -> ir.TimestampScalar:
        return ts(self.as_of)

    def since(self, days: int) -> ir.TimestampScalar:
        return ts(self.as_of - timedelta(days=days))

    def universe(self) -> ir.Table:
        """Every customer of the brand."""
        c = self.t.customers
        return c.select(customer_id=c.customer_id.cast("string"))


# ---- comparisons ---------------------------------------------------------------------------------------------


def _lit(value: Any, kind: str) -> Any:
    if kind == "date":
        return date.fromisoformat(str(value))
    if kind == "timestamp":  # an operator's wall clock is the brand's local time; an offset is honoured
        moment = datetime.fromisoformat(str(value))
        return as_naive_utc(moment) if moment.tzinfo else local_to_utc(moment)
    return value


def compare(col: ir.Value, op: str, value: Any, kind: str = "any") -> ir.BooleanValue:
    """``col op value`` for the ops of the definition language (``ne``/``not_in``/``not_exists`` match NULL)."""
    if op == "exists":
        return col.notnull()
    if op == "not_exists":
        return col.isnull()
    if op == "between":
        lo, hi = (_lit(v, kind) for v in value)
        return col.between(lo, hi)
    if op == "in":
        return col.isin([_lit(v, kind) for v in value])
    if op == "not_in":
        return col.isnull() | col.notin([_lit(v, kind) for v in value])
    if op == "contains":
        return col.cast("string").contains(str(value))
    if op == "starts_with":
        return col.cast("string").startswith(str(value))
    v = _lit(value, kind)
    if op == "eq":
        return col == v
    if op == "ne":
        return col.isnull() | (col != v)
    if op == "gt":
        return col > v
    if op == "gte":
        return col >= v
    if op == "lt":
        return col < v
    if op == "lte":
        return col <= v
    raise ValueError(f"unknown op {op!r}")


def zero_matches(op: str, value: Any) -> bool:
    """Whether 0 satisfies the numeric comparison (then customers without records match too)."""
    if op == "between":
        return bool(value[0] <= 0 <= value[1])
    return {
        "eq": value == 0,
        "ne": value != 0,
        "gt": value < 0,
        "gte": value <= 0,
        "lt": value > 0,
        "lte": value >= 0,
    }[op]


def _json_at(col: ir.Value, key: str) -> ir.Value:
    for part in key.split("."):
        col = col[part]
    return col


def _json_typed(col: ir.Value, op: str, value: Any) -> ir.Value:
    """A JSON value unwrapped to the type of the value it is compared with."""
    sample = value[0] if isinstance(value, list) and value else value
    if isinstance(sample, bool):
        return col.bool
    if isinstance(sample, int | float) and op not in ("contains", "starts_with"):
        return col.float
    if op in ("exists", "not_exists"):
        return col
    return col.str


def json_compare(col: ir.Value, key: str, op: str, value: Any) -> ir.BooleanValue:
    """Compare ``key`` of a JSON column (``exists`` = the key is present)."""
    v = _json_at(col, key)
    if op in ("exists", "not_exists"):
        return v.notnull() if op == "exists" else v.isnull()
    typed = _json_typed(v, op, value)
    return compare(typed, op, value)


def _measure_filter(env: Env, agg: ir.Table, op: str, value: Any) -> ir.Table:
    """Customers whose ``m`` satisfies the comparison; customers without rows count as 0 when 0 satisfies it."""
    if zero_matches(op, value):
        u = env.universe()
        j = u.left_join(agg, u.customer_id == agg.customer_id)
        m = j.m.fill_null(0)
        return j.filter(compare(m, op, value)).select(customer_id=j.customer_id)
    return agg.filter(compare(agg.m, op, value)).select("customer_id")


# ---- leaves --------------------------------------------------------------------------------------------------


def _trait(env: Env, c: TraitCondition) -> ir.Table:
    cust = env.t.customers
    if c.field.startswith("traits."):
        pred = json_compare(cust.traits, c.field.removeprefix("traits."), c.op, c.value)
    else:
        pred = compare(cust[c.field], c.op, c.value, CUSTOMER_FIELDS[c.field])
    return cust.filter(pred).select("customer_id")


def _event(env: Env, c: EventCondition) -> ir.Table:
    e = customer_events(env.t)
    cond = (e.type == c.type) & (e.timestamp < env.at)
    if c.event:
        cond = cond & ((e.event == c.event) if c.type == "track" else (e.name == c.event))
    if c.window_days is not None:
        cond = cond & (e.timestamp >= env.since(c.window_days))
    for f in c.where:
        cond = cond & json_compare(e.properties, f.property, f.op, f.value)
    e = e.filter(cond)
    if c.measure == "count":
        agg = e.group_by("customer_id").agg(m=e.count().cast("float64"))
    else:
        assert c.property is not None
        agg = e.group_by("customer_id").agg(m=_json_at(e.properties, c.property).float.sum().fill_null(0))
    return _measure_filter(env, agg, c.op, c.value)


def _days_ago_bounds(env: Env, col: ir.Value, op: str, value: Any) -> ir.BooleanValue:
    """``days_ago(col) op value`` as timestamp bounds (≤ n ⇔ col ≥ as_of − n days; ≥ n ⇔ col < as_of − n + 1 days)."""

    def at_most(n: float) -> ir.BooleanValue:
        return col >= env.since(int(n))

    def at_least(n: float) -> ir.BooleanValue:
        return col < env.since(int(n) - 1)

    if op == "between":
        return at_least(value[0]) & at_most(value[1])
    return {
        "eq": lambda: at_least(value) & at_most(value),
        "gt": lambda: at_least(value + 1),
        "gte": lambda: at_least(value),
        "lt": lambda: at_most(value - 1) if value >= 1 else ibis.literal(False),
        "lte": lambda: at_most(value),
    }[op]()


def _orders(env: Env, c: OrderCondition) -> ir.Table:
    o = customer_orders(env.t)
    cond = o.ordered_at < env.at
    if c.window_days is not None:
        cond = cond & (o.ordered_at >= env.since(c.window_days))
    if c.channels:
        cond = cond & o.channel_id.isin(c.channels)
    if c.stores:
        cond = cond & o.store_id.isin(c.stores)
    if c.guides:
        cond = cond & o.guide_id.isin(c.guides)
    o = o.filter(cond)
    g = o.group_by("customer_id")
    if c.measure in ("last_days_ago", "first_days_ago"):
        agg = g.agg(last=o.ordered_at.max() if c.measure == "last_days_ago" else o.ordered_at.min())
        return agg.filter(_days_ago_bounds(env, agg["last"], c.op, c.value)).select("customer_id")
    if c.measure == "count":
        agg = g.agg(m=o.count().cast("float64"))
    elif c.measure == "sum":
        agg = g.agg(m=o.amount.sum())
    elif c.measure == "avg":
        agg = g.agg(m=o.amount.mean())
    else:
        agg = g.agg(m=o.amount.max())
    if c.measure in ("avg", "max"):  # no orders → no average: never matches
        return agg.filter(compare(agg.m, c.op, c.value)).select("customer_id")
    return _measure_filter(env, agg, c.op, c.value)


def _tag(env: Env, c: TagCondition) -> ir.Table:
    t = env.t
    it, i = t.identifier_tags, t.identities
    tags = t.tags.filter(t.tags.tag_id.isin(c.tags) | t.tags.name.isin(c.tags))
    tags = tags.select(tag_tag_id="tag_id", key=ibis.cases((tags.tag_id.isin(c.tags), tags.tag_id), else_=tags.name))
    j = it.join(i, (it.id_type == i.id_type) & (it.id_value == i.id_value)).join(tags, it.tag_id == tags.tag_tag_id)
    j = j.select(customer_id=i.customer_id, key=j.key)
    if c.match == "any":
        return j.select("customer_id").distinct()
    agg = j.group_by("customer_id").agg(n=j.key.nunique())
    return agg.filter(agg.n >= len(set(c.tags))).select("customer_id")


def _identity(env: Env, c: IdentityCondition) -> ir.Table:
    i = env.t.identities
    return i.filter(i.id_type == c.id_type).select("customer_id").distinct()


def _relation_status(env: Env, r: ir.Table, status: str) -> ir.BooleanValue:
    if status == "active":
        return active_between(r.added_at, r.lost_at, env.at)
    if status == "lost":
        return r.lost_at.notnull() & (r.lost_at < env.at)
    return r.added_at < env.at


def _guide(env: Env, c: GuideCondition) -> ir.Table:
    r = customer_relations(env.t)
    r = r.filter(r.guide_id.isin(c.guides) & _relation_status(env, r, c.status))
    return r.select("customer_id").distinct()


def _store(env: Env, c: StoreCondition) -> ir.Table:
    r = customer_relations(env.t)
    r = r.filter(r.store_id.isin(c.stores) & _relation_status(env, r, c.status))
    return r.select("customer_id").distinct()


def _channel(env: Env, c: ChannelCondition) -> ir.Table:
    j = joined(env.t)
    return j.filter(j.channel_id.isin(c.channels) & (j.joined_at < env.at)).select("customer_id")


def _group(env: Env, c: GroupCondition) -> ir.Table:
    m = customer_group_members(env.t)
    cond = active_between(m.joined_at, m.left_at, env.at) if c.status == "active" else (m.joined_at < env.at)
    if c.groups:
        cond = cond & m.touchpoint_id.isin(c.groups)
    return m.filter(cond).select("customer_id").distinct()


def _rfm(env: Env, c: RfmCondition) -> ir.Table:
    from siyu.analytics.rfm import rfm_customers

    r = rfm_customers(env.t, env.as_of, c.window_days)
    cond = ibis.literal(True)
    if c.classes:
        cond = cond & r.rfm_class.isin(list(c.classes))
    for col, scores in (("r_score", c.r_scores), ("f_score", c.f_scores), ("m_score", c.m_scores)):
        if scores:
            cond = cond & r[col].isin(list(scores))
    return r.filter(cond).select("customer_id")


def _aipl(env: Env, c: AiplCondition) -> ir.Table:
    from siyu.analytics.aipl import aipl_stage

    s = aipl_stage(env.t, env.as_of)
    return s.filter(s.stage.isin(list(c.stages))).select("customer_id")


def _lifecycle(env: Env, c: LifecycleCondition) -> ir.Table:
    from siyu.analytics.lifecycle import lifecycle_stage

    s = lifecycle_stage(env.t, env.as_of, c.new_days)
    return s.filter(s.stage.isin(list(c.stages))).select("customer_id")


def _clv(env: Env, c: ClvCondition) -> ir.Table:
    """Compare a field of the brand's stored CLV predictions (written by ``siyu.services.clv``)."""
    backend = env.t.customers._find_backend()
    p = backend.table("clv_predictions")
    p = p.filter(p.brand_id == env.t.brand_id)
    if c.field == "clv_percentile":
        p = p.mutate(clv_percentile=ibis.percent_rank().over(order_by=p.clv))
    return p.filter(compare(p[c.field], c.op, c.value)).select("customer_id")


# ---- nesting ---------------------------------------------------------------------------------------------------


def _and(env: Env, c: AndCondition) -> ir.Table:
    positives = [build(env, x) for x in c.conditions if not isinstance(x, NotCondition)]
    negatives = [build(env, x.condition) for x in c.conditions if isinstance(x, NotCondition)]
    out = positives[0] if positives else env.universe()
    for p in positives[1:]:
        out = out.intersect(p)
    for n in negatives:
        out = out.difference(n)
    return out


def _or(env: Env, c: OrCondition) -> ir.Table:
    parts = [build(env, x) for x in c.conditions]
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=True)
    return out


def _not(env: Env, c: NotCondition) -> ir.Table:
    return env.universe().difference(build(env, c.condition))


COMPILERS: dict[type, Callable[[Env, Any], ir.Table]] = {
    AndCondition: _and,
    OrCondition: _or,
    NotCondition: _not,
    TraitCondition: _trait,
    EventCondition: _event,
    OrderCondition: _orders,
    TagCondition: _tag,
    IdentityCondition: _identity,
    GuideCondition: _guide,
    StoreCondition: _store,
    ChannelCondition: _channel,
    GroupCondition: _group,
    RfmCondition: _rfm,
    AiplCondition: _aipl,
    LifecycleCondition: _lifecycle,
    ClvCondition: _clv,
}


def build(env: Env, cond: Condition) -> ir.Table:
    """The customer ids (one column ``customer_id``, nullable string so set operations line up) of ``cond``."""
    out = COMPILERS[type(cond)](env, cond)
    out = out.select(customer_id=out.customer_id.cast("string"))
    if env.substitute is not None and type(cond) not in (AndCondition, OrCondition, NotCondition):
        out = env.substitute(cond, out)
    return out


def segment_customers(
    t: Tables, cond: Condition, as_of: date, substitute: Callable[[Any, ir.Table], ir.Table] | None = None
) -> ir.Table:
    """One Ibis expression: the distinct ``customer_id`` of the brand's customers matching ``cond`` on ``as_of``."""
    return build(Env(t, as_of, substitute), cond).select("customer_id").distinct()
