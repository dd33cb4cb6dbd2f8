"""`siyu scripts ...` (话术库 / 素材库: folders, items, search, usage) and `siyu sidebar ...` (the WeCom sidebar
app's settings and signed links that open it for a guide)."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.display import display_value
from siyu.services import scripts as service
from siyu.services.errors import SiyuError
from siyu.services.sidebar import access
from siyu.services.sidebar.config import OAUTH_BASE, SidebarConfig, get_sidebar_config, set_sidebar_config

app = typer.Typer(help="Scripts library (话术库 / 素材库): folders, items, search, usage.", no_args_is_help=True)
sidebar_app = typer.Typer(help="The guide's WeCom sidebar (侧边栏): settings and links.", no_args_is_help=True)
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _payload(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        out = json.loads(text)
    except ValueError as exc:
        raise SiyuError(f"--payload is not valid JSON: {exc}", "payload") from None
    if not isinstance(out, dict):
        raise SiyuError('--payload must be a JSON object, e.g. \'{"url": "https://..."}\'', "payload")
    return out


@app.command("list")
def list_cmd(
    brand: str,
    q: str = typer.Option("", help="words to find in title / text / keywords"),
    folder: int | None = typer.Option(None, help="folder id (0 = unfiled)"),
    kind: str | None = typer.Option(None, help="text | image | link | miniprogram | file"),
    sort: str = typer.Option("popular", help="popular | recent | title"),
    as_json: bool = JSON_OUT,
) -> None:
    """Search the library (most used first)."""
    with open_context() as ctx:
        got = service.search_scripts(ctx, cli_user(ctx, brand), q, folder, kind, sort, 1, service.MAX_PAGE_SIZE)
        if as_json:
            _print_json(got)
            return
        table = Table(title=f"scripts 话术库 ({got['total']})", title_justify="left")
        cols = ["id", "kind", "title", "folder_id", "use_count", "body"]
        for c in cols:
            table.add_column(c)
        for r in got["items"]:
            table.add_row(*(display_value(r[c])[:60] for c in cols))
        console.print(table)


@app.command()
def add(
    brand: str,
    kind: str = typer.Option(..., help="text | image | link | miniprogram | file"),
    title: str = typer.Option(...),
    body: str = typer.Option("", help="the text ({name} and {guide} are filled in when sent) or description"),
    payload: str | None = typer.Option(None, help='kind fields as JSON, e.g. \'{"url": "https://..."}\''),
    folder: int = typer.Option(0, help="folder id"),
    keywords: str = typer.Option("", help="extra search words"),
    as_json: bool = JSON_OUT,
) -> None:
    """Add an item."""
    with open_context() as ctx:
        row = service.create_script(ctx, cli_user(ctx, brand), kind, title, body, _payload(payload), folder, keywords)
        _print_json(row) if as_json else console.print(f"added script {row['id']} ({row['kind']}) {row['title']}")


@app.command()
def edit(
    brand: str,
    script_id: int,
    title: str | None = typer.Option(None),
    body: str | None = typer.Option(None),
    payload: str | None = typer.Option(None),
    folder: int | None = typer.Option(None),
    keywords: str | None = typer.Option(None),
) -> None:
    """Change an item."""
    with open_context() as ctx:
        changes: dict[str, Any] = {"title": title, "body": body, "folder_id": folder, "keywords": keywords}
        if payload is not None:
            changes["payload"] = _payload(payload)
        row = service.update_script(ctx, cli_user(ctx, brand), script_id, **changes)
        console.print(f"script {row['id']} saved")


@app.command()
def attach(brand: str, script_id: int, path: Path) -> None:
    """Upload the file an image / file item sends (JPG/PNG ≤ 10 MB, files ≤ 20 MB)."""
    with open_context() as ctx:
        if not path.is_file():
            raise SiyuError(f"{path} is not a file", "path")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        row = service.attach_file(ctx, cli_user(ctx, brand), script_id, path.name, path.read_bytes(), ctype)
        console.print(f"script {row['id']}: file {path.name} attached")


@app.command()
def delete(brand: str, script_id: int) -> None:
    """Remove an item (its use history stays)."""
    with open_context() as ctx:
        service.delete_script(ctx, cli_user(ctx, brand), script_id)
        console.print(f"script {script_id} deleted")


@app.command()
def usage(brand: str, script_id: int, as_json: bool = JSON_OUT) -> None:
    """An item's use count and uses per guide."""
    with open_context() as ctx:
        got = service.usage(ctx, cli_user(ctx, brand), script_id)
        if as_json:
            _print_json(got)
            return
        table = Table(title=f"script {script_id}: {got['use_count']} uses", title_justify="left")
        table.add_column("guide")
        table.add_column("uses")
        for g, n in got["by_guide"].items():
            table.add_row(g or "—", str(n))
        console.print(table)


@app.command()
def folders(brand: str, as_json: bool = JSON_OUT) -> None:
    """List folders with their item counts."""
    with open_context() as ctx:
        rows = service.list_folders(ctx, cli_user(ctx, brand))
        if as_json:
            _print_json(rows)
            return
        table = Table(title="folders 文件夹", title_justify="left")
        for c in ("id", "name", "parent_id", "items"):
            table.add_column(c)
        for r in rows:
            table.add_row(str(r["id"]), r["name"], str(r["parent_id"]), str(r["items"]))
        console.print(table)


@app.command("add-folder")
def add_folder(brand: str, name: str, parent: int = typer.Option(0, help="parent folder id")) -> None:
    """Add a folder."""
    with open_context() as ctx:
        row = service.create_folder(ctx, cli_user(ctx, brand), name, parent)
        console.print(f"added folder {row['id']} {row['name']}")


@sidebar_app.command()
def configure(
    brand: str,
    agent_id: str = typer.Option(..., help="the sidebar app's AgentId (应用管理)"),
    agent_secret: str = typer.Option("", help="the app's Secret (empty: use the WeCom 客户联系 secret)"),
    oauth_base: str = typer.Option(OAUTH_BASE, help="WeCom's OAuth page host"),
) -> None:
    """Store the sidebar app's settings (the secret is encrypted at rest)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        cfg = set_sidebar_config(ctx, brand, SidebarConfig(agent_id, agent_secret, oauth_base))
        _print_json(cfg.public())


@sidebar_app.command()
def show(brand: str) -> None:
    """The sidebar app's settings (secret masked)."""
    with open_context() as ctx:
        _print_json(get_sidebar_config(ctx, brand).public())


@sidebar_app.command()
def link(
    brand: str, guide: str = typer.Option(..., help="guide id"), customer: str = typer.Option("", help="customer id")
) -> None:
    """A signed link (valid 7 days) opening the sidebar as a guide, on one of their customers."""
    with open_context() as ctx:
        if customer:
            from siyu.services.customers import resolve_customer

            resolve_customer(ctx, cli_user(ctx, brand, as_guide=guide), customer)
        console.print(f"/sidebar/{brand}/link?t={access.link_token(ctx, brand, guide, customer)}")
