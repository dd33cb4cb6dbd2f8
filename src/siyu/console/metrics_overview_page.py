"""Console page /metrics: the overview dashboard — KPI cards (reachable, new contacts, GMV, CAC / ROI), the
day's anomalies with their baseline band, the customer asset statement and the WeCom funnel."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
from nicegui import ui

from siyu.analytics.assets import STATEMENT_COLUMNS
from siyu.console.funnel_chart import funnel
from siyu.console.layout import frame
from siyu.console.metrics_guides_page import rounded
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, kpi_card
from siyu.display import MISSING, is_missing, money
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import acquisition, anomalies, data_end, guides, operations

STEPS = tuple(anomalies.analytics.STEPS)
STATEMENT = STATEMENT_COLUMNS
FUNNEL = ("invited", "led_in", "added", "served", "bought")
FUNNEL_KEYS = ("funnel.lead_in_rate", "funnel.service_rate", "funnel.monetization_rate")


def ratio(v: Any) -> str:
    """Two decimals (— when unknown)."""
    return MISSING if is_missing(v) else f"{float(v):,.2f}"


def kpis(ctx: Context, user: User, end: date) -> dict[str, Any]:
    """The overview's card values (a guide: their own figures)."""
    start30 = end - timedelta(days=29)
    reach = operations.reachable(ctx, user, end).brand
    if user.role == Role.GUIDE:
        board = guides.leaderboard(ctx, user, start30, end)["rows"]
        mine: dict[str, Any] = next((r for r in board if r["guide_id"] == user.guide_id), {})
        rows = acquisition.cac_report(ctx, user, "guide", end - timedelta(days=89), end)["rows"]
        c = rows[0] if rows else {}
        return {
            "reachable": reach,
            "new_contacts": mine.get("new_customers"),
            "gmv": mine.get("gmv"),
            "cac": c.get("cac"),
            "roi": c.get("roi"),
        }
    new = anomalies.daily_values(ctx, user.brand_id, "new_contacts", start30, end).sum()
    gmv = anomalies.daily_values(ctx, user.brand_id, "gmv", start30, end).sum()
    total = acquisition.cac_report(ctx, user, "channel", end - timedelta(days=89), end)["total"] or {}
    return {
        "reachable": reach,
        "new_contacts": int(new),
        "gmv": float(gmv),
        "cac": total.get("cac"),
        "roi": total.get("roi"),
    }


def band_chart(rows: pd.DataFrame) -> dict[str, Any]:
    """Actual vs baseline with the band (lower … upper) shaded and flagged days marked."""
    days = [str(d) for d in rows["day"]]
    lower = [None if pd.isna(v) else round(float(v), 2) for v in rows["lower"]]
    width = [
        None if pd.isna(lo) else round(float(up - lo), 2) for lo, up in zip(rows["lower"], rows["upper"], strict=True)
    ]
    flagged = [[str(r.day), r.actual] for r in rows.itertuples() if r.flagged]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [tr("overview.col.actual"), tr("overview.col.median"), tr("overview.col.flagged")]},
        "grid": {"left": 60, "right": 30, "bottom": 50},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value"},
        "series": [
            {
                "name": "lower",
                "type": "line",
                "data": lower,
                "stack": "band",
                "stackStrategy": "all",
                "symbol": "none",
                "lineStyle": {"opacity": 0},
            },
            {
                "name": "band",
                "type": "line",
                "data": width,
                "stack": "band",
                "stackStrategy": "all",
                "symbol": "none",
                "lineStyle": {"opacity": 0},
                "areaStyle": {"color": "#99d5cf", "opacity": 0.5},
            },
            {
                "name": tr("overview.col.median"),
                "type": "line",
                "data": [None if pd.isna(v) else v for v in rows["median"]],
                "lineStyle": {"type": "dashed"},
                "symbol": "none",
            },
            {"name": tr("overview.col.actual"), "type": "line", "data": rows["actual"].round(2).tolist()},
            {
                "name": tr("overview.col.flagged"),
                "type": "scatter",
                "data": flagged,
                "symbolSize": 14,
                "itemStyle": {"color": "#d32f2f"},
            },
        ],
    }


def _cards(ctx: Context, user: User, end: date) -> None:
    k = kpis(ctx, user, end)
    with ui.row().classes("gap-3"):
        kpi_card(tr("overview.reachable"), k["reachable"], "kpi-reachable")
        kpi_card(tr("overview.new_contacts"), k["new_contacts"], "kpi-new-contacts")
        kpi_card(tr("overview.gmv"), money(k["gmv"]), "kpi-gmv")
        kpi_card(tr("overview.cac"), money(k["cac"]), "kpi-cac")
        kpi_card(tr("overview.roi"), ratio(k["roi"]), "kpi-roi")


