"""Analytics on PySpark (local mode, through Ibis) give the same answers as on DuckDB.

The demo brand (``demo_ctx``) is exported to Parquet (``siyu.stores.analytics_engine.export_parquet``) and read by
a Spark session as views of the warehouse's table names (``SIYU_WAREHOUSE=pyspark://local[2]``). Every metric,
segment definition and the CLV summary is built once per engine through ``siyu.services.metrics.tables`` and
executed on each: counts and ids must be identical, sums equal to 1e-9 (relative).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from siyu.analytics import acquisition, assets, clv_summary, funnel, guides
from siyu.analytics.aipl import aipl_counts, aipl_flow, aipl_stage, aipl_transitions
from siyu.analytics.base import Tables, customer_orders, reachable_customers, ts
from siyu.analytics.cohorts import cohort_table
from siyu.analytics.lifecycle import lifecycle_counts, lifecycle_stage
from siyu.analytics.rfm import rfm_class_summary, rfm_customers, rfm_score_distribution
from siyu.analytics.segments import segment_customers
from siyu.domain.models import Role
from siyu.domain.segment_def import parse_definition
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.metrics import backend, data_end, fetch_frame, operations, tables, value
from siyu.services.metrics import guides as metrics_guides
from siyu.stores.analytics_engine import EXPORT_DIR, export_parquet

pytestmark = pytest.mark.spark

BRAND = "demo"
AS_OF = date(2026, 10, 1)
START, END = date(2026, 7, 1), date(2026, 10, 1)
T0, T1 = datetime(2026, 7, 1), datetime(2026, 10, 1)


@pytest.fixture(scope="session")
def spark_ctx(demo_ctx: Context) -> Iterator[Context]:
    """demo_ctx's stores, with analytics on a local Spark session reading a Parquet export of its warehouse."""
    pytest.importorskip("pyspark")
    export_parquet(demo_ctx.warehouse, demo_ctx.settings.data_dir / EXPORT_DIR)
    settings = dataclasses.replace(demo_ctx.settings, warehouse_url="pyspark://local[2]")
    twin = Context(settings, demo_ctx.engine, demo_ctx.sessions, demo_ctx.warehouse)
    yield twin
    engine = twin.extras.pop("analytics_engine", None)
    if engine is not None:
        engine.close()  # stops the Spark session (demo_ctx's stores stay open)


def _norm(v: Any) -> Any:
    if _missing(v):
        return None
    if isinstance(v, float):  # a float in an object column (e.g. with NULLs): to 1e-9
        return float(f"{v:.9e}")
    if isinstance(v, Decimal):
        return v
    if isinstance(v, pd.Timestamp):
        return v.tz_localize(None) if v.tzinfo else v
    return v


def same_frames(got: pd.DataFrame, exp: pd.DataFrame, what: str) -> None:
    """Same columns and rows (in any order): exact for everything but floats, floats to 1e-9 relative."""
    assert list(got.columns) == list(exp.columns), what
    assert len(got) == len(exp), (what, len(got), len(exp))
    floats = [c for c in exp.columns if pd.api.types.is_float_dtype(exp[c]) or pd.api.types.is_float_dtype(got[c])]
    keys = [c for c in exp.columns if c not in floats]

    def rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
        out = []
        for rec in frame.to_dict("records"):
            key = tuple(_key(rec[c]) for c in keys)
            out.append((key, tuple(rec[c] for c in floats), tuple(_norm(rec[c]) for c in keys)))
        return sorted(out, key=lambda r: (r[0], tuple(_key(x) for x in r[1])))

    for g, e in zip(rows(got), rows(exp), strict=True):
        assert g[2] == e[2], (what, g, e)
        for col, a, b in zip(floats, g[1], e[1], strict=True):
            if _missing(a) or _missing(b):
                assert _missing(a) and _missing(b), (what, col, a, b, e[2])
            else:
                assert math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9), (what, col, a, b, e[2])


def _missing(v: Any) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _key(v: Any) -> tuple[int, str]:
    if _missing(v):
        return (0, "")
    if isinstance(v, float):
        return (1, f"{v:.6e}")
    return (1, str(_norm(v)))


def both(duck: Context, spark: Context, build: Callable[[Tables], ir.Table], what: str) -> pd.DataFrame:
    """``build`` run on each engine's tables of the demo brand; asserts the same rows and returns DuckDB's."""
    exp = fetch_frame(duck, build(tables(duck, BRAND)))
    got = fetch_frame(spark, build(tables(spark, BRAND)))
    same_frames(got, exp, what)
    return exp


def test_spark_is_the_analytics_backend(demo_ctx: Context, spark_ctx: Context) -> None:
    assert backend(demo_ctx).name == "duckdb"
    assert backend(spark_ctx).name == "pyspark"
    assert tables(spark_ctx, BRAND).orders.count().to_pyarrow().as_py() > 0


