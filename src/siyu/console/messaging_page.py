"""Console page /messaging: the outbox (counts per status, a chart per channel × status, a filtered table), the
dead letters with a re-send button each, and the provider settings form (SMS, SMTP, marketing cap; not for
guides; secrets are never shown, only whether they are set)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.domain.models import Role
from siyu.domain.pii import mask_contact, mask_record
from siyu.services import messaging
from siyu.services.brands import User
from siyu.services.errors import SiyuError

COLUMNS = (
    "id",
    "channel",
    "purpose",
    "recipient",
    "template",
    "status",
    "attempts",
    "error",
    "vendor_id",
    "created_at",
)
STATUS_COLORS = {"sent": "#0f766e", "queued": "#0284c7", "sending": "#6366f1", "failed": "#d97706", "dead": "#b91c1c"}


def _rows(items: list[dict[str, Any]]) -> pd.DataFrame:
    """Outbox rows for the table (status translated, the error code with its meaning)."""
    rows = [
        {
            **{c: m.get(c) for c in COLUMNS},
            "status": tr(f"messaging.status.{m['status']}"),
            "error": (m["error_code"] or "") + (f": {m['error']}" if m["error"] else ""),
            "vendor_id": m["vendor_id"] or "",
        }
        for m in items
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def status_chart(items: list[dict[str, Any]]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Stacked bars: messages per channel, one colour per status (and the same numbers as a table)."""
    counts = (
        pd.DataFrame([(m["channel"], m["status"]) for m in items], columns=["channel", "status"])
        .value_counts()
        .rename("count")
        .reset_index()
    )
    channels = list(messaging.CHANNELS)
    series = []
    for st in messaging.STATUSES:
        sub = counts[counts["status"] == st].set_index("channel")["count"]
        series.append(
            {
                "name": tr(f"messaging.status.{st}"),
                "type": "bar",
                "stack": "all",
                "itemStyle": {"color": STATUS_COLORS[st]},
                "data": [int(sub.get(ch, 0)) for ch in channels],
            }
        )
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [s["name"] for s in series], "top": 0},
        "grid": {"left": 50, "right": 20, "top": 50, "bottom": 30},
        "xAxis": {"type": "category", "data": channels},
        "yAxis": {"type": "value", "name": tr("messaging.col.count")},
        "series": series,
    }
    table = counts.assign(status=counts["status"].map(lambda s: tr(f"messaging.status.{s}")))
    return options, table


def _provider_form(user: User) -> None:
    ctx = context()
    current = messaging.public_settings(ctx, user)

    def field(channel: str, name: str, secret: bool = False) -> Any:
        cur = current.get(channel) or {}
        if secret:
            hint = tr("messaging.secret_set") if cur.get(f"{name}_set") else tr("messaging.secret_unset")
            return (
                ui.input(tr(f"messaging.field.{name}"), password=True, placeholder=hint)
                .props(f"dense data-testid={channel}-{name}")
                .classes("w-72")
            )
        return (
            ui.input(tr(f"messaging.field.{name}"), value=str(cur.get(name) or ""))
            .props(f"dense data-testid={channel}-{name}")
            .classes("w-72")
        )

    def save(channel: str, provider: str, inputs: dict[str, Any]) -> None:
        values = {k: (w.value or None) for k, w in inputs.items()}
        try:
            messaging.set_provider(ctx, user, channel, provider, values)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        for k, w in inputs.items():
            if k in ("access_key_secret", "password"):
                w.value = ""
                w.props(f"placeholder='{tr('messaging.secret_set')}'")
        ui.notify(tr("messaging.saved"), type="positive")

    with ui.row().classes("gap-6 items-start"):
        with ui.card().props("flat bordered data-testid=sms-form"):
            ui.label(tr("messaging.sms")).classes("font-bold")
            sms = {n: field("sms", n) for n in ("access_key_id", "sign_name", "endpoint")}
            sms["access_key_secret"] = field("sms", "access_key_secret", secret=True)
            ui.button(tr("messaging.save"), on_click=lambda: save("sms", "aliyun", sms)).props(
                "icon=save data-testid=sms-save"
            )
        with ui.card().props("flat bordered data-testid=email-form"):
            ui.label(tr("messaging.email")).classes("font-bold")
            email = {n: field("email", n) for n in ("host", "port", "username", "from_address", "from_name")}
            cur = current.get("email") or {}
            email["security"] = (
                ui.select(
                    ["starttls", "ssl", "none"],
                    value=cur.get("security") or "starttls",
                    label=tr("messaging.field.security"),
                )
                .props("dense data-testid=email-security")
                .classes("w-72")
            )
            email["password"] = field("email", "password", secret=True)
            ui.button(tr("messaging.save"), on_click=lambda: save("email", "smtp", email)).props(
                "icon=save data-testid=email-save"
            )
        with ui.card().props("flat bordered data-testid=cap-form"):
            ui.label(tr("messaging.cap")).classes("font-bold")
            cap = ui.number(value=current["marketing_daily_cap"], min=0, max=20, step=1).props(
                "dense data-testid=cap-value"
            )

            def save_cap() -> None:
                try:
                    messaging.set_marketing_cap(ctx, user, int(cap.value or 0))
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                ui.notify(tr("messaging.saved"), type="positive")

            ui.button(tr("messaging.save"), on_click=save_cap).props("icon=save data-testid=cap-save")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/messaging")
    def messaging_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        ctx = context()
        with frame(user, "messaging.title", "nav.messaging"):
            ui.label(tr("messaging.title")).classes("text-2xl").props("data-testid=messaging-title")
            ui.label(tr("messaging.guide_note") if user.role == Role.GUIDE else tr("messaging.intro")).classes(
                "text-sm text-gray-500"
            )
            page = messaging.list_messages(ctx, user, limit=500)
            with ui.row().classes("gap-3"):
                for st in ("sent", "queued", "failed", "dead"):
                    kpi_card(tr(f"messaging.kpi.{st}"), page["by_status"][st], f"kpi-{st}")
            options, counts = status_chart(page["items"])
            chart_block(
                tr("messaging.chart"),
                options,
                counts,
                [
                    ("channel", tr("messaging.col.channel")),
                    ("status", tr("messaging.col.status")),
                    ("count", tr("messaging.col.count")),
                ],
                "messaging-chart",
                height="280px",
            )
            with ui.tabs().props("dense align=left") as tabs:
                t_out = ui.tab(tr("messaging.tab.outbox")).props("data-testid=tab-outbox")
                t_dead = ui.tab(tr("messaging.tab.dead")).props("data-testid=tab-dead")
                t_prov = (
                    ui.tab(tr("messaging.tab.providers")).props("data-testid=tab-providers")
                    if user.role != Role.GUIDE
                    else None
                )
            with ui.tab_panels(tabs, value=t_out).classes("w-full"):
                with ui.tab_panel(t_out):
                    _outbox(user)
                with ui.tab_panel(t_dead):
                    _dead_letters(user)
                if t_prov is not None:
                    with ui.tab_panel(t_prov):
                        _provider_form(user)
        return None


