"""Console page /wecom/welcome: the welcome messages (欢迎语) of all channel codes — text, attachments, gift and
the sends by outcome (from the onboarding records), a preview filled for a sample customer, and the latest sends.
A guide sees the codes they are on and only their own sends.  Welcome texts are edited on /wecom/codes."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom import welcome_overview as svc

CHART_STATUSES: tuple[str, ...] = ("sent", "delivered_before", "expired", "failed", "none")
COLORS = {
    "sent": "#0f766e",
    "delivered_before": "#5eead4",
    "expired": "#f59e0b",
    "failed": "#dc2626",
    "none": "#9ca3af",
}


def outcome_chart(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked horizontal bars: each code's welcome outcomes."""
    names = [f"#{i['code_id']} {i['code']}" for i in items]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"top": 0, "data": [tr(f"welc.col.{s}") for s in CHART_STATUSES]},
        "grid": {"left": 160, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "value", "minInterval": 1},
        "yAxis": {"type": "category", "data": names},
        "series": [
            {
                "name": tr(f"welc.col.{s}"),
                "type": "bar",
                "stack": "w",
                "itemStyle": {"color": COLORS[s]},
                "data": [i[s] for i in items],
            }
            for s in CHART_STATUSES
        ],
    }


class WelcomePage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.scope = (user.guide_id or "-") if user.role == Role.GUIDE else None
        self.items = svc.messages(ctx, user.brand_id, self.scope)

    def summary(self) -> None:
        ui.label(tr("welc.title")).classes("text-2xl").props("data-testid=welc-title")
        ui.label(tr("welc.intro")).classes("text-sm text-gray-600")
        total = {s: sum(i[s] for i in self.items) for s in ("sent", "expired", "failed")}
        with ui.row().classes("gap-3"):
            kpi_card(tr("welc.kpi.codes"), len(self.items), "welc-codes")
            for k, v in total.items():
                kpi_card(tr(f"welc.kpi.{k}"), v, f"welc-{k}")

    def table(self) -> None:
        ui.label(tr("welc.list")).classes("text-base font-bold")
        if not self.items:
            ui.label(tr("welc.none")).classes("text-gray-500").props("data-testid=welc-none")
            return
        df = pd.DataFrame(self.items)
        df["code"] = [f"#{i} {n}" for i, n in zip(df["code_id"], df["code"], strict=True)]
        df["status"] = [tr(f"welc.st.{s}") if s in ("active", "deleted") else s for s in df["status"]]
        keys = ("code", "channel_id", "status", "text", "attachments", "coupon", "adds", "sent", "expired", "failed")
        cols = [(k, tr("welc.col.channel" if k == "channel_id" else f"welc.col.{k}")) for k in keys]
        data_table(df, cols, "welc-table")
        chart_cols = [("code", tr("welc.col.code")), *((s, tr(f"welc.col.{s}")) for s in CHART_STATUSES)]
        chart_block(tr("welc.chart"), outcome_chart(self.items), df, chart_cols, "welc-chart", height="280px")

    def preview(self) -> None:
        if not self.items:
            return
        options = {int(i["code_id"]): f"#{i['code_id']} {i['code']}" for i in self.items}
        with ui.card().classes("w-full").props("flat bordered data-testid=welc-preview"):
            ui.label(tr("welc.preview")).classes("text-base font-bold")
            with ui.row().classes("items-end gap-3"):
                code = ui.select(options, value=next(iter(options)), label=tr("welc.preview_code"))
                code.props("dense data-testid=welc-preview-code").classes("w-64")
                name = ui.input(tr("welc.sample"), value=svc.SAMPLE_NAME).props("dense data-testid=welc-sample")

            @ui.refreshable
            def shown() -> None:
                try:
                    p = svc.preview(self.ctx, self.user.brand_id, int(code.value), str(name.value or ""), self.scope)
                except SiyuError as exc:
                    ui.label(exc.message).classes("text-red-700")
                    return
                ui.label(tr("welc.preview_as", guide=p["guide"], name=p["name"])).classes("text-xs text-gray-500")
                ui.label(p["text"]).classes("whitespace-pre-wrap bg-green-50 rounded p-3").props(
                    "data-testid=welc-preview-text"
                )
                if p["attachments"]:
                    items = ", ".join(str(a.get("msgtype", "?")) for a in p["attachments"])
                    ui.label(tr("welc.preview_attachments", items=items)).classes("text-xs")

            shown()
            code.on_value_change(lambda _: shown.refresh())
            name.on_value_change(lambda _: shown.refresh())

    def sends(self) -> None:
        ui.label(tr("welc.sends")).classes("text-base font-bold")
        df = pd.DataFrame(svc.latest_sends(self.ctx, self.user.brand_id, self.scope, 50))
        if not df.empty:
            df["customer"] = df["external_userid"]
            df["guide"] = df["guide_id"]
            df["code"] = [f"#{i} {n}" for i, n in zip(df["code_id"], df["code"], strict=True)]
            df["welcome"] = [tr(f"codes.s.{v}") for v in df["welcome"]]
        keys = ("day", "code", "guide", "customer", "welcome", "text", "detail")
        data_table(df, [(k, tr(f"welc.col.{k}")) for k in keys], "welc-sends")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/wecom/welcome")
    def welcome_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "welc.title", "nav.wecom_welcome"):
            page = WelcomePage(context(), user)
            page.summary()
            page.table()
            page.preview()
            page.sends()
        return None
