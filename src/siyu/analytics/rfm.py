"""RFM per customer: recency, frequency, monetary over a window; the 8 classes (mean split) and quintile scores.

Dates: ``as_of`` is an instant, the start (00:00) of that day, like every ``siyu.analytics`` date — orders
placed before it count, so "as of 2011-12-10" takes Online Retail's data up to the end of 2011-12-09. A window
of ``w`` days takes the orders in ``[as_of − w days, as_of)``.

- R ``recency_days`` = calendar days from the day of the customer's last order to ``as_of`` (bought yesterday = 1).
- F ``frequency`` = distinct orders (``order_id`` is the orders' primary key within a brand and each order maps
  to one customer, so this is the count of order rows); M ``monetary`` = Σ order amount (refunded/cancelled
  orders excluded).
- Mean split (rfm-aipl.md): R high iff R ≤ mean(R) (recent); F high iff F ≥ mean(F); M high iff M ≥ mean(M), the
  means taken over the customers with at least one order in the window.
- Classes: M decides 重要/一般 (important/general); (R, F) = (high, high) 价值 value, (high, low) 发展 develop,
  (low, high) 保持 keep, (low, low) 挽留 win-back. (The widely copied mapping 101 → 重要挽留, 001 → 重要发展 is
  wrong: R high, F low, M high is important_develop; R low, F low, M high is important_win_back.)
- Quintile scores 1–5 (5 = best; for R the most recent): ``score = min(5, 1 + floor(5 × percent_rank))`` with the
  values ordered worst → best, so tied values share a score (the lower one) and the split is by rank.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_order_totals, local_date
from siyu.analytics.definitions import define
from siyu.analytics.memo import memoized
from siyu.domain.customer_classes import RFM_CLASS_RULES

MODULE = "rfm"

RFM_CLASSES = RFM_CLASS_RULES  # class code → (R high, F high, M high), from siyu.domain.customer_classes

RFM_CLASS_ZH: dict[str, str] = {
    "important_value": "重要价值客户",
    "important_develop": "重要发展客户",
    "important_keep": "重要保持客户",
    "important_win_back": "重要挽留客户",
    "general_value": "一般价值客户",
    "general_develop": "一般发展客户",
    "general_keep": "一般保持客户",
    "general_win_back": "一般挽留客户",
}

define(
    "rfm.recency_days",
    "R 最近购买间隔",
    "R recency",
    "统计日 − 最后一笔订单的日期（天）；统计日当天 0 点之前的订单计入",
    "as-of date − day of the last order (days); orders before the as-of day's 00:00 count",
    "days",
    MODULE,
)
define(
    "rfm.frequency",
    "F 购买频次",
    "F frequency",
    "窗口内不同订单数（不含退款/取消）",
    "distinct orders in the window (refunded/cancelled excluded)",
    "count",
    MODULE,
)
define(
    "rfm.monetary",
    "M 消费金额",
    "M monetary",
    "窗口内订单金额之和（不含退款/取消）",
    "Σ order amount in the window (refunded/cancelled excluded)",
    "currency",
    MODULE,
)
define(
    "rfm.class",
    "RFM 八类客户",
    "RFM class (8)",
    "均值切分：R ≤ 均值为高（近），F ≥ 均值为高，M ≥ 均值为高；"
    "M 定重要/一般，(R,F)=(高,高)价值、(高,低)发展、(低,高)保持、(低,低)挽留",
    "mean split: R high iff R ≤ mean(R), F high iff F ≥ mean(F), M high iff M ≥ mean(M); M = important/general, "
    "(R,F) = (high,high) value, (high,low) develop, (low,high) keep, (low,low) win-back",
    "label",
    MODULE,
)
define(
    "rfm.score",
    "RFM 五分位得分",
    "RFM quintile score",
    "按从差到好的排名：得分 = min(5, 1 + floor(5 × percent_rank))，同值同分；R 越近得分越高",
    "by rank from worst to best: score = min(5, 1 + floor(5 × percent_rank)), ties share a score; R: more recent "
    "= higher",
    "score",
    MODULE,
)
define(
    "rfm.class_count",
    "各类客户数",
    "customers per RFM class",
    "每个 RFM 类别的客户数及占比",
    "customers in each RFM class and their share",
    "count",
    MODULE,
)
define(
    "rfm.class_value_share",
    "各类客户价值占比",
    "RFM class value share",
    "类别 M 之和 / 全部客户 M 之和",
    "Σ M of the class / Σ M of all customers",
    "ratio",
    MODULE,
)


def _score(order_key: ir.Column) -> ir.IntegerColumn:
    """Quintile 1–5 by ``percent_rank`` over ``order_key`` ascending (ascending = worst → best)."""
    pr = ibis.percent_rank().over(order_by=order_key)
    return ibis.least((pr * 5).floor().cast("int64") + 1, 5).cast("int64")


@memoized
def rfm_customers(t: Tables, as_of: date, window_days: int | None = None) -> ir.Table:
    """One row per customer with an order in the window: R/F/M, the mean-split flags, the class and the scores.

    Columns: customer_id, recency_days, frequency, monetary, r_high, f_high, m_high, rfm_class, r_score,
    f_score, m_score.
    """
    if window_days is not None and window_days <= 0:
        raise ValueError("window_days must be a positive number of days")
    start = as_of - timedelta(days=window_days) if window_days is not None else None
    tot = customer_order_totals(t, as_of, start)
    per = tot.select("customer_id", "last_at", frequency=tot.orders, monetary=tot.amount)
    per = per.select(
        "customer_id",
        "frequency",
        "monetary",
        recency_days=ibis.literal(as_of).delta(local_date(per.last_at), unit="day").cast("int64"),
    )
    w = ibis.window()
    flagged = per.mutate(
        r_high=per.recency_days <= per.recency_days.mean().over(w),
        f_high=per.frequency >= per.frequency.mean().over(w),
        m_high=per.monetary >= per.monetary.mean().over(w),
    )
    cls = ibis.cases(
        *[
            ((flagged.r_high == r) & (flagged.f_high == f) & (flagged.m_high == m), code)
            for code, (r, f, m) in RFM_CLASSES.items()
        ]
    )
    scored = flagged.mutate(
        rfm_class=cls,
        r_score=_score(-flagged.recency_days),
        f_score=_score(flagged.frequency),
        m_score=_score(flagged.monetary),
    )
    return scored.select(
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_high",
        "f_high",
        "m_high",
        "rfm_class",
        "r_score",
        "f_score",
        "m_score",
    )


def rfm_class_summary(rfm: ir.Table) -> ir.Table:
    """Customers and value per class. Columns: rfm_class, customers, monetary, customer_share, value_share."""
    g = rfm.group_by("rfm_class").agg(customers=rfm.count(), monetary=rfm.monetary.sum())
    w = ibis.window()
    return g.mutate(
        customer_share=g.customers.cast("float64") / g.customers.sum().over(w),
        value_share=g.monetary / g.monetary.sum().over(w),
    ).order_by("rfm_class")


def rfm_score_distribution(rfm: ir.Table, which: str) -> ir.Table:
    """Customers per quintile score of ``which`` ('r', 'f' or 'm'). Columns: score, customers, monetary."""
    if which not in ("r", "f", "m"):
        raise ValueError("which must be 'r', 'f' or 'm'")
    col = rfm[f"{which}_score"]
    g = rfm.group_by(score=col).agg(customers=rfm.count(), monetary=rfm.monetary.sum())
    return g.order_by("score")
