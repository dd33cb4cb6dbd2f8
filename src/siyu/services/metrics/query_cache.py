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

- ``to_arrow_many(backend, exprs)``: several expressions at once (a report's queries, the RFM + AIPL + lifecycle
  of a customer). On a brand of Online Retail's size a query is almost all fixed cost — planning the pipelines,
  scheduling their tasks, converting the result — which DuckDB does on one thread, so the queries run side by
  side on their own connections ("lanes": the backend's and up to ``LANES - 1`` cursors of it, each with its own
  prepared statements; DuckDB releases the GIL while it executes). When a table they read holds more than
  ``SIDE_BY_SIDE_MAX_ROWS`` rows they run one after another: each query then already uses every core, and side
  by side their hash tables would add up (10 M orders: 2.0–2.3 GB as one query against 1.3–1.4 GB as three).
  The lanes are separate connections, so a batch reads committed data only (like any other thread).

The cache lives on the backend object: a new backend (another thread, a reopened warehouse) starts empty, and a
backend whose connection was swapped drops it. Lanes are cursors of the backend's connection and close with it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
# a batch of queries runs side by side on up to LANES connections while every table they read is this small
LANES = 3
SIDE_BY_SIDE_MAX_ROWS = 2_000_000
TABLE_SIZES_TTL_S = 30.0  # how long the tables' row counts (from DuckDB's catalog) are taken as current
# ``disabled_optimizers`` is a global DuckDB setting: one statement is prepared at a time, process-wide
_PREPARE_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
# nodes that need Ibis's pre-execution hooks (registering in-memory tables and UDFs, binding parameters)
_NEEDS_HOOKS = (ops.InMemoryTable, ops.ScalarUDF, ops.AggUDF, ops.ScalarParameter)