def _labels() -> list[tuple[str, str]]:
    return [(c, tr(f"messaging.col.{c}")) for c in COLUMNS]


def _outbox(user: User) -> None:
    ctx = context()
    options = {"": tr("messaging.filter.all"), **{s: tr(f"messaging.status.{s}") for s in messaging.STATUSES}}
    channels = {"": tr("messaging.filter.all"), **{c: c for c in messaging.CHANNELS}}
    with ui.row().classes("gap-3"):
        status = (
            ui.select(options, value="", label=tr("messaging.filter.status"))
            .props("dense data-testid=filter-status")
            .classes("w-40")
        )
        channel = (
            ui.select(channels, value="", label=tr("messaging.filter.channel"))
            .props("dense data-testid=filter-channel")
            .classes("w-40")
        )

    @ui.refreshable
    def table() -> None:
        page = messaging.list_messages(ctx, user, status.value or None, channel.value or None, limit=500)
        data_table(_rows([mask_record(m, ("recipient",)) for m in page["items"]]), _labels(), "outbox-table")

    status.on_value_change(table.refresh)
    channel.on_value_change(table.refresh)
    table()


def _dead_letters(user: User) -> None:
    ctx = context()

    @ui.refreshable
    def letters() -> None:
        page = messaging.list_messages(ctx, user, "dead", limit=200)
        if not page["items"]:
            ui.label(tr("messaging.no_dead")).classes("text-gray-500").props("data-testid=no-dead")
            return
        for m in page["items"]:
            with ui.card().classes("w-full").props(f"flat bordered data-testid=dead-{m['id']}"):
                with ui.row().classes("items-center justify-between w-full"):
                    shown = mask_contact(m["recipient"]) if m["recipient"] else ""
                    ui.label(f"{m['channel']} · {shown} · {m['template']}").classes("font-bold")
                    if user.role != Role.GUIDE:
                        ui.button(tr("messaging.resend"), on_click=lambda mid=m["id"]: resend(mid)).props(
                            f"dense icon=replay data-testid=resend-{m['id']}"
                        )
                ui.label(f"{m['error_code'] or ''}: {m['error'] or ''}").classes("text-sm text-red-800")
                ui.label(f"{tr('messaging.col.attempts')}: {m['attempts']} · {m['id']}").classes(
                    "text-xs text-gray-500"
                )

    def resend(mid: str) -> None:
        try:
            messaging.resend(ctx, user, mid)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("messaging.resent", id=mid), type="positive")
        letters.refresh()

    letters()
