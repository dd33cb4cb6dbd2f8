"""Console page /moments (朋友圈任务): admins and operators publish a Moments task through WeCom (content, a link
or image media ids, target guides, visible-to tags) with the suggested posting times; every task's completion per
guide as a chart and a table. A guide sees the tasks they are among and whether they posted."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import moments
from siyu.services.guide_work import settings as gw

TASK_COLS = ("title", "status", "targets", "done", "completion", "created_at")


def _split(text: Any) -> list[str]:
    return [x.strip() for x in str(text or "").replace("，", ",").split(",") if x.strip()]


class MomentsPage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.manager = user.role != Role.GUIDE

    def form(self) -> None:
        if not self.manager:
            return
        guides = {g.guide_id: f"{g.guide_id} {g.name}" for g in gw.guides(self.ctx, self.user.brand_id)}
        with ui.card().classes("w-full").props("flat bordered"):
            ui.label(tr("gw.mo.new")).classes("text-base font-bold")
            times = moments.suggested_times(self.ctx, self.user.brand_id)
            ui.label(tr("gw.mo.suggested", times="、".join(t.replace("T", " ")[:16] for t in times))).classes(
                "text-sm text-gray-600"
            ).props("data-testid=mo-suggested")
            with ui.row().classes("items-end gap-3 w-full"):
                title = ui.input(tr("gw.mo.task_title")).classes("w-64").props("data-testid=mo-title")
                sel = (
                    ui.select(guides, label=tr("gw.mo.guides"), multiple=True, value=[])
                    .classes("w-80")
                    .props("use-chips data-testid=mo-guides")
                )
                tags = ui.input(tr("gw.mo.tags")).classes("w-64").props("data-testid=mo-tags")
            content = ui.textarea(tr("gw.mo.content")).classes("w-full").props("data-testid=mo-content")
            with ui.row().classes("items-end gap-3 w-full"):
                link = ui.input(tr("gw.mo.link")).classes("w-96").props("data-testid=mo-link")
                images = ui.input(tr("gw.mo.images")).classes("w-64").props("data-testid=mo-images")

            def publish() -> None:
                att: list[dict[str, Any]] = [{"type": "image", "media_id": m} for m in _split(images.value)]
                if link.value:
                    att.append({"type": "link", "url": str(link.value).strip(), "title": str(title.value or "")})
                from siyu.services.wecom.config import client_for, get_config

                try:
                    client = client_for(get_config(self.ctx, self.user.brand_id))
                    try:
                        moments.publish(
                            self.ctx,
                            self.user,
                            client,
                            str(title.value or ""),
                            str(content.value or ""),
                            att,
                            list(sel.value or []) or None,
                            None,
                            _split(tags.value) or None,
                        )
                    finally:
                        client.close()
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                ui.notify(tr("gw.mo.published"), type="positive")
                self.body.refresh()

            ui.button(tr("gw.mo.publish"), on_click=publish).props("color=teal-8 data-testid=mo-publish")

    @ui.refreshable_method
    def body(self) -> None:
        tasks = moments.list_tasks(self.ctx, self.user)
        done = sum(t["done"] for t in tasks)
        targets = sum(t["targets"] for t in tasks)
        with ui.row().classes("gap-3"):
            kpi_card(tr("gw.mo.tasks"), len(tasks), "mo-count")
            kpi_card(tr("gw.mo.done"), f"{done}/{targets}", "mo-done")
        frame_ = pd.DataFrame(tasks, columns=list(TASK_COLS))
        frame_["status"] = [tr(f"gw.mo.status.{s}") for s in frame_["status"]]
        if self.manager and not frame_.empty:
            options: dict[str, Any] = {
                "animation": False,
                "tooltip": {"trigger": "axis"},
                "grid": {"left": 50, "right": 20, "top": 20, "bottom": 60},
                "xAxis": {"type": "category", "data": list(frame_["title"])},
                "yAxis": {"type": "value", "max": 1, "name": tr("gw.mo.completion")},
                "series": [
                    {
                        "type": "bar",
                        "itemStyle": {"color": "#0f766e"},
                        "data": [None if c is None else float(c) for c in frame_["completion"]],
                    }
                ],
            }
            cols = [(c, tr(f"gw.mo.col.{c}")) for c in TASK_COLS]
            chart_block(tr("gw.mo.completion_chart"), options, frame_, cols, "mo-completion", height="260px")
        data_table(frame_, [(c, tr(f"gw.mo.col.{c}")) for c in TASK_COLS], "mo-tasks")
        for t in tasks[:50]:
            with (
                ui.expansion(f"{t['title']} · {t['done']}/{t['targets']}")
                .classes("w-full")
                .props(f"data-testid=mo-task-{t['id']}")
            ):
                if t["content"]:
                    ui.label(t["content"]).classes("text-sm bg-gray-100 p-2 rounded w-full")
                rows = pd.DataFrame(t["guides"], columns=["guide_id", "userid", "status", "done_at"])
                rows["status"] = [tr(f"gw.mo.guide_status.{s}") for s in rows["status"]]
                data_table(rows, [(c, tr(f"gw.mo.col.{c}")) for c in rows.columns], f"mo-guides-{t['id']}")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/moments")
    def moments_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "gw.mo.title", "gw.nav.moments"):
            ui.label(tr("gw.mo.title")).classes("text-2xl").props("data-testid=mo-title-label")
            ui.label(tr("gw.mo.intro_guide" if user.role == Role.GUIDE else "gw.mo.intro")).classes("text-gray-600")
            page = MomentsPage(context(), user)
            page.form()
            page.body()
        return None
