"""Executing analytics with a per-backend cache of brand tables and compiled queries (never of data).

Every report runs ``siyu.analytics`` expressions whose SQL depends on the definition and its parameters only.
Building an expression (``@memoized`` in ``siyu.analytics.memo``) and compiling it to SQL each cost more than
DuckDB takes to run it on a brand like Online Retail, so both are done once:

- ``brand_tables(backend, brand_id)``: the brand's ``Tables`` (with its expression memo), one per backend + brand;
- ``to_arrow(backend, expr)``: the SQL Ibis compiles for ``expr`` on this backend is kept in a bounded LRU keyed
  on the expression (its parameters are part of it) and executed again on every call, so the current data is
  read each time. Only DuckDB runs cached SQL; any other backend, and expressions that need Ibis's pre-execution
  hooks (in-memory tables, UDFs, query parameters), go through ``expr.to_pyarrow()``.

The cache lives on the backend object: a new backend (another thread, a reopened warehouse) starts empty, and a
backend whose connection was swapped drops it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import duckdb
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from siyu.analytics.base import Tables

MAX_QUERIES = 128
_ATTR = "_siyu_query_cache"
# nodes that need Ibis's pre-execution hooks (registering in-memory tables and UDFs, binding parameters)
_NEEDS_HOOKS = (ops.InMemoryTable, ops.ScalarUDF, ops.AggUDF, ops.ScalarParameter)


class QueryCache:
    """One backend's brand tables and compiled SQL (an LRU of ``MAX_QUERIES`` expressions)."""

    def __init__(self, con: Any, max_queries: int = MAX_QUERIES) -> None:
        self.con = con
        self.max_queries = max_queries
        self.tables: dict[str, Tables] = {}
        self.sql: OrderedDict[ops.Node, str | None] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def compiled(self, backend: Any, expr: ir.Expr) -> str | None:
        """The SQL to run for ``expr``, compiled on first use; None = execute through Ibis."""
        node = expr.op()
        with self.lock:
            if node in self.sql:
                self.sql.move_to_end(node)
                self.hits += 1
                return self.sql[node]
            self.misses += 1
        sql = _compile(backend, expr)
        with self.lock:
            self.sql[node] = sql
            while len(self.sql) > self.max_queries:
                self.sql.popitem(last=False)
        return sql


def _runs_cached_sql(backend: Any) -> bool:
    return getattr(backend, "name", None) == "duckdb" and isinstance(
        getattr(backend, "con", None), duckdb.DuckDBPyConnection
    )


def _built_on(backend: Any, expr: ir.Expr) -> bool:
    try:
        return bool(expr._find_backend(use_default=False) is backend)
    except Exception:  # no table in it, or tables of several backends: let Ibis decide
        return False


def _compile(backend: Any, expr: ir.Expr) -> str | None:
    if not _runs_cached_sql(backend) or not _built_on(backend, expr) or expr.op().find(_NEEDS_HOOKS):
        return None
    table = expr.as_table()
    if table.schema().geospatial:
        return None
    sql: str = backend.compile(table)
    return sql


def cache_of(backend: Any) -> QueryCache:
    """The backend's cache (created on first use, replaced when the backend's connection changed)."""
    cache: QueryCache | None = backend.__dict__.get(_ATTR)
    con = getattr(backend, "con", None)
    if cache is None or cache.con is not con:
        cache = QueryCache(con)
        setattr(backend, _ATTR, cache)
    return cache


def brand_tables(backend: Any, brand_id: str) -> Tables:
    """The brand's ``Tables`` on ``backend``, bound once (each table's schema lookup is a query)."""
    cache = cache_of(backend)
    with cache.lock:
        t = cache.tables.get(brand_id)
    if t is None:
        t = Tables.of(backend, brand_id)
        with cache.lock:
            t = cache.tables.setdefault(brand_id, t)
    return t


def to_arrow(backend: Any, expr: ir.Expr, use_cache: bool = True) -> Any:
    """Execute ``expr`` (built on ``backend``) like ``expr.to_pyarrow()``, reusing its compiled SQL.

    Tables come back as ``pa.Table``, columns as ``pa.Array``/``ChunkedArray``, scalars as ``pa.Scalar``, with the
    types Ibis gives them. ``use_cache=False`` is plain ``expr.to_pyarrow()`` (for comparisons).
    """
    if not use_cache:
        return expr.to_pyarrow()
    sql = cache_of(backend).compiled(backend, expr)
    if sql is None:
        return expr.to_pyarrow()
    from ibis.backends.duckdb.converter import DuckDBPyArrowData

    table: pa.Table = backend.con.execute(sql).to_arrow_table()
    return expr.__pyarrow_result__(table, data_mapper=DuckDBPyArrowData)


def to_pandas(backend: Any, expr: ir.Table) -> pd.DataFrame:
    """``to_arrow`` as a pandas DataFrame (the ``expr.to_pyarrow().to_pandas()`` of the reports)."""
    frame: pd.DataFrame = to_arrow(backend, expr).to_pandas()
    return frame


def scalar(backend: Any, expr: ir.Scalar) -> Any:
    """A scalar expression's value as a Python object (None for NULL)."""
    return to_arrow(backend, expr).as_py()
