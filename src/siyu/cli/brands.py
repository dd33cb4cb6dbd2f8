"""`siyu brands`: create and list brands (workspaces)."""

from __future__ import annotations

import typer
from rich.table import Table

from siyu.cli.common import console, open_context
from siyu.services import brands

app = typer.Typer(
    help="Brands (品牌 / workspaces): each holds its own customers, staff and keys.", no_args_is_help=True
)


@app.command()
def create(brand_id: str, name: str) -> None:
    """Create a brand: BRAND_ID is 2-63 lowercase letters, digits, '-' or '_'; NAME is shown in the console."""
    with open_context() as ctx:
        row = brands.create_brand(ctx, brand_id, name)
        console.print(f"created brand [bold]{row.id}[/bold] ({row.name})")


@app.command("list")
def list_() -> None:
    """List brands."""
    with open_context() as ctx:
        table = Table("id", "name", "created")
        for row in brands.list_brands(ctx):
            table.add_row(row.id, row.name, row.created_at.isoformat(sep=" ", timespec="minutes"))
        console.print(table)
