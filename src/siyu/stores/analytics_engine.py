"""The Ibis backend analytics run on: the embedded DuckDB warehouse, or another engine named by ``SIYU_WAREHOUSE``.

Writes (ingestion, imports, OneID) always go to the DuckDB warehouse (``siyu.stores.warehouse``); analytics read
the same table names on whichever engine ``SIYU_WAREHOUSE`` names:

- ``""`` — the embedded DuckDB warehouse (the default);
- ``pyspark://local[N]`` (or ``pyspark://spark://host:7077``) — a Spark session through Ibis; each warehouse table
  is read from the Parquet snapshot ``siyu warehouse export`` wrote (``<data_dir>/warehouse-export/<table>``) and
  registered as a temporary view of the same name. Spark settings follow as a query string,
  ``pyspark://local[2]?spark.driver.memory=8g&spark.sql.shuffle.partitions=8``; results come back as Arrow
  (``DataFrame.toArrow``), not through pandas;
- anything else — ``ibis.connect(url)`` (``trino://…``, ``clickhouse://…``, ``bigquery://…``, ``postgres://…``),
  an engine that already holds tables of the warehouse's names and columns (loaded by the engine's own pipeline).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import MethodType
from typing import Any
from urllib.parse import parse_qsl

import ibis
import pyarrow.parquet as pq

from siyu.analytics.base import TABLE_NAMES
from siyu.stores.warehouse import Warehouse

# the tables analytics read: the brand tables plus the ones segment and CLV reports look up
EXPORT_TABLES: tuple[str, ...] = (*TABLE_NAMES, "segment_members", "clv_predictions")
EXPORT_DIR = "warehouse-export"
SPARK_SCHEME = "pyspark://"


def export_parquet(warehouse: Warehouse, directory: Path, tables: tuple[str, ...] = EXPORT_TABLES) -> dict[str, int]:
    """Write each table of the DuckDB warehouse to ``directory/<table>/part-0.parquet``; returns rows per table.

    JSON columns become strings, DECIMAL stays DECIMAL, TIMESTAMP stays a timestamp without time zone.
    A table is replaced as a whole (written beside, then renamed), so a reader sees the old or the new snapshot.
    """
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in tables:
        data = warehouse.cursor().execute(f'SELECT * FROM "{name}"').to_arrow_table()
        target = directory / name
        staging = directory / f".{name}.new"
        staging.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, staging / "part-0.parquet")
        if target.exists():
            old = directory / f".{name}.old"
            target.rename(old)
            staging.rename(target)
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        else:
            staging.rename(target)
        counts[name] = data.num_rows
    return counts


def spark_master_and_conf(spec: str) -> tuple[str, dict[str, str]]:
    """Split what follows ``pyspark://`` into the master and the Spark settings of its query string.

    ``local[2]?spark.driver.memory=8g`` → ``("local[2]", {"spark.driver.memory": "8g"})``; an empty master is
    ``local[*]``. Every setting must be a ``spark.*`` key with a value."""
    master, _, query = spec.partition("?")
    conf: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if not key.startswith("spark.") or not value:
            raise ValueError(
                f"SIYU_WAREHOUSE: {key!r}={value!r} is not a Spark setting; write "
                "pyspark://local[2]?spark.driver.memory=8g (spark.* keys, each with a value)"
            )
        conf[key] = value
    return master or "local[*]", conf


def spark_session(master: str, conf: dict[str, str] | None = None) -> Any:
    """A Spark session for ``master`` (e.g. ``local[2]``) with the UI off, bound to the loopback address, Arrow
    transfers on; ``conf`` adds or overrides settings (``spark.driver.memory`` takes effect only when this call
    starts the JVM, i.e. in a fresh process)."""
    from pyspark.sql import SparkSession

    # Spark's Python workers (Ibis's JSON-unwrapping UDFs) run this interpreter, which has pandas and pyarrow
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **(conf or {}),
    }
    builder = SparkSession.builder.master(master).appName("siyu")
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def register_parquet(backend: Any, directory: Path, tables: tuple[str, ...] = EXPORT_TABLES) -> list[str]:
    """Register each exported table under ``directory`` as a Spark temporary view of its name; returns the names."""
    session = backend._session
    done = []
    for name in tables:
        path = directory / name
        if path.exists():
            session.read.parquet(str(path)).createOrReplaceTempView(name)
            done.append(name)
    return done


def _spark_json_get_item(self: Any, op: Any, *, arg: Any, index: Any) -> Any:
    """``json[key]`` on Spark as JSON text (``"x"`` for a string, ``12.5``, ``null``), like DuckDB's ``->``.

    Ibis compiles it to ``get_json_object``, which returns strings unquoted, so ``.str``/``.int``/``.float``
    (Ibis's JSON-unwrapping UDFs, which parse the text) failed on every string value; Spark 4's VARIANT
    functions return the JSON text of the value instead."""
    fmt = "$[%s]" if op.index.dtype.is_integer() else "$.%s"
    path = self.f.format_string(fmt, index)
    return self.f.to_json(self.f.try_variant_get(self.f.try_parse_json(arg), path))


def _fix_spark_json() -> None:
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    PySparkCompiler.visit_JSONGetItem = _spark_json_get_item  # type: ignore[method-assign]


def _spark_to_pyarrow(self: Any, expr: Any, /, *, params: Any = None, limit: Any = None, **kwargs: Any) -> Any:
    """Ibis's ``to_pyarrow`` on Spark, collected as Arrow batches (``DataFrame.toArrow``) instead of through a
    pandas frame (Ibis's own path: Spark → pandas → Arrow), then typed to the expression's schema."""
    from ibis.formats.pyarrow import PyArrowData

    self._run_pre_execute_hooks(expr)
    table_expr = expr.as_table()
    sql = self.compile(table_expr, params=params, limit=limit, **kwargs)
    table = PyArrowData.convert_table(self._session.sql(sql).toArrow(), table_expr.schema())
    return expr.__pyarrow_result__(table)


def connect(url: str, data_dir: Path) -> Any:
    """The Ibis backend for ``url`` (see the module docstring); Spark views come from ``data_dir``'s export."""
    if url.startswith(SPARK_SCHEME):
        _fix_spark_json()
        master, conf = spark_master_and_conf(url[len(SPARK_SCHEME) :])
        backend = ibis.pyspark.connect(spark_session(master, conf))
        backend.to_pyarrow = MethodType(_spark_to_pyarrow, backend)
        register_parquet(backend, data_dir / EXPORT_DIR)
        return backend
    return ibis.connect(url)
