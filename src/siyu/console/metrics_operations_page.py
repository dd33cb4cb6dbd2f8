"""Console page ``/metrics/operations``: the asset statement (table + waterfall), reachable customers per guide and
store, the performance formula with its LMDI change (waterfall), the WeCom funnel and the early KPIs with the
seeds' typical ranges as reference bands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pandas as pd
from fastapi.responses import RedirectResponse
from nicegui import ui

from siyu import i18n
from siyu.analytics.assets import STATEMENT_COLUMNS
from siyu.analytics.performance import FACTORS
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, date_input, kpi_card
from siyu.display import money
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.errors import SiyuError
from siyu.services.metrics import data_end
from siyu.services.metrics import operations as ops

IN_COLOR, OUT_COLOR, TOTAL_COLOR, BAND_COLOR = "#0f766e", "#dc2626", "#475569", "rgba(148, 163, 184, 0.25)"
OUTS = ("lost_by_customer", "deleted_by_guide", "moved_out", "left_group", "lost_other")


def _col(name: str) -> str:
    key = f"ops.col.{name}"
    return tr(key) if i18n.has(key) else name


def _unit_label(by: str, unit: str, name: str) -> str:
    if by == "lifecycle" and i18n.has(f"ops.stage.{unit}"):
        return tr(f"ops.stage.{unit}")
    return str(name) if name and name != unit else unit


def _pct(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v) * 100, 2)


def waterfall(labels: list[str], start: float, steps: list[float], end: float) -> dict[str, Any]:
    """ECharts options of a waterfall: a start bar, signed steps floating on a transparent base, an end bar."""
    base, value, colors = [0.0], [start], [TOTAL_COLOR]
    running = start
    for s in steps:
        low = running + min(s, 0.0)
        base.append(round(low, 2))
        value.append(round(abs(s), 2))
        colors.append(IN_COLOR if s >= 0 else OUT_COLOR)
        running += s
    base.append(0.0)
    value.append(round(end, 2))
    colors.append(TOTAL_COLOR)
    texts = [f"{start:,.0f}", *(f"{s:+,.0f}" for s in steps), f"{end:,.0f}"]
    return {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 70, "right": 20, "bottom": 80, "top": 30},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 25, "interval": 0}},
        "yAxis": {"type": "value", "scale": True},
        "series": [
            {
                "type": "bar",
                "stack": "w",
                "data": base,
                "itemStyle": {"color": "transparent"},
                "tooltip": {"show": False},
            },
            {
                "type": "bar",
                "stack": "w",
                "data": [
                    {"value": v, "itemStyle": {"color": c}, "label": {"formatter": text}}
                    for v, c, text in zip(value, colors, texts, strict=True)
                ],
                "label": {"show": True, "position": "top"},
                "name": " ",
            },
        ],
    }


def banded_bars(
    labels: list[str], values: list[float | None], bands: list[tuple[float, float] | None], name: str
) -> dict[str, Any]:
    """Bars in percent with a grey reference band (ECharts markArea) over each bar that has a typical range."""
    areas = [
        [{"xAxis": lab, "yAxis": round(b[0] * 100, 2)}, {"xAxis": lab, "yAxis": round(b[1] * 100, 2)}]
        for lab, b in zip(labels, bands, strict=True)
        if b is not None
    ]
    return {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 20, "bottom": 70, "top": 30},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 20, "interval": 0}},
        "yAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
        "series": [
            {
                "type": "bar",
                "name": name,
                "data": values,
                "itemStyle": {"color": IN_COLOR},
                "label": {"show": True, "position": "top", "formatter": "{c}%"},
                "markArea": {"silent": True, "itemStyle": {"color": BAND_COLOR}, "data": areas},
            }
        ],
    }


class OperationsPage:
    """State and rendering of the operations page for one user."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.ctx = context()
        self.end = data_end(self.ctx, user.brand_id)
        self.start = self.end - timedelta(days=ops.DEFAULT_DAYS - 1)
        self.by = {"assets": "brand", "performance": "store", "funnel": "channel"}
        self.boxes: dict[str, Any] = {}
        self.rendered: set[str] = set()
        self.current = "assets"

    def build(self) -> None:
        ui.label(tr("ops.title")).classes("text-2xl").props("data-testid=ops-title")
        if self.user.role == Role.GUIDE:
            ui.label(tr("ops.guide_scope")).classes("text-gray-600")
        with ui.row().classes("items-end gap-3"):
            s = date_input(tr("metrics.start"), self.start.isoformat(), "ops-start")
            e = date_input(tr("metrics.end"), self.end.isoformat(), "ops-end")

            def apply() -> None:
                try:
                    self.start, self.end = date.fromisoformat(str(s.value)), date.fromisoformat(str(e.value))
                except ValueError:
                    ui.notify(tr("metrics.no_data"), type="warning")
                    return
                self.refresh_all()

            ui.button(tr("metrics.refresh"), on_click=apply).props("dense icon=refresh data-testid=ops-apply")
        names = ("assets", "reachable", "performance", "funnel")
        with ui.tabs(on_change=lambda ev: self.show_tab(str(ev.value))).props("dense align=left") as tabs:
            tab_list = [ui.tab(n, tr(f"ops.tab.{n}")).props(f"data-testid=ops-tab-{n}") for n in names]
        with ui.tab_panels(tabs, value=tab_list[0]).classes("w-full"):
            for n, t in zip(names, tab_list, strict=True):
                with ui.tab_panel(t):
                    self.boxes[n] = ui.column().classes("w-full gap-4")
        self.refresh_all()

    def _renderers(self) -> dict[str, Callable[[], None]]:
        return {
            "assets": self.render_assets,
            "reachable": self.render_reachable,
            "performance": self.render_performance,
            "funnel": self.render_funnel,
        }

    def show_tab(self, name: str) -> None:
        """Render a tab the first time it is shown (and after a refresh)."""
        self.current = name
        if name in self.rendered or name not in self.boxes:
            return
        self._fill(name)
        self.rendered.add(name)

    def _fill(self, name: str) -> None:
        box = self.boxes[name]
        box.clear()
        with box:
            try:
                self._renderers()[name]()
            except SiyuError as exc:
                ui.label(exc.message).classes("text-red-600").props("data-testid=ops-error")

    def refresh_all(self) -> None:
        for box in self.boxes.values():
            box.clear()
        self.rendered.clear()
        self.show_tab(self.current)

    def _by_select(self, tab: str, options: tuple[str, ...]) -> None:
        def change(ev: Any) -> None:
            self.by[tab] = str(ev.value)
            self._fill(tab)

        ui.select(
            {o: tr(f"ops.by.{o}") for o in options}, value=self.by[tab], label=tr("ops.by"), on_change=change
        ).props(f"dense data-testid=ops-by-{tab}").classes("w-48")

    # --- asset statement -------------------------------------------------------------------------------
    def render_assets(self) -> None:
        by = self.by["assets"]
        st = ops.asset_statement(self.ctx, self.user, self.start, self.end, by)
        tot = st.totals()
        with ui.row().classes("gap-3"):
            for c in ("opening", "acquired", "moved_in", "lost_by_customer", "closing"):
                kpi_card(_col(c), tot[c], f"ops-{c.replace('_', '-')}")
        self._by_select("assets", ops.STATEMENT_BY)
        rows = st.rows.copy()
        rows["name"] = [_unit_label(by, u, n) for u, n in zip(rows.unit, rows.name, strict=True)]
        steps = [float(tot["acquired"]), float(tot["moved_in"]), *(-float(tot[c]) for c in OUTS)]
        labels = [_col(c) for c in STATEMENT_COLUMNS]
        chart_block(
            f"{tr('ops.statement')} · {tr('ops.statement.waterfall')} ({st.start} … {st.end})",
            waterfall(labels, float(tot["opening"]), steps, float(tot["closing"])),
            rows,
            [("unit", _col("unit")), ("name", _col("name")), *((c, _col(c)) for c in STATEMENT_COLUMNS)],
            "ops-statement",
            ["assets.statement", "assets.reachable"],
        )
        ch = st.by_channel
        if by != "brand":
            ch = ch.groupby(["channel_id", "name"], as_index=False).agg(acquired=("acquired", "sum"))
        ch = ch.sort_values("acquired", ascending=False)
        chart_block(
            tr("ops.statement.by_channel"),
            {
                "tooltip": {"trigger": "axis"},
                "grid": {"left": 60, "right": 20, "bottom": 70, "top": 30},
                "xAxis": {"type": "category", "data": list(ch["name"]), "axisLabel": {"rotate": 20, "interval": 0}},
                "yAxis": {"type": "value"},
                "series": [{"type": "bar", "data": [int(v) for v in ch["acquired"]], "itemStyle": {"color": IN_COLOR}}],
            },
            ch,
            [("channel_id", _col("channel_id")), ("name", _col("name")), ("acquired", _col("acquired"))],
            "ops-by-channel",
            ["assets.statement"],
            height="300px",
        )

    # --- reachable ---------------------------------------------------------------------------------------
    def render_reachable(self) -> None:
        r = ops.reachable(self.ctx, self.user, self.end)
        with ui.row().classes("gap-3 items-center"):
            kpi_card(f"{tr('ops.reachable.brand')} ({r.as_of})", r.brand, "ops-reachable-brand")
            ui.label(tr("ops.reachable.note")).classes("text-xs text-gray-500")
        for frame_, key, title, testid in (
            (r.guides, "guide_id", "ops.reachable.guides", "ops-reachable-guides"),
            (r.stores, "store_id", "ops.reachable.stores", "ops-reachable-stores"),
        ):
            chart_block(
                tr(title),
                {
                    "tooltip": {"trigger": "axis"},
                    "grid": {"left": 60, "right": 20, "bottom": 60, "top": 30},
                    "xAxis": {
                        "type": "category",
                        "data": [f"{n} {k}" for n, k in zip(frame_["name"], frame_[key], strict=True)],
                        "axisLabel": {"rotate": 25, "interval": 0},
                    },
                    "yAxis": {"type": "value"},
                    "series": [
                        {
                            "type": "bar",
                            "data": [int(v) for v in frame_["reachable"]],
                            "itemStyle": {"color": IN_COLOR},
                            "label": {"show": True, "position": "top"},
                        }
                    ],
                },
                frame_,
                [
                    (key, tr(f"metrics.scope.{key.removesuffix('_id')}")),
                    ("name", _col("name")),
                    ("reachable", _col("reachable")),
                ],
                testid,
                ["assets.reachable"],
                height="320px",
            )

    # --- performance -----------------------------------------------------------------------------------
    def render_performance(self) -> None:
        by = self.by["performance"]
        ch = ops.performance_change(self.ctx, self.user, self.start, self.end, by=by)
        brand = ops.performance_change(self.ctx, self.user, self.start, self.end, by="brand") if by != "brand" else ch
        b = brand.rows.iloc[0]
        with ui.row().classes("gap-3"):
            kpi_card(_col("gmv"), money(b["gmv"]), "ops-gmv")
            kpi_card(
                _col("gmv_prev"),
                money(b["gmv_prev"]),
                "ops-gmv-prev",
                hint=f"{ch.previous.start} … {ch.previous.end}",
            )
            kpi_card(_col("delta"), f"{b['delta']:+,.2f}", "ops-delta")
        ui.label(tr("ops.perf.formula")).classes("text-sm text-gray-600")
        self._by_select("performance", ops.PERFORMANCE_BY)
        effects = [f"{f}_effect" for f in FACTORS]
        chart_block(
            f"{tr('ops.perf.change')} · {tr('metrics.scope.brand')}",
            waterfall(
                [_col("gmv_prev"), *(_col(e) for e in effects), _col("gmv")],
                float(b["gmv_prev"]),
                [float(b[e]) for e in effects],
                float(b["gmv"]),
            ),
            ch.rows,
            [
                ("unit", _col("unit")),
                ("name", _col("name")),
                ("gmv_prev", _col("gmv_prev")),
                ("gmv", _col("gmv")),
                ("delta", _col("delta")),
                *((e, _col(e)) for e in effects),
            ],
            "ops-lmdi",
            ["performance.lmdi", "performance.gmv"],
        )
        cur = ch.current.rows.copy()
        for c in ("delivery_rate", "conversion_rate"):
            cur[c] = [_pct(v) for v in cur[c]]
        cur["order_value"] = [None if v is None or pd.isna(v) else round(float(v), 2) for v in cur["order_value"]]
        series = [
            {"type": "bar", "name": _col(e), "stack": "lmdi", "data": [round(float(v), 2) for v in ch.rows[e]]}
            for e in effects
        ]
        chart_block(
            f"{tr('ops.perf.table')} ({ch.current.start} … {ch.current.end})",
            {
                "tooltip": {"trigger": "axis"},
                "legend": {"top": 0},
                "grid": {"left": 70, "right": 20, "bottom": 60, "top": 40},
                "xAxis": {
                    "type": "category",
                    "data": list(ch.rows["name"]),
                    "axisLabel": {"rotate": 20, "interval": 0},
                },
                "yAxis": {"type": "value"},
                "series": series,
            },
            cur,
            [
                ("unit", _col("unit")),
                ("name", _col("name")),
                ("reachable", _col("reachable")),
                ("delivery_rate", _col("delivery_rate") + " %"),
                ("conversion_rate", _col("conversion_rate") + " %"),
                ("order_value", _col("order_value")),
                ("delivered", _col("delivered")),
                ("bought", _col("bought")),
                ("gmv", _col("gmv")),
            ],
            "ops-performance",
            ["performance.gmv", "performance.delivery_rate", "performance.conversion_rate", "performance.order_value"],
        )

    # --- funnel and KPIs -------------------------------------------------------------------------------------
    def render_funnel(self) -> None:
        brand = ops.funnel(self.ctx, self.user, self.start, self.end, "brand")
        rates = ("lead_in_rate", "service_rate", "monetization_rate")
        row = brand.rows.iloc[0] if len(brand.rows) else None
        values = [None if row is None else _pct(row[r]) for r in rates]
        with ui.row().classes("gap-3"):
            for r, v in zip(rates, values, strict=True):
                kpi_card(
                    _col(r),
                    "" if v is None else f"{v:.1f}%",
                    f"ops-{r.replace('_', '-')}",
                    hint=f"{brand.bands[r][0]:.0%}–{brand.bands[r][1]:.0%}",
                )
        table = pd.DataFrame(
            {
                "metric": [_col(r) for r in rates],
                "value": values,
                "band": [f"{brand.bands[r][0]:.0%}–{brand.bands[r][1]:.0%}" for r in rates],
            }
        )
        chart_block(
            tr("ops.funnel.chart"),
            banded_bars([_col(r) for r in rates], values, [brand.bands[r] for r in rates], "%"),
            table,
            [("metric", _col("name")), ("value", "%"), ("band", _col("band"))],
            "ops-funnel",
            [f"funnel.{r}" for r in rates],
            height="320px",
        )
        self._by_select("funnel", ops.FUNNEL_BY)
        f = ops.funnel(self.ctx, self.user, self.start, self.end, self.by["funnel"]).rows.copy()
        for r in rates:
            f[r] = [_pct(v) for v in f[r]]
        ui.label(tr("ops.funnel.by_channel")).classes("text-base font-bold")
        data_table(f, [(c, _col(c) + (" %" if c.endswith("_rate") else "")) for c in f.columns], "ops-funnel-table")

        k = ops.kpis(self.ctx, self.user, self.start, self.end)
        ar = k.add_rates[k.add_rates["exposures"] > 0].copy()
        bands = [
            None if pd.isna(lo) or lo is None else (float(lo), float(hi))
            for lo, hi in zip(ar.band_low, ar.band_high, strict=True)
        ]
        ar["add_rate"] = [_pct(v) for v in ar["add_rate"]]
        chart_block(
            tr("ops.kpi.add_rate"),
            banded_bars(list(ar["name"]), list(ar["add_rate"]), bands, _col("add_rate")),
            ar,
            [
                (c, _col(c) if c not in ("band_low", "band_high") else f"{_col('band')} {c[-4:]}")
                for c in ("channel_id", "name", "adds", "exposures", "add_rate", "band_low", "band_high")
            ],
            "ops-add-rate",
            ["kpi.add_rate"],
            height="320px",
        )
        loss = k.loss.merge(
            k.interaction[["unit", "reachable", "interacted", "interaction_rate"]], on="unit", how="outer"
        )
        loss["loss_rate"] = [_pct(v) for v in loss["loss_rate"]]
        loss["interaction_rate"] = [_pct(v) for v in loss["interaction_rate"]]
        brand_row = loss.iloc[0]
        with ui.row().classes("gap-3"):
            kpi_card(
                _col("loss_rate"), "" if brand_row.loss_rate is None else f"{brand_row.loss_rate:.2f}%", "ops-loss-rate"
            )
            kpi_card(
                _col("interaction_rate"),
                "" if brand_row.interaction_rate is None else f"{brand_row.interaction_rate:.1f}%",
                "ops-interaction-rate",
            )
        guides = loss.iloc[1:]
        chart_block(
            tr("ops.kpi.loss_interaction"),
            {
                "tooltip": {"trigger": "axis"},
                "legend": {"top": 0},
                "grid": {"left": 60, "right": 60, "bottom": 60, "top": 40},
                "xAxis": {"type": "category", "data": list(guides["name"]), "axisLabel": {"rotate": 20, "interval": 0}},
                "yAxis": [
                    {"type": "value", "axisLabel": {"formatter": "{value}%"}},
                    {"type": "value", "axisLabel": {"formatter": "{value}%"}, "max": 100},
                ],
                "series": [
                    {
                        "type": "bar",
                        "name": _col("loss_rate"),
                        "data": list(guides["loss_rate"]),
                        "itemStyle": {"color": OUT_COLOR},
                    },
                    {
                        "type": "line",
                        "name": _col("interaction_rate"),
                        "yAxisIndex": 1,
                        "data": list(guides["interaction_rate"]),
                    },
                ],
            },
            loss,
            [
                (c, _col(c) + (" %" if c.endswith("_rate") else ""))
                for c in (
                    "unit",
                    "name",
                    "contacts_at_start",
                    "lost",
                    "loss_rate",
                    "reachable",
                    "interacted",
                    "interaction_rate",
                )
            ],
            "ops-loss",
            ["kpi.loss_rate", "kpi.interaction_rate"],
            height="320px",
        )


def register() -> None:
    """Register ``/metrics/operations`` on NiceGUI."""

    @ui.page("/metrics/operations")
    def operations_page() -> RedirectResponse | None:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "ops.title", "nav.operations"):
            OperationsPage(user).build()
        return None
