"""`siyu customers search|show`: customer search and the customer 360 in the terminal."""

from __future__ import annotations

from typing import Any

import typer
from rich.columns import Columns
from rich.panel import Panel
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.display import display_value
from siyu.services import customers as service

app = typer.Typer(help="Customers: search and the 360 view (客户 360).", no_args_is_help=True)


def _table(title: str, columns: list[str], rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(display_value(r.get(c)) for c in columns))
    if not rows:
        table.add_row(*(["—"] + [""] * (len(columns) - 1)))
    return table


@app.command()
def search(
    brand: str,
    query: str = typer.Argument("", help="phone, name, customer id, identifier value or tag name"),
    page: int = 1,
    page_size: int = 20,
    as_guide: str | None = typer.Option(None, help="only customers of this guide (导购) id"),
) -> None:
    """Search customers (客户搜索)."""
    with open_context() as ctx:
        result = service.search_customers(ctx, cli_user(ctx, brand, as_guide), query, page, page_size)
        rows = [c.__dict__ for c in result.items]
        pages = max(1, -(-result.total // page_size))
        console.print(
            _table(
                f"{result.total} customers 位客户 (page {page}/{pages})",
                ["customer_id", "name", "phone", "email", "city", "updated_at"],
                rows,
            )
        )


@app.command()
def show(
    brand: str,
    customer_id: str,
    events_page: int = 1,
    events_limit: int = 20,
    as_guide: str | None = typer.Option(None, help="check the view of this guide (导购) id"),
) -> None:
    """Show a customer's 360 view (客户 360): profile, identities, relations, tags, orders, events, merges."""
    with open_context() as ctx:
        view = service.get_customer_360(ctx, cli_user(ctx, brand, as_guide), customer_id, events_page, events_limit)
        p = view.profile
        if view.customer_id != customer_id:
            console.print(f"[yellow]{customer_id} was merged into {view.customer_id} (已合并)[/yellow]")
        lines = [
            f"[bold]{p.get('name') or '—'}[/bold]  {view.customer_id}",
            *(f"{k}: {display_value(p.get(k))}" for k in ("phone", "email", "gender", "birthday", "city") if p.get(k)),
            f"tags 标签: {', '.join(str(t['name']) for t in view.tags) or '—'}",
        ]
        console.print(
            Columns(
                [
                    Panel("\n".join(lines), title="profile 基本资料"),
                    _table("identities 身份标识", ["id_type", "id_value", "last_seen_at"], view.identities),
                ]
            )
        )
        console.print(
            _table(
                "relations 导购关系",
                ["guide_id", "guide_name", "state", "added_at", "lost_at", "lost_by"],
                view.relations,
            )
        )
        console.print(_table("orders 订单", ["order_id", "ordered_at", "amount", "status", "lines_count"], view.orders))
        pages = max(1, -(-view.events_total // events_limit))
        console.print(
            _table(
                f"events 行为 ({view.events_total}, page {events_page}/{pages})",
                ["timestamp", "type", "event", "message_id"],
                view.events,
            )
        )
        console.print(
            _table("merges 合并记录", ["merged_at", "absorbed_customer_id", "customer_id", "rule"], view.merges)
        )
