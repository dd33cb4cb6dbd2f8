"""Console page /metrics/guides: the guide leaderboard with drill-down to the guide's customers, and CAC / ROI
per channel (platform, campaign, guide) with drill-down to the customers a channel acquired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, date_range, download_button
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.errors import SiyuError
from siyu.services.metrics import acquisition, guides
from siyu.services.metrics.acquisition import resolve_period
from siyu.services.pii import mask_frame

BOARD_COLUMNS = ("rank", "guide_id", "name", "store_name", "reachable", "new_customers", "conversions", "orders", "gmv")
BOARD_LABELS = {"store_name": "guides.col.store"}
TASK_COLUMNS = ("tasks_assigned", "tasks_done", "tasks_skipped", "tasks_overdue", "task_completion")
CAC_COLUMNS = ("key", "spend", "customers", "revenue", "cac", "ltv_realised", "ltv_cac", "roi")
CAC_LABELS = {"ltv_realised": "guides.col.ltv"}


def rounded(frame: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Floats rounded for display (the export keeps what is shown)."""
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out


def _label(col: str, overrides: dict[str, str]) -> str:
    return tr(overrides.get(col, f"guides.col.{col}"))


def task_chart(rows: pd.DataFrame) -> dict[str, Any]:
    """Per guide: done / skipped / open (overdue, not yet due) stacked, and the completion rate (%) as a line."""
    names = [f"{r.name} ({r.guide_id})" for r in rows.itertuples()]

    def col(c: str) -> pd.Series:
        return pd.to_numeric(rows[c], errors="coerce").fillna(0)

    done, skipped, overdue = col("tasks_done"), col("tasks_skipped"), col("tasks_overdue")
    waiting = (col("tasks_assigned") - done - skipped - overdue).clip(lower=0)
    rate = pd.to_numeric(rows["task_completion"], errors="coerce")
    parts = [
        ("guides.col.tasks_done", done, "#16a34a"),
        ("guides.col.tasks_skipped", skipped, "#9ca3af"),
        ("guides.col.tasks_overdue", overdue, "#dc2626"),
        ("guides.tasks_open", waiting, "#60a5fa"),
    ]
    series: list[dict[str, Any]] = [
        {"name": tr(k), "type": "bar", "stack": "t", "data": v.astype(int).tolist(), "itemStyle": {"color": c}}
        for k, v, c in parts
    ]
    series.append(
        {
            "name": tr("guides.col.task_completion"),
            "type": "line",
            "yAxisIndex": 1,
            "data": [None if pd.isna(x) else round(float(x) * 100, 1) for x in rate],
        }
    )
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [s["name"] for s in series]},
        "grid": {"left": 60, "right": 60, "bottom": 70},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": [
            {"type": "value", "name": tr("guides.col.tasks_assigned")},
            {"type": "value", "name": "%", "max": 100},
        ],
        "series": series,
    }


def board_chart(rows: pd.DataFrame) -> dict[str, Any]:
    """Bars of GMV and reachable customers per guide (in leaderboard order)."""
    names = [f"{r.name} ({r.guide_id})" for r in rows.itertuples()]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [tr("guides.col.gmv"), tr("guides.col.reachable")]},
        "grid": {"left": 60, "right": 60, "bottom": 70},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": [
            {"type": "value", "name": tr("guides.col.gmv")},
            {"type": "value", "name": tr("guides.col.reachable")},
        ],
        "series": [
            {"name": tr("guides.col.gmv"), "type": "bar", "data": rows["gmv"].round(2).tolist()},
            {"name": tr("guides.col.reachable"), "type": "line", "yAxisIndex": 1, "data": rows["reachable"].tolist()},
        ],
    }


def cac_chart(rows: pd.DataFrame) -> dict[str, Any]:
    """Bars of CAC and a line of ROI per key."""
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["CAC", "ROI", "LTV/CAC"]},
        "grid": {"left": 60, "right": 60, "bottom": 60},
        "xAxis": {"type": "category", "data": rows["key"].tolist(), "axisLabel": {"rotate": 20}},
        "yAxis": [{"type": "value", "name": "CAC"}, {"type": "value", "name": "ROI"}],
        "series": [
            {"name": "CAC", "type": "bar", "data": [_num(v) for v in rows["cac"]]},
            {"name": "ROI", "type": "line", "yAxisIndex": 1, "data": [_num(v) for v in rows["roi"]]},
            {"name": "LTV/CAC", "type": "line", "yAxisIndex": 1, "data": [_num(v) for v in rows["ltv_cac"]]},
        ],
    }


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), 2)


