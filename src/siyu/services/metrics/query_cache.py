"""Executing analytics with a per-backend cache of brand tables and compiled queries (never of data).

Every report runs ``siyu.analytics`` expressions whose SQL depends on the definition and its parameters only.
Building an expression (``@memoized`` in ``siyu.analytics.memo``) and compiling it to SQL each cost more than
DuckDB takes to run it on a brand like Online Retail, so both are done once:

- ``brand_tables(backend, brand_id)``: the brand's ``Tables`` (with its expression memo), one per backend + brand;
- ``to_arrow(backend, expr)``: the SQL Ibis compiles for ``expr`` on this backend is kept in a bounded LRU keyed
  on the expression (its parameters are part of it) and executed again on every call, so the current data is
  read each time. Only DuckDB runs cached SQL; any other backend, and expressions that need Ibis's pre-execution
  hooks (in-memory tables, UDFs, query parameters), go through ``expr.to_pyarrow()``.
- On DuckDB the cached SQL is also a prepared statement (``PREPARE`` once, ``EXECUTE`` each call): DuckDB then
  skips parsing, binding and optimising, which on a brand of Online Retail's size is half of a query's time.
  A prepared plan outlives the data it was planned on, so it is planned without the optimisers that rewrite a
  query from the data's current statistics (``DATA_DEPENDENT_OPTIMIZERS``: with them, a statement prepared while
  ``events`` was empty, or before a later order date existed, keeps answering as if it still were — tested).
  A statement the catalog no longer fits (a table rebuilt) is prepared again once; an evicted one is deallocated.

The cache lives on the backend object: a new backend (another thread, a reopened warehouse) starts empty, and a
backend whose connection was swapped drops it.
"""

from __future__ import annotations

import contextlib
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
# DuckDB optimisers whose rewrites depend on the data's statistics at planning time (min/max, emptiness,
# compressing intermediate columns to the current value range); off while a statement is prepared
DATA_DEPENDENT_OPTIMIZERS = "statistics_propagation,compressed_materialization"
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
        self.prepared: dict[str, str] = {}  # SQL text -> prepared statement name on ``con``
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._names = 0

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
                _, old = self.sql.popitem(last=False)
                if old is not None and old not in self.sql.values():
                    self._deallocate(old)
        return sql

    def execute(self, sql: str) -> pa.Table:
        """Run cached SQL on the DuckDB connection as a prepared statement (prepared on first use)."""
        name = self.prepared.get(sql)
        if name is None:
            name = self._prepare(sql)
        try:
            return self.con.execute(f"EXECUTE {name}").to_arrow_table()
        except duckdb.Error:  # the catalog changed under the statement: prepare it afresh, once
            self._deallocate(sql)
            return self.con.execute(f"EXECUTE {self._prepare(sql)}").to_arrow_table()

    def _prepare(self, sql: str) -> str:
        with self.lock:
            self._names += 1
            name = f"siyu_q{self._names}"
        before = self.con.execute("SELECT current_setting('disabled_optimizers')").fetchone()
        self.con.execute(f"SET disabled_optimizers = '{DATA_DEPENDENT_OPTIMIZERS}'")
        try:
            self.con.execute(f"PREPARE {name} AS {sql}")
        finally:
            self.con.execute(f"SET disabled_optimizers = '{before[0] if before else ''}'")
        self.prepared[sql] = name
        return name

    def _deallocate(self, sql: str) -> None:
        name = self.prepared.pop(sql, None)
        if name is not None:
            with contextlib.suppress(duckdb.Error):  # already gone with its connection
                self.con.execute(f"DEALLOCATE {name}")


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

    table = cache_of(backend).execute(sql)
    return expr.__pyarrow_result__(table, data_mapper=DuckDBPyArrowData)


def to_pandas(backend: Any, expr: ir.Table) -> pd.DataFrame:
    """``to_arrow`` as a pandas DataFrame (the ``expr.to_pyarrow().to_pandas()`` of the reports)."""
    frame: pd.DataFrame = to_arrow(backend, expr).to_pandas()
    return frame


def scalar(backend: Any, expr: ir.Scalar) -> Any:
    """A scalar expression's value as a Python object (None for NULL)."""
    return to_arrow(backend, expr).as_py()
