"""Metrics use cases: bind a brand's tables, apply the user's scope, execute ``siyu.analytics`` expressions.

Shared pieces for every metrics area live here (``tables``, ``scope``, ``parse_day``, and ``fetch_arrow``/
``fetch_arrows``/``fetch_frame``/``fetch_scalar`` to execute with the compiled-query cache of ``query_cache``);
each area's use cases are in their own module of this package.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from siyu.analytics.base import Tables
from siyu.domain.brand_time import brand_today, local_day
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.customers import guide_scope
from siyu.services.errors import SiyuError
from siyu.services.metrics import query_cache
from siyu.stores import analytics_engine

_engine_lock = threading.Lock()


class AnalyticsEngine:
    """The ``SIYU_WAREHOUSE`` backend of one context (in ``ctx.extras["analytics_engine"]``; closing the context
    disconnects it, which stops a Spark session)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def close(self) -> None:
        self.backend.disconnect()


def backend(ctx: Context) -> Any:
    """The Ibis backend analytics run on: ``SIYU_WAREHOUSE``'s engine (opened once per context), else this
    thread's backend on the embedded DuckDB warehouse (see ``siyu.stores.analytics_engine``)."""
    url = ctx.settings.warehouse_url
    if not url:
        return ctx.warehouse.ibis
    engine = ctx.extras.get("analytics_engine")
    if engine is None:
        with _engine_lock:
            engine = ctx.extras.get("analytics_engine")
            if engine is None:
                engine = AnalyticsEngine(analytics_engine.connect(url, ctx.settings.data_dir))
                ctx.extras["analytics_engine"] = engine
    return engine.backend


def tables(ctx: Context, brand_id: str) -> Tables:
    """The brand's warehouse tables on the analytics backend (bound once per backend and brand)."""
    return query_cache.brand_tables(backend(ctx), brand_id)


def fetch_arrow(ctx: Context, expr: ir.Expr) -> Any:
    """``expr.to_pyarrow()`` on the analytics backend, with its compiled SQL cached on DuckDB (the data is read
    on every call)."""
    return query_cache.to_arrow(backend(ctx), expr)


def fetch_arrows(ctx: Context, exprs: Sequence[ir.Expr]) -> list[Any]:
    """``fetch_arrow`` of several expressions, run side by side on DuckDB while the brand is small (see
    ``query_cache.to_arrow_many``); results in the order given."""
    return query_cache.to_arrow_many(backend(ctx), exprs)


def fetch_frame(ctx: Context, expr: ir.Table) -> pd.DataFrame:
    """A table expression's rows as a pandas DataFrame (``arrow(...).to_pandas()``)."""
    return query_cache.to_pandas(backend(ctx), expr)


def fetch_scalar(ctx: Context, expr: ir.Scalar) -> Any:
    """A scalar expression's value as a Python object (None for NULL)."""
    return query_cache.scalar(backend(ctx), expr)


def scope(ctx: Context, user: User) -> ir.Table | None:
    """Customer ids (column ``customer_id``) a user may see in metrics: a guide only their own; None = all."""
    return guide_scope(ctx, user, backend(ctx) if ctx.settings.warehouse_url else None)


def restrict(expr: ir.Table, allowed: ir.Table | None, column: str = "customer_id") -> ir.Table:
    """Keep the rows of ``expr`` whose ``column`` is among ``allowed`` customer ids (no-op when None)."""
    if allowed is None:
        return expr
    return expr.semi_join(allowed, expr[column] == allowed.customer_id)


def parse_day(value: str | date | None, field: str, default: date | None = None) -> date:
    """A date from ISO text (YYYY-MM-DD) with an error naming the field and the format."""
    if value is None or value == "":
        if default is None:
            raise SiyuError(f"{field} is required; send a date such as 2026-10-31", field)
        return default
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SiyuError(f"{field} {value!r} is not a date; send YYYY-MM-DD, e.g. 2026-10-31", field) from None


def data_end(ctx: Context, brand_id: str) -> date:
    """The last brand-local day with orders, relations or events (the default 'as of' date for reports on past data)."""
    t = tables(ctx, brand_id)
    candidates = [
        fetch_scalar(ctx, t.orders.ordered_at.max()),
        fetch_scalar(ctx, t.relations.added_at.max()),
        fetch_scalar(ctx, t.events.timestamp.max()),
    ]
    found = [c for c in candidates if c is not None and str(c) != "NaT"]
    if not found:
        return brand_today()
    last = max(found)
    return local_day(last) if isinstance(last, datetime) else last
