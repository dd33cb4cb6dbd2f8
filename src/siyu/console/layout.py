"""The console frame: header (brand, user, language switch, logout) and the left navigation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import __version__ as nicegui_version
from nicegui import ui

from siyu.console.session import MOUNT_PATH, lang, sign_out, switch_language, tr
from siyu.services.brands import User

# (translation key, path or None when not built yet, icon)
NAV: tuple[tuple[str, str | None, str], ...] = (
    ("nav.customers", "/customers", "people"),
    ("nav.import", "/import", "upload_file"),
    ("nav.overview", "/metrics", "dashboard"),
    ("nav.value", "/metrics/value", "insights"),
    ("nav.operations", "/metrics/operations", "account_balance"),
    ("nav.guides", "/metrics/guides", "leaderboard"),
    ("nav.segments", "/segments", "groups"),
    ("nav.clv", "/clv", "savings"),
    ("nav.messaging", "/messaging", "sms"),
    ("nav.journeys", "/journeys", "route"),
    ("nav.tasks", "/tasks", "task_alt"),
    ("nav.scripts", "/scripts", "forum"),
    ("gw.nav.followups", "/followups", "edit_note"),
    ("gw.nav.moments", "/moments", "photo_camera"),
    ("gw.nav.pool", "/pool", "waves"),
    ("gw.nav.scorecard", "/guides/scorecard", "military_tech"),
    ("gw.nav.me", "/guides/me", "person"),
    ("nav.fission", "/campaigns", "share"),
    ("nav.wecom", "/wecom/codes", "chat"),
    ("nav.wecom_ops", "/wecom/ops", "campaign"),
    ("nav.wecom_welcome", "/wecom/welcome", "waving_hand"),
    ("wecom_settings.nav", "/wecom/settings", "admin_panel_settings"),
    ("nav.settings", None, "settings"),
)


def _quasar_language() -> None:
    """Switch Quasar's own texts (table pagination, date pickers…) to the session language.

    The page is served with Quasar in zh-CN (``ui.run_with(language=…)``); for English the en-US pack is loaded
    and applied in the browser."""
    if lang() != "en":
        return
    src = f"{MOUNT_PATH}/_nicegui/{nicegui_version}/static/lang/en-US.umd.prod.js"
    js = (
        "(() => { const use = () => Quasar.Lang.set(Quasar.Lang.enUS);"
        " if (Quasar.Lang.enUS) { use(); return; }"
        f" const s = document.createElement('script'); s.src = '{src}'; s.onload = use;"
        " document.head.appendChild(s); })()"
    )
    ui.timer(0, lambda: ui.run_javascript(js), once=True)


@contextmanager
def frame(user: User, title_key: str, active: str) -> Iterator[None]:
    """Render header + left drawer and yield inside the main content column."""
    ui.page_title(f"{tr(title_key)} · {tr('app.title')}")
    _quasar_language()

    def toggle_language() -> None:
        switch_language(user)
        ui.navigate.reload()

    def logout() -> None:
        sign_out()
        ui.navigate.to("/login")

    with ui.header().classes("items-center justify-between bg-teal-800"):
        ui.label(f"私域 siyu · {tr('app.title')}").classes("text-lg font-bold")
        with ui.row().classes("items-center gap-3"):
            ui.label(f"{tr('app.brand')}: {user.brand_id}")
            ui.label(f"{user.display_name} ({tr('role.' + user.role.value)})").props("data-testid=user-label")
            ui.button(tr("lang.switch"), on_click=toggle_language).props("flat color=white data-testid=lang-switch")
            ui.button(tr("login.logout"), on_click=logout).props("flat color=white")
    with ui.left_drawer(value=True).classes("bg-gray-50").props("width=210 bordered"):
        for key, path, icon in NAV:
            if path is None:
                with ui.row().classes("items-center gap-2 text-gray-400 py-1"):
                    ui.icon(icon)
                    ui.label(tr(key))
                    ui.badge(tr("nav.coming_soon"), color="grey-5").props("outline")
            else:
                cls = "items-center gap-2 py-1 " + ("text-teal-800 font-bold" if active == key else "text-black")
                with ui.link(target=path).classes("no-underline"), ui.row().classes(cls):
                    ui.icon(icon)
                    ui.label(tr(key))
    with ui.column().classes("w-full p-4 gap-4"):
        yield
