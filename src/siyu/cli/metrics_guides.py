"""`siyu metrics cac|guides|anomalies|anomalies-webhook`: CAC/ROI, guide KPIs and baseline anomalies."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, err_console, open_context
from siyu.cli.metrics import app
from siyu.display import display_value
from siyu.services import brand_webhooks
from siyu.services.brands import get_brand, list_brands
from siyu.services.metrics import acquisition, anomalies, guides, parse_day
from siyu.services.metrics.anomalies import BandConfig

BRAND = typer.Option(..., "--brand", help="brand id")
START = typer.Option(None, "--start", help="YYYY-MM-DD (default: depends on the report)")
END = typer.Option(None, "--end", help="YYYY-MM-DD (default: the brand's last day with data)")
AS_OF = typer.Option(None, "--as-of", help="YYYY-MM-DD: revenue / reach counted up to this day (default: end)")
JSON = typer.Option(False, "--json", help="print JSON instead of tables")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    return display_value(v)


def _print(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if c.endswith(("_id", "name", "kind", "step", "direction")) else "right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in columns))
    if not rows:
        table.add_row(*(["—"] + [""] * (len(columns) - 1)))
    console.print(table)


def _json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


@app.command("cac")
def cac_cmd(
    brand: str = BRAND,
    by: str = typer.Option("channel", "--by", help="channel | platform | campaign | guide"),
    start: str | None = START,
    end: str | None = END,
    as_of: str | None = AS_OF,
    as_json: bool = JSON,
) -> None:
    """CAC, realised LTV, LTV/CAC and ROI per channel / platform / campaign / guide (获客成本与回报)."""
    with open_context() as ctx:
        r = acquisition.cac_report(ctx, cli_user(ctx, brand), by, start, end, as_of)
    if as_json:
        _json(r)
        return
    p = r["period"]
    cols = [r["key"], "spend", "customers", "revenue", "cac", "ltv_realised", "ltv_cac", "roi"]
    _print(f"CAC / ROI by {by} · {p['start']} … {p['end']} (revenue to {p['as_of']})", r["rows"], cols)
    if r["total"]:
        _print("brand total", [r["total"]], cols[1:])


@app.command("guides")
def guides_cmd(
    brand: str = BRAND,
    start: str | None = START,
    end: str | None = END,
    as_of: str | None = AS_OF,
    store: str | None = typer.Option(None, "--store", help="only the guides of this store id"),
    sort: str = typer.Option(
        "gmv", "--sort", help="gmv | reachable | new_customers | conversions | orders | task_completion"
    ),
    guide: str | None = typer.Option(None, "--guide", help="drill down: this guide's customers"),
    as_json: bool = JSON,
) -> None:
    """Guide leaderboard (导购排行), or with --guide the guide's customers."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        if guide:
            r = guides.guide_customers(ctx, user, guide, start, end, as_of)
        else:
            r = guides.leaderboard(ctx, user, start, end, as_of, store, sort)
    if as_json:
        _json(r)
        return
    p = r["period"]
    if guide:
        cols = ["customer_id", "name", "phone", "orders", "gmv", "guide_gmv", "last_order_at"]
        _print(f"customers of {guide} · {p['start']} … {p['end']}", r["rows"], cols)
        return
    cols = ["rank", "guide_id", "name", "store_id", "reachable", "new_customers", "conversions", "orders", "gmv"]
    cols += ["tasks_assigned", "tasks_done", "tasks_skipped", "tasks_overdue", "task_completion"]
    _print(f"guides · {p['start']} … {p['end']} · sort {sort}", r["rows"], cols)


@app.command("anomalies")
def anomalies_cmd(
    brand: str | None = typer.Option(None, "--brand", help="brand id (default: every brand)"),
    day: str | None = typer.Option(None, "--day", help="YYYY-MM-DD (default: the last complete day)"),
    weeks: int = typer.Option(anomalies.DEFAULT_WEEKS, "--weeks", help="weeks of same-weekday history"),
    threshold: float = typer.Option(anomalies.DEFAULT_THRESHOLD, "--threshold", help="flag |robust z| above this"),
    notify: bool = typer.Option(False, "--notify", help="POST the anomalies to the brand's webhook"),
    as_json: bool = JSON,
) -> None:
    """Steps outside their baseline band (异常预警); with --notify, send them to the webhook (for cron)."""
    failed = False
    results: list[dict[str, Any]] = []
    with open_context() as ctx:
        cfg = BandConfig(weeks, threshold).check()
        brands = [brand] if brand else [b.id for b in list_brands(ctx)]
        for b in brands:
            get_brand(ctx, b)
            d: date | None = parse_day(day, "day") if day else None
            r = anomalies.check_and_notify(ctx, b, d, cfg, notify)
            results.append(r)
            failed |= bool(r["delivery"] and not r["delivery"]["ok"])
    if as_json:
        _json(results if brand is None else results[0])
    else:
        for r in results:
            cols = ["step", "channel_id", "actual", "median", "lower", "upper", "z", "direction"]
            _print(f"anomalies · {r['brand_id']} · {r['day']}", r["anomalies"], cols)
            if r["delivery"]:
                console.print(f"webhook: {r['delivery']}")
    if failed:
        err_console.print("[red]error:[/red] a webhook delivery failed (see the delivery log)")
        raise typer.Exit(1)


@app.command("anomalies-webhook")
def webhook_cmd(
    brand: str = BRAND,
    url: str | None = typer.Option(None, "--url", help="http(s) URL receiving the anomalies (POST JSON)"),
    secret: str | None = typer.Option(None, "--secret", help="signing secret (default: a new random one)"),
    remove: bool = typer.Option(False, "--remove", help="forget the webhook"),
) -> None:
    """Show, set or remove the brand's anomalies webhook; a new secret is printed once."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        if remove:
            brand_webhooks.remove_webhook(ctx, brand, anomalies.TOPIC)
            console.print("webhook removed")
            return
        if url:
            hook = brand_webhooks.set_webhook(ctx, brand, anomalies.TOPIC, url, secret)
            console.print(f"webhook: {hook.url}")
            if secret is None:
                console.print(f"secret (keep it; it signs X-Siyu-Signature): {hook.secret}")
            return
        current = brand_webhooks.get_webhook(ctx, brand, anomalies.TOPIC)
        console.print(f"webhook: {current.url if current else '(none)'}")
        _print(
            "deliveries",
            brand_webhooks.deliveries(ctx, brand, 20),
            ["created_at", "ok", "attempts", "status_code", "error"],
        )
