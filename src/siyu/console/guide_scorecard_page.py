"""Console pages /guides/scorecard (导购考核: every guide's KPIs with targets and attainment, a chart of GMV against
target, the target editor for admins and operators) and /guides/me (a guide's own figures, targets, rank and inbox).
Figures come from ``siyu.services.guide_work.kpis`` (the leaderboard of the metrics engine plus losses, reply time,
tasks on time, Moments)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.display import display_value, money_cents
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import kpis
from siyu.services.metrics import data_end

COLS = (
    "rank",
    "guide_id",
    "name",
    "reachable",
    "new_customers",
    "losses",
    "reply_minutes",
    "reply_source",
    "reply_percentage",
    "negative_feedback",
    "conversions",
    "gmv",
    "tasks_on_time",
    "moments_done",
    "gmv_target",
    "gmv_attainment",
)
CARDS = ("reachable", "new_customers", "losses", "reply_minutes", "conversions", "gmv", "tasks_on_time", "moments_done")


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = []
    for r in rows:
        g = (r.get("targets") or {}).get("gmv") or {}
        src = r.get("reply_source")
        out.append(
            {
                **r,
                "gmv_target": g.get("target"),
                "gmv_attainment": g.get("attainment"),
                "reply_source": tr(f"gw.sc.src.{src}") if src else None,
            }
        )
    return pd.DataFrame(out, columns=list(COLS))


class Scorecard:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user

    def editor(self, guides: list[str], month: str) -> None:
        if self.user.role == Role.GUIDE:
            return
        with ui.card().classes("w-full").props("flat bordered"), ui.row().classes("items-end gap-3"):
            ui.label(tr("gw.sc.set_target")).classes("text-base font-bold")
            guide = ui.select(guides, label=tr("gw.sc.guide"), value=guides[0] if guides else None).classes("w-36")
            guide.props("data-testid=sc-guide")
            metric = ui.select({m: tr(f"gw.sc.col.{m}") for m in kpis.TARGET_METRICS}, label=tr("gw.sc.metric"))
            metric.value = "gmv"
            metric.classes("w-44").props("data-testid=sc-metric")
            period = ui.input(tr("gw.sc.period"), value=month).classes("w-28").props("data-testid=sc-period")
            value = ui.number(tr("gw.sc.value"), value=0, min=0).classes("w-36").props("data-testid=sc-value")

            def save() -> None:
                try:
                    kpis.set_target(
                        self.ctx, self.user, str(guide.value), str(period.value), str(metric.value), float(value.value)
                    )
                except (SiyuError, TypeError, ValueError) as exc:
                    ui.notify(getattr(exc, "message", str(exc)), type="negative")
                    return
                ui.notify(tr("gw.sc.saved"), type="positive")
                self.body.refresh()

            ui.button(tr("gw.sc.save"), on_click=save).props("color=teal-8 data-testid=sc-save")

    @ui.refreshable_method
    def body(self) -> None:
        card = kpis.scorecard(self.ctx, self.user)
        p = card["period"]
        ui.label(tr("gw.sc.period_label", start=p["start"], end=p["end"], month=card["target_period"])).classes(
            "text-sm text-gray-600"
        ).props("data-testid=sc-period-label")
        f = _frame(card["rows"])
        options: dict[str, Any] = {
            "animation": False,
            "legend": {"top": 0, "left": "center"},
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 20, "right": 20, "top": 56, "bottom": 16, "containLabel": True},
            "xAxis": {"type": "category", "data": list(f["guide_id"]), "axisLabel": {"interval": 0}},
            "yAxis": {"type": "value", "name": tr("gw.sc.col.gmv")},
            "series": [
                {
                    "name": tr("gw.sc.col.gmv"),
                    "type": "bar",
                    "itemStyle": {"color": "#0f766e"},
                    "data": [money_cents(v) for v in f["gmv"]],
                },
                {
                    "name": tr("gw.sc.col.gmv_target"),
                    "type": "scatter",
                    "symbolSize": 14,
                    "data": [money_cents(v) for v in f["gmv_target"]],
                },
            ],
        }
        cols = [(c, tr(f"gw.sc.col.{c}")) for c in COLS]
        chart_block(
            tr("gw.sc.chart"), options, f, cols, "sc-chart", ("guides.gmv", "guides.losses", "guides.reply_minutes")
        )
        data_table(f, cols, "sc-table")


def _me(ctx: Context, user: User) -> None:
    if user.role != Role.GUIDE:
        ui.label(tr("gw.me.not_guide")).classes("text-gray-600").props("data-testid=me-not-guide")
        ui.link(tr("gw.nav.scorecard"), "/guides/scorecard")
        return
    me = kpis.me(ctx, user)
    row = me["row"] or {}
    ui.label(
        tr(
            "gw.me.rank",
            rank=row.get("rank", "—"),
            guides=me["guides"],
            start=me["period"]["start"],
            end=me["period"]["end"],
        )
    ).classes("text-base").props("data-testid=me-rank")
    targets = row.get("targets") or {}
    with ui.row().classes("gap-3"):
        for c in CARDS:
            t = targets.get(c)
            hint = tr("gw.me.target", target=display_value(t["target"], c)) if t else None
            kpi_card(tr(f"gw.sc.col.{c}"), row.get(c), f"me-{c}", hint, field=c)
    box = me["inbox"]
    with ui.card().classes("w-full").props("flat bordered data-testid=me-inbox"):
        ui.label(tr("gw.me.inbox", total=box["total"], overdue=box["overdue"])).classes("text-base font-bold")
        ui.label(" · ".join(f"{tr(f'gw.inbox.source.{s}')} {n}" for s, n in box["counts"].items()))
        ui.link(tr("gw.me.open_tasks"), "/tasks")
    if targets:
        t = pd.DataFrame(
            [{"metric": tr(f"gw.sc.col.{m}"), **v} for m, v in targets.items()],
            columns=["metric", "target", "actual", "attainment", "met"],
        )
        data_table(t, [(c, tr(f"gw.me.col.{c}")) for c in t.columns], "me-targets")


def register() -> None:
    """Add the pages to NiceGUI."""

    @ui.page("/guides/scorecard")
    def scorecard_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "gw.sc.title", "gw.nav.scorecard"):
            ui.label(tr("gw.sc.title")).classes("text-2xl").props("data-testid=sc-title")
            ui.label(tr("gw.sc.intro_guide" if user.role == Role.GUIDE else "gw.sc.intro")).classes("text-gray-600")
            page = Scorecard(context(), user)
            from siyu.services.guide_work.settings import guides

            # the month the scorecard shows (its data's last day), so a saved target appears on it at once
            month = data_end(context(), user.brand_id).strftime("%Y-%m")
            page.editor([g.guide_id for g in guides(context(), user.brand_id)], month)
            page.body()
        return None

    @ui.page("/guides/me")
    def me_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "gw.me.title", "gw.nav.me"):
            ui.label(tr("gw.me.title")).classes("text-2xl").props("data-testid=me-title")
            _me(context(), user)
        return None
