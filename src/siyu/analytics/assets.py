"""客群资产数 (reachable customers) and 用户资产表 (the customer asset statement).

A customer is *held* by a unit (the brand, a store, a guide, a touchpoint) while they have an active WeCom
relation with the unit's guide(s) or a membership of one of its customer groups (a group belongs to the guide
who owns it, ``touchpoints.guide_id``, and to that guide's store). Every relation and membership is a *span*
``[start, end)``; overlapping or touching spans of one customer in one unit are merged into *islands*, so a
customer counts once per unit and a hand-over without a gap is no movement at that level.

Statement for the instants ``S`` (opening) and ``E`` (closing): opening = islands active at S; acquired /
moved in = islands starting in (S, E]; lost = islands ending in (S, E], by how they ended; closing = islands
active at E. For any span ``[start, end)``: [active at E] − [active at S] = [S < start ≤ E] − [S < end ≤ E], so
opening + in − out = closing holds row by row.

How a span starts and ends (``AssetConfig``):

- relation ended with ``lost_by`` = ``customer`` → lost_by_customer (删粉), ``guide`` → deleted_by_guide, one
  of ``transfer_lost_by`` (default ``transfer``, WeCom's DELETE_BY_TRANSFER) → moved_out, anything else →
  lost_other; a membership that ended → left_group;
- a relation is moved_in when its ``add_way`` is one of ``transfer_add_ways`` (default 202, assigned by admin)
  or it was added within ``transfer_window_days`` (default 2) of a transfer-ended relation of the same customer
  with another guide; every other start is acquired, by the relation's ``channel_id`` (``(group)`` for a group
  membership, ``(none)`` for a relation without channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_group_members, customer_relations, ts
from siyu.analytics.definitions import define
from siyu.domain.brand_time import day_end_utc, day_start_utc

MODULE = "assets"

By = Literal["brand", "store", "guide", "touchpoint"]
BY_VALUES: tuple[str, ...] = ("brand", "store", "guide", "touchpoint")
IN_KINDS: tuple[str, ...] = ("acquired", "moved_in")
OUT_KINDS: tuple[str, ...] = ("lost_by_customer", "deleted_by_guide", "moved_out", "left_group", "lost_other")
STATEMENT_COLUMNS: tuple[str, ...] = ("opening", *IN_KINDS, *OUT_KINDS, "closing")
GROUP_CHANNEL = "(group)"
NO_CHANNEL = "(none)"
FAR_FUTURE = datetime(9999, 12, 31)

define(
    "assets.reachable",
    "客群资产数",
    "reachable customers",
    "统计日结束时与导购有有效企微好友关系、或在其社群中的去重客户数；门店 = 其导购之并集，品牌 = 全部",
    "distinct customers with an active WeCom relation with the guide, or a membership of a group the guide owns, "
    "at the end of the day; store = union over its guides; brand = everyone reachable",
    "count",
    MODULE,
)
define(
    "assets.statement",
    "用户资产表",
    "customer asset statement",
    "期初（开始日 0 点可触达）+ 新增（按渠道）+ 转入（继承）− 删粉 − 导购删除 − 转出 − 退群 − 其他流失 = 期末"
    "（结束日 24 点可触达）；同一客户在同一单元内重叠的关系合并为一段",
    "opening (reachable at 00:00 of the start day) + acquired (by channel) + moved in (inheritance) − lost by "
    "customer − deleted by guide − moved out − left group − other losses = closing (reachable at the end of the "
    "end day); overlapping relations of a customer in one unit are merged into one span",
    "count",
    MODULE,
)


@dataclass(frozen=True)
class AssetConfig:
    """What counts as a transfer (inheritance) and whether group memberships make a customer reachable."""

    transfer_lost_by: tuple[str, ...] = ("transfer",)
    transfer_add_ways: tuple[str, ...] = ("202",)
    transfer_window_days: int = 2
    include_groups: bool = True

    def __post_init__(self) -> None:
        if self.transfer_window_days < 0:
            raise ValueError("transfer_window_days must be ≥ 0")


def day_start(d: date) -> datetime:
    """Brand-local 00:00 of day ``d`` as a stored (UTC) instant: the opening of a period starting on ``d``."""
    return day_start_utc(d)


def day_end(d: date) -> datetime:
    """The end of brand day ``d`` (local 00:00 of the next day) as a stored instant: 'on date d' means then."""
    return day_end_utc(d)


def _wecom_touchpoints(t: Tables) -> ir.Table:
    tp = t.touchpoints
    tp = tp.filter((tp.kind == "wecom_contact") & tp.guide_id.notnull())
    return tp.group_by(w_guide=tp.guide_id).agg(w_touchpoint=tp.touchpoint_id.min())


def relation_spans(t: Tables, cfg: AssetConfig) -> ir.Table:
    """One span per WeCom relation. Columns: customer_id, guide_id, store_id, touchpoint_id, start, end,
    in_kind, out_kind, channel_id (``end`` NULL = still active)."""
    r = customer_relations(t)
    o = r.view()  # a self-join needs its own reference
    outs = o.filter(o.lost_by.isin(cfg.transfer_lost_by) & o.lost_at.notnull()).select(
        o_cid=o.customer_id, o_guide=o.guide_id, o_at=o.lost_at
    )
    window = ibis.interval(days=cfg.transfer_window_days)
    handed = (
        r.join(
            outs,
            (r.customer_id == outs.o_cid)
            & (r.guide_id != outs.o_guide)
            & (r.added_at >= outs.o_at - window)
            & (r.added_at <= outs.o_at + window),
        )
        .select(m_cid=r.customer_id, m_guide=r.guide_id)
        .distinct()
    )
    x = r.left_join(handed, (r.customer_id == handed.m_cid) & (r.guide_id == handed.m_guide))
    moved_in = x.m_cid.notnull() | x.add_way.isin(cfg.transfer_add_ways)
    x = x.mutate(_moved_in=moved_in.fill_null(False))
    w = _wecom_touchpoints(t)
    x = x.left_join(w, x.guide_id == w.w_guide)
    out_kind = ibis.cases(
        (x.lost_at.isnull(), ibis.null("string")),
        (x.lost_by.isin(cfg.transfer_lost_by), "moved_out"),
        (x.lost_by == "customer", "lost_by_customer"),
        (x.lost_by == "guide", "deleted_by_guide"),
        else_="lost_other",
    )
    return x.select(
        customer_id=x.customer_id,
        guide_id=x.guide_id,
        store_id=x.store_id,
        touchpoint_id=ibis.coalesce(x.w_touchpoint, ibis.literal("wecom:") + x.guide_id),
        start=x.added_at,
        end=x.lost_at,
        in_kind=ibis.ifelse(x._moved_in, "moved_in", "acquired"),
        out_kind=out_kind,
        channel_id=x.channel_id.fill_null(NO_CHANNEL),
    )


def group_spans(t: Tables) -> ir.Table:
    """One span per customer-group membership (owner guide and store from ``touchpoints``); same columns."""
    m = customer_group_members(t)
    tp = t.touchpoints.select(tp_id=t.touchpoints.touchpoint_id, owner=t.touchpoints.guide_id)
    g = t.guides.select(g_id=t.guides.guide_id, g_store=t.guides.store_id)
    x = m.left_join(tp, m.touchpoint_id == tp.tp_id).left_join(g, tp.owner == g.g_id)
    return x.select(
        customer_id=x.customer_id,
        guide_id=x.owner,
        store_id=x.g_store,
        touchpoint_id=x.touchpoint_id,
        start=x.joined_at,
        end=x.left_at,
        in_kind=ibis.literal("acquired"),
        out_kind=ibis.ifelse(x.left_at.isnull(), ibis.null("string"), "left_group"),
        channel_id=ibis.literal(GROUP_CHANNEL),
    )


def spans(t: Tables, cfg: AssetConfig | None = None) -> ir.Table:
    """Relation spans, plus group spans when ``cfg.include_groups``."""
    cfg = cfg or AssetConfig()
    out = relation_spans(t, cfg)
    if cfg.include_groups:
        out = out.union(group_spans(t))
    return out


def islands(t: Tables, by: str = "brand", cfg: AssetConfig | None = None) -> ir.Table:
    """Merged holding spans per customer and unit.

    Columns: unit, customer_id, start, end (never NULL: an open span ends at 9999-12-31), in_kind, channel_id,
    out_kind (NULL while open). ``by``: brand (unit = brand id), store, guide, touchpoint; spans without a unit
    (a group with no owner, for store/guide) are left out.
    """
    if by not in BY_VALUES:
        raise ValueError(f"by must be one of {', '.join(BY_VALUES)}")
    s = spans(t, cfg)
    unit = ibis.literal(t.brand_id) if by == "brand" else s[f"{by}_id"]
    s = s.mutate(unit=unit, end=s.end.fill_null(ts(FAR_FUTURE)))
    s = s.filter(s.unit.notnull())
    keys, order = ["customer_id", "unit"], ["start", "end"]
    prev = s.end.max().over(ibis.window(group_by=keys, order_by=order, rows=(None, -1)))
    s = s.mutate(_new=(prev.isnull() | (s.start > prev)).cast("int64"))
    s = s.mutate(_island=s._new.sum().over(ibis.window(group_by=keys, order_by=order, rows=(None, 0))))
    return s.group_by(["unit", "customer_id", "_island"]).agg(
        start=s.start.min(),
        end=s.end.max(),
        in_kind=s.in_kind.argmin(s.start),
        channel_id=s.channel_id.argmin(s.start),
        out_kind=s.out_kind.argmax(s.end),
    )


def active_at(isl: ir.Table, at: datetime) -> ir.BooleanColumn:
    """Islands holding their customer at instant ``at``."""
    a = ts(at)
    return (isl.start <= a) & (isl.end > a)


def reachable_counts(isl: ir.Table, at: datetime) -> ir.Table:
    """Reachable customers per unit at instant ``at``. Columns: unit, reachable."""
    live = isl.filter(active_at(isl, at))
    return live.group_by("unit").agg(reachable=live.customer_id.nunique())


def statement(isl: ir.Table, opening_at: datetime, closing_at: datetime) -> ir.Table:
    """The asset statement per unit between two instants. Columns: unit + ``STATEMENT_COLUMNS``."""
    s, e = ts(opening_at), ts(closing_at)
    came = (isl.start > s) & (isl.start <= e)
    went = (isl.end > s) & (isl.end <= e)

    def n(cond: ir.BooleanColumn) -> ir.IntegerScalar:
        return cond.cast("int64").sum()

    metrics = {
        "opening": n(active_at(isl, opening_at)),
        **{k: n(came & (isl.in_kind == k)) for k in IN_KINDS},
        **{k: n(went & (isl.out_kind == k)) for k in OUT_KINDS},
        "closing": n(active_at(isl, closing_at)),
    }
    out = isl.group_by("unit").agg(**metrics)
    any_value = ibis.or_(*[out[c] > 0 for c in STATEMENT_COLUMNS])
    return out.filter(any_value).order_by("unit")


def acquired_by_channel(isl: ir.Table, opening_at: datetime, closing_at: datetime) -> ir.Table:
    """Acquired islands per unit and channel in (opening_at, closing_at]. Columns: unit, channel_id, acquired."""
    s, e = ts(opening_at), ts(closing_at)
    a = isl.filter((isl.start > s) & (isl.start <= e) & (isl.in_kind == "acquired"))
    return a.group_by(["unit", "channel_id"]).agg(acquired=a.count()).order_by(["unit", "channel_id"])


def with_stage(isl: ir.Table, stages: ir.Table) -> ir.Table:
    """Brand islands re-keyed by each customer's lifecycle stage (``stages``: customer_id, stage); unit = stage,
    ``(none)`` for customers without one."""
    st = stages.select(s_cid=stages.customer_id, s_stage=stages.stage)
    x = isl.left_join(st, isl.customer_id == st.s_cid)
    return x.select(
        unit=x.s_stage.fill_null("(none)"),
        customer_id=x.customer_id,
        _island=x._island,
        start=x.start,
        end=x.end,
        in_kind=x.in_kind,
        channel_id=x.channel_id,
        out_kind=x.out_kind,
    )
