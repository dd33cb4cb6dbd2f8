"""Console page /wecom/settings (企业微信设置): the brand's WeCom connection (corp id, API base; secrets never
shown) and WeCom's trusted-domain verification file — admins upload ``WW_verify_….txt`` here (or delete it); siyu
serves it at the web root with its exact bytes (``siyu.services.sidebar.verify_file``; each change an audit entry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nicegui import events, ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.display import local_text
from siyu.domain.models import Role
from siyu.errors import NotFound, SiyuError
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.sidebar import verify_file
from siyu.services.wecom.config import get_config


class SettingsPage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user

    def connection(self) -> None:
        with ui.card().classes("w-full"):
            try:
                cfg = get_config(self.ctx, self.user.brand_id).public()
            except NotFound:
                ui.label(tr("wecom_settings.not_configured")).props("data-testid=wecom-not-configured")
                return
            ui.label(f"{tr('wecom_settings.corp')}: {cfg['corp_id']}").props("data-testid=wecom-corp")
            ui.label(str(cfg.get("api_base") or "")).classes("text-xs text-gray-500")

    @ui.refreshable_method
    def verify(self) -> None:
        with ui.card().classes("w-full"):
            ui.label(tr("wecom_settings.verify")).classes("text-lg")
            f = verify_file.get_file(self.ctx, self.user.brand_id)
            if f is None:
                ui.label(tr("wecom_settings.verify_none")).props("data-testid=verify-current")
            else:
                ui.label(
                    tr(
                        "wecom_settings.verify_current",
                        name=f["name"],
                        bytes=f["bytes"],
                        at=local_text(f["set_at"]),
                        by=f["set_by"] or "-",
                        path=f["path"],
                    )
                ).props(f"data-testid=verify-current data-name={f['name']}")
            if self.user.role != Role.ADMIN:
                ui.label(tr("wecom_settings.admins_only")).classes("text-sm text-gray-500")
                return

            async def on_upload(e: events.UploadEventArguments) -> None:
                name = Path(e.file.name).name
                content = await e.file.read()
                try:
                    verify_file.set_file(
                        self.ctx, self.user.brand_id, name, content[: verify_file.MAX_BYTES + 1], self.user
                    )
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                ui.notify(tr("wecom_settings.uploaded", name=name), type="positive")
                self.verify.refresh()

            ui.upload(label=tr("wecom_settings.upload"), on_upload=on_upload, auto_upload=True, max_files=1).props(
                "accept=.txt data-testid=verify-upload"
            )
            if f is not None:

                def clear() -> None:
                    verify_file.clear_file(self.ctx, self.user.brand_id, self.user)
                    ui.notify(tr("wecom_settings.cleared"))
                    self.verify.refresh()

                ui.button(tr("wecom_settings.clear"), on_click=clear).props("flat icon=delete data-testid=verify-clear")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/wecom/settings")
    def wecom_settings_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "wecom_settings.title", "wecom_settings.nav"):
            ui.label(tr("wecom_settings.title")).classes("text-2xl").props("data-testid=wecom-settings-title")
            ui.label(tr("wecom_settings.intro")).classes("text-sm text-gray-500")
            page = SettingsPage(context(), user)
            page.connection()
            page.verify()
        return None