def _anomalies(ctx: Context, user: User) -> None:
    found = anomalies.anomalies(ctx, user)
    day = found["day"]
    flagged = pd.DataFrame(found["anomalies"])
    first = found["anomalies"][0] if found["anomalies"] else {"step": "orders", "channel_id": None}
    state: dict[str, Any] = {"step": first["step"], "channel": first["channel_id"]}
    with ui.card().classes("w-full").props("flat bordered data-testid=overview-anomalies"):
        ui.label(tr("overview.anomalies", day=day)).classes("text-base font-bold")
        if flagged.empty:
            ui.label(tr("overview.no_anomalies")).classes("text-green-700")
        else:
            shown = rounded(
                flagged.assign(
                    step=[tr(f"overview.step.{s}") for s in flagged["step"]],
                    channel_id=flagged["channel_id"].fillna(tr("overview.all_channels")),
                    direction=[tr(f"overview.{d}") for d in flagged["direction"]],
                )
            )
            cols = [
                ("step", tr("overview.col.step")),
                ("channel_id", tr("overview.col.channel")),
                ("actual", tr("overview.col.actual")),
                ("median", tr("overview.col.median")),
                ("lower", tr("overview.col.lower")),
                ("upper", tr("overview.col.upper")),
                ("z", tr("overview.col.z")),
                ("direction", tr("overview.col.direction")),
            ]
            rows = [{f: str(r[f]) for f, _ in cols} for r in shown.to_dict("records")]
            table = (
                ui.table(columns=[{"name": f, "label": lab, "field": f, "align": "left"} for f, lab in cols], rows=rows)
                .classes("w-full")
                .props("flat dense bordered data-testid=overview-anomaly-table")
            )

            def pick(ev: Any) -> None:
                i = ev.args[2] if isinstance(ev.args, list) and len(ev.args) > 2 else 0
                rec = found["anomalies"][int(i)]
                state["step"], state["channel"] = rec["step"], rec["channel_id"]
                band.refresh()

            table.on("rowClick", pick)

        def set_step(ev: Any) -> None:
            state["step"], state["channel"] = ev.value, None
            band.refresh()

        ui.select(
            {s: tr(f"overview.step.{s}") for s in STEPS},
            value=state["step"],
            label=tr("overview.step"),
            on_change=set_step,
        ).props("dense data-testid=overview-step").classes("min-w-40")

    @ui.refreshable
    def band() -> None:
        r = anomalies.band_series(ctx, user, str(state["step"]), end=day, channel_id=state["channel"])
        rows = pd.DataFrame(r["rows"])
        step = tr(f"overview.step.{state['step']}")
        if state["channel"]:
            step += f" · {state['channel']}"
        cols = [
            ("day", tr("overview.col.day")),
            ("actual", tr("overview.col.actual")),
            ("median", tr("overview.col.median")),
            ("lower", tr("overview.col.lower")),
            ("upper", tr("overview.col.upper")),
            ("z", tr("overview.col.z")),
            ("flagged", tr("overview.col.flagged")),
        ]
        chart_block(
            tr("overview.band", step=step), band_chart(rows), rounded(rows), cols, "overview-band", ("baselines.band",)
        )

    band()


def _statement(ctx: Context, user: User, end: date) -> None:
    st = operations.asset_statement(ctx, user, end - timedelta(days=29), end)
    totals = st.totals()
    frame_ = pd.DataFrame([{"item": tr(f"overview.assets.{c}"), "value": totals[c]} for c in STATEMENT])
    signs = {"lost_by_customer", "deleted_by_guide", "moved_out", "left_group", "lost_other"}
    data = [-totals[c] if c in signs else totals[c] for c in STATEMENT]
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 30, "bottom": 60},
        "xAxis": {"type": "category", "data": frame_["item"].tolist(), "axisLabel": {"rotate": 20}},
        "yAxis": {"type": "value"},
        "series": [{"type": "bar", "data": data, "name": tr("overview.amount")}],
    }
    chart_block(
        tr("overview.assets"),
        options,
        frame_,
        [("item", tr("overview.col.step")), ("value", tr("overview.amount"))],
        "overview-assets",
        ("assets.statement",),
    )


def _funnel(ctx: Context, user: User, end: date) -> None:
    f = operations.funnel(ctx, user, end - timedelta(days=29), end)
    row = f.rows.iloc[0].to_dict() if len(f.rows) else {c: 0 for c in FUNNEL}
    steps: list[tuple[str, int | None]] = [(tr(f"overview.funnel.{c}"), int(row.get(c) or 0)) for c in FUNNEL]
    frame_ = pd.DataFrame([{"stage": stage, "value": value} for stage, value in steps])
    chart_block(
        tr("overview.funnel"),
        funnel(steps),
        frame_,
        [("stage", tr("overview.col.step")), ("value", tr("overview.amount"))],
        "overview-funnel",
        FUNNEL_KEYS,
    )


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/metrics")
    def overview_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        ctx = context()
        with frame(user, "overview.title", "nav.overview"):
            try:
                end = data_end(ctx, user.brand_id)
                ui.label(tr("overview.as_of", day=end.isoformat())).classes("text-sm text-gray-500").props(
                    "data-testid=overview-as-of"
                )
                if user.role == Role.GUIDE:
                    ui.label(tr("overview.guide_only")).classes("text-sm text-teal-800")
                _cards(ctx, user, end)
                if user.role != Role.GUIDE:
                    _anomalies(ctx, user)
                with ui.row().classes("w-full no-wrap gap-4"):
                    with ui.column().classes("w-1/2"):
                        _statement(ctx, user, end)
                    with ui.column().classes("w-1/2"):
                        _funnel(ctx, user, end)
            except SiyuError as exc:
                ui.label(exc.message).classes("text-red-600")
        return None
