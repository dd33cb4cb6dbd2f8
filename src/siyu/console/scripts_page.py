"""Console page /scripts (话术库 / 素材库): folders, search, the items with their use counts and sidebar sends
(prepared vs sent: a use counts only once WeCom confirms the send), charts of the most used ones and of prepared vs
sent; operators create, edit and delete items and folders (``siyu.services.scripts``), guides read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from nicegui import events, ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, kpi_card
from siyu.domain.models import Role
from siyu.domain.scripts import KINDS, PAYLOAD_FIELDS
from siyu.services import scripts as service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError

TOP = 10
FIELD_KEYS = {
    "url": "scripts.url",
    "image_url": "scripts.image_url",
    "media_id": "scripts.media_id",
    "appid": "scripts.appid",
    "page": "scripts.page",
    "file_name": "scripts.file_name",
}


def top_used(items: list[dict[str, Any]], n: int = TOP) -> pd.DataFrame:
    """The ``n`` most used items (title, kind, uses), most used first."""
    rows = sorted(items, key=lambda i: (-i["use_count"], i["id"]))[:n]
    return pd.DataFrame(
        [{"title": i["title"], "kind": i["kind"], "uses": i["use_count"]} for i in rows],
        columns=["title", "kind", "uses"],
    )


def sends_frame(items: list[dict[str, Any]], sends: dict[int, dict[str, int]], n: int = TOP) -> pd.DataFrame:
    """Prepared vs sent sidebar sends of the ``n`` items prepared most (title, prepared, sent), most first."""
    rows = sorted((i for i in items if i["id"] in sends), key=lambda i: (-sends[i["id"]]["prepared"], i["id"]))[:n]
    return pd.DataFrame(
        [{"title": i["title"], "prepared": sends[i["id"]]["prepared"], "sent": sends[i["id"]]["sent"]} for i in rows],
        columns=["title", "prepared", "sent"],
    )


def all_items(
    ctx: Context, user: User, q: str = "", folder_id: int | None = None, kind: str | None = None
) -> list[Any]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        got = service.search_scripts(ctx, user, q, folder_id, kind, "popular", page, service.MAX_PAGE_SIZE)
        out += got["items"]
        if page * got["page_size"] >= got["total"] or page >= 50:
            return out
        page += 1


class Library:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.editor = user.role != Role.GUIDE
        self.q = ""
        self.folder: int | None = None
        self.kind: str | None = None

    def _folders(self) -> dict[int, str]:
        return {f["id"]: f["name"] for f in service.list_folders(self.ctx, self.user)}

    def _set(self, key: str, value: Any) -> None:
        setattr(self, key, value)
        self.items.refresh()

    def filters(self) -> None:
        with ui.row().classes("items-end gap-3 w-full"):
            ui.input(tr("scripts.search"), on_change=lambda e: self._set("q", str(e.value or ""))).classes(
                "w-72"
            ).props("clearable data-testid=scripts-search debounce=300")
            kinds = {"": tr("scripts.all"), **{k: tr(f"sidebar.kind.{k}") for k in KINDS}}
            ui.select(
                kinds, label=tr("scripts.kind"), value="", on_change=lambda e: self._set("kind", e.value or None)
            ).classes("w-36").props("data-testid=scripts-kind")

    @ui.refreshable_method
    def folders(self) -> None:
        rows = service.list_folders(self.ctx, self.user)
        with ui.column().classes("gap-1 w-56").props("data-testid=folders"):
            ui.label(tr("scripts.folders")).classes("font-bold")
            ui.button(tr("scripts.all"), on_click=lambda: self._set("folder", None)).props("flat dense no-caps")
            ui.button(tr("scripts.unfiled"), on_click=lambda: self._set("folder", 0)).props("flat dense no-caps")
            for f in rows:
                indent = "pl-4" if f["parent_id"] else ""
                ui.button(
                    f"{f['name']} ({f['items']})", on_click=lambda _, fid=f["id"]: self._set("folder", fid)
                ).props(f"flat dense no-caps data-testid=folder-{f['id']}").classes(indent)
            if self.editor:
                name = ui.input(tr("scripts.folder_name")).props("dense data-testid=folder-name")
                ui.button(tr("scripts.new_folder"), on_click=lambda: self._new_folder(str(name.value or ""))).props(
                    "dense outline data-testid=folder-add"
                )

    def _new_folder(self, name: str) -> None:
        try:
            service.create_folder(self.ctx, self.user, name)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        self.folders.refresh()
        self.form.refresh()

    @ui.refreshable_method
    def items(self) -> None:
        items = all_items(self.ctx, self.user, self.q, self.folder, self.kind)
        everything = all_items(self.ctx, self.user)
        with ui.row().classes("gap-3"):
            kpi_card(tr("scripts.total", n=len(items)), len(items), "kpi-scripts")
            kpi_card(tr("scripts.uses"), sum(i["use_count"] for i in everything), "kpi-uses")
        top = top_used(everything)
        options = {
            "animation": False,
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 140, "right": 20, "top": 10, "bottom": 30},
            "xAxis": {"type": "value", "minInterval": 1},
            "yAxis": {"type": "category", "inverse": True, "data": list(top["title"])},
            "series": [{"type": "bar", "itemStyle": {"color": "#0f766e"}, "data": [int(x) for x in top["uses"]]}],
        }
        cols = [("title", tr("scripts.item_title")), ("kind", tr("scripts.kind")), ("uses", tr("scripts.uses"))]
        chart_block(tr("scripts.top_chart"), options, top, cols, "scripts-top", height="280px")
        sends = service.send_counts(self.ctx, self.user)
        if sends:
            sf = sends_frame(everything, sends)
            names = [tr("scripts.prepared"), tr("scripts.sent")]
            chart_block(
                tr("scripts.sends_chart"),
                {
                    "animation": False,
                    "tooltip": {"trigger": "axis"},
                    "legend": {"data": names},
                    "grid": {"left": 140, "right": 20, "top": 30, "bottom": 30},
                    "xAxis": {"type": "value", "minInterval": 1},
                    "yAxis": {"type": "category", "inverse": True, "data": list(sf["title"])},
                    "series": [
                        {
                            "name": names[0],
                            "type": "bar",
                            "itemStyle": {"color": "#94a3b8"},
                            "data": list(map(int, sf["prepared"])),
                        },
                        {
                            "name": names[1],
                            "type": "bar",
                            "itemStyle": {"color": "#0f766e"},
                            "data": list(map(int, sf["sent"])),
                        },
                    ],
                },
                sf,
                [("title", tr("scripts.item_title")), ("prepared", names[0]), ("sent", names[1])],
                "scripts-sends",
                height="280px",
            )
        ui.label(tr("scripts.total", n=len(items))).classes("text-gray-600").props("data-testid=scripts-total")
        for i in items[:200]:
            with ui.card().classes("w-full").props(f"flat bordered data-testid=script-{i['id']}"):
                with ui.row().classes("items-center gap-2 w-full"):
                    ui.badge(tr(f"sidebar.kind.{i['kind']}"), color="teal-8")
                    ui.label(i["title"]).classes("font-bold grow")
                    ui.label(f"{tr('scripts.uses')}: {i['use_count']}").classes("text-sm").props(
                        f"data-testid=script-{i['id']}-uses"
                    )
                    if i["id"] in sends:
                        got = sends[i["id"]]
                        ui.label(tr("scripts.sends", prepared=got["prepared"], sent=got["sent"])).classes(
                            "text-xs text-gray-500"
                        ).props(f"data-testid=script-{i['id']}-sends")
                    if self.editor:
                        ui.button(tr("scripts.delete"), on_click=lambda _, sid=i["id"]: self._delete(sid)).props(
                            f"dense flat color=negative data-testid=script-{i['id']}-delete"
                        )
                if i["has_file"]:
                    ui.icon("attach_file").props(f"data-testid=script-{i['id']}-file")
                if i["body"]:
                    ui.label(i["body"]).classes("text-sm text-gray-700 whitespace-pre-wrap")
                link = i["payload"].get("url") or i["payload"].get("image_url")
                if link:
                    ui.label(link).classes("text-xs text-gray-500")

    def _delete(self, script_id: int) -> None:
        service.delete_script(self.ctx, self.user, script_id)
        ui.notify(tr("scripts.deleted"))
        self.items.refresh()
        self.folders.refresh()

    @ui.refreshable_method
    def form(self) -> None:
        if not self.editor:
            ui.label(tr("scripts.guide_readonly")).classes("text-gray-600")
            return
        folders = {0: tr("scripts.unfiled"), **self._folders()}
        with ui.card().classes("w-full").props("flat bordered data-testid=script-form"):
            ui.label(tr("scripts.new")).classes("font-bold")
            kind = ui.select({k: tr(f"sidebar.kind.{k}") for k in KINDS}, label=tr("scripts.kind"), value="text")
            kind.props("data-testid=form-kind").classes("w-40")
            title = ui.input(tr("scripts.item_title")).props("data-testid=form-title").classes("w-full")
            body = ui.textarea(tr("scripts.body")).props("data-testid=form-body").classes("w-full")
            extra = {
                f: ui.input(tr(key)).props(f"data-testid=form-{f}").classes("w-full") for f, key in FIELD_KEYS.items()
            }
            keywords = ui.input(tr("scripts.keywords")).props("data-testid=form-keywords").classes("w-full")
            folder = ui.select(folders, label=tr("scripts.folder"), value=0).props("data-testid=form-folder")
            held: dict[str, tuple[str, bytes, str]] = {}
            picked = ui.label("").classes("text-sm text-gray-600").props("data-testid=form-file-name")

            async def on_upload(e: events.UploadEventArguments) -> None:
                held["file"] = (Path(e.file.name).name, await e.file.read(), e.file.content_type or "")
                picked.text = tr("scripts.file_picked", name=held["file"][0])

            ui.upload(label=tr("scripts.upload"), on_upload=on_upload, auto_upload=True, max_files=1).props(
                "accept=.jpg,.jpeg,.png,.pdf,.doc,.docx,.xls,.xlsx,.ppt,.pptx,.zip data-testid=form-upload"
            ).classes("w-96")

            def save() -> None:
                k = str(kind.value)
                payload = {f: str(extra[f].value) for f in PAYLOAD_FIELDS[k] if extra[f].value}
                file = held.get("file") if k in ("image", "file") else None
                try:
                    service.create_script(
                        self.ctx, self.user, k, str(title.value or ""), str(body.value or ""), payload,
                        int(folder.value or 0), str(keywords.value or ""), file=file,
                    )  # fmt: skip
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                ui.notify(tr("scripts.saved"), type="positive")
                self.items.refresh()
                self.folders.refresh()
                self.form.refresh()

            ui.button(tr("scripts.save"), on_click=save).props("color=teal-8 data-testid=form-save")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/scripts")
    def scripts_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "scripts.title", "nav.scripts"):
            ui.label(tr("scripts.title")).classes("text-2xl").props("data-testid=scripts-title")
            page = Library(context(), user)
            with ui.row().classes("w-full items-start gap-4 no-wrap"):
                page.folders()
                with ui.column().classes("grow gap-3"):
                    page.filters()
                    page.items()
                    page.form()
        return None
