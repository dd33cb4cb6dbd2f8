"""`siyu warehouse`: snapshots of the embedded DuckDB warehouse for analytics on another engine (docs/warehouse.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from siyu.cli.common import console, open_context
from siyu.services import warehouse_export

app = typer.Typer(help="Warehouse snapshots for Spark and other engines (数仓导出).", no_args_is_help=True)


@app.command("export")
def export(
    to: Path | None = typer.Option(
        None, "--to", help="folder for the Parquet files (default <data dir>/warehouse-export)"
    ),
) -> None:
    """Write the tables analytics read to Parquet, one folder per table (read by SIYU_WAREHOUSE=pyspark://…)."""
    with open_context() as ctx:
        counts = warehouse_export.export_warehouse(ctx, to)
        where = to or warehouse_export.export_dir(ctx)
    table = Table("table", "rows")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"exported {len(counts)} tables to {where}")
