"""Snapshots of the DuckDB warehouse for analytics on another engine (``SIYU_WAREHOUSE=pyspark://…``).

Ingestion, imports and OneID write the embedded DuckDB warehouse; ``export_warehouse`` writes the tables analytics
read to Parquet (one folder per table), which a Spark session registers as views of the same names. In a process
whose analytics already run on Spark, the views are registered again so the next report reads the new snapshot.
"""

from __future__ import annotations

from pathlib import Path

from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.stores import analytics_engine


def export_dir(ctx: Context) -> Path:
    """Where snapshots go by default (and where ``pyspark://`` reads them): ``<data_dir>/warehouse-export``."""
    return ctx.settings.data_dir / analytics_engine.EXPORT_DIR


def export_warehouse(ctx: Context, directory: Path | None = None) -> dict[str, int]:
    """Write every table analytics read to Parquet under ``directory`` (default ``export_dir``); rows per table."""
    target = directory or export_dir(ctx)
    if target.exists() and not target.is_dir():
        raise SiyuError(f"--to {target} is a file; give a folder (it is created when missing)", "to")
    counts = analytics_engine.export_parquet(ctx.warehouse, target)
    engine = ctx.extras.get("analytics_engine")
    if engine is not None and engine.backend.name == "pyspark" and target == export_dir(ctx):
        analytics_engine.register_parquet(engine.backend, target)
    return counts
