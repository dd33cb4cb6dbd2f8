"""Console page /clv: predicted customer lifetime value — KPIs, the distribution of CLV, the P(alive) matrix over
recency × frequency, CLV per channel / guide / campaign next to CAC, the holdout validation charts, the model's
parameters, and a refit button with progress (admins and operators)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from nicegui import run, ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, date_input, how_computed, kpi_card
from siyu.display import local_text, money
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.clv import fitting, ltv_cac, predictions, validation
from siyu.services.context import Context
from siyu.services.errors import SiyuError

METRIC_KEYS = ("clv.p_alive", "clv.expected_purchases", "clv.expected_spend", "clv.clv")
CAC_KEYS = ("acquisition.cac", "acquisition.ltv_realised", "clv.clv", "clv.clv_cac", "clv.ltv_total_cac")
CAC_COLUMNS = ("key", "customers", "predicted_customers", "cac", "ltv_realised", "clv_mean", "clv_cac", "ltv_total_cac")


def _r(v: Any, digits: int = 2) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), digits)


def histogram_chart(bins: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars: customers per CLV bin (the last bin holds everything above the 99th percentile)."""
    labels = [f"{b['low']:,.0f}–{b['high']:,.0f}" + ("+" if b["last"] else "") for b in bins]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 20, "bottom": 80},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 35}, "name": "CLV"},
        "yAxis": {"type": "value", "name": tr("clv.col.customers")},
        "series": [{"type": "bar", "name": tr("clv.col.customers"), "data": [b["customers"] for b in bins]}],
    }


def heatmap_chart(m: dict[str, Any]) -> dict[str, Any]:
    """Heat map of P(alive): recency t_x across, frequency x up."""
    data = [[j, i, round(v, 2)] for i, row in enumerate(m["p_alive"]) for j, v in enumerate(row) if v is not None]
    return {
        "animation": False,
        "tooltip": {"position": "top"},
        "grid": {"left": 70, "right": 30, "bottom": 90, "top": 20},
        "xAxis": {"type": "category", "data": [f"{t:g}" for t in m["t_x"]], "name": tr("clv.col.t_x")},
        "yAxis": {"type": "category", "data": [str(x) for x in m["x"]], "name": tr("clv.col.x")},
        "visualMap": {
            "min": 0,
            "max": 1,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#b91c1c", "#fde68a", "#0f766e"]},
        },
        "series": [{"type": "heatmap", "name": "P(alive)", "data": data, "label": {"show": len(m["x"]) <= 12}}],
    }


def cac_chart(rows: pd.DataFrame) -> dict[str, Any]:
    """Bars of predicted CLV per customer and CAC, a line of predicted LTV/CAC."""
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [tr("clv.col.clv_mean"), "CAC", tr("clv.col.clv_cac")]},
        "grid": {"left": 60, "right": 60, "bottom": 70},
        "xAxis": {"type": "category", "data": rows["key"].tolist(), "axisLabel": {"rotate": 20}},
        "yAxis": [{"type": "value", "name": "¥"}, {"type": "value", "name": "LTV/CAC"}],
        "series": [
            {"name": tr("clv.col.clv_mean"), "type": "bar", "data": [_r(v) for v in rows["clv_mean"]]},
            {"name": "CAC", "type": "bar", "data": [_r(v) for v in rows["cac"]]},
            {
                "name": tr("clv.col.clv_cac"),
                "type": "line",
                "yAxisIndex": 1,
                "data": [_r(v) for v in rows["clv_cac"]],
            },
        ],
    }


