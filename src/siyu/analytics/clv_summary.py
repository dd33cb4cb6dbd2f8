"""Recency/frequency/monetary summary for the CLV models, from any transaction table (Ibis).

Rules (``../shared/reference/btyd.md``; they reproduce ``cdnow_customers_summary_with_transactions.csv``):
- purchases on the same calendar day are one transaction (their amounts summed);
- a customer's first transaction is their "birth"; only customers born on or before ``calibration_end`` count,
  and only if born on or after ``cohort_start`` when one is given;
- x = repeat transactions (after the first) up to and including ``calibration_end``; t_x = time from the first to
  the last of them (0 if none); T = time from the first transaction to ``calibration_end``; time unit =
  ``unit_days`` days (7 = weeks);
- monetary (z̄) = mean amount of the repeat transactions (0 if none);
- holdout_x / holdout_amount = transactions after ``calibration_end`` up to and including ``holdout_end``.

The input needs ``customer_id``, ``ordered_at`` (date or timestamp) and ``amount`` columns — the shape of
``siyu.analytics.base.customer_orders``.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import local_date
from siyu.analytics.definitions import define

MODULE = "clv"

define(
    "clv.x",
    "x 重复购买次数",
    "x repeat purchases",
    "校准期内首购之后的购买天数（同一天多笔合并为一次）",
    "purchase days after the first one within the calibration period (same-day orders merged)",
    "count",
    MODULE,
)
define(
    "clv.t_x",
    "t_x 最后一次重复购买时间",
    "t_x recency",
    "首购到最后一次重复购买的时间（周），无重复购买为 0",
    "time from the first purchase to the last repeat purchase (weeks); 0 without repeat purchases",
    "weeks",
    MODULE,
)
define(
    "clv.T",
    "T 观察时长",
    "T age",
    "首购到校准期末的时间（周）",
    "time from the first purchase to the end of calibration (weeks)",
    "weeks",
    MODULE,
)
define(
    "clv.monetary",
    "z̄ 重复购买客单价",
    "z̄ mean repeat spend",
    "重复购买（按天合并）金额的平均值",
    "mean amount of the repeat purchase days",
    "currency",
    MODULE,
)


def daily_transactions(tx: ir.Table) -> ir.Table:
    """One row per customer and purchase day (brand-local): ``customer_id``, ``day``, ``amount`` (summed)."""
    day = local_date(tx.ordered_at)
    return tx.group_by(customer_id=tx.customer_id, day=day).agg(amount=tx.amount.cast("float64").sum())


def summary(
    tx: ir.Table,
    calibration_end: date,
    holdout_end: date | None = None,
    cohort_start: date | None = None,
    unit_days: float = 7.0,
) -> ir.Table:
    """Per customer: ``customer_id, first_day, x, t_x, T, monetary, holdout_x, holdout_amount``."""
    daily = daily_transactions(tx)
    end = ibis.literal(calibration_end, type="date")
    births = daily.group_by("customer_id").agg(first_day=daily.day.min())
    keep = births.first_day <= end
    if cohort_start is not None:
        keep &= births.first_day >= ibis.literal(cohort_start, type="date")
    births = births.filter(keep)
    j = daily.join(births, "customer_id")
    calib = j.day <= end
    repeat = calib & (j.day > j.first_day)
    stats = j.group_by(["customer_id", "first_day"]).agg(
        x=repeat.cast("int64").sum(),
        last_day=j.day.max(where=calib),
        repeat_amount=j.amount.sum(where=repeat),
        holdout_x=_holdout(j, end, holdout_end).cast("int64").sum(),
        holdout_amount=j.amount.sum(where=_holdout(j, end, holdout_end)),
    )
    unit = float(unit_days)
    return stats.select(
        customer_id=stats.customer_id,
        first_day=stats.first_day,
        x=stats.x,
        t_x=stats.last_day.delta(stats.first_day, unit="day").cast("float64") / unit,
        T=end.delta(stats.first_day, unit="day").cast("float64") / unit,
        monetary=ibis.ifelse(stats.x > 0, stats.repeat_amount / stats.x.cast("float64"), 0.0),
        holdout_x=stats.holdout_x,
        holdout_amount=stats.holdout_amount.fill_null(0.0),
    )


def _holdout(j: ir.Table, end: ir.DateScalar, holdout_end: date | None) -> ir.BooleanColumn:
    after = j.day > end
    if holdout_end is None:
        return after & ibis.literal(False)
    return after & (j.day <= ibis.literal(holdout_end, type="date"))


def repeat_days_by_week(tx: ir.Table, start: date, weeks: int, cohort_start: date, cohort_end: date) -> ir.Table:
    """Repeat purchase days per week since ``start`` for the customers born in [cohort_start, cohort_end]:
    ``week`` (1-based), ``repeats`` — the actual line of the tracking plot."""
    daily = daily_transactions(tx)
    births = daily.group_by("customer_id").agg(first_day=daily.day.min())
    births = births.filter(
        (births.first_day >= ibis.literal(cohort_start, type="date"))
        & (births.first_day <= ibis.literal(cohort_end, type="date"))
    )
    j = daily.join(births, "customer_id")
    j = j.filter(j.day > j.first_day)
    week = (j.day.delta(ibis.literal(start, type="date"), unit="day") // 7 + 1).cast("int64")
    j = j.mutate(week=week)
    j = j.filter(j.week <= weeks)
    return j.group_by("week").agg(repeats=j.count()).order_by("week")
