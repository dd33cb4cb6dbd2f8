"""The part of the guide's inbox on /tasks that is not a journey task: follow-up reminders, Moments tasks to post
and campaign tasks (``siyu.services.guide_work.inbox``), soonest due first."""

from __future__ import annotations

from nicegui import ui

from siyu.console.session import tr
from siyu.display import local_text
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.guide_work import inbox

OTHER_SOURCES = ("followup", "moment", "campaign")


def other_items(ctx: Context, user: User) -> None:
    """Follow-up reminders, Moments and campaign tasks of the user's inbox (a guide: their own)."""
    box = inbox.inbox(ctx, user, None, OTHER_SOURCES)
    with ui.card().classes("w-full").props("flat bordered data-testid=inbox-others"):
        with ui.row().classes("items-center gap-3"):
            ui.label(tr("gw.inbox.title")).classes("text-lg font-bold")
            for s in OTHER_SOURCES:
                ui.badge(f"{tr(f'gw.inbox.source.{s}')} {box['counts'][s]}", color="teal-8").props(
                    f"data-testid=inbox-count-{s}"
                )
            if box["digest"]:
                d = box["digest"]
                ui.label(tr("gw.inbox.digest", due=d["due"], overdue=d["overdue"])).classes("text-sm text-gray-600")
        if not box["items"]:
            ui.label(tr("gw.inbox.empty")).classes("text-gray-500")
        for it in box["items"][:200]:
            with ui.row().classes("items-center gap-3 w-full").props(f"data-testid=inbox-{it['source']}-{it['id']}"):
                ui.badge(tr(f"gw.inbox.source.{it['source']}"), color="grey-7")
                ui.label(it["title"] or "—").classes("font-bold")
                if it["due_at"]:
                    color = "text-red-700" if it["overdue"] else "text-gray-600"
                    ui.label(f"{tr('task.due')} {local_text(it['due_at'])}").classes(f"text-sm {color}")
                if it["customer_id"]:
                    ui.link(f"{tr('task.customer')} {it['customer_id']}", f"/customers/{it['customer_id']}")
