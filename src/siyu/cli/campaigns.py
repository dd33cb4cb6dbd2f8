"""`siyu campaigns ...`: fission campaigns (裂变活动) from the command line — list, create from a JSON file, validate,
pilot / launch / end, show (with per-guide progress), participants, tree (Rich tables; --json for scripts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.tree import Tree

from siyu.cli.common import cli_user, console, err_console, open_context
from siyu.display import display_value
from siyu.domain.campaign import CampaignError
from siyu.services import campaigns as service
from siyu.services import campaigns_stats
from siyu.services.errors import SiyuError

app = typer.Typer(help="Fission campaigns: create, launch, participants, invite tree. 裂变活动", no_args_is_help=True)
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")
GUIDE_FIGURES = ("participants", "new_customers", "conversions", "gmv")  # the leaderboard's (campaigns_stats)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _read(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SiyuError(f"{file}: not a readable JSON file ({exc})", "file") from None


def _problems(exc: CampaignError) -> None:
    table = Table(title="problems 问题", title_justify="left")
    table.add_column("field")
    table.add_column("message")
    for e in exc.errors:
        table.add_row(e["field"], e["message"])
    err_console.print(table)


def _table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    table = Table(title=title, title_justify="left")
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(display_value(r.get(c)) for c in cols))
    console.print(table)


@app.command("list")
def list_cmd(brand: str, status: str | None = None, as_json: bool = JSON_OUT) -> None:
    """List campaigns with status and participants."""
    with open_context() as ctx:
        items = service.list_campaigns(ctx, cli_user(ctx, brand).brand_id, status)
        if as_json:
            _print_json(items)
            return
        _table("campaigns 裂变活动", items, ["id", "name", "kind", "status", "version", "participants", "budget_spent"])


@app.command()
def create(
    brand: str,
    file: Path = typer.Option(..., "--file", help="a JSON file holding the campaign definition"),
    launch: bool = typer.Option(False, help="launch right away"),
) -> None:
    """Create a draft campaign from a definition file (problems are listed with their field and fix)."""
    with open_context() as ctx:
        b = cli_user(ctx, brand).brand_id
        try:
            info = service.create(ctx, b, _read(file), "cli")
        except CampaignError as exc:
            _problems(exc)
            raise typer.Exit(2) from None
        if launch:
            info = service.launch(ctx, b, info["id"])
        console.print(f"{info['id']} {info['status']} v{info['version']}")


@app.command()
def validate(brand: str, file: Path = typer.Option(..., "--file")) -> None:
    """Check a definition file without saving it."""
    with open_context() as ctx:
        try:
            service.validate(ctx, cli_user(ctx, brand).brand_id, _read(file))
        except CampaignError as exc:
            _problems(exc)
            raise typer.Exit(2) from None
        console.print("ok")


def _move(brand: str, campaign_id: str, to: str) -> None:
    with open_context() as ctx:
        b = cli_user(ctx, brand).brand_id
        fn = {"pilot": service.pilot, "live": service.launch, "ended": service.end}[to]
        info = fn(ctx, b, campaign_id)
        console.print(f"{info['id']} {info['status']}")


@app.command()
def launch(brand: str, campaign_id: str) -> None:
    """Open a campaign to everyone."""
    _move(brand, campaign_id, "live")


@app.command()
def pilot(brand: str, campaign_id: str) -> None:
    """Open a campaign to its pilot audience."""
    _move(brand, campaign_id, "pilot")


@app.command()
def end(brand: str, campaign_id: str) -> None:
    """Close a campaign."""
    _move(brand, campaign_id, "ended")


@app.command()
def show(brand: str, campaign_id: str, as_json: bool = JSON_OUT) -> None:
    """A campaign, help counts by state / reason, and per-guide progress."""
    with open_context() as ctx:
        b = cli_user(ctx, brand).brand_id
        info = service.get(ctx, b, campaign_id)
        hl = service.helps(ctx, b, campaign_id, size=1)
        guides = campaigns_stats.leaderboard(ctx, cli_user(ctx, brand), campaign_id)["items"]
        if as_json:
            _print_json({**info, "helps": {k: hl[k] for k in ("by_state", "by_reason")}, "guides": guides})
            return
        console.print(
            f"[bold]{info['name']}[/bold] {info['id']} {info['kind']} {info['status']} v{info['version']} · "
            f"participants {info['participants']} · budget {info['budget_spent']}/{info['budget_cap'] or '∞'}"
        )
        _table("helps 助力", [{"state": k, "n": v} for k, v in hl["by_state"].items()], ["state", "n"])
        if hl["by_reason"]:
            _table("rejections 拒绝原因", [{"reason": k, "n": v} for k, v in hl["by_reason"].items()], ["reason", "n"])
        rows = [{"guide_id": g["guide_id"], **{k: f"{g[k]}/{g[f'target_{k}']}" for k in GUIDE_FIGURES}} for g in guides]
        _table("guides 导购目标", rows, ["guide_id", *GUIDE_FIGURES])


@app.command()
def participants(brand: str, campaign_id: str, page: int = 1, size: int = 50, as_json: bool = JSON_OUT) -> None:
    """Participants (newest first)."""
    with open_context() as ctx:
        got = service.participants(ctx, cli_user(ctx, brand).brand_id, campaign_id, page=page, size=size)
        if as_json:
            _print_json(got)
            return
        cols = ["id", "customer_id", "depth", "sharer_id", "guide_id", "variant", "helps_counted", "new_customer"]
        _table(f"participants 参与者 ({got['total']})", got["items"], cols)


@app.command()
def tree(brand: str, campaign_id: str, depth: int = 3, as_json: bool = JSON_OUT) -> None:
    """The invite tree (seeds and their invitees, ``--depth`` levels)."""
    with open_context() as ctx:
        got = service.tree(ctx, cli_user(ctx, brand).brand_id, campaign_id, max_depth=depth)
        if as_json:
            _print_json(got)
            return
        root = Tree(f"[bold]{campaign_id}[/bold] · {got['total']} seeds · depths {got['depths']}")

        def add(t: Tree, n: dict[str, Any]) -> None:
            mark = " 新客" if n["new_customer"] else ""
            sub = t.add(f"{n['id']} d{n['depth']} helps {n['helps_counted']} guide {n['guide_id'] or '—'}{mark}")
            for c in n.get("children", []):
                add(sub, c)

        for n in got["nodes"]:
            add(root, n)
        console.print(root)