def _cac_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = pd.DataFrame(report["rows"], columns=[report["key"], *CAC_COLUMNS[1:]])
    keys = rows[report["key"]]
    if report["key"] == "channel_id":  # the channel's name with its id
        names = {r["channel_id"]: r.get("name") for r in report["rows"]}
        keys = keys.map(lambda c: f"{names.get(c) or c} ({c})")
    rows.insert(0, "key", keys.fillna(tr("guides.none")))
    return rounded(rows)


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/metrics/guides")
    def guides_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        ctx = context()
        with frame(user, "guides.title", "nav.guides"):
            # the scorecard (targets, reply time, Moments, tasks on time) is the same guides' other view
            ui.link(tr("gw.nav.scorecard"), "/guides/scorecard").classes("text-sm").props(
                "data-testid=guides-scorecard-link"
            )
            try:
                p = resolve_period(ctx, user.brand_id, days=guides.DEFAULT_DAYS)
            except SiyuError as exc:
                ui.label(exc.message)
                return None
            state: dict[str, Any] = {
                "start": p.start,
                "end": p.end,
                "store": None,
                "sort": "gmv",
                "guide": None,
                "by": "guide" if user.role == Role.GUIDE else "channel",
                "channel": None,
            }

            refreshers: list[Callable[[], Any]] = []

            def set_period(s: date, e: date) -> None:
                state["start"], state["end"] = s, e
                for refresh in refreshers:
                    refresh()

            date_range(p.start, p.end, set_period, "guides-range")
            refreshers += _sections(user, state)
        return None


def _period(state: dict[str, Any]) -> tuple[date, date]:
    return state["start"], state["end"]


