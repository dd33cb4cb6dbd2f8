"""Building blocks every metrics page shares: a chart with its numbers as a table and an export, the
"how this is computed" panel, KPI cards, and a date-range picker."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pandas as pd
from nicegui import ui

from siyu.analytics.definitions import DEFINITIONS
from siyu.console.session import lang, tr
from siyu.display import display_value
from siyu.services.exports import export_frame


def how_computed(*keys: str) -> None:
    """An expandable panel with the formula of each metric key (from ``siyu.analytics.definitions``)."""
    with ui.expansion(tr("metrics.how"), icon="functions").classes("w-full text-sm").props("dense"):
        for key in keys:
            d = DEFINITIONS.get(key)
            if d is None:
                continue
            name, formula = (d.zh, d.formula_zh) if lang() == "zh" else (d.en, d.formula_en)
            ui.markdown(f"**{name}** (`{d.key}`): {formula}")


def kpi_card(label: str, value: object, testid: str, hint: str | None = None, field: str | None = None) -> None:
    """A big number with its label (``field`` names what it is: money fields show as ¥1,234.50)."""
    with ui.card().classes("min-w-40").props(f"flat bordered data-testid={testid}"):
        ui.label(label).classes("text-xs text-gray-500")
        ui.label(display_value(value, field)).classes("text-2xl font-bold").props(f"data-testid={testid}-value")
        if hint:
            ui.label(hint).classes("text-xs text-gray-400")


def download_button(
    frame: pd.DataFrame, filename: str, testid: str, on_export: Callable[[str], None] | None = None
) -> None:
    """Buttons exporting ``frame`` as CSV / XLSX / Parquet (a browser download); ``on_export(fmt)`` runs first
    (e.g. an audit-log entry)."""

    def send(fmt: str) -> None:
        if on_export is not None:
            on_export(fmt)
        data, media = export_frame(frame, fmt)
        ui.download(data, f"{filename}.{fmt}", media_type=media)

    with ui.row().classes("gap-1"):
        for fmt in ("csv", "xlsx", "parquet"):
            ui.button(f"{tr('metrics.export')} {fmt.upper()}", on_click=lambda f=fmt: send(f)).props(
                f"flat dense size=sm icon=download data-testid={testid}-export-{fmt}"
            )


def data_table(frame: pd.DataFrame, columns: Sequence[tuple[str, str]], testid: str) -> None:
    """A read-only table of ``frame``; columns are (field, label text)."""
    if frame.empty:
        ui.label(tr("metrics.no_data")).classes("text-gray-500")
        return
    rows = [{f: display_value(r.get(f), f) for f, _ in columns} for r in frame.to_dict("records")]
    ui.table(
        columns=[{"name": f, "label": label, "field": f, "align": "left", "sortable": True} for f, label in columns],
        rows=rows,
        pagination=20,
    ).classes("w-full").props(f"flat dense bordered data-testid={testid}")


def chart_block(
    title: str,
    options: dict[str, Any],
    frame: pd.DataFrame,
    columns: Sequence[tuple[str, str]],
    testid: str,
    metric_keys: Sequence[str] = (),
    height: str = "360px",
    on_click: Callable[[Any], None] | None = None,
) -> None:
    """A titled ECharts chart with a tab showing the same numbers as a table, an export and the formulas."""
    with ui.card().classes("w-full").props(f"flat bordered data-testid={testid}"):
        ui.label(title).classes("text-base font-bold")
        with ui.tabs().props("dense align=left") as tabs:
            chart_tab = ui.tab(tr("metrics.chart"))
            table_tab = ui.tab(tr("metrics.table")).props(f"data-testid={testid}-table-tab")
        with ui.tab_panels(tabs, value=chart_tab).classes("w-full"):
            with ui.tab_panel(chart_tab):
                chart = ui.echart(options).style(f"height: {height}").classes("w-full")
                if on_click is not None:
                    chart.on_point_click(on_click)
            with ui.tab_panel(table_tab):
                data_table(frame, columns, f"{testid}-table")
        with ui.row().classes("items-center justify-between w-full"):
            download_button(frame, testid, testid)
        if metric_keys:
            how_computed(*metric_keys)


ZH_DATE_LOCALE = {
    "days": ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
    "daysShort": ["日", "一", "二", "三", "四", "五", "六"],
    "months": [f"{m}月" for m in range(1, 13)],
    "monthsShort": [f"{m}月" for m in range(1, 13)],
    "firstDayOfWeek": 1,
}


def date_input(label: str, value: str | None, testid: str, props: str = "") -> ui.input:
    """A YYYY-MM-DD field with a Quasar calendar in the console's language (a native ``type=date`` input shows
    the browser's own format, e.g. mm/dd/yyyy, whatever the console's language)."""
    field = ui.input(label, value=value or "").props(f"dense placeholder=YYYY-MM-DD data-testid={testid} {props}")
    with field.add_slot("append"):
        icon = ui.icon("event").classes("cursor-pointer").props(f"data-testid={testid}-pick")
        with ui.menu() as menu:
            picker = ui.date(mask="YYYY-MM-DD").bind_value(field).props(f"minimal data-testid={testid}-calendar")
            if lang() == "zh":
                picker._props["locale"] = ZH_DATE_LOCALE
        icon.on("click", menu.open)
    return field


def date_range(start: date, end: date, on_change: Callable[[date, date], None], testid: str = "range") -> None:
    """Two date inputs and a refresh button calling ``on_change(start, end)``."""
    with ui.row().classes("items-end gap-2"):
        s = date_input(tr("metrics.start"), start.isoformat(), f"{testid}-start")
        e = date_input(tr("metrics.end"), end.isoformat(), f"{testid}-end")

        def apply() -> None:
            try:
                on_change(date.fromisoformat(str(s.value)), date.fromisoformat(str(e.value)))
            except ValueError:
                ui.notify(tr("metrics.no_data"), type="warning")

        ui.button(tr("metrics.refresh"), on_click=apply).props(f"dense icon=refresh data-testid={testid}-apply")


def data_url(data: bytes, media: str) -> str:
    """A data: URL (for small inline downloads)."""
    return f"data:{media};base64,{base64.b64encode(data).decode()}"
