"""Console page /tasks (导购任务): a guide's daily list of journey tasks — overdue, due today, upcoming — filtered by
kind and status, each with the customer 360 link, the script, and complete / skip with a note. Admins and
operators see every guide's tasks with a guide filter and each guide's completion rate. A guide sees only their
own tasks (``siyu.services.journeys.tasks`` enforces it)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console import guide_inbox
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, kpi_card
from siyu.display import local_text
from siyu.domain.brand_time import day_end_utc, local_day
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys import tasks as task_service

KINDS = ("call", "message", "visit")
MAX_TASKS = 10_000


def all_tasks(ctx: Context, user: User, status: str | None, guide_id: str | None = None) -> list[dict[str, Any]]:
    """Every task visible to ``user`` (up to ``MAX_TASKS``), soonest due first."""
    out: list[dict[str, Any]] = []
    page = 1
    while len(out) < MAX_TASKS:
        got = task_service.list_tasks(ctx, user, status, guide_id, None, page, task_service.MAX_PAGE_SIZE)
        out += got["items"]
        if page * got["page_size"] >= got["total"]:
            break
        page += 1
    return out


def dom_id(task_id: str) -> str:
    """A task id usable in a test id / CSS selector (task ids hold colons)."""
    return task_id.replace(":", "_")


def bucket(due_at: str, now: datetime) -> str:
    """overdue / today / upcoming, by the local (Asia/Shanghai) day."""
    due = datetime.fromisoformat(due_at)
    if due < now:
        return "overdue"
    return "today" if due < day_end_utc(local_day(now)) else "upcoming"


def completion_by_guide(tasks: list[dict[str, Any]]) -> pd.DataFrame:
    """Per guide: tasks, done, skipped, open and the completion rate (done / tasks)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"open": 0, "done": 0, "skipped": 0})
    for t in tasks:
        counts[t["guide_id"] or "-"][t["status"]] += 1
    rows = [
        {"guide": g, "tasks": sum(c.values()), **c, "rate": round(c["done"] / sum(c.values()), 3)}
        for g, c in sorted(counts.items())
    ]
    return pd.DataFrame(rows, columns=["guide", "tasks", "done", "skipped", "open", "rate"])


