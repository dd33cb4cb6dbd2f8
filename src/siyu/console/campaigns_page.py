"""Console page /campaigns (裂变活动): every campaign with its type, status, period, budget used and key figures
(participants, helpers, new customers, K-factor, completion — ``siyu.services.campaigns_stats``), lifecycle
buttons (pilot / launch / end) and the way to the builder. Guides see their own participants' figures, no buttons."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console import campaign_charts as charts
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block
from siyu.display import local_text
from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services import campaigns as service
from siyu.services.brands import User
from siyu.services.campaigns_stats import campaign_stats
from siyu.services.context import Context

STATUS_COLORS = {"draft": "grey-7", "pilot": "orange-8", "live": "teal-8", "ended": "red-8"}
KEY_FIGURES = ("participants", "helpers", "new_customers", "k_factor", "completion_rate")


def status_badge(status: str, testid: str) -> None:
    ui.badge(tr(f"cp.status.{status}"), color=STATUS_COLORS.get(status, "grey")).classes("w-fit").props(
        f"data-testid={testid}"
    )


def lifecycle(ctx: Context, user: User, campaign_id: str, to: str, after: Any) -> None:
    """Move a campaign to ``to`` through the campaign service; notify and refresh (errors shown as they come)."""
    try:
        service.definitions.transition(ctx, user.brand_id, campaign_id, to)
    except SiyuError as exc:
        ui.notify(exc.message, type="negative")
        return
    ui.notify(tr(f"cp.done.{to}"), type="positive")
    after()


def lifecycle_buttons(ctx: Context, user: User, c: dict[str, Any], after: Any) -> None:
    """The buttons a campaign's status allows (none for guides)."""
    if user.role == Role.GUIDE:
        return
    cid = c["id"]
    steps = {"draft": ("pilot", "live", "ended"), "pilot": ("live", "ended"), "live": ("ended",)}
    names = {"pilot": "cp.pilot", "live": "cp.launch", "ended": "cp.end"}
    for to in steps.get(c["status"], ()):
        ui.button(tr(names[to]), on_click=lambda _, t=to: lifecycle(ctx, user, cid, t, after)).props(
            f"dense size=sm {'outline' if to != 'live' else 'color=teal-8'} data-testid=campaign-{cid}-{to}"
        )


class CampaignList:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user

    @ui.refreshable_method
    def table(self) -> None:
        items = service.list_campaigns(self.ctx, self.user.brand_id)
        if not items:
            ui.label(tr("cp.empty")).classes("text-gray-500").props("data-testid=campaigns-empty")
            return
        figures = {
            c["id"]: campaign_stats(self.ctx, self.user, c["id"], warehouse=False, max_age=10)["totals"] for c in items
        }
        rows = [{"name": c["name"], **figures[c["id"]]} for c in items]
        names = {k: tr(f"cp.m.{k}") for k in KEY_FIGURES}
        cols = [("name", tr("cp.col.name"))] + [(k, names[k]) for k in KEY_FIGURES]
        chart_block(
            tr("cp.chart"),
            charts.campaigns(rows, names),
            pd.DataFrame(rows, columns=[c for c, _ in cols]),
            cols,
            "campaigns-chart",
            height="240px",
        )
        heads = ("name", "kind", "status", "period", *KEY_FIGURES, "budget", "actions")
        with (
            ui.grid(columns=len(heads))
            .classes("w-full items-center gap-x-4 gap-y-2")
            .props("data-testid=campaigns-table")
        ):
            for h in heads:
                ui.label(tr(f"cp.col.{h}") if h not in KEY_FIGURES else names[h]).classes(
                    "text-xs text-gray-500 font-bold"
                )
            for c in items:
                cid, f = c["id"], figures[c["id"]]
                ui.link(c["name"], f"/campaigns/{cid}").props(f"data-testid=campaign-{cid}-name")
                ui.label(tr(f"cp.kind.{c['kind']}"))
                status_badge(c["status"], f"campaign-{cid}-status")
                ui.label(f"{local_text(c['starts_at'])[:10]} → {local_text(c['ends_at'])[:10]}").classes("text-sm")
                for k in KEY_FIGURES:
                    ui.label(charts.fmt(k, f[k])).props(f"data-testid=campaign-{cid}-{k}")
                cap = c["budget_cap"]
                ui.label(
                    tr("cp.budget_used", spent=f"{c['budget_spent']:.2f}", cap=f"{cap:.2f}" if cap else "∞")
                ).classes("text-sm")
                with ui.row().classes("gap-1"):
                    if self.user.role != Role.GUIDE and c["status"] != "ended":
                        ui.button(
                            tr("cp.edit"), on_click=lambda _, i=cid: ui.navigate.to(f"/campaigns/{i}/edit")
                        ).props(f"dense size=sm flat data-testid=campaign-{cid}-edit")
                    lifecycle_buttons(self.ctx, self.user, c, self.table.refresh)


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/campaigns")
    def campaigns_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "cp.title", "nav.fission"):
            with ui.row().classes("items-center justify-between w-full"):
                ui.label(tr("cp.title")).classes("text-2xl").props("data-testid=campaigns-title")
                if user.role != Role.GUIDE:
                    ui.button(tr("cp.new"), icon="add", on_click=lambda: ui.navigate.to("/campaigns/new")).props(
                        "color=teal-8 data-testid=campaign-new"
                    )
            ui.label(tr("cp.intro" if user.role != Role.GUIDE else "cp.guide_note")).classes("text-gray-600")
            CampaignList(context(), user).table()
        return None
