"""`siyu users create`: console / API users (admin, operator, guide)."""

from __future__ import annotations

import typer

from siyu.cli.common import console, open_context
from siyu.domain.models import Role
from siyu.services import audit, brands

app = typer.Typer(help="Users of the console and API.", no_args_is_help=True)


@app.command()
def create(
    brand: str,
    username: str,
    role: Role = typer.Option(Role.OPERATOR, help="admin, operator or guide"),
    guide_id: str | None = typer.Option(None, help="the guide (导购) id a guide user acts as"),
    display_name: str = typer.Option("", help="shown in the console"),
    language: str = typer.Option("zh", help="console language: zh or en"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="SIYU_NEW_PASSWORD"
    ),
) -> None:
    """Create a user (password is prompted, or read from SIYU_NEW_PASSWORD)."""
    with open_context() as ctx:
        user = brands.create_user(ctx, brand, username, password, role, guide_id, display_name, language)
        detail = {"role": user.role.value, "guide_id": user.guide_id}
        audit.record(ctx, brand, "cli", "user.create", user.username, detail)
        scope = f" (导购 {user.guide_id})" if user.guide_id else ""
        console.print(f"created user [bold]{user.username}[/bold] role={user.role.value}{scope} in brand {brand}")
