"""Console page ``/metrics/value``: RFM classes (with drill-down), AIPL stages and flow (Sankey), new/old lifecycle,
cohort heatmaps. Every chart shows its numbers as a table, exports them, and says how they are computed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pandas as pd
from fastapi.responses import RedirectResponse
from nicegui import ui

from siyu.analytics.aipl import STAGES
from siyu.analytics.rfm import RFM_CLASSES
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, date_input, kpi_card
from siyu.display import MISSING, money
from siyu.domain.customer_classes import LIFECYCLE_STAGES
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.errors import SiyuError
from siyu.services.metrics import data_end
from siyu.services.metrics import value as service
from siyu.services.pii import mask_frame

WINDOWS: tuple[int, ...] = (0, 90, 180, 365)  # 0 = all history
COLORS = ["#0f766e", "#14b8a6", "#5eead4", "#99f6e4", "#b45309", "#f59e0b", "#fcd34d", "#fef3c7"]


def _pct(v: float) -> float:
    return round(float(v) * 100, 2)


def _bar(labels: list[str], series: list[dict[str, Any]], y2: bool = False) -> dict[str, Any]:
    y_axis: list[dict[str, Any]] = [{"type": "value"}]
    if y2:
        y_axis.append({"type": "value", "axisLabel": {"formatter": "{value}%"}, "max": 100})
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 60, "right": 50, "bottom": 70, "top": 40},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 25, "interval": 0}},
        "yAxis": y_axis,
        "series": series,
    }


def _heatmap(frame_: pd.DataFrame, value: str, label: str, fmt: str) -> dict[str, Any]:
    months = sorted(frame_["cohort_month"].unique())
    ks = list(range(int(frame_["months_since"].max()) + 1)) if not frame_.empty else []
    pos = {m: i for i, m in enumerate(months)}
    data = [
        [int(r["months_since"]), pos[r["cohort_month"]], round(float(r[value]), 2)] for r in frame_.to_dict("records")
    ]
    top = max((d[2] for d in data), default=1) or 1
    return {
        "animation": False,
        "tooltip": {"position": "top"},
        "grid": {"left": 90, "right": 20, "bottom": 80, "top": 20},
        "xAxis": {
            "type": "category",
            "data": ks,
            "name": tr("value.col.months_since"),
            "nameLocation": "center",
            "nameGap": 28,
        },
        "yAxis": {"type": "category", "data": [str(m) for m in months]},
        "visualMap": {
            "min": 0,
            "max": top,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#f0fdfa", "#0f766e"]},
        },
        "series": [
            {
                "name": label,
                "type": "heatmap",
                "data": data,
                "label": {"show": len(months) <= 20, "formatter": fmt, "fontSize": 9},
            }
        ],
    }


class ValuePage:
    """State and rendering of the customer value page for one user."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.ctx = context()
        self.end = data_end(self.ctx, user.brand_id) + timedelta(days=1)  # as of the next 00:00: all data
        self.as_of = self.end
        self.window = 0
        self.date1 = self.end - timedelta(days=30)
        self.new_days = 30
        self.basis = "joined"
        self.channel = ""
        self.rfm_box: Any = None
        self.aipl_box: Any = None
        self.life_box: Any = None
        self.cohort_box: Any = None
        self.drill_box: Any = None
        self.drill_select: Any = None
        self.rendered: set[str] = set()
        self.current = "rfm"

    # --- frame ---------------------------------------------------------------------------------------

    def build(self) -> None:
        ui.label(tr("value.title")).classes("text-2xl").props("data-testid=value-title")
        if self.user.role == Role.GUIDE:
            ui.label(tr("customers.guide_scope")).classes("text-gray-600")
        with ui.row().classes("items-end gap-3"):
            as_of = date_input(tr("metrics.as_of"), self.as_of.isoformat(), "value-as-of")
            options = {w: (tr("value.window.all") if w == 0 else tr("value.window.days", days=w)) for w in WINDOWS}
            window = (
                ui.select(options, value=self.window, label=tr("value.window"))
                .props("dense data-testid=value-window")
                .classes("w-40")
            )

            def apply() -> None:
                try:
                    self.as_of = date.fromisoformat(str(as_of.value))
                except ValueError:
                    ui.notify(tr("metrics.no_data"), type="warning")
                    return
                self.window = int(window.value or 0)
                self.refresh_all()

            ui.button(tr("metrics.refresh"), on_click=apply).props("dense icon=refresh data-testid=value-apply")
        with ui.tabs(on_change=lambda e: self.show_tab(str(e.value))).props("dense align=left") as tabs:
            t_rfm = ui.tab("rfm", tr("value.tab.rfm")).props("data-testid=tab-rfm")
            t_aipl = ui.tab("aipl", tr("value.tab.aipl")).props("data-testid=tab-aipl")
            t_life = ui.tab("lifecycle", tr("value.tab.lifecycle")).props("data-testid=tab-lifecycle")
            t_coh = ui.tab("cohorts", tr("value.tab.cohorts")).props("data-testid=tab-cohorts")
        with ui.tab_panels(tabs, value=t_rfm).classes("w-full"):
            with ui.tab_panel(t_rfm):
                self.rfm_box = ui.column().classes("w-full gap-4")
            with ui.tab_panel(t_aipl):
                self.aipl_box = ui.column().classes("w-full gap-4")
            with ui.tab_panel(t_life):
                self.life_box = ui.column().classes("w-full gap-4")
            with ui.tab_panel(t_coh):
                self.cohort_box = ui.column().classes("w-full gap-4")
        self.refresh_all()

    def _tabs(self) -> dict[str, tuple[Any, Callable[[], None]]]:
        return {
            "rfm": (self.rfm_box, self.render_rfm),
            "aipl": (self.aipl_box, self.render_aipl),
            "lifecycle": (self.life_box, self.render_lifecycle),
            "cohorts": (self.cohort_box, self.render_cohorts),
        }

    def show_tab(self, name: str) -> None:
        """Render a tab the first time it is shown (and after a refresh)."""
        self.current = name
        if name in self.rendered or name not in self._tabs():
            return
        box, render = self._tabs()[name]
        self._fill(box, render)
        self.rendered.add(name)

    def refresh_all(self) -> None:
        """Forget every rendered tab and render the one shown."""
        for box, _ in self._tabs().values():
            box.clear()
        self.rendered.clear()
        self.show_tab(self.current)

    @staticmethod
    def _fill(box: Any, render: Callable[[], None]) -> None:
        box.clear()
        with box:
            try:
                render()
            except SiyuError as exc:
                ui.label(exc.message).classes("text-red-600")

    # --- RFM -----------------------------------------------------------------------------------------

    def render_rfm(self) -> None:
        rep = service.rfm_report(self.ctx, self.user, self.as_of, self.window or None)
        with ui.row().classes("gap-3"):
            kpi_card(tr("value.customers"), rep.customers, "value-customers")
            kpi_card(tr("value.monetary"), money(rep.monetary), "value-monetary")
            for k in ("r", "f", "m"):
                v = rep.means[k]
                shown = money(v) if k == "m" else MISSING if v is None else f"{v:,.2f}"
                kpi_card(tr(f"value.mean_{k}"), shown, f"value-mean-{k}")
        c = rep.classes
        labels = [tr(f"value.class.{code}") for code in c["rfm_class"]]
        table = pd.DataFrame(
            {
                "class": labels,
                "code": c["rfm_class"],
                "customers": c["customers"],
                "customer_share": [_pct(v) for v in c["customer_share"]],
                "monetary": c["monetary"].round(2),
                "value_share": [_pct(v) for v in c["value_share"]],
            }
        )
        options = _bar(
            labels,
            [
                {
                    "name": tr("value.col.customers"),
                    "type": "bar",
                    "data": [int(v) for v in c["customers"]],
                    "itemStyle": {"color": COLORS[0]},
                },
                {
                    "name": tr("value.col.value_share") + " %",
                    "type": "line",
                    "yAxisIndex": 1,
                    "data": list(table["value_share"]),
                    "itemStyle": {"color": COLORS[4]},
                },
            ],
            y2=True,
        )
        codes = dict(zip(labels, c["rfm_class"], strict=True))
        chart_block(
            tr("value.rfm.classes"),
            options,
            table,
            [
                ("class", tr("value.col.class")),
                ("customers", tr("value.col.customers")),
                ("customer_share", tr("value.col.customer_share") + " %"),
                ("monetary", tr("value.col.monetary")),
                ("value_share", tr("value.col.value_share") + " %"),
            ],
            "rfm-classes",
            ("rfm.class", "rfm.recency_days", "rfm.frequency", "rfm.monetary", "rfm.class_value_share"),
            on_click=lambda e: self.show_drill(codes.get(e.name, "")),
        )
        scores = pd.DataFrame({"score": [1, 2, 3, 4, 5]})
        for k in ("r", "f", "m"):
            sc = rep.scores.get(k)
            scores[f"{k}_customers"] = list(sc["customers"]) if sc is not None else [0] * 5
        chart_block(
            tr("value.rfm.scores"),
            _bar(
                [str(s) for s in scores["score"]],
                [
                    {
                        "name": tr(f"value.score.{k}"),
                        "type": "bar",
                        "data": [int(v) for v in scores[f"{k}_customers"]],
                        "itemStyle": {"color": COLORS[i * 2]},
                    }
                    for i, k in enumerate(("r", "f", "m"))
                ],
            ),
            scores,
            [("score", tr("value.col.score"))] + [(f"{k}_customers", tr(f"value.score.{k}")) for k in ("r", "f", "m")],
            "rfm-scores",
            ("rfm.score",),
            height="300px",
        )
        ui.label(tr("value.rfm.drill")).classes("text-base font-bold")
        with ui.row().classes("items-center gap-2"):
            sel = (
                ui.select(
                    {code: tr(f"value.class.{code}") for code in RFM_CLASSES},
                    value="important_value",
                    on_change=lambda e: self.show_drill(str(e.value)),
                )
                .props("dense data-testid=rfm-drill-class")
                .classes("w-56")
            )
            ui.label(tr("value.rfm.drill_hint")).classes("text-xs text-gray-500")
        self.drill_select = sel
        self.drill_box = ui.column().classes("w-full")
        self.show_drill("important_value")

    def show_drill(self, code: str) -> None:
        if code not in RFM_CLASSES or self.drill_box is None:
            return
        if self.drill_select is not None and self.drill_select.value != code:
            self.drill_select.value = code  # on_change calls back here once with the same code
            return
        page = service.rfm_customer_page(self.ctx, self.user, self.as_of, self.window or None, code, 1, 100)
        df = pd.DataFrame(page["items"]).astype(object)
        df = df.where(df.notna(), None)
        self.drill_box.clear()
        with self.drill_box:
            ui.label(f"{tr(f'value.class.{code}')}: {page['total']}").props("data-testid=rfm-drill-total")
            cols = [
                ("customer_id", tr("col.customer_id")),
                ("name", tr("col.name")),
                ("recency_days", tr("value.col.recency")),
                ("frequency", tr("value.col.frequency")),
                ("monetary", tr("value.col.monetary")),
                ("r_score", "R"),
                ("f_score", "F"),
                ("m_score", "M"),
                ("guides", tr("value.col.guides")),
            ]
            data_table(mask_frame(df), cols, "rfm-drill")

    # --- AIPL ----------------------------------------------------------------------------------------

    def render_aipl(self) -> None:
        rep = service.aipl_report(self.ctx, self.user, self.as_of)
        st = pd.DataFrame(rep["stages"])
        labels = [tr(f"value.stage.{s}") for s in st["stage"]]
        table = pd.DataFrame({"stage": labels, "customers": st["customers"], "share": [_pct(v) for v in st["share"]]})
        chart_block(
            tr("value.aipl.counts"),
            _bar(
                labels,
                [
                    {
                        "name": tr("value.col.customers"),
                        "type": "bar",
                        "data": [int(v) for v in st["customers"]],
                        "itemStyle": {"color": COLORS[1]},
                    }
                ],
            ),
            table,
            [
                ("stage", tr("value.col.stage")),
                ("customers", tr("value.col.customers")),
                ("share", tr("value.col.share") + " %"),
            ],
            "aipl-counts",
            ("aipl.stage", "aipl.stage_count"),
            height="280px",
        )
        with ui.row().classes("items-end gap-2"):
            d1 = date_input(tr("value.aipl.date1"), self.date1.isoformat(), "aipl-date1")
            ui.label(f"→ {self.as_of.isoformat()}")
            apply_btn = ui.button(tr("metrics.refresh")).props("dense icon=refresh data-testid=aipl-flow-apply")
        flow_box = ui.column().classes("w-full")

        def apply() -> None:
            try:
                self.date1 = date.fromisoformat(str(d1.value))
            except ValueError:
                return
            self._fill(flow_box, self.render_flow)

        apply_btn.on_click(apply)
        self._fill(flow_box, self.render_flow)

    def render_flow(self) -> None:
        rep = service.aipl_flow_report(self.ctx, self.user, self.date1, self.as_of)
        links = pd.DataFrame(rep["links"], columns=["from_stage", "to_stage", "customers"])
        d1, d2 = rep["date1"], rep["date2"]

        def node(code: str, day: str) -> str:
            return f"{tr(f'value.stage.{code}')} · {day}"

        names = [node(s, d1) for s in (*STAGES, "none")] + [node(s, d2) for s in (*STAGES, "none")]
        options = {
            "tooltip": {"trigger": "item"},
            "animation": False,
            "series": [
                {
                    "type": "sankey",
                    "left": 10,
                    "right": 160,
                    "nodeAlign": "justify",
                    "data": [{"name": n} for n in names],
                    "links": [
                        {
                            "source": node(r["from_stage"], d1),
                            "target": node(r["to_stage"], d2),
                            "value": r["customers"],
                        }
                        for r in rep["links"]
                    ],
                    "lineStyle": {"color": "gradient", "opacity": 0.4},
                    "label": {"fontSize": 11},
                }
            ],
        }
        table = pd.DataFrame(
            {
                "from": [tr(f"value.stage.{s}") for s in links["from_stage"]],
                "to": [tr(f"value.stage.{s}") for s in links["to_stage"]],
                "customers": links["customers"],
            }
        )
        chart_block(
            f"{tr('value.aipl.flow')} ({d1} → {d2})",
            options,
            table,
            [("from", tr("value.col.from")), ("to", tr("value.col.to")), ("customers", tr("value.col.customers"))],
            "aipl-flow",
            ("aipl.flow",),
            height="440px",
        )

    # --- lifecycle -----------------------------------------------------------------------------------

    def render_lifecycle(self) -> None:
        with ui.row().classes("items-end gap-2"):
            nd = (
                ui.number(tr("value.new_days"), value=self.new_days, min=1, step=1)
                .props("dense data-testid=life-new-days")
                .classes("w-40")
            )
            apply_btn = ui.button(tr("metrics.refresh")).props("dense icon=refresh")
        box = ui.column().classes("w-full")

        def apply() -> None:
            self.new_days = int(nd.value or 30)
            self._fill(box, self._lifecycle_chart)

        apply_btn.on_click(apply)
        self._fill(box, self._lifecycle_chart)

    def _lifecycle_chart(self) -> None:
        rep = service.lifecycle_report(self.ctx, self.user, self.as_of, self.new_days)
        st = pd.DataFrame(rep["stages"])
        labels = [tr(f"value.life.{s}") for s in st["stage"]]
        table = pd.DataFrame({"stage": labels, "customers": st["customers"], "share": [_pct(v) for v in st["share"]]})
        options = {
            "animation": False,
            "tooltip": {"trigger": "item"},
            "legend": {"top": 0},
            "series": [
                {
                    "type": "pie",
                    "radius": ["35%", "65%"],
                    "data": [{"name": n, "value": int(v)} for n, v in zip(labels, st["customers"], strict=True)],
                    "label": {"formatter": "{b}: {c} ({d}%)"},
                }
            ],
            "color": COLORS,
        }
        assert len(labels) == len(LIFECYCLE_STAGES)
        chart_block(
            tr("value.lifecycle.counts"),
            options,
            table,
            [
                ("stage", tr("value.col.stage")),
                ("customers", tr("value.col.customers")),
                ("share", tr("value.col.share") + " %"),
            ],
            "lifecycle-counts",
            ("lifecycle.stage", "lifecycle.stage_count"),
        )

    # --- cohorts -------------------------------------------------------------------------------------

    def render_cohorts(self) -> None:
        with ui.row().classes("items-end gap-2"):
            basis = (
                ui.select(
                    {b: tr(f"value.cohorts.basis.{b}") for b in ("joined", "first_order")},
                    value=self.basis,
                    label=tr("value.cohorts.basis"),
                )
                .props("dense data-testid=cohort-basis")
                .classes("w-44")
            )
            rep_ch = service.cohort_report(self.ctx, self.user, self.as_of, self.basis, by_channel=True)
            channels = sorted({c["channel_id"] for c in rep_ch["cells"]})
            ch = (
                ui.select(
                    {"": tr("value.cohorts.all_channels"), **{c: c for c in channels}},
                    value=self.channel if self.channel in channels else "",
                    label=tr("value.cohorts.channel"),
                )
                .props("dense data-testid=cohort-channel")
                .classes("w-44")
            )

            def apply() -> None:
                self.basis = str(basis.value)
                self.channel = str(ch.value or "")
                self._fill(self.cohort_box, self.render_cohorts)

            ui.button(tr("metrics.refresh"), on_click=apply).props("dense icon=refresh data-testid=cohort-apply")
        if self.channel and self.channel in channels:
            cells = pd.DataFrame([c for c in rep_ch["cells"] if c["channel_id"] == self.channel])
        else:
            cells = pd.DataFrame(service.cohort_report(self.ctx, self.user, self.as_of, self.basis)["cells"])
        if cells.empty:
            ui.label(tr("metrics.no_data")).classes("text-gray-500")
            return
        cells["retention_pct"] = [_pct(v) for v in cells["retention"]]
        cells["cum_per_customer"] = cells["cumulative_revenue_per_customer"].round(2)
        cols = [
            ("cohort_month", tr("value.col.cohort")),
            ("months_since", tr("value.col.months_since")),
            ("cohort_size", tr("value.col.size")),
            ("active", tr("value.col.active")),
            ("retention_pct", tr("value.col.retention") + " %"),
            ("cum_per_customer", tr("value.col.cum_revenue")),
        ]
        table = cells[[c for c, _ in cols]]
        height = f"{max(300, 28 * cells['cohort_month'].nunique() + 120)}px"
        chart_block(
            tr("value.cohorts.retention"),
            _heatmap(cells, "retention_pct", tr("value.col.retention"), "{@[2]}%"),
            table,
            cols,
            "cohort-retention",
            ("cohorts.retention",),
            height=height,
        )
        chart_block(
            tr("value.cohorts.revenue"),
            _heatmap(cells, "cum_per_customer", tr("value.col.cum_revenue"), "{@[2]}"),
            table,
            cols,
            "cohort-revenue",
            ("cohorts.cumulative_revenue",),
            height=height,
        )


def register() -> None:
    """Register ``/metrics/value`` on NiceGUI."""

    @ui.page("/metrics/value")
    def value_page() -> RedirectResponse | None:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "value.title", "nav.value"):
            ValuePage(user).build()
        return None
