"""私域业绩 formula: GMV = reachable × delivery rate × scenario conversion × order value, per unit.

For a period [S, E) and a unit (brand, store, guide; units as in ``siyu.analytics.assets``):

- A = reachable customers: held by the unit at some instant of the period (``reach_basis="period"``, the
  default: opening plus those acquired during it) or at its start (``"start"``);
- R = those of A who received a marketing touch in the period: an event ``Touch Delivered`` whose
  ``properties.purpose`` is one of ``touch_purposes`` (default ``broadcast``; None = any purpose);
- B = those of R with a revenue order in the period (refunded / cancelled excluded);
- G = the GMV of B's revenue orders in the period (all their orders, whoever sold them).

A × (R/A) × (B/R) × (G/B) = G exactly (a ratio is undefined, None, when its denominator is 0). A customer held by
two guides counts for both, so guides do not add up to their store or the brand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_events, customer_orders, ts
from siyu.analytics.definitions import define

MODULE = "performance"
TOUCH_DELIVERED = "Touch Delivered"
FACTORS: tuple[str, ...] = ("reachable", "delivery_rate", "conversion_rate", "order_value")

for _key, _zh, _en, _fzh, _fen, _unit in (
    (
        "performance.gmv",
        "私域业绩",
        "private-domain GMV",
        "客群资产数 A × 营销传递率 R/A × 场景转化率 B/R × 客单价 G/B = G（期内被触达且购买客户的有效订单金额）",
        "reachable A × delivery rate R/A × scenario conversion B/R × order value G/B = G (revenue of the "
        "customers who were touched and bought in the period)",
        "currency",
    ),
    (
        "performance.delivery_rate",
        "营销传递率",
        "delivery rate",
        "R/A：期内收到营销触达（Touch Delivered，默认 purpose=broadcast）的可触达客户 / 期内可触达客户",
        "R/A: reachable customers who received a marketing touch (Touch Delivered, purpose broadcast by default) "
        "in the period / customers reachable in the period",
        "ratio",
    ),
    (
        "performance.conversion_rate",
        "场景转化率",
        "scenario conversion rate",
        "B/R：被触达客户中期内有有效订单的人数 / 被触达客户数",
        "B/R: touched customers with a revenue order in the period / touched customers",
        "ratio",
    ),
    (
        "performance.order_value",
        "客单价",
        "order value per buyer",
        "G/B：被触达且购买客户的期内有效订单金额 / 其人数",
        "G/B: revenue of the touched buyers in the period / their number",
        "currency",
    ),
    (
        "performance.lmdi",
        "业绩变化因素分解（LMDI）",
        "GMV change by factor (LMDI)",
        "ΔG = Σ L(G1, G0) × ln(x1/x0)，L 为对数平均；四个因素贡献之和恰等于 ΔG；"
        "某期为 0 时，由该期第一个为 0 的因素承担全部变化",
        "ΔG = Σ L(G1, G0) × ln(x1/x0) with the logarithmic mean L; the four contributions add up to ΔG exactly; "
        "when one period is 0, its first zero factor takes the whole change",
        "currency",
    ),
):
    define(_key, _zh, _en, _fzh, _fen, _unit, MODULE)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PerformanceConfig:
    """Which touches count as marketing delivery and how reachable customers are counted."""

    touch_purposes: tuple[str, ...] | None = ("broadcast",)
    reach_basis: Literal["period", "start"] = "period"

    def __post_init__(self) -> None:
        if self.reach_basis not in ("period", "start"):
            raise ValueError("reach_basis must be 'period' or 'start'")


def reached(isl: ir.Table, start: datetime, end: datetime, basis: str = "period") -> ir.Table:
    """(unit, customer_id) held at some instant of [start, end) ("period") or at ``start`` ("start")."""
    s, e = ts(start), ts(end)
    cond = (isl.start <= s) if basis == "start" else (isl.start < e)
    cond &= isl.end > s
    return isl.filter(cond).select("unit", "customer_id").distinct()


def touched(t: Tables, start: datetime, end: datetime, purposes: tuple[str, ...] | None) -> ir.Table:
    """Distinct customer_id who received a delivered touch in [start, end)."""
    ev = customer_events(t)
    cond = (ev.event == TOUCH_DELIVERED) & (ev.timestamp >= ts(start)) & (ev.timestamp < ts(end))
    if purposes is not None:
        cond &= ev.properties["purpose"].str.isin(purposes)
    return ev.filter(cond).select("customer_id").distinct()


def spend(t: Tables, start: datetime, end: datetime) -> ir.Table:
    """Revenue per customer in [start, end). Columns: customer_id, gmv."""
    o = customer_orders(t)
    o = o.filter((o.ordered_at >= ts(start)) & (o.ordered_at < ts(end)))
    return o.group_by("customer_id").agg(gmv=o.amount.sum())


def factors(t: Tables, isl: ir.Table, start: datetime, end: datetime, cfg: PerformanceConfig | None = None) -> ir.Table:
    """A, R, B, G per unit over [start, end). Columns: unit, reachable, delivered, bought, gmv."""
    cfg = cfg or PerformanceConfig()
    a = reached(isl, start, end, cfg.reach_basis)
    r = touched(t, start, end, cfg.touch_purposes).select(r_cid="customer_id", r_flag=ibis.literal(1))
    g = spend(t, start, end).select(g_cid="customer_id", g_gmv="gmv")
    x = a.left_join(r, a.customer_id == r.r_cid).left_join(g, a.customer_id == g.g_cid)
    is_r = x.r_flag.notnull()
    is_b = is_r & x.g_gmv.notnull()
    out = x.group_by("unit").agg(
        reachable=x.customer_id.count(),
        delivered=is_r.cast("int64").sum(),
        bought=is_b.cast("int64").sum(),
        gmv=ibis.ifelse(is_b, x.g_gmv, 0.0).sum(),
    )
    return out.order_by("unit")