class Inbox:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.manager = user.role != Role.GUIDE
        self.kind: str | None = None
        self.status: str | None = "open"
        self.guide: str | None = None

    def filters(self) -> None:
        with ui.row().classes("items-end gap-3"):
            kinds = {"": tr("task.all"), **{k: tr(f"task.kind.{k}") for k in KINDS}}
            ui.select(kinds, label=tr("task.kind"), value="", on_change=lambda e: self._set("kind", e.value)).classes(
                "w-36"
            ).props("data-testid=filter-kind")
            statuses = {"": tr("task.all"), **{s: tr(f"task.status.{s}") for s in task_service.TASK_STATUSES}}
            ui.select(
                statuses, label=tr("task.status"), value="open", on_change=lambda e: self._set("status", e.value)
            ).classes("w-36").props("data-testid=filter-status")
            if self.manager:
                guides = sorted({t["guide_id"] for t in all_tasks(self.ctx, self.user, None) if t["guide_id"]})
                ui.select(
                    {"": tr("task.all"), **{g: g for g in guides}},
                    label=tr("task.guide"),
                    value="",
                    on_change=lambda e: self._set("guide", e.value),
                ).classes("w-44").props("data-testid=filter-guide")

    def _set(self, key: str, value: Any) -> None:
        setattr(self, key, value or None)
        self.inbox.refresh()

    def _finish(self, task_id: str, status: str, note: str) -> None:
        try:
            task_service.finish_task(self.ctx, self.user, task_id, status, note)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr(f"task.finished.{status}"), type="positive")
        self.inbox.refresh()
        if self.manager:
            self.rates.refresh()

    def _card(self, t: dict[str, Any]) -> None:
        tid = dom_id(t["id"])
        with ui.card().classes("w-full").props(f"flat bordered data-testid=task-{tid}"):
            with ui.row().classes("items-center gap-3 w-full"):
                ui.badge(tr(f"task.kind.{t['kind']}"), color="teal-8")
                ui.label(t["title"]).classes("font-bold")
                ui.label(f"{tr('task.due')} {local_text(t['due_at'])}").classes("text-sm text-gray-600")
                ui.link(f"{tr('task.customer')} {t['customer_id']}", t["customer_url"]).props(
                    f"data-testid=task-{tid}-customer"
                )
                ui.label(f"{tr('task.journey')}: {t['journey_name'] or t['journey_id']}").classes("text-sm")
                if self.manager:
                    ui.label(f"{tr('task.guide')}: {t['guide_id'] or '-'}").classes("text-sm")
                ui.badge(tr(f"task.status.{t['status']}"), color="grey-7").props(f"data-testid=task-{tid}-status")
            if t["script"]:
                ui.label(t["script"]).classes("text-sm bg-gray-100 p-2 rounded w-full").props(
                    f"data-testid=task-{tid}-script"
                )
            if t["status"] == "open":
                with ui.row().classes("items-end gap-2 w-full"):
                    note = ui.input(tr("task.note")).classes("grow").props(f"dense data-testid=task-{tid}-note")
                    ui.button(
                        tr("task.complete"),
                        on_click=lambda _, n=note: self._finish(t["id"], "done", str(n.value or "")),
                    ).props(f"dense color=teal-8 data-testid=task-{tid}-complete")
                    ui.button(
                        tr("task.skip"), on_click=lambda _, n=note: self._finish(t["id"], "skipped", str(n.value or ""))
                    ).props(f"dense outline data-testid=task-{tid}-skip")
            elif t["note"]:
                ui.label(f"{tr('task.note')}: {t['note']}").classes("text-sm text-gray-600")

    @ui.refreshable_method
    def inbox(self) -> None:
        tasks = all_tasks(self.ctx, self.user, self.status, self.guide)
        if self.kind:
            tasks = [t for t in tasks if t["kind"] == self.kind]
        now = datetime.now(UTC).replace(tzinfo=None)
        groups: dict[str, list[dict[str, Any]]] = {"overdue": [], "today": [], "upcoming": []}
        for t in tasks:
            groups[bucket(t["due_at"], now)].append(t)
        with ui.row().classes("gap-3"):
            kpi_card(tr("task.total"), len(tasks), "kpi-tasks")
            for g, items in groups.items():
                kpi_card(tr(f"task.group.{g}"), len(items), f"kpi-{g}")
        for g, items in groups.items():
            if not items:
                continue
            ui.label(f"{tr(f'task.group.{g}')} ({len(items)})").classes("text-lg font-bold").props(
                f"data-testid=group-{g}"
            )
            for t in items[:200]:
                self._card(t)
        if not tasks:
            ui.label(tr("task.empty")).classes("text-gray-500").props("data-testid=tasks-empty")

    @ui.refreshable_method
    def rates(self) -> None:
        if not self.manager:
            return
        frame_ = completion_by_guide(all_tasks(self.ctx, self.user, None))
        options = {
            "animation": False,
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 50, "right": 20, "top": 20, "bottom": 40},
            "xAxis": {"type": "category", "data": list(frame_["guide"])},
            "yAxis": {"type": "value", "max": 1, "name": tr("task.rate")},
            "series": [{"type": "bar", "itemStyle": {"color": "#0f766e"}, "data": list(frame_["rate"])}],
        }
        cols = [(c, tr(f"task.col.{c}")) for c in ("guide", "tasks", "done", "skipped", "open", "rate")]
        chart_block(tr("task.rates"), options, frame_, cols, "guide-rates", height="260px")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/tasks")
    def tasks_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "task.title", "nav.tasks"):
            ui.label(tr("task.title")).classes("text-2xl").props("data-testid=tasks-title")
            ui.label(tr("task.guide_note" if user.role == Role.GUIDE else "task.intro")).classes("text-gray-600")
            page = Inbox(context(), user)
            page.filters()
            page.rates()
            page.inbox()
            guide_inbox.other_items(context(), user)  # follow-up reminders, Moments, campaign tasks
        return None