def _sections(user: User, state: dict[str, Any]) -> list[Callable[[], Any]]:
    """Leaderboard (with store filter and sort), its drill-down, CAC / ROI and its drill-down; returns their
    refresh functions."""
    ctx = context()
    stores = ctx.warehouse.ibis.table("stores")
    stores = stores.filter(stores.brand_id == user.brand_id).select("store_id", "name").execute()
    options = {"": tr("guides.all_stores")} | dict(zip(stores.store_id, stores.name, strict=True))
    sorts = {
        s: tr(f"guides.col.{s}")
        for s in guides.SORT_FIELDS
        if s != "guide_id" and not (user.role == Role.GUIDE and s in guides.TASK_SORTS)
    }
    gt = ctx.warehouse.ibis.table("guides")
    gt = gt.filter(gt.brand_id == user.brand_id).select("guide_id", "name").order_by("guide_id").execute()
    guide_options = {g: f"{n} ({g})" for g, n in zip(gt.guide_id, gt.name, strict=True)}

    @ui.refreshable
    def board() -> None:
        s, e = _period(state)
        try:
            r = guides.leaderboard(ctx, user, s, e, store_id=state["store"] or None, sort=state["sort"])
        except SiyuError as exc:
            ui.label(exc.message).classes("text-red-600")
            return
        rows = rounded(pd.DataFrame(r["rows"]))
        if rows.empty:
            ui.label(tr("metrics.no_data"))
            return

        def pick(ev: Any) -> None:
            gid = rows.iloc[ev.data_index]["guide_id"]
            if user.role == Role.GUIDE and gid != user.guide_id:
                ui.notify(tr("guides.drill_only_own"), type="warning")
                return
            state["guide"] = gid
            drill.refresh()

        cols = [(c, _label(c, BOARD_LABELS)) for c in (*BOARD_COLUMNS, *TASK_COLUMNS)]
        rate = pd.to_numeric(rows["task_completion"], errors="coerce")
        shown = rows.assign(task_completion=[tr("guides.na") if pd.isna(x) else f"{x:.1%}" for x in rate])
        chart_block(
            tr("guides.leaderboard"),
            board_chart(rows),
            shown,
            cols,
            "guides-board",
            ("assets.reachable", "guides.new_customers", "guides.conversions", "guides.gmv"),
            on_click=pick,
        )
        tcols = [(c, _label(c, BOARD_LABELS)) for c in ("rank", "guide_id", "name", *TASK_COLUMNS)]
        chart_block(
            tr("guides.tasks"),
            task_chart(rows),
            shown,
            tcols,
            "guides-tasks",
            ("guides.tasks_assigned", "guides.tasks_overdue", "guides.task_completion"),
            height="300px",
        )
        if user.role == Role.GUIDE:
            ui.label(tr("guides.task_note")).classes("text-xs text-gray-500")

    @ui.refreshable
    def drill() -> None:
        s, e = _period(state)
        gid = state["guide"] or (user.guide_id if user.role == Role.GUIDE else None)
        with ui.card().classes("w-full").props("flat bordered data-testid=guides-drill"):
            ui.label(tr("guides.drill")).classes("text-base font-bold")
            if user.role != Role.GUIDE:

                def choose(ev: Any) -> None:
                    state["guide"] = ev.value
                    drill.refresh()

                ui.select(guide_options, value=gid, label=tr("guides.drill_guide"), on_change=choose).props(
                    "dense data-testid=guides-drill-guide"
                ).classes("min-w-48")
            if gid is None:
                ui.label(tr("guides.drill_hint")).classes("text-gray-500")
                return
            try:
                r = guides.guide_customers(ctx, user, gid, s, e)
            except SiyuError as exc:
                ui.label(exc.message).classes("text-red-600")
                return
            rows = mask_frame(rounded(pd.DataFrame(r["rows"])))  # customer names and phones masked
            name = rows["guide_name"].iloc[0] if len(rows) else gid
            ui.label(tr("guides.drill_of", name=name, count=len(rows))).props("data-testid=guides-drill-title")
            cols = [
                ("customer_id", tr("guides.col.customer_id")),
                ("name", tr("guides.col.customer")),
                ("phone", tr("guides.col.phone")),
                ("guide_name", tr("guides.col.guide")),
                ("orders", tr("guides.col.orders")),
                ("gmv", tr("guides.col.gmv")),
                ("guide_gmv", tr("guides.col.guide_gmv")),
                ("last_order_at", tr("guides.col.last_order")),
            ]
            data_table(rows, cols, "guides-drill-table")
            download_button(rows, f"guide-{gid}-customers", "guides-drill")

    @ui.refreshable
    def cac() -> None:
        s, e = _period(state)
        try:
            r = acquisition.cac_report(ctx, user, state["by"], s, e)
        except SiyuError as exc:
            ui.label(exc.message).classes("text-red-600")
            return
        rows = _cac_frame(r)

        def pick(ev: Any) -> None:
            if state["by"] != "channel":
                return
            state["channel"] = r["rows"][ev.data_index]["channel_id"]
            cac_drill.refresh()

        cols = [(c, _label(c, CAC_LABELS)) for c in CAC_COLUMNS]
        title = f"{tr('guides.cac')} · {tr('guides.by.' + state['by'])}"
        chart_block(
            title,
            cac_chart(rows),
            rows,
            cols,
            "guides-cac",
            ("acquisition.cac", "acquisition.roi", "acquisition.ltv_realised", "acquisition.ltv_cac"),
            on_click=pick,
        )
        ui.link(tr("guides.predicted_at_clv"), "/clv").classes("text-xs")

    @ui.refreshable
    def cac_drill() -> None:
        ch = state["channel"]
        if ch is None or state["by"] != "channel":
            if state["by"] == "channel":
                ui.label(tr("guides.cac_hint")).classes("text-gray-500")
            return
        s, e = _period(state)
        p = resolve_period(ctx, user.brand_id, s, e)
        frame_ = acquisition.acquired_customers(ctx, user.brand_id, p.start, p.end, p.as_of)
        frame_ = frame_[(frame_.lead_in_channel_id == ch) | (frame_.origin_channel_id == ch)]
        frame_ = rounded(frame_.sort_values("revenue", ascending=False))
        with ui.card().classes("w-full").props("flat bordered data-testid=guides-cac-drill"):
            ui.label(tr("guides.cac_drill", name=ch, count=len(frame_))).classes("text-base font-bold")
            cols = [
                ("customer_id", tr("guides.col.customer_id")),
                ("joined_at", tr("guides.col.joined_at")),
                ("guide_id", tr("guides.col.guide")),
                ("cost", tr("guides.col.cost")),
                ("revenue", tr("guides.col.revenue")),
            ]
            data_table(frame_, cols, "guides-cac-drill-table")
            download_button(frame_, f"channel-{ch}-customers", "guides-cac-drill")

    with ui.row().classes("items-end gap-4"):

        def set_store(ev: Any) -> None:
            state["store"] = ev.value or None
            board.refresh()

        def set_sort(ev: Any) -> None:
            state["sort"] = ev.value
            board.refresh()

        ui.select(options, value="", label=tr("guides.store"), on_change=set_store).props(
            "dense data-testid=guides-store"
        ).classes("min-w-48")
        ui.select(sorts, value="gmv", label=tr("guides.sort"), on_change=set_sort).props(
            "dense data-testid=guides-sort"
        ).classes("min-w-40")
    board()
    drill()
    if user.role != Role.GUIDE:
        by_options = {b: tr(f"guides.by.{b}") for b in acquisition.BY_VALUES}

        def set_by(ev: Any) -> None:
            state["by"], state["channel"] = ev.value, None
            cac.refresh()
            cac_drill.refresh()

        ui.select(by_options, value=state["by"], label=tr("guides.cac_by"), on_change=set_by).props(
            "dense data-testid=guides-cac-by"
        ).classes("min-w-48")
    cac()
    cac_drill()
    return [board.refresh, drill.refresh, cac.refresh, cac_drill.refresh]
