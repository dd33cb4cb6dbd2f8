"""Console page /journeys (旅程 / SOP): every journey with its status, version, trigger and entered / active /
exited counts (the stats of ``siyu.services.journeys.stats``), lifecycle buttons, and a form creating a journey
from a template. Guides see the list (their own customers' counts) without buttons or forms."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys import definitions as service
from siyu.services.journeys import templates as template_service
from siyu.services.journeys.stats import journey_stats

STATUS_COLORS = {"draft": "grey-7", "active": "teal-8", "paused": "orange-8", "stopped": "red-8"}


def trigger_text(trigger: dict[str, Any]) -> str:
    """A one-line description of a trigger in the session language."""
    kind = str(trigger.get("kind", "?"))
    if kind == "event":
        return tr("jr.trigger.event", event=trigger.get("event", ""))
    if kind == "segment":
        return tr(
            "jr.trigger.segment", on=tr(f"jr.seg_on.{trigger.get('on', 'entry')}"), segment=trigger.get("segment_id")
        )
    if kind == "date":
        return tr("jr.trigger.date", field=trigger.get("field", ""), offset=trigger.get("offset_days", 0))
    if kind == "cadence":
        return tr("jr.trigger.cadence", days=trigger.get("every_days", "?"))
    return tr("jr.trigger.manual")


class JourneyList:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.editor = user.role != Role.GUIDE

    def _act(self, journey_id: str, action: str) -> None:
        try:
            if action == "publish":
                service.publish(self.ctx, self.user, journey_id)
            else:
                service.set_status(self.ctx, self.user, journey_id, action)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr(f"jr.done.{action}"), type="positive")
        self.table.refresh()

    @ui.refreshable_method
    def table(self) -> None:
        items = service.list_journeys(self.ctx, self.user)
        if not items:
            ui.label(tr("jr.empty")).classes("text-gray-500").props("data-testid=journeys-empty")
            return
        stats = {j.id: journey_stats(self.ctx, self.user, j.id) for j in items}
        self.chart(items, stats)
        cols = ("name", "status", "version", "trigger", "entered", "active", "exited", "actions")
        with (
            ui.grid(columns=len(cols))
            .classes("w-full items-center gap-x-4 gap-y-2")
            .props("data-testid=journeys-table")
        ):
            for c in cols:
                ui.label(tr(f"jr.col.{c}")).classes("text-xs text-gray-500 font-bold")
            for j in items:
                st = stats[j.id]
                jid = j.id
                ui.link(j.name, f"/journeys/{jid}").props(f"data-testid=journey-{jid}-name")
                ui.badge(tr(f"jr.status.{j.status}"), color=STATUS_COLORS.get(j.status, "grey")).classes("w-fit").props(
                    f"data-testid=journey-{jid}-status"
                )
                pub = f" ({tr('jr.published')} v{j.published_version})" if j.published_version else ""
                ui.label(f"v{j.version}{pub}").props(f"data-testid=journey-{jid}-version")
                ui.label(trigger_text(j.definition.get("trigger", {}))).classes("text-sm")
                for key in ("entries", "active", "exited"):
                    ui.label(str(st[key])).props(f"data-testid=journey-{jid}-{key}")
                with ui.row().classes("gap-1"):
                    if not self.editor:
                        ui.label("")
                        continue
                    if j.status in ("draft", "paused", "active") and j.published_version != j.version:
                        ui.button(tr("jr.publish"), on_click=lambda _, i=jid: self._act(i, "publish")).props(
                            f"dense size=sm color=teal-8 data-testid=journey-{jid}-publish"
                        )
                    if j.status == "active":
                        ui.button(tr("jr.pause"), on_click=lambda _, i=jid: self._act(i, "paused")).props(
                            f"dense size=sm outline data-testid=journey-{jid}-pause"
                        )
                    if j.status == "paused":
                        ui.button(tr("jr.resume"), on_click=lambda _, i=jid: self._act(i, "active")).props(
                            f"dense size=sm outline data-testid=journey-{jid}-resume"
                        )

    def chart(self, items: list[Any], stats: dict[str, dict[str, Any]]) -> None:
        """Stacked bars: each journey's customers inside now and those who left (by exit reason)."""
        names = [j.name for j in items]
        reasons = sorted({r for st in stats.values() for r in st["exits"]})
        series = [
            {
                "name": tr("jr.col.active"),
                "type": "bar",
                "stack": "all",
                "itemStyle": {"color": "#0f766e"},
                "data": [stats[j.id]["active"] for j in items],
            }
        ] + [
            {
                "name": tr("jr.exit", reason=r),
                "type": "bar",
                "stack": "all",
                "data": [stats[j.id]["exits"].get(r, 0) for j in items],
            }
            for r in reasons
        ]
        options = {
            "animation": False,
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0},
            "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
            "xAxis": {"type": "category", "data": names},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": series,
        }
        rows = [
            {
                "name": j.name,
                "entries": stats[j.id]["entries"],
                "active": stats[j.id]["active"],
                "exited": stats[j.id]["exited"],
                "goal": stats[j.id]["goal_reached"],
            }
            for j in items
        ]
        cols = [(c, tr(f"jr.col.{c}")) for c in ("name", "entries", "active", "exited", "goal")]
        chart_block(
            tr("jr.chart"),
            options,
            pd.DataFrame(rows, columns=[c for c, _ in cols]),
            cols,
            "journeys-chart",
            height="260px",
        )

    def template_form(self) -> None:
        if not self.editor:
            return
        templates = {t["id"]: t["description"] for t in template_service.list_templates()}
        with ui.card().classes("w-full").props("flat bordered data-testid=template-form"):
            ui.label(tr("jr.from_template")).classes("text-base font-bold")
            with ui.row().classes("items-end gap-3 w-full"):
                pick = (
                    ui.select(
                        {k: f"{k} · {v}" for k, v in templates.items()}, label=tr("jr.template"), value="win_back"
                    )
                    .classes("w-96")
                    .props("data-testid=template-select")
                )
                name = ui.input(tr("jr.name")).props("data-testid=template-name")
                params = ui.input(tr("jr.params"), value="{}").classes("w-72").props("data-testid=template-params")

                def create() -> None:
                    try:
                        p = json.loads(params.value or "{}")
                        if not isinstance(p, dict):
                            raise ValueError
                    except ValueError:
                        ui.notify(tr("jr.bad_params"), type="negative")
                        return
                    try:
                        j = template_service.create_from_template(
                            self.ctx, self.user, str(pick.value), str(name.value or ""), p
                        )
                    except SiyuError as exc:
                        ui.notify(exc.message, type="negative")
                        return
                    ui.notify(tr("jr.created", name=j.name), type="positive")
                    self.table.refresh()

                ui.button(tr("jr.create"), on_click=create).props("color=teal-8 data-testid=template-create")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/journeys")
    def journeys_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "jr.title", "nav.journeys"):
            ui.label(tr("jr.title")).classes("text-2xl").props("data-testid=journeys-title")
            ui.label(tr("jr.intro" if user.role != Role.GUIDE else "jr.guide_note")).classes("text-gray-600")
            page = JourneyList(context(), user)
            page.table()
            page.template_form()
        return None
