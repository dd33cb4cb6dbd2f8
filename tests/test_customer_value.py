"""``analytics.customer_value`` (one query over one shared order aggregate) gives exactly the rows of
``rfm_customers``, ``aipl_stage`` and ``lifecycle_stage``; ``services.metrics.value.value_tables`` splits it."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from siyu.analytics.aipl import AiplConfig, aipl_stage
from siyu.analytics.customer_value import customer_value
from siyu.analytics.lifecycle import lifecycle_stage
from siyu.analytics.rfm import rfm_customers
from siyu.services.context import Context
from siyu.services.metrics import fetch_arrow, tables
from siyu.services.metrics.value import value_tables


def _rows(tab: pa.Table) -> list[dict[str, object]]:
    return sorted(tab.to_pylist(), key=lambda r: str(r["customer_id"]))


@pytest.mark.parametrize(
    "as_of,config,new_days",
    [
        (date(2026, 10, 31), None, 30),
        (date(2026, 2, 1), None, 60),
        (date(2026, 10, 31), AiplConfig(p_days=90, l_days=180, l_min_orders=3, i_days=7), 14),
    ],
)
def test_one_query_equals_the_three(demo_ctx: Context, as_of: date, config: AiplConfig | None, new_days: int) -> None:
    """On the demo brand, for several dates, AIPL configs (equal and different P/L windows) and new-customer
    windows: same rows, same values, same Arrow types."""
    t = tables(demo_ctx, "demo")
    got = value_tables(demo_ctx, "demo", as_of, config, new_days)
    expected = {
        "rfm": fetch_arrow(demo_ctx, rfm_customers(t, as_of)),
        "aipl": fetch_arrow(demo_ctx, aipl_stage(t, as_of, config)),
        "lifecycle": fetch_arrow(demo_ctx, lifecycle_stage(t, as_of, new_days)),
    }
    for key, exp in expected.items():
        assert exp.num_rows > 0, key
        assert got[key].schema == exp.schema, key
        assert _rows(got[key]) == _rows(exp), key


def test_customers_without_a_part_have_nulls(demo_ctx: Context) -> None:
    """Every customer of any of the three results has one row; the parts they lack are NULL."""
    as_of = date(2026, 10, 31)
    t = tables(demo_ctx, "demo")
    wide = fetch_arrow(demo_ctx, customer_value(t, as_of))
    ids = wide.column("customer_id").to_pylist()
    assert len(ids) == len(set(ids))
    parts = value_tables(demo_ctx, "demo", as_of)
    union = set().union(*(set(p.column("customer_id").to_pylist()) for p in parts.values()))
    assert set(ids) == union
    no_orders = [r for r in wide.to_pylist() if r["rfm_class"] is None]
    assert no_orders and all(r["frequency"] is None for r in no_orders)
    assert {r["lifecycle_stage"] for r in no_orders} <= {"new_no_purchase", "old_no_purchase", None}


def test_new_days_must_be_positive(demo_ctx: Context) -> None:
    with pytest.raises(ValueError, match="new_days"):
        customer_value(tables(demo_ctx, "demo"), date(2026, 10, 31), None, 0)