def open_as_null(isl: ir.Table) -> ir.Table:
    """Islands with open spans' 9999-12-31 end as NULL: PySpark hands results over through pandas nanosecond
    timestamps, which end in 2262 (the reports built on islands never return the sentinel)."""
    return isl.mutate(end=ibis.ifelse(isl.end == ts(assets.FAR_FUTURE), ibis.null("timestamp"), isl.end))


METRICS: dict[str, Callable[[Tables], ir.Table]] = {
    "rfm": lambda t: rfm_customers(t, AS_OF),
    "rfm_window": lambda t: rfm_customers(t, AS_OF, 180),
    "rfm_classes": lambda t: rfm_class_summary(rfm_customers(t, AS_OF)),
    "rfm_r_scores": lambda t: rfm_score_distribution(rfm_customers(t, AS_OF), "r"),
    "aipl": lambda t: aipl_stage(t, AS_OF),
    "aipl_counts": lambda t: aipl_counts(aipl_stage(t, AS_OF)),
    "aipl_flow": lambda t: aipl_flow(aipl_transitions(t, START, AS_OF)),
    "lifecycle": lambda t: lifecycle_stage(t, AS_OF),
    "lifecycle_counts": lambda t: lifecycle_counts(lifecycle_stage(t, AS_OF, 60)),
    "cohorts_joined": lambda t: cohort_table(t, AS_OF),
    "cohorts_first_order_by_channel": lambda t: cohort_table(t, AS_OF, "first_order", by_channel=True),
    "reachable": lambda t: reachable_customers(t, AS_OF),
    "funnel_lead_in": lambda t: funnel.count_lead_in(funnel.lead_in(t, T0, T1), "channel_id"),
    "funnel_contacts": lambda t: funnel.count_contacts(funnel.contacts(t, T0, T1), "guide_id"),
    "funnel_exposures": lambda t: funnel.exposures(t, T0, T1),
    "funnel_lost": lambda t: funnel.lost_in(t, T0, T1),
    "funnel_interacted": lambda t: funnel.interacted(t, T0, T1),
    "assets_islands": lambda t: open_as_null(assets.islands(t)),
    "assets_islands_by_guide": lambda t: open_as_null(assets.islands(t, by="guide")),
    "assets_statement": lambda t: assets.statement(assets.islands(t), T0, T1),
    "assets_reachable": lambda t: assets.reachable_counts(assets.islands(t), T1),
    "assets_acquired": lambda t: assets.acquired_by_channel(assets.islands(t), T0, T1),
    "acquisition_by_channel": lambda t: acquisition.by_channel(t, START, END, AS_OF),
    "acquisition_by_platform": lambda t: acquisition.by_platform(t, START, END, AS_OF),
    "acquisition_customer_costs": lambda t: acquisition.customer_costs(t, START, END, AS_OF),
    "acquisition_totals": lambda t: acquisition.totals(t, START, END, AS_OF),
    "guide_kpis": lambda t: guides.guide_kpis(t, START, END, AS_OF),
    "guide_customers": lambda t: guides.guide_customers(t, "g01", START, END, AS_OF),
    "clv_summary": lambda t: clv_summary.summary(customer_orders(t), date(2026, 6, 30), AS_OF),
    "clv_summary_cohort": lambda t: clv_summary.summary(customer_orders(t), AS_OF, None, date(2026, 1, 1), 1.0),
    "clv_repeat_by_week": lambda t: clv_summary.repeat_days_by_week(
        customer_orders(t), date(2026, 1, 1), 30, date(2026, 1, 1), date(2026, 3, 31)
    ),
}


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_same_on_spark(demo_ctx: Context, spark_ctx: Context, name: str) -> None:
    exp = both(demo_ctx, spark_ctx, METRICS[name], name)
    assert len(exp) > 0, f"{name}: the demo brand should give rows (else the comparison proves nothing)"


