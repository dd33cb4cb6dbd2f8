"""`siyu campaign-stats ...`: live figures of a fission campaign (seed 001's 访问参与率 / 参与率 / 人均邀请 /
新用户参与率 / 裂变层级, K-factor, completion, cost, retention), the guide leaderboard and the gift fulfilment list
(Rich tables, ``--json`` for scripts). ``--as-guide`` shows one guide's scope. Definitions: docs/campaigns.md."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.display import display_value
from siyu.services import campaigns_stats as service

app = typer.Typer(help="Campaign live stats, guide leaderboard, gift fulfilment. 裂变活动数据", no_args_is_help=True)
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")
BRAND = typer.Option(..., "--brand", help="the brand id")
AS_GUIDE = typer.Option(None, "--as-guide", help="show one guide's scope (their participants only)")
FIGURES = (
    "visits",
    "participants",
    "helpers",
    "people",
    "new_customers",
    "visit_participation",
    "participation",
    "invites_per_participant",
    "new_user_share",
    "k_factor",
    "completion_rate",
    "reward_cost",
    "cost_per_new_customer",
    "retention_7d",
    "retention_30d",
    "conversions",
    "gmv",
)


def _json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


@app.command()
def show(
    campaign_id: str,
    brand: str = BRAND,
    as_guide: str | None = AS_GUIDE,
    warehouse: bool = typer.Option(True, help="include retention / conversions / GMV (reads the warehouse)"),
    as_json: bool = JSON_OUT,
) -> None:
    """Every figure of a campaign: totals with their formulas, then by variant, channel and guide, and A/B."""
    with open_context() as ctx:
        st = service.campaign_stats(ctx, cli_user(ctx, brand, as_guide), campaign_id, warehouse=warehouse)
    if as_json:
        _json(st)
        return
    c = st["campaign"]
    console.print(f"[bold]{c['name']}[/bold] ({c['id']}, {c['kind']}, {c['status']})")
    table = Table(title="totals 总体", title_justify="left")
    for col in ("metric", "指标", "value", "formula"):
        table.add_column(col)
    for k in FIGURES:
        zh = service.FORMULAS.get(k, ("", "", ""))
        table.add_row(k, zh[0], display_value(st["totals"].get(k)), zh[2])
    console.print(table)
    for dim in ("variant", "channel", "guide"):
        rows = st[f"by_{dim}"]
        if not rows:
            continue
        t = Table(title=f"by {dim}", title_justify="left")
        cols = ("participants", "helpers", "new_customers", "visit_participation", "k_factor", "completion_rate")
        for col in (dim, *cols, "reward_cost"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["key"], *(display_value(r[x]) for x in cols), display_value(r["reward_cost"]))
        console.print(t)
    for cmp in st["ab"]["comparisons"]:
        console.print(
            f"A/B {cmp['variant']} vs {cmp['against']}: Δ={display_value(cmp['difference'])} "
            f"p={display_value(cmp['p_value'])} significant={cmp['significant']} ready={cmp['ready']}"
        )


@app.command()
def leaderboard(
    campaign_id: str, brand: str = BRAND, as_guide: str | None = AS_GUIDE, as_json: bool = JSON_OUT
) -> None:
    """Guides ranked by new customers: actuals against the campaign's per-guide targets."""
    with open_context() as ctx:
        lb = service.leaderboard(ctx, cli_user(ctx, brand, as_guide), campaign_id)
    if as_json:
        _json(lb)
        return
    t = Table(title="guide leaderboard 导购排行", title_justify="left")
    for col in ("#", "guide", "participants", "new customers", "conversions", "GMV"):
        t.add_column(col)
    for r in lb["items"]:

        def cell(k: str, r: dict[str, Any] = r) -> str:
            target = r[f"target_{k}"]
            return f"{display_value(r[k])} / {display_value(target)}" if target else display_value(r[k])

        t.add_row(
            str(r["rank"]), r["guide_id"], *(cell(k) for k in ("participants", "new_customers", "conversions", "gmv"))
        )
    console.print(t)


@app.command()
def fulfilment(
    campaign_id: str,
    brand: str = BRAND,
    status: str | None = typer.Option(None, help="awaiting_address | to_ship | shipped | clawed_back"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """The campaign's physical gifts: address, status, courier and tracking number."""
    with open_context() as ctx:
        out = service.fulfilment(ctx, cli_user(ctx, brand, as_guide), campaign_id, status)
    if as_json:
        _json(out)
        return
    t = Table(title="fulfilment 实物发货", title_justify="left")
    for col in ("grant", "reward", "customer", "status", "address", "tracking"):
        t.add_column(col)
    for x in out["items"]:
        a = x["address"] or {}
        addr = " ".join(str(a.get(k, "")) for k in ("name", "phone", "province", "city", "district", "detail")).strip()
        t.add_row(
            x["grant_id"],
            x["reward_id"],
            x["customer_id"],
            x["status"],
            addr,
            f"{x['shipping_carrier'] or ''} {x['tracking_no'] or ''}".strip(),
        )
    console.print(t)


@app.command()
def ship(campaign_id: str, grant_id: str, carrier: str, tracking_no: str, brand: str = BRAND) -> None:
    """Mark a gift shipped (courier + tracking number)."""
    with open_context() as ctx:
        g = service.ship(ctx, cli_user(ctx, brand), campaign_id, grant_id, carrier, tracking_no)
    console.print(f"{g['grant_id']}: {g['status']} {carrier} {tracking_no}")
