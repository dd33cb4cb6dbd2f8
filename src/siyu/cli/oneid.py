"""`siyu oneid rebuild|resolve|conflicts|split|show`: identity resolution (OneID) from the terminal."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import console, open_context
from siyu.services import oneid as service
from siyu.services.brands import get_brand
from siyu.services.errors import NotFound

app = typer.Typer(help="OneID: resolve identifiers into customers (身份识别 / 合并 / 拆分).", no_args_is_help=True)


def _s(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ", timespec="seconds"))
    return str(value)


def _stats(stats: service.ResolveStats) -> None:
    console.print(
        f"[bold]{stats.mode}[/bold] {stats.brand_id}: {stats.observations} observations, "
        f"{stats.identifiers} identifiers, {stats.customers} customers, {stats.merges} merges, "
        f"{stats.conflicts} conflicts, {stats.shared} shared identifiers — {stats.elapsed_ms:.0f} ms"
    )


@app.command()
def rebuild(brand: str) -> None:
    """Recompute every customer of BRAND from all observations (全量重算)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        _stats(service.rebuild(ctx, brand, progress=lambda msg: console.print(f"[dim]{msg}[/dim]")))


@app.command()
def resolve(brand: str) -> None:
    """Resolve the observations recorded since the last run (增量识别)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        _stats(service.resolve_pending(ctx, brand))


@app.command()
def conflicts(brand: str, all_: bool = typer.Option(False, "--all", help="include resolved conflicts")) -> None:
    """List the conflicts OneID refused to merge (冲突)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        rows = service.list_conflicts(ctx, brand, include_resolved=all_)
        console.print(f"[bold]OneID conflicts 冲突 — {brand}[/bold]: {len(rows)}")
        for r in rows:
            other = f" ~ {r['other_type']}:{r['other_value']}" if r["other_type"] else ""
            source = f" from {r['source_kind']} {r['source_ref']}" if r["source_kind"] else ""
            who = f" customers {_s(r['customer_id'])} / {_s(r['other_customer_id'])}" if r["customer_id"] else ""
            console.print(
                f"{_s(r['detected_at'])}  {r['reason']}  {r['id_type']}:{r['id_value']}{other}{who}{source}",
                soft_wrap=True,
                markup=False,
            )


@app.command()
def split(
    brand: str,
    customer_id: str,
    identifier: list[str] = typer.Option(..., "--identifier", "-i", help="type:value to split off (repeatable)"),
    reason: str = typer.Option(..., "--reason", "-r", help="why the merge was wrong (kept in the audit trail)"),
) -> None:
    """Split identifiers off CUSTOMER_ID into a new customer (拆分错误合并)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        idents = [service.parse_identifier(text) for text in identifier]
        new_id = service.split(ctx, brand, customer_id, idents, reason, actor="cli")
        console.print(f"split {len(idents)} identifier(s) off {customer_id} into new customer [bold]{new_id}[/bold]")


@app.command()
def show(brand: str, identifier: str) -> None:
    """Show the customer an identifier (type:value) belongs to, its identifiers and merge history."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        ident = service.parse_identifier(identifier)
        cid = service.customer_of(ctx, brand, ident)
        if cid is None:
            raise NotFound(f"{ident.type}:{ident.value} is not resolved to a customer in {brand} (try `oneid resolve`)")
        console.print(f"{ident.type}:{ident.value} → customer [bold]{cid}[/bold]")
        table = Table(title="identifiers 身份标识", title_justify="left")
        for col in ("type", "value", "first seen", "last seen"):
            table.add_column(col)
        for r in service.identifiers_of(ctx, brand, cid):
            table.add_row(r["type"], r["value"], _s(r["first_seen_at"]), _s(r["last_seen_at"]))
        console.print(table)
        history = service.merge_history(ctx, brand, cid)
        if history:
            mt = Table(title="merge history 合并记录", title_justify="left")
            for col in ("merged", "survivor", "absorbed", "rule", "evidence", "undone"):
                mt.add_column(col)
            for h in history:
                evidence = (
                    f"{h['id_type'] or ''}:{h['id_value'] or ''} ~ {h['other_type'] or ''}:{h['other_value'] or ''}"
                )
                evidence += f" ({h['source_kind'] or ''} {h['source_ref'] or ''})"
                mt.add_row(
                    _s(h["merged_at"]),
                    h["customer_id"],
                    h["absorbed_customer_id"],
                    h["rule"],
                    evidence,
                    _s(h["undone_at"]),
                )
            console.print(mt)
