"""`siyu import ...`: load customers, orders, guides, stores, channels, channel spend, WeCom contacts, UCI retail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.cli.common import console, err_console, open_context
from siyu.display import local_text
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.imports import ImportJobView, kind_spec, list_jobs, preview, run_import

app = typer.Typer(help="Import files (CSV utf-8/gbk, XLSX, Parquet) into a brand. 导入数据", no_args_is_help=True)

MapOption = typer.Option(
    None, "--map", "-m", help="field=column, overrides the guessed column (repeatable); field= un-maps it"
)


def parse_map(items: list[str] | None) -> dict[str, str | None] | None:
    """Turn ``["phone=手机", "city="]`` into ``{"phone": "手机", "city": None}``."""
    if not items:
        return None
    out: dict[str, str | None] = {}
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not field.strip():
            raise SiyuError(f"--map {item!r} must look like field=column", field="mapping")
        out[field.strip()] = column.strip() or None
    return out


def _summary(job: ImportJobView) -> None:
    table = Table(title=f"import {job.kind} · job {job.id}", show_header=True)
    table.add_column("status 状态")
    table.add_column("rows 行数", justify="right")
    table.add_column("imported 导入", justify="right")
    table.add_column("already present 已存在", justify="right")
    table.add_column("failed 失败", justify="right")
    color = "green" if job.status == "done" and not job.rows_failed else "yellow" if job.status == "done" else "red"
    table.add_row(
        f"[{color}]{job.status}[/{color}]",
        str(job.rows_total),
        str(job.rows_ok),
        str(job.rows_skipped),
        str(job.rows_failed),
    )
    console.print(table)
    if job.mapping:
        console.print("mapping 字段映射: " + ", ".join(f"{k}←{v}" for k, v in job.mapping.items()))
    if job.message:
        console.print(job.message)
    if job.error_report:
        console.print(f"[yellow]error report 错误报告:[/yellow] {job.error_report}")


@contextmanager
def _context() -> Iterator[Context]:
    """open_context, with a clear message when a running server holds the warehouse (one DuckDB writer)."""
    try:
        with open_context() as ctx:
            yield ctx
    except duckdb.IOException as exc:
        err_console.print(
            f"[red]error:[/red] the warehouse is in use by another process ({exc}).\n"
            "While `siyu serve` runs, import through the console or POST /api/imports; or stop the server first."
        )
        raise typer.Exit(2) from exc


def _run(kind: str, brand: str, file: Path, mapping: list[str] | None) -> None:
    with _context() as ctx:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"importing {kind}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            job = run_import(ctx, brand, kind, file, parse_map(mapping), progress=progress, created_by="cli")
        _summary(job)
        if job.status != "done":
            raise typer.Exit(1)


def _command(kind: str, help_text: str) -> None:
    def command(
        brand: str = typer.Argument(..., help="brand id"),
        file: Path = typer.Argument(..., help="CSV / XLSX / Parquet file"),
        map_: list[str] | None = MapOption,
    ) -> None:
        _run(kind, brand, file, map_)

    command.__doc__ = help_text
    app.command(name=kind.replace("_", "-"))(command)


for _kind, _help in (
    ("customers", "Customers (phone, member id, unionid ... + profile) → OneID observations. 客户"),
    ("orders", "Orders, one row per order or per order line (lines grouped by order id). 订单"),
    ("guides", "Guides (导购): id, name, store, WeCom userid."),
    ("stores", "Stores (门店): id, name, city."),
    ("channels", "Channels (渠道): id, name, kind."),
    ("channel_spend", "Channel spend (渠道消耗): channel, day, spend, exposures."),
    ("wecom_contacts", "WeCom contact export (企微客户): relations, identifiers, tags."),
):
    _command(_kind, _help)


@app.command("online-retail")
def online_retail(
    file: Path = typer.Argument(..., help="online_retail.csv.gz (UCI Online Retail)"),
    brand: str = typer.Option("retail", "--brand", "-b", help="brand id (created when missing)"),
) -> None:
    """The UCI Online Retail log as orders (cleaned: with CustomerID, no cancellations, qty and price > 0)."""
    from siyu.services.brands import ensure_brand

    with _context() as ctx:
        ensure_brand(ctx, brand, "Online Retail (UCI)")
    _run("online_retail", brand, file, None)


@app.command("preview")
def preview_cmd(kind: str = typer.Argument(..., help="import kind"), file: Path = typer.Argument(...)) -> None:
    """Show a file's headers, first rows and the guessed mapping. 预览"""
    try:
        pv = preview(file, kind)
    except SiyuError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    spec = kind_spec(kind)
    table = Table(title=f"{spec.name} ({spec.title}) · {pv['filename']}")
    table.add_column("field 字段")
    table.add_column("column 列")
    table.add_column("required 必填")
    for f in spec.fields:
        table.add_row(f.name, pv["mapping"].get(f.name) or "-", "yes" if f.required else "")
    console.print(table)
    rows = Table(*pv["headers"], title="first rows 前几行")
    for row in pv["rows"][:5]:
        rows.add_row(*[str(row.get(h) or "") for h in pv["headers"]])
    console.print(rows)


@app.command("jobs")
def jobs(brand: str = typer.Argument(..., help="brand id"), limit: int = 20) -> None:
    """List a brand's import jobs. 导入记录"""
    with _context() as ctx:
        table = Table("job", "kind", "status", "rows", "ok", "skipped", "failed", "file", "created")
        for j in list_jobs(ctx, brand, limit):
            table.add_row(
                j.id,
                j.kind,
                j.status,
                str(j.rows_total),
                str(j.rows_ok),
                str(j.rows_skipped),
                str(j.rows_failed),
                Path(j.filename).name,
                local_text(j.created_at) if j.created_at else "",
            )
        console.print(table)