def frequency_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Grouped bars: mean holdout purchases, actual vs predicted, per calibration frequency (FHL 2005 fig. 4)."""
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [tr("clv.actual"), tr("clv.predicted")]},
        "xAxis": {"type": "category", "data": [r["x"] for r in rows], "name": tr("clv.col.group")},
        "yAxis": {"type": "value"},
        "series": [
            {"name": tr("clv.actual"), "type": "bar", "data": [_r(r["actual"], 3) for r in rows]},
            {"name": tr("clv.predicted"), "type": "bar", "data": [_r(r["predicted"], 3) for r in rows]},
        ],
    }


def tracking_chart(rows: list[dict[str, Any]], calibration_end: str) -> dict[str, Any]:
    """Lines: cumulative repeat purchases per week, actual vs predicted, with the calibration end marked."""
    first_holdout = next((r["week"] for r in rows if r["holdout"]), None)
    mark = (
        {
            "symbol": "none",
            "label": {"formatter": tr("clv.calibration_line")},
            "data": [{"xAxis": str(first_holdout)}],
        }
        if first_holdout is not None
        else {}
    )
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [tr("clv.actual"), tr("clv.predicted")]},
        "xAxis": {"type": "category", "data": [str(r["week"]) for r in rows], "name": tr("clv.col.week")},
        "yAxis": {"type": "value"},
        "series": [
            {
                "name": tr("clv.actual"),
                "type": "line",
                "showSymbol": False,
                "data": [r["actual"] for r in rows],
                "markLine": mark,
            },
            {
                "name": tr("clv.predicted"),
                "type": "line",
                "showSymbol": False,
                "lineStyle": {"type": "dashed"},
                "data": [_r(r["predicted"]) for r in rows],
            },
        ],
    }


# the fit's stages (siyu.services.clv.fitting.run_fit reports them with these fractions done)
STAGES: tuple[tuple[float, str], ...] = (
    (1.0, "done"),
    (0.9, "store"),
    (0.8, "predict"),
    (0.6, "spend"),
    (0.1, "fit"),
    (0.0, "summary"),
)


def stage_code(done: float) -> str:
    """The stage a fit is at, from the fraction done it reported."""
    return next(code for at, code in STAGES if done >= at)


class ClvPage:
    """The page's state and sections."""

    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx = ctx
        self.user = user
        self.editor = user.role != Role.GUIDE
        self.by = "guide" if user.role == Role.GUIDE else "channel"
        self.progress: dict[str, Any] = {"stage": "", "done": 0.0, "running": False}

    # ---- header: current fit and refit -----------------------------------------------------------------------

    def header(self) -> None:
        ui.label(tr("clv.title")).classes("text-2xl").props("data-testid=clv-title")
        self.fit_info()
        if self.editor:
            self.refit_form(fitting.latest_fit(self.ctx, self.user.brand_id))

    @ui.refreshable_method
    def fit_info(self) -> None:
        fit = fitting.latest_fit(self.ctx, self.user.brand_id)
        if fit is None:
            ui.label(tr("clv.no_fit" if self.editor else "clv.no_fit_guide")).props("data-testid=clv-no-fit")
            return
        ui.label(
            tr(
                "clv.fit_info",
                model=fit["model"],
                end=fit["calibration_end"],
                customers=f"{fit['customers']:,}",
                repeat=f"{fit['repeat_customers']:,}",
                months=fit["months"],
                rate=f"{fit['discount_rate']:.0%}",
                at=local_text(fit["finished_at"]),
            )
        ).classes("text-sm text-gray-600").props("data-testid=clv-fit-info")

    def refit_form(self, fit: dict[str, Any] | None) -> None:
        with ui.row().classes("items-end gap-3"):
            model = ui.select(
                list(fitting.MODELS), label=tr("clv.model"), value=(fit or {}).get("model", fitting.DEFAULT_MODEL)
            ).props("dense data-testid=clv-model")
            months = ui.number(tr("clv.months"), value=(fit or {}).get("months", 12), min=1, max=120).props(
                "dense data-testid=clv-months"
            )
            rate = ui.number(tr("clv.discount"), value=(fit or {}).get("discount_rate", 0.1), step=0.01).props(
                "dense data-testid=clv-discount"
            )
            end = date_input(tr("clv.calibration_end"), None, "clv-calibration-end")
            button = ui.button(tr("clv.refit"), icon="autorenew").props("data-testid=clv-refit")
        bar = ui.linear_progress(value=0, show_value=False).props("data-testid=clv-progress").classes("w-96")
        stage = ui.label("").classes("text-xs text-gray-500").props("data-testid=clv-progress-stage")
        bar.set_visibility(False)

        def poll() -> None:
            bar.set_value(self.progress["done"])
            stage.set_text(tr(f"clv.stage.{stage_code(self.progress['done'])}") if self.progress["stage"] else "")

        timer = ui.timer(0.3, poll, active=False)

        def report(text: str, done: float) -> None:
            self.progress.update(stage=text, done=done)

        async def refit() -> None:
            opts = fitting.FitOptions(
                str(model.value), end.value or None, int(months.value or 12), float(rate.value or 0.0)
            )
            try:
                fit_id = fitting.start_fit(self.ctx, self.user.brand_id, opts, self.user.username)
            except SiyuError as exc:
                ui.notify(tr("clv.refit_failed", error=exc.message), type="negative")
                return
            button.disable()
            bar.set_visibility(True)
            self.progress.update(stage="", done=0.0, running=True)
            timer.activate()
            try:
                done = await run.io_bound(fitting.run_fit, self.ctx, fit_id, report)
                if done is None:  # the server is shutting down
                    return
                ui.notify(tr("clv.refit_done", customers=f"{done['customers']:,}"), type="positive")
                self.fit_info.refresh()
                self.body.refresh()
            except SiyuError as exc:
                ui.notify(tr("clv.refit_failed", error=exc.message), type="negative", timeout=10_000)
            finally:
                timer.deactivate()
                poll()
                bar.set_visibility(False)
                button.enable()
                self.progress["running"] = False

        button.on_click(refit)

    # ---- body ----------------------------------------------------------------------------------------------------

    @ui.refreshable_method
    def body(self) -> None:
        started = time.perf_counter()
        ov = predictions.overview(self.ctx, self.user)
        t = ov["totals"]
        with ui.row().classes("gap-3"):
            kpi_card(tr("clv.kpi.customers"), t["customers"], "clv-customers")
            kpi_card(tr("clv.kpi.total"), money(t["clv_total"]), "clv-total")
            kpi_card(tr("clv.kpi.mean"), money(t["clv_mean"]), "clv-mean")
            kpi_card(tr("clv.kpi.at_risk"), t["at_risk"], "clv-at-risk")
            kpi_card(tr("clv.kpi.purchases"), _r(t["expected_purchases"], 1), "clv-purchases")
        with ui.tabs().props("dense align=left") as tabs:
            t_value = ui.tab("value", tr("clv.tab.value")).props("data-testid=clv-tab-value")
            t_cac = ui.tab("cac", tr("clv.tab.cac")).props("data-testid=clv-tab-cac")
            t_val = ui.tab("validation", tr("clv.tab.validation")).props("data-testid=clv-tab-validation")
            t_par = ui.tab("params", tr("clv.tab.params")).props("data-testid=clv-tab-params")
            if not self.editor:
                t_val.set_visibility(False)
        with ui.tab_panels(tabs, value=t_value).classes("w-full"):
            with ui.tab_panel(t_value):
                self.value_section(ov)
            with ui.tab_panel(t_cac):
                self.cac_section()
            with ui.tab_panel(t_val):
                if self.editor:
                    self.validation_section()
            with ui.tab_panel(t_par):
                self.params_section(ov["fit"])
        ui.label(f"{(time.perf_counter() - started) * 1000:.0f} ms").classes("text-xs text-gray-300")

    def value_section(self, ov: dict[str, Any]) -> None:
        bins = pd.DataFrame(ov["histogram"], columns=["low", "high", "customers", "last"]).drop(columns="last")
        chart_block(
            tr("clv.histogram"),
            histogram_chart(ov["histogram"]),
            bins.round(2),
            [("low", tr("clv.col.low")), ("high", tr("clv.col.high")), ("customers", tr("clv.col.customers"))],
            "clv-histogram",
            METRIC_KEYS,
        )
        m = ov["alive_matrix"]
        if m is None:
            return
        cells = pd.DataFrame(
            [
                {"x": x, "t_x": t, "p_alive": v}
                for x, row in zip(m["x"], m["p_alive"], strict=True)
                for t, v in zip(m["t_x"], row, strict=True)
                if v is not None
            ]
        )
        chart_block(
            tr("clv.heatmap", T=f"{m['T']:.1f}"),
            heatmap_chart(m),
            cells,
            [("x", tr("clv.col.x")), ("t_x", tr("clv.col.t_x")), ("p_alive", tr("clv.col.p_alive"))],
            "clv-heatmap",
            ("clv.p_alive", "clv.x", "clv.t_x", "clv.T"),
            height="460px",
        )

    def cac_section(self) -> None:
        options = {b: tr(f"clv.by.{b}") for b in ltv_cac.BY_VALUES} if self.editor else {"guide": tr("clv.by.guide")}
        ui.toggle(options, value=self.by, on_change=lambda e: self._set_by(str(e.value))).props(
            "dense data-testid=clv-by"
        )
        self.cac_block()

    def _set_by(self, by: str) -> None:
        self.by = by
        self.cac_block.refresh()

    @ui.refreshable_method
    def cac_block(self) -> None:
        try:
            rep = ltv_cac.report(self.ctx, self.user, self.by)
        except SiyuError as exc:
            ui.label(exc.message)
            return
        key = rep["key"]
        rows = pd.DataFrame(rep["rows"])
        if rows.empty:
            ui.label(tr("metrics.no_data"))
            return
        names = rows[key].astype(object)
        if key == "channel_id" and "name" in rows:
            names = rows.apply(lambda r: f"{r['name'] or r[key]} ({r[key]})", axis=1)
        rows.insert(0, "key", names.where(rows[key].notna(), tr("clv.none")))
        table = rows.loc[:, list(CAC_COLUMNS)].copy()
        for c in CAC_COLUMNS[3:]:
            table[c] = pd.to_numeric(table[c], errors="coerce").round(2)
        p = rep["period"]
        chart_block(
            f"{tr('clv.cac_chart')} · {p['start']} … {p['end']}",
            cac_chart(table),
            table,
            [(c, tr(f"clv.col.{c}")) for c in CAC_COLUMNS],
            "clv-cac",
            CAC_KEYS,
        )

    def validation_section(self) -> None:
        ui.label(tr("clv.validate_hint")).classes("text-sm text-gray-600")
        button = ui.button(tr("clv.validate"), icon="fact_check").props("data-testid=clv-validate")
        holder = ui.column().classes("w-full")

        async def go() -> None:
            holder.clear()
            with holder:
                spinner = ui.spinner()
            try:
                v = await run.io_bound(validation.validate, self.ctx, self.user.brand_id)
                if v is None:
                    return
            except SiyuError as exc:
                holder.clear()
                with holder:
                    ui.label(exc.message)
                return
            spinner.delete()
            with holder:
                self.validation_charts(v)

        button.on_click(go)

    def validation_charts(self, v: dict[str, Any]) -> None:
        e = v["errors"]
        ui.label(
            tr(
                "clv.errors",
                actual=f"{e['holdout_actual']:,.0f}",
                predicted=f"{e['holdout_predicted']:,.1f}",
                pct=f"{e['holdout_error_pct']:+.1f}" if e["holdout_error_pct"] is not None else "—",
                mape=f"{e['tracking_mape_holdout']:.1%}" if e["tracking_mape_holdout"] is not None else "—",
            )
        ).props("data-testid=clv-validation-errors")
        freq = pd.DataFrame(v["by_frequency"])
        freq["actual"] = freq["actual"].round(3)
        freq["predicted"] = freq["predicted"].round(3)
        chart_block(
            tr("clv.by_frequency") + f" · {v['calibration_end']} | {v['holdout_end']}",
            frequency_chart(v["by_frequency"]),
            freq,
            [
                ("x", tr("clv.col.group")),
                ("customers", tr("clv.col.customers")),
                ("actual", tr("clv.col.actual")),
                ("predicted", tr("clv.col.predicted")),
            ],
            "clv-frequency",
        )
        track = pd.DataFrame(v["tracking"])
        track["predicted"] = track["predicted"].round(1)
        chart_block(
            tr("clv.tracking"),
            tracking_chart(v["tracking"], v["calibration_end"]),
            track,
            [
                ("week", tr("clv.col.week")),
                ("start", tr("clv.col.start")),
                ("actual", tr("clv.col.actual")),
                ("predicted", tr("clv.col.predicted")),
            ],
            "clv-tracking",
        )

    def params_section(self, fit: dict[str, Any] | None) -> None:
        if fit is not None:
            rows = [
                {"model": fit["model"], "parameter": k, "estimate": round(v, 6), "se": round(fit["se"].get(k, 0), 6)}
                for k, v in fit["params"].items()
            ] + [
                {
                    "model": fit["spend_model"],
                    "parameter": k,
                    "estimate": round(v, 6),
                    "se": round(fit["spend_se"][k], 6),
                }
                for k, v in fit["spend_params"].items()
            ]
            data_table(
                pd.DataFrame(rows),
                [(c, tr(f"clv.col.{c}")) for c in ("model", "parameter", "estimate", "se")],
                "clv-params",
            )
            ui.label(
                tr(
                    "clv.loglik",
                    model=fit["model"],
                    ll=f"{fit['log_likelihood']:.2f}",
                    spend=fit["spend_model"],
                    sll=f"{fit['spend_log_likelihood']:.2f}",
                )
            ).classes("text-sm")
        history = pd.DataFrame(fitting.list_fits(self.ctx, self.user.brand_id))
        ui.label(tr("clv.history")).classes("text-base font-bold")
        data_table(
            history,
            [
                (c, tr(f"clv.col.{c}"))
                for c in ("created_at", "model", "calibration_end", "status", "customers", "error")
            ],
            "clv-history",
        )
        how_computed(*METRIC_KEYS, "clv.clv_cac")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/clv")
    def clv_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "clv.title", "nav.clv"):
            page = ClvPage(context(), user)
            page.header()
            page.body()
        return None
