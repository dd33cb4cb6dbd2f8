"""`siyu metrics rfm|rfm-customers|aipl|aipl-flow|lifecycle|cohorts`: customer value metrics in the terminal."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.cli.metrics import app
from siyu.display import display_value
from siyu.services.metrics import value as service

BRAND = typer.Option(..., "--brand", help="brand id")
AS_OF = typer.Option(None, "--as-of", help="YYYY-MM-DD, counted up to its 00:00 (default: the day after the last data)")
JSON = typer.Option(False, "--json", help="print JSON instead of tables")
AS_GUIDE = typer.Option(None, "--as-guide", help="only the customers of this guide (导购) id")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1 else f"{v:,.2f}"
    return display_value(v)


def _print(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        text = c.endswith(("stage", "class", "_zh", "month", "channel_id", "customer_id", "name"))
        table.add_column(c, justify="left" if text else "right", no_wrap=text, overflow="fold")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in columns))
    if not rows:
        table.add_row(*(["—"] + [""] * (len(columns) - 1)))
    console.print(table)


def _out(data: dict[str, Any], as_json: bool) -> bool:
    if as_json:
        console.print_json(json.dumps(data, ensure_ascii=False, default=str))
    return as_json


@app.command("rfm")
def rfm_cmd(
    brand: str = BRAND,
    as_of: str | None = AS_OF,
    window_days: int | None = typer.Option(None, "--window-days", help="only orders of the last N days"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """RFM: customers and value share per class (8 classes, mean split), quintile distributions. RFM 八类客户"""
    with open_context() as ctx:
        data = service.rfm_report(ctx, cli_user(ctx, brand, as_guide), as_of, window_days).as_dict()
    if _out(data, as_json):
        return
    m = data["means"]
    head = f"RFM as of {data['as_of']}: {data['customers']} customers, Σ M = {_fmt(data['monetary'])}"
    if data["customers"]:
        head += f"; means R {m['r']:.2f} d, F {m['f']:.3f}, M {m['m']:.2f}"
    cols = ["rfm_class", "rfm_class_zh", "customers", "customer_share", "monetary", "value_share"]
    _print(head, data["classes"], cols)
    for k in ("r", "f", "m"):
        if data["scores"].get(k):
            _print(f"{k.upper()} score", data["scores"][k], ["score", "customers", "monetary"])


@app.command("rfm-customers")
def rfm_customers_cmd(
    brand: str = BRAND,
    as_of: str | None = AS_OF,
    window_days: int | None = typer.Option(None, "--window-days"),
    rfm_class: str | None = typer.Option(None, "--class", help="e.g. important_value"),
    sort: str = typer.Option("monetary", "--sort"),
    page: int = 1,
    page_size: int = 20,
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """RFM drill-down: the customers of a class with their guides. RFM 客户明细"""
    with open_context() as ctx:
        user = cli_user(ctx, brand, as_guide)
        data = service.rfm_customer_page(ctx, user, as_of, window_days, rfm_class, page, page_size, sort)
    if _out(data, as_json):
        return
    cols = ["customer_id", "name", "rfm_class", "recency_days", "frequency", "monetary", "r_score", "f_score"]
    _print(f"{data['total']} customers (page {page})", data["items"], [*cols, "m_score", "guides"])


def _aipl_cfg(a_days: int | None, i_days: int | None, p_days: int | None, l_days: int | None) -> Any:
    return service.aipl_config(a_days, i_days, p_days, l_days)


@app.command("aipl")
def aipl_cmd(
    brand: str = BRAND,
    as_of: str | None = AS_OF,
    a_days: int | None = typer.Option(None, "--a-days"),
    i_days: int | None = typer.Option(None, "--i-days"),
    p_days: int | None = typer.Option(None, "--p-days"),
    l_days: int | None = typer.Option(None, "--l-days"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """AIPL: people per stage (highest that applies). AIPL 各阶段人数"""
    with open_context() as ctx:
        cfg = _aipl_cfg(a_days, i_days, p_days, l_days)
        data = service.aipl_report(ctx, cli_user(ctx, brand, as_guide), as_of, cfg)
    if not _out(data, as_json):
        _print(f"AIPL as of {data['as_of']}", data["stages"], ["stage", "stage_zh", "customers", "share"])


@app.command("aipl-flow")
def aipl_flow_cmd(
    brand: str = BRAND,
    date1: str | None = typer.Option(None, "--date1", help="from date (default: 30 days before --date2)"),
    date2: str | None = typer.Option(None, "--date2", "--as-of", help="to date (default: last day with data)"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """AIPL stage-to-stage flow between two dates, drop-outs included. AIPL 阶段流转"""
    with open_context() as ctx:
        data = service.aipl_flow_report(ctx, cli_user(ctx, brand, as_guide), date1, date2)
    if not _out(data, as_json):
        _print(f"AIPL flow {data['date1']} → {data['date2']}", data["links"], ["from_stage", "to_stage", "customers"])


@app.command("lifecycle")
def lifecycle_cmd(
    brand: str = BRAND,
    as_of: str | None = AS_OF,
    new_days: int = typer.Option(30, "--new-days", help="joined within N days = new"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """New/old lifecycle: 新客未购, 新客已购, 老客未购, 老客已购, 老客复购."""
    with open_context() as ctx:
        data = service.lifecycle_report(ctx, cli_user(ctx, brand, as_guide), as_of, new_days)
    if not _out(data, as_json):
        title = f"Lifecycle as of {data['as_of']} (new = {data['new_days']} days)"
        _print(title, data["stages"], ["stage", "stage_zh", "customers", "share"])


@app.command("cohorts")
def cohorts_cmd(
    brand: str = BRAND,
    as_of: str | None = AS_OF,
    basis: str = typer.Option("joined", "--basis", help="joined (private domain) or first_order"),
    by_channel: bool = typer.Option(False, "--by-channel"),
    as_guide: str | None = AS_GUIDE,
    as_json: bool = JSON,
) -> None:
    """Cohorts: retention and cumulative revenue per customer by cohort month × months since. 同期群"""
    with open_context() as ctx:
        data = service.cohort_report(ctx, cli_user(ctx, brand, as_guide), as_of, basis, by_channel)
    if _out(data, as_json):
        return
    cols = ["cohort_month", *(["channel_id"] if by_channel else []), "months_since", "cohort_size", "active"]
    cols += ["retention", "cumulative_revenue_per_customer"]
    _print(f"Cohorts ({data['basis']}) as of {data['as_of']}", data["cells"], cols)
