"""`siyu clv fit|predict|validate|ltv-cac`: customer lifetime value (客户终身价值) from the command line."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.display import display_value
from siyu.services.brands import get_brand
from siyu.services.clv import fitting, ltv_cac, predictions, validation

PREDICT_COLUMNS = ["customer_id", "x", "t_x", "T", "p_alive", "expected_purchases", "expected_spend", "clv"]
app = typer.Typer(help="Customer lifetime value: BG/NBD, MBG/NBD, Pareto/NBD + Gamma-Gamma.", no_args_is_help=True)

BRAND = typer.Option(..., "--brand", help="brand id")
MODEL = typer.Option(fitting.DEFAULT_MODEL, "--model", help="bgnbd | mbgnbd | pareto_nbd")
CALIBRATION_END = typer.Option(
    None, "--calibration-end", help="YYYY-MM-DD (fit: default the last day with data; validate: 2/3 of the data)"
)
JSON = typer.Option(False, "--json", help="print JSON instead of tables")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.2f}"
    return display_value(v)


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if c.endswith(("_id", "name", "x", "metric")) else "right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in columns))
    if not rows:
        table.add_row(*(["—"] + [""] * (len(columns) - 1)))
    console.print(table)


def _json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _print_fit(f: dict[str, Any]) -> None:
    rows = [
        {"model": f["model"], "parameter": k, "estimate": v, "se": f["se"].get(k)} for k, v in f["params"].items()
    ] + [
        {"model": f["spend_model"], "parameter": k, "estimate": v, "se": f["spend_se"].get(k)}
        for k, v in f["spend_params"].items()
    ]
    _table(
        f"CLV fit {f['id']} · calibration end {f['calibration_end']} · {f['customers']:,} customers "
        f"({f['repeat_customers']:,} repeat) · horizon {f['months']} months at {f['discount_rate']:.0%}/year",
        rows,
        ["model", "parameter", "estimate", "se"],
    )
    console.print(
        f"log-likelihood {f['model']} {f['log_likelihood']:.4f}, {f['spend_model']} {f['spend_log_likelihood']:.4f}"
        f" · {f['seconds']:.2f} s"
    )


@app.command("fit")
def fit_cmd(
    brand: str = BRAND,
    model: str = MODEL,
    calibration_end: str | None = CALIBRATION_END,
    months: int = typer.Option(12, "--months", help="CLV horizon in months (1..120)"),
    discount_rate: float = typer.Option(0.1, "--discount-rate", help="annual discount rate (0.1 = 10 %)"),
    as_json: bool = JSON,
) -> None:
    """Fit the brand's orders and replace its stored predictions (拟合并更新预测)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        opts = fitting.FitOptions(model, calibration_end, months, discount_rate)

        def show(stage: str, done: float) -> None:
            if not as_json:
                console.print(f"[dim]{done:>4.0%} {stage}[/dim]")

        f = fitting.fit_brand(ctx, brand, opts, created_by="cli", progress=show)
    if as_json:
        _json(f)
        return
    _print_fit(f)


@app.command("predict")
def predict_cmd(
    brand: str = BRAND,
    customer: str | None = typer.Option(None, "--customer", help="one customer's prediction"),
    sort: str = typer.Option("clv", "--sort", help="clv | p_alive | expected_purchases | expected_spend | x"),
    ascending: bool = typer.Option(False, "--ascending", help="smallest first"),
    min_p_alive: float | None = typer.Option(None, "--min-p-alive"),
    max_p_alive: float | None = typer.Option(None, "--max-p-alive"),
    min_clv: float | None = typer.Option(None, "--min-clv"),
    page: int = typer.Option(1, "--page"),
    page_size: int = typer.Option(20, "--page-size", help="1..500"),
    as_guide: str | None = typer.Option(None, "--as-guide", help="see only this guide's customers"),
    as_json: bool = JSON,
) -> None:
    """Stored predictions of the current fit: P(alive), expected purchases and spend, CLV (预测结果)."""
    with open_context() as ctx:
        user = cli_user(ctx, brand, as_guide)
        if customer is not None:
            one = predictions.customer(ctx, user, customer)
            if as_json:
                _json(one)
            else:
                _table(f"CLV of {customer}", [one], PREDICT_COLUMNS)
            return
        r = predictions.page(ctx, user, page, page_size, sort, not ascending, min_p_alive, max_p_alive, min_clv, None)
    if as_json:
        _json(r)
        return
    fit = r["fit"]
    title = "no fit yet: run `siyu clv fit`" if fit is None else f"fit {fit['id']} ({fit['model']}, {fit['months']} m)"
    _table(f"CLV predictions · {r['total']:,} customers · {title}", r["items"], PREDICT_COLUMNS)


@app.command("validate")
def validate_cmd(
    brand: str = BRAND,
    model: str = MODEL,
    calibration_end: str | None = CALIBRATION_END,
    holdout_end: str | None = typer.Option(None, "--holdout-end", help="YYYY-MM-DD (default: the last day)"),
    as_json: bool = JSON,
) -> None:
    """Fit on a calibration period and compare with the holdout (校准/留出验证)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        v = validation.validate(ctx, brand, model, calibration_end, holdout_end)
    if as_json:
        _json(v)
        return
    _table(
        f"{model}: holdout purchases by calibration frequency · calibration ≤ {v['calibration_end']}, "
        f"holdout to {v['holdout_end']} ({v['holdout_weeks']:.1f} weeks)",
        v["by_frequency"],
        ["x", "customers", "actual", "predicted"],
    )
    weekly = [r for r in v["tracking"] if r["week"] % 4 == 0 or r["week"] == len(v["tracking"])]
    _table("cumulative repeat purchases (every 4th week)", weekly, ["week", "start", "actual", "predicted", "holdout"])
    _table("summary errors", [{"metric": k, "value": x} for k, x in v["errors"].items()], ["metric", "value"])


@app.command("ltv-cac")
def ltv_cac_cmd(
    brand: str = BRAND,
    by: str = typer.Option("channel", "--by", help="channel | guide | campaign"),
    start: str | None = typer.Option(None, "--start", help="acquisition period start (default: 90 days to end)"),
    end: str | None = typer.Option(None, "--end", help="acquisition period end (default: last day with data)"),
    as_json: bool = JSON,
) -> None:
    """Predicted CLV per acquired customer next to CAC and LTV/CAC (预测 LTV 与获客成本)."""
    with open_context() as ctx:
        r = ltv_cac.report(ctx, cli_user(ctx, brand), by, start, end)
    if as_json:
        _json(r)
        return
    p = r["period"]
    cols = [r["key"], "customers", "cac", "ltv_realised", "clv_mean", "clv_cac", "ltv_total", "ltv_total_cac"]
    _table(f"LTV / CAC by {by} · acquired {p['start']} … {p['end']}", r["rows"], cols)