class _Lane:
    """One DuckDB connection and the statements prepared on it (a connection runs one statement at a time)."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.prepared: dict[str, str] = {}  # SQL text -> prepared statement name on ``con``
        self.lock = threading.Lock()


class QueryCache:
    """One backend's brand tables and compiled SQL (an LRU of ``MAX_QUERIES`` expressions)."""

    def __init__(self, con: Any, max_queries: int = MAX_QUERIES) -> None:
        self.con = con
        self.max_queries = max_queries
        self.tables: dict[str, Tables] = {}
        self.sql: OrderedDict[ops.Node, str | None] = OrderedDict()
        self.reads: dict[str, frozenset[str]] = {}  # SQL text -> the tables it reads
        self.lanes: list[_Lane] = [_Lane(con)]
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._names = 0
        self._sizes: tuple[float, dict[str, int]] = (0.0, {})

    @property
    def prepared(self) -> dict[str, str]:
        """The statements prepared on the backend's own connection (SQL text -> name)."""
        return self.lanes[0].prepared

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
            if sql is not None:
                self.reads[sql] = frozenset(t.name for t in node.find(ops.DatabaseTable))
            while len(self.sql) > self.max_queries:
                _, old = self.sql.popitem(last=False)
                if old is not None and old not in self.sql.values():
                    self.reads.pop(old, None)
                    self._deallocate(old)
        return sql

    def execute(self, sql: str) -> pa.Table:
        """Run cached SQL on the backend's DuckDB connection as a prepared statement (prepared on first use)."""
        return self._run(self.lanes[0], sql)

    def execute_many(self, sqls: Sequence[str]) -> list[pa.Table]:
        """Run several cached statements: side by side on the lanes while the tables they read are small
        (``SIDE_BY_SIDE_MAX_ROWS``), else one after another on the backend's connection. Results in order."""
        if len(sqls) < 2 or not self._small(sqls):
            return [self.execute(sql) for sql in sqls]
        lanes = self._lanes(min(len(sqls), LANES))
        work: list[list[int]] = [list(range(i, len(sqls), len(lanes))) for i in range(len(lanes))]
        out: list[pa.Table | None] = [None] * len(sqls)

        def run(lane: _Lane, idx: list[int]) -> None:
            for i in idx:
                out[i] = self._run(lane, sqls[i])

        futures = [_pool().submit(run, lane, idx) for lane, idx in zip(lanes[1:], work[1:], strict=True)]
        try:
            run(lanes[0], work[0])
        finally:
            for f in futures:
                f.result()
        return [t for t in out if t is not None]

    def _run(self, lane: _Lane, sql: str) -> pa.Table:
        with lane.lock:
            name = lane.prepared.get(sql)
            if name is None:
                name = self._prepare(lane, sql)
            try:
                return lane.con.execute(f"EXECUTE {name}").to_arrow_table()
            except duckdb.Error:  # the catalog changed under the statement: prepare it afresh, once
                self._deallocate_on(lane, sql)
                return lane.con.execute(f"EXECUTE {self._prepare(lane, sql)}").to_arrow_table()

    def _lanes(self, n: int) -> list[_Lane]:
        with self.lock:
            while len(self.lanes) < n:
                self.lanes.append(_Lane(self.con.cursor()))
            return self.lanes[:n]

    def _small(self, sqls: Sequence[str]) -> bool:
        """Whether every table the statements read holds at most ``SIDE_BY_SIDE_MAX_ROWS`` rows (DuckDB's
        catalog estimate, re-read after ``TABLE_SIZES_TTL_S``)."""
        at, sizes = self._sizes
        now = time.monotonic()
        if now - at > TABLE_SIZES_TTL_S:
            with self.lanes[0].lock:
                rows = self.con.execute("SELECT table_name, estimated_size FROM duckdb_tables()").fetchall()
            sizes = {}
            for name, size in rows:
                sizes[name] = max(sizes.get(name, 0), int(size or 0))
            self._sizes = (now, sizes)
        names = set().union(*(self.reads.get(sql, frozenset()) for sql in sqls))
        return all(sizes.get(n, 0) <= SIDE_BY_SIDE_MAX_ROWS for n in names)

    def _prepare(self, lane: _Lane, sql: str) -> str:
        with self.lock:
            self._names += 1
            name = f"siyu_q{self._names}"
        with _PREPARE_LOCK:
            before = lane.con.execute("SELECT current_setting('disabled_optimizers')").fetchone()
            lane.con.execute(f"SET disabled_optimizers = '{DATA_DEPENDENT_OPTIMIZERS}'")
            try:
                lane.con.execute(f"PREPARE {name} AS {sql}")
            finally:
                lane.con.execute(f"SET disabled_optimizers = '{before[0] if before else ''}'")
        lane.prepared[sql] = name
        return name

    def _deallocate(self, sql: str) -> None:
        for lane in list(self.lanes):
            with lane.lock:
                self._deallocate_on(lane, sql)

    @staticmethod
    def _deallocate_on(lane: _Lane, sql: str) -> None:
        name = lane.prepared.pop(sql, None)
        if name is not None:
            with contextlib.suppress(duckdb.Error):  # already gone with its connection
                lane.con.execute(f"DEALLOCATE {name}")


def _pool() -> ThreadPoolExecutor:
    """The worker threads that run the other lanes of a batch (shared by every backend)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2 * (LANES - 1), thread_name_prefix="siyu-lane")
        return _POOL


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


def to_arrow_many(backend: Any, exprs: Sequence[ir.Expr]) -> list[Any]:
    """``to_arrow`` of several expressions, run side by side where that is faster (``QueryCache.execute_many``);
    results in the order given."""
    cache = cache_of(backend)
    sqls = [cache.compiled(backend, e) for e in exprs]
    batch = [(i, sql) for i, sql in enumerate(sqls) if sql is not None]
    out: list[Any] = [None] * len(exprs)
    if batch:
        from ibis.backends.duckdb.converter import DuckDBPyArrowData

        tabs = cache.execute_many([sql for _, sql in batch])
        for (i, _), tab in zip(batch, tabs, strict=True):
            out[i] = exprs[i].__pyarrow_result__(tab, data_mapper=DuckDBPyArrowData)
    for i, sql in enumerate(sqls):
        if sql is None:
            out[i] = exprs[i].to_pyarrow()
    return out


def to_pandas(backend: Any, expr: ir.Table) -> pd.DataFrame:
    """``to_arrow`` as a pandas DataFrame (the ``expr.to_pyarrow().to_pandas()`` of the reports)."""
    frame: pd.DataFrame = to_arrow(backend, expr).to_pandas()
    return frame


def scalar(backend: Any, expr: ir.Scalar) -> Any:
    """A scalar expression's value as a Python object (None for NULL)."""
    return to_arrow(backend, expr).as_py()
