"""Helpers shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services.brands import User, get_brand
from siyu.services.context import Context
from siyu.services.errors import SiyuError

console = Console()
err_console = Console(stderr=True)


@contextmanager
def open_context() -> Iterator[Context]:
    """Open the stores named by SIYU_* settings; turn service errors into a clean exit."""
    ctx = Context.open(Settings.from_env())
    try:
        yield ctx
    except SiyuError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        ctx.close()


def cli_user(ctx: Context, brand: str, as_guide: str | None = None) -> User:
    """Who a CLI command acts as: a brand admin, or a guide (to see a guide's scope) with ``--as-guide``."""
    get_brand(ctx, brand)
    return User(0, brand, "cli", "cli", Role.GUIDE if as_guide else Role.ADMIN, as_guide, "zh")
