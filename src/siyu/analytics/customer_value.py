"""RFM, AIPL stage and lifecycle stage of every customer in one query, over one shared order aggregate.

``rfm_customers``, ``aipl_stage`` and ``lifecycle_stage`` each aggregate the orders themselves (one query each).
``customer_value`` aggregates them once (``base.customer_order_totals`` before ``as_of`` with the orders of the
AIPL P and L windows) and derives the three from it with the same code (``rfm_from_totals``,
``aipl_from_totals``, ``lifecycle_from_totals``): one scan of the orders and one query plan instead of three.
RFM here is over all orders before ``as_of`` (no window).
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from siyu.analytics.aipl import AiplConfig, aipl_from_totals
from siyu.analytics.base import Tables, customer_order_totals
from siyu.analytics.lifecycle import lifecycle_from_totals
from siyu.analytics.memo import memoized
from siyu.analytics.rfm import RFM_COLUMNS, rfm_from_totals

VALUE_COLUMNS: tuple[str, ...] = (*RFM_COLUMNS, "aipl_stage", "lifecycle_stage")


@memoized
def customer_value(t: Tables, as_of: date, config: AiplConfig | None = None, new_days: int = 30) -> ir.Table:
    """One row per customer with an RFM row, an AIPL stage or a lifecycle stage on ``as_of``.

    Columns: those of ``rfm_customers`` (NULL for customers without an order before as_of), ``aipl_stage`` (NULL =
    no stage) and ``lifecycle_stage`` (NULL = not joined before as_of). Filtering on a non-NULL ``rfm_class``,
    ``aipl_stage`` or ``lifecycle_stage`` gives exactly ``rfm_customers(t, as_of)``, ``aipl_stage(t, as_of,
    config)`` or ``lifecycle_stage(t, as_of, new_days)``.
    """
    if new_days <= 0:
        raise ValueError("new_days must be a positive number of days")
    c = config or AiplConfig()
    tot = customer_order_totals(t, as_of, recent_days=(c.p_days, c.l_days))
    rfm = rfm_from_totals(tot, as_of)
    st = aipl_from_totals(t, as_of, c, tot).rename(a_id="customer_id", aipl_stage="stage")
    life = lifecycle_from_totals(t, as_of, new_days, tot).rename(l_id="customer_id", lifecycle_stage="stage")
    ra = rfm.outer_join(st, rfm.customer_id == st.a_id)
    ra = ra.select(*RFM_COLUMNS[1:], "aipl_stage", customer_id=ibis.coalesce(ra.customer_id, ra.a_id)).view()
    out = ra.outer_join(life, ra.customer_id == life.l_id)
    out = out.select(
        *RFM_COLUMNS[1:], "aipl_stage", "lifecycle_stage", customer_id=ibis.coalesce(out.customer_id, out.l_id)
    )
    return out.select(*VALUE_COLUMNS)
