"""`siyu metrics reachable|assets|performance|funnel|kpis`: private-domain assets and operations."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.cli.metrics import app
from siyu.display import display_value
from siyu.services.metrics import operations as ops

BRAND = typer.Option(..., "--brand", help="brand id")
START = typer.Option(None, "--start", help="YYYY-MM-DD (default: 30 days before the end)")
END = typer.Option(None, "--end", help="YYYY-MM-DD (default: the brand's last day with data)")
JSON = typer.Option(False, "--json", help="print JSON instead of tables")
AS_GUIDE = typer.Option(None, "--as-guide", help="count only this guide's (导购) customers, as a guide user sees them")


def _fmt(v: Any, column: str) -> str:
    if isinstance(v, float) and column.endswith("_rate"):
        return f"{v:.1%}"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1_000 else f"{v:,.2f}"  # full precision with --json
    return display_value(v)


# short headers (an 80-column terminal holds the asset statement and the LMDI split)
SHORT = {
    "opening": "open",
    "acquired": "+acq",
    "moved_in": "+in",
    "lost_by_customer": "-cust",
    "deleted_by_guide": "-guide",
    "moved_out": "-out",
    "left_group": "-grp",
    "lost_other": "-other",
    "closing": "close",
    "gmv_prev": "G0",
    "gmv": "G",
    "delta": "ΔG",
    "reachable_effect": "A",
    "delivery_rate_effect": "R/A",
    "conversion_rate_effect": "B/R",
    "order_value_effect": "G/B",
}


def _print(title: str, rows: list[dict[str, Any]], columns: list[str], short: bool = False) -> None:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for c in columns:
        left = c in ("unit", "name", "channel_id", "kind") or c.endswith("_id")
        table.add_column(SHORT.get(c, c) if short else c, justify="left" if left else "right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c), c) for c in columns))
    if not rows:
        table.add_row(*(["—"] + [""] * (len(columns) - 1)))
    console.print(table)


def _json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


@app.command("reachable")
def reachable_cmd(
    brand: str = BRAND,
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (default: the brand's last data day)"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """客群资产数: reachable customers per guide, store and for the brand at the end of a day."""
    with open_context() as ctx:
        d = ops.reachable(ctx, cli_user(ctx, brand, as_guide), as_of).as_dict()
    if as_json:
        _json(d)
        return
    console.print(f"[bold]客群资产数 reachable customers[/bold] {d['as_of']}: brand {d['brand']:,}")
    _print("stores 门店", d["stores"], ["store_id", "name", "reachable"])
    _print("guides 导购", d["guides"], ["guide_id", "name", "store_id", "reachable"])


@app.command("assets")
def assets_cmd(
    brand: str = BRAND,
    start: str | None = START,
    end: str | None = END,
    by: str = typer.Option("brand", "--by", help="brand | store | guide | touchpoint | lifecycle"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """用户资产表: opening + acquired + moved in − lost − moved out = closing."""
    with open_context() as ctx:
        d = ops.asset_statement(ctx, cli_user(ctx, brand, as_guide), start, end, by).as_dict()
    if as_json:
        _json(d)
        return
    title = f"用户资产表 asset statement {d['start']} … {d['end']} by {d['by']}"
    _print(title, d["rows"], ["unit", "name", *d["columns"]], short=True)
    console.print(
        "open + acquired (+acq) + moved in (+in) − lost by customer 删粉 (-cust) − deleted by guide (-guide) − moved "
        "out (-out) − left group (-grp) − other (-other) = close"
    )
    _print("acquired by channel 按渠道新增", d["by_channel"], ["unit", "channel_id", "name", "acquired"])


@app.command("performance")
def performance_cmd(
    brand: str = BRAND,
    start: str | None = START,
    end: str | None = END,
    by: str = typer.Option("brand", "--by", help="brand | store | guide"),
    change: bool = typer.Option(False, "--change", help="split the change against the previous period (LMDI)"),
    prev_start: str | None = typer.Option(None, "--prev-start", help="YYYY-MM-DD (default: same length, just before)"),
    prev_end: str | None = typer.Option(None, "--prev-end", help="YYYY-MM-DD (default: the day before --start)"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """私域业绩 = reachable × delivery rate × conversion × order value; --change: ΔGMV by factor (LMDI)."""
    with open_context() as ctx:
        user = cli_user(ctx, brand, as_guide)
        if change:
            c = ops.performance_change(ctx, user, start, end, prev_start, prev_end, by).as_dict()
        else:
            p = ops.performance(ctx, user, start, end, by).as_dict()
    if change:
        if as_json:
            _json(c)
            return
        cur, prev = c["current"], c["previous"]
        title = f"ΔGMV {prev['start']}…{prev['end']} → {cur['start']}…{cur['end']} (LMDI)"
        _print(title, c["rows"], ["unit", "gmv_prev", "gmv", "delta", *c["effects"]], short=True)
        console.print("contributions of reachable A, delivery rate R/A, conversion B/R, order value G/B; Σ = ΔG")
        return
    if as_json:
        _json(p)
        return
    cols = ["unit", "name", "reachable", "delivery_rate", "conversion_rate", "order_value", "gmv"]
    _print(f"私域业绩 performance {p['start']} … {p['end']} by {p['by']}", p["rows"], cols)


@app.command("funnel")
def funnel_cmd(
    brand: str = BRAND,
    start: str | None = START,
    end: str | None = END,
    by: str = typer.Option("brand", "--by", help="brand | channel | guide | store"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """WeCom funnel: 引流成功率, 服务成功率, 变现成功率 (typical ranges in the title)."""
    with open_context() as ctx:
        d = ops.funnel(ctx, cli_user(ctx, brand, as_guide), start, end, by).as_dict()
    if as_json:
        _json(d)
        return
    bands = ", ".join(f"{k} {lo:.0%}–{hi:.0%}" for k, (lo, hi) in d["bands"].items())
    cols = ["unit", "name", "invited", "lead_in_rate", "added", "service_rate", "monetization_rate"]
    _print(f"企微漏斗 funnel {d['start']} … {d['end']} by {d['by']} (typical: {bands})", d["rows"], cols)


@app.command("kpis")
def kpis_cmd(
    brand: str = BRAND,
    start: str | None = START,
    end: str | None = END,
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """Early-stage KPIs: 加粉率 per channel, 删粉率 and 互动率 (brand and guides)."""
    with open_context() as ctx:
        d = ops.kpis(ctx, cli_user(ctx, brand, as_guide), start, end).as_dict()
    if as_json:
        _json(d)
        return
    period = f"{d['start']} … {d['end']}"
    cols = ["channel_id", "name", "adds", "exposures", "add_rate", "band_low", "band_high"]
    _print(f"加粉率 add rate {period}", d["add_rates"], cols)
    _print(f"删粉率 loss rate {period}", d["loss"], ["unit", "name", "contacts_at_start", "lost", "loss_rate"])
    cols = ["unit", "name", "reachable", "interacted", "interaction_rate"]
    _print(f"互动率 interaction rate {period}", d["interaction"], cols)
