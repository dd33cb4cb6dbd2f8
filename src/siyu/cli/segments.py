"""`siyu segments ...`: customer segments (客户分群) from the command line (Rich tables, --json for scripts).

A definition is given as JSON text (``--definition '{"kind": ...}'``) or a file (``--file seg.json``);
``docs/segments.md`` documents the language.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.display import display_value
from siyu.services import audit
from siyu.services import lookalike as lookalike_service
from siyu.services import segments as service
from siyu.services.errors import SiyuError

app = typer.Typer(help="Customer segments: define, preview, refresh, export, lookalike. 客户分群", no_args_is_help=True)

AS_GUIDE = typer.Option(None, help="act as this guide (导购) id: only their customers")
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")


def _definition(definition: str | None, file: Path | None) -> Any:
    if (definition is None) == (file is None):
        raise SiyuError(
            "give the definition as --definition '<json>' or --file <path.json> (one of them)", "definition"
        )
    text = file.read_text(encoding="utf-8") if file is not None else str(definition)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SiyuError(f"the definition is not valid JSON: {exc}", "definition") from None


def _print_json(data: Any) -> None:
    def default(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date | datetime) else str(v)

    console.print_json(json.dumps(data, ensure_ascii=False, default=default))


def _table(title: str, columns: list[str], rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(display_value(r.get(c)) for c in columns))
    return table


@app.command("list")
def list_cmd(brand: str, as_guide: str | None = AS_GUIDE, as_json: bool = JSON_OUT) -> None:
    """List segments with their member counts."""
    with open_context() as ctx:
        items = [s.as_dict() for s in service.list_segments(ctx, cli_user(ctx, brand, as_guide))]
        if as_json:
            _print_json(items)
            return
        console.print(_table("segments 客户分群", ["id", "name", "version", "member_count", "refreshed_at"], items))


@app.command()
def show(brand: str, segment_id: str, as_json: bool = JSON_OUT) -> None:
    """Show a segment, its definition and versions."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        info = service.get_segment(ctx, user, segment_id).as_dict()
        info["versions"] = service.versions(ctx, user, segment_id)
        if as_json:
            _print_json(info)
            return
        console.print(f"[bold]{info['name']}[/bold] {info['id']} v{info['version']} — {info['member_count']} members")
        _print_json(info["definition"])
        console.print(_table("versions 版本", ["version", "created_by", "created_at"], info["versions"]))


@app.command()
def preview(
    brand: str,
    definition: str | None = typer.Option(None, help="the definition as JSON text"),
    file: Path | None = typer.Option(None, help="a JSON file holding the definition"),
    as_of: str | None = typer.Option(None, help="YYYY-MM-DD (default: the day after the last data)"),
    sample: int = 10,
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """Count the customers a definition matches, with a sample (nothing is saved)."""
    with open_context() as ctx:
        result = service.preview(ctx, cli_user(ctx, brand, as_guide), _definition(definition, file), as_of, sample)
        if as_json:
            _print_json(result)
            return
        console.print(
            f"[bold]{result['count']}[/bold] customers 位客户 (as of {result['as_of']}, {result['elapsed_ms']} ms)"
        )
        console.print(_table("sample 样例", ["customer_id", "name", "phone", "city"], result["sample"]))


@app.command()
def create(
    brand: str,
    name: str,
    definition: str | None = typer.Option(None, help="the definition as JSON text"),
    file: Path | None = typer.Option(None, help="a JSON file holding the definition"),
    description: str = "",
    as_json: bool = JSON_OUT,
) -> None:
    """Save a segment and materialise its members."""
    with open_context() as ctx:
        info = service.create_segment(ctx, cli_user(ctx, brand), name, _definition(definition, file), description)
        if as_json:
            _print_json(info.as_dict())
            return
        console.print(f"created {info.id} [bold]{info.name}[/bold]: {info.member_count} members")


@app.command()
def update(
    brand: str,
    segment_id: str,
    name: str | None = None,
    definition: str | None = typer.Option(None, help="a new definition as JSON text (a new version)"),
    file: Path | None = typer.Option(None, help="a JSON file holding the new definition"),
    description: str | None = None,
) -> None:
    """Rename or redefine a segment (a new definition becomes a new version)."""
    with open_context() as ctx:
        body = _definition(definition, file) if (definition is not None or file is not None) else None
        info = service.update_segment(ctx, cli_user(ctx, brand), segment_id, name, body, description)
        console.print(f"{info.id} [bold]{info.name}[/bold] v{info.version}: {info.member_count} members")


@app.command()
def delete(brand: str, segment_id: str) -> None:
    """Archive a segment (history stays)."""
    with open_context() as ctx:
        service.delete_segment(ctx, cli_user(ctx, brand), segment_id)
        console.print(f"archived {segment_id}")


@app.command()
def refresh(
    brand: str,
    segment_id: str | None = typer.Argument(None, help="one segment (default: all of the brand)"),
    as_json: bool = JSON_OUT,
) -> None:
    """Recompute members now: entries and exits are recorded (the schedule does this every hour)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        items = [service.refresh_segment(ctx, brand, segment_id)] if segment_id else service.refresh_brand(ctx, brand)
        if as_json:
            _print_json(items)
            return
        console.print(_table("refresh 刷新", ["segment_id", "members", "entered", "exited", "as_of", "error"], items))


@app.command()
def members(
    brand: str,
    segment_id: str,
    page: int = 1,
    page_size: int = 20,
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """Current members of a segment."""
    with open_context() as ctx:
        result = service.members(ctx, cli_user(ctx, brand, as_guide), segment_id, page, page_size)
        if as_json:
            _print_json(result)
            return
        console.print(
            _table(f"{result['total']} members 位成员 (page {page})", list(service.MEMBER_COLUMNS), result["items"])
        )


@app.command()
def export(
    brand: str,
    segment_id: str,
    output: Path = typer.Option(..., "--output", "-o", help="file to write; the format follows --format"),
    format: str = typer.Option("csv", help="csv, xlsx or parquet"),
    as_guide: str | None = AS_GUIDE,
) -> None:
    """Export the current members as CSV, XLSX or Parquet."""
    with open_context() as ctx:
        user = cli_user(ctx, brand, as_guide)
        data, _media, _name = service.export_members(ctx, user, segment_id, format)
        detail = {"format": format, "pii": "hashed", "bytes": len(data), "via": "cli", "as_guide": as_guide}
        audit.record(ctx, brand, user, "export", f"segment:{segment_id}", detail)
        output.write_bytes(data)
        console.print(f"wrote {output} ({len(data)} bytes)")


@app.command()
def lookalike(
    brand: str,
    segment_id: str,
    top: int = 20,
    holdout: float = 0.2,
    seed: int = 7,
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """Customers most like the segment, and the method's lift on a held-out part of the seed."""
    with open_context() as ctx:
        r = lookalike_service.lookalike(ctx, cli_user(ctx, brand, as_guide), segment_id, top, holdout, seed)
        if as_json:
            _print_json(r.as_dict())
            return
        console.print(
            f"seed {r.seed_size}, scored {r.scored}; held-out lift in the top decile: [bold]{r.lift}[/bold] "
            f"({r.found_in_top_decile} of {r.hidden} hidden members in the top {r.top_decile_size})"
        )
        console.print(_table("features 特征权重", ["feature", "weight"], r.features[:10]))
        console.print(_table("lookalike 相似客户", ["customer_id", "score", "name", "city"], r.customers))