SEGMENTS: list[dict[str, Any]] = [
    {"kind": "trait", "field": "city", "op": "in", "value": ["上海", "杭州"]},
    {"kind": "trait", "field": "traits.gender", "value": "female"},
    {"kind": "trait", "field": "birthday", "op": "lt", "value": "1990-01-01"},
    {"kind": "trait", "field": "created_at", "op": "between", "value": ["2026-01-01", "2026-03-01"]},
    {"kind": "trait", "field": "phone", "op": "starts_with", "value": "+86138"},
    {"kind": "trait", "field": "email", "op": "not_exists"},
    {"kind": "event", "event": "Message Clicked", "window_days": 30, "op": "gte", "value": 2},
    {
        "kind": "event",
        "event": "Product Viewed",
        "window_days": 90,
        "measure": "sum",
        "property": "price",
        "op": "gte",
        "value": 500,
    },
    {"kind": "event", "type": "page", "event": "首页", "window_days": 180},
    {"kind": "orders", "op": "eq", "value": 0},
    {"kind": "orders", "measure": "sum", "window_days": 180, "op": "between", "value": [300, 1500]},
    {"kind": "orders", "measure": "avg", "op": "gt", "value": 400},
    {"kind": "orders", "measure": "last_days_ago", "op": "lte", "value": 30},
    {"kind": "orders", "measure": "first_days_ago", "op": "between", "value": [100, 200]},
    {"kind": "orders", "channels": ["ch_store"], "op": "gte", "value": 2},
    {"kind": "identity", "id_type": "member_id"},
    {"kind": "guide", "guides": ["g02"], "status": "lost"},
    {"kind": "store", "stores": ["st_hz"], "status": "ever"},
    {"kind": "channel", "channels": ["ch_parcel", "ch_douyin"]},
    {"kind": "group"},
    {"kind": "rfm", "window_days": 180, "r_scores": [5], "m_scores": [4, 5]},
    {"kind": "aipl", "stages": ["I", "L"]},
    {"kind": "lifecycle", "stages": ["new_purchased", "old_repurchased"], "new_days": 60},
    {
        "kind": "or",
        "conditions": [
            {
                "kind": "and",
                "conditions": [
                    {"kind": "trait", "field": "city", "value": "上海"},
                    {"kind": "not", "condition": {"kind": "orders", "op": "gte", "value": 3}},
                ],
            },
            {"kind": "not", "condition": {"kind": "event", "event": "Message Clicked", "window_days": 90}},
        ],
    },
]


@pytest.mark.parametrize("definition", SEGMENTS, ids=[f"{i}-{d['kind']}" for i, d in enumerate(SEGMENTS)])
def test_segment_same_on_spark(demo_ctx: Context, spark_ctx: Context, definition: dict[str, Any]) -> None:
    cond = parse_definition(definition)
    exp = both(demo_ctx, spark_ctx, lambda t: segment_customers(t, cond, AS_OF), str(definition))
    count = tables(spark_ctx, BRAND)
    n = segment_customers(count, cond, AS_OF).count().to_pyarrow().as_py()
    assert n == len(exp)


ADMIN = User(0, BRAND, "t", "t", Role.ADMIN, None, "zh")
GUIDE = User(0, BRAND, "g", "g", Role.GUIDE, "g01", "zh")


def same_values(got: Any, exp: Any, path: str = "") -> None:
    """Reports (dataclasses, dicts, lists, frames) equal: exact but for floats (1e-9 relative)."""
    if dataclasses.is_dataclass(exp) and not isinstance(exp, type):
        got, exp = dataclasses.asdict(got), dataclasses.asdict(exp)  # type: ignore[arg-type]
    if isinstance(exp, pd.DataFrame):
        same_frames(got, exp, path)
    elif isinstance(exp, dict):
        assert isinstance(got, dict) and set(got) == set(exp), (path, got, exp)
        for k in exp:
            same_values(got[k], exp[k], f"{path}.{k}")
    elif isinstance(exp, list | tuple):
        assert len(got) == len(exp), (path, got, exp)
        for i, (g, e) in enumerate(zip(got, exp, strict=True)):
            same_values(g, e, f"{path}[{i}]")
    elif isinstance(exp, float) and not _missing(exp):
        assert math.isclose(float(got), exp, rel_tol=1e-9, abs_tol=1e-9), (path, got, exp)
    else:
        assert (_missing(got) and _missing(exp)) or got == exp, (path, got, exp)


REPORTS: dict[str, Callable[[Context, User], Any]] = {
    "rfm_report": lambda c, u: value.rfm_report(c, u, AS_OF),
    "aipl_report": lambda c, u: value.aipl_report(c, u, AS_OF),
    "lifecycle_report": lambda c, u: value.lifecycle_report(c, u, AS_OF),
    "cohort_report": lambda c, u: value.cohort_report(c, u, AS_OF),
    "funnel_by_guide": lambda c, u: operations.funnel(c, u, START, END, by="guide"),
    "kpis": lambda c, u: operations.kpis(c, u, START, END),
    "asset_statement": lambda c, u: operations.asset_statement(c, u, START, END),
    "leaderboard": lambda c, u: metrics_guides.leaderboard(c, u, START, END, AS_OF),
    "data_end": lambda c, u: data_end(c, BRAND),
}


@pytest.mark.parametrize("user", [ADMIN, GUIDE], ids=["admin", "guide"])
@pytest.mark.parametrize("name", list(REPORTS))
def test_report_same_on_spark(demo_ctx: Context, spark_ctx: Context, name: str, user: User) -> None:
    """The metrics services (scoped to a guide's own customers too) on Spark answer as on DuckDB."""
    exp = REPORTS[name](demo_ctx, user)
    got = REPORTS[name](spark_ctx, user)
    same_values(got, exp, name)
