"""Console page /followups (跟进记录): record a follow-up (type, content, next date, stage), customers per sales
stage as a chart, open reminders and recent follow-ups. A guide works on their own customers only
(``siyu.services.guide_work.followups`` enforces it)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, date_input, kpi_card
from siyu.domain import guide_work as rules
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import followups
from siyu.services.guide_work import settings as gw


class FollowupsPage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user

    def form(self) -> None:
        stages = gw.get_settings(self.ctx, self.user.brand_id).stages
        with ui.card().classes("w-full").props("flat bordered"):
            ui.label(tr("gw.fu.new")).classes("text-base font-bold")
            with ui.row().classes("items-end gap-3 w-full"):
                self.customer = ui.input(tr("gw.fu.customer")).classes("w-56").props("data-testid=fu-customer")
                self.kind = (
                    ui.select(
                        {k: tr(f"gw.kind.{k}") for k in rules.FOLLOWUP_KINDS}, label=tr("gw.fu.kind"), value="call"
                    )
                    .classes("w-32")
                    .props("data-testid=fu-kind")
                )
                self.next_at = date_input(tr("gw.fu.next"), None, "fu-next").classes("w-44")
                self.stage = (
                    ui.select({"": "—", **{s: s for s in stages}}, label=tr("gw.fu.stage"), value="")
                    .classes("w-36")
                    .props("data-testid=fu-stage")
                )
            self.content = ui.textarea(tr("gw.fu.content")).classes("w-full").props("data-testid=fu-content")
            ui.button(tr("gw.fu.save"), on_click=self._save).props("color=teal-8 data-testid=fu-submit")

    def _save(self) -> None:
        try:
            followups.record(
                self.ctx,
                self.user,
                str(self.customer.value or "").strip(),
                str(self.kind.value),
                str(self.content.value or ""),
                str(self.next_at.value or "") or None,
                str(self.stage.value or "") or None,
            )
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("gw.fu.saved"), type="positive")
        self.content.value = ""
        self.body.refresh()

    @ui.refreshable_method
    def body(self) -> None:
        listed = followups.list_followups(self.ctx, self.user, None, 1, followups.MAX_PAGE_SIZE)
        guide = self.user.guide_id if self.user.role == Role.GUIDE else None
        due = followups.reminders(self.ctx, self.user.brand_id, guide)
        with ui.row().classes("gap-3"):
            kpi_card(tr("gw.fu.total"), listed["total"], "fu-total")
            kpi_card(tr("gw.fu.open_reminders"), len(due), "fu-reminders-count")
        counts = pd.DataFrame(followups.stage_counts(self.ctx, self.user)["stages"], columns=["stage", "customers"])
        options: dict[str, Any] = {
            "animation": False,
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 50, "right": 20, "top": 20, "bottom": 40},
            "xAxis": {"type": "category", "data": list(counts["stage"])},
            "yAxis": {"type": "value", "name": tr("gw.fu.customers")},
            "series": [
                {"type": "bar", "itemStyle": {"color": "#0f766e"}, "data": [int(v) for v in counts["customers"]]}
            ],
        }
        cols = [("stage", tr("gw.fu.stage")), ("customers", tr("gw.fu.customers"))]
        chart_block(tr("gw.fu.stages"), options, counts, cols, "fu-stages", height="260px")
        ui.label(tr("gw.fu.open_reminders")).classes("text-lg font-bold")
        rem = pd.DataFrame(due, columns=["customer_id", "guide_id", "kind", "content", "next_at"])
        data_table(rem, [(c, tr(f"gw.fu.col.{c}")) for c in rem.columns], "fu-reminders")
        ui.label(tr("gw.fu.recent")).classes("text-lg font-bold")
        items = pd.DataFrame(
            listed["items"], columns=["created_at", "customer_id", "guide_id", "kind", "content", "stage", "next_at"]
        )
        items["kind"] = [tr(f"gw.kind.{k}") for k in items["kind"]]
        data_table(items, [(c, tr(f"gw.fu.col.{c}")) for c in items.columns], "fu-list")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/followups")
    def followups_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "gw.fu.title", "gw.nav.followups"):
            ui.label(tr("gw.fu.title")).classes("text-2xl").props("data-testid=fu-title")
            ui.label(tr("gw.fu.intro_guide" if user.role == Role.GUIDE else "gw.fu.intro")).classes("text-gray-600")
            page = FollowupsPage(context(), user)
            page.form()
            page.body()
        return None
