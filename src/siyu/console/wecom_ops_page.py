"""Console page /wecom/ops (企微运营) with three tabs: tags (corp tags mirrored from WeCom, new tag, segment tag
rules with refresh), mass sends (KPIs, recipients-by-status chart per send, new send with a byte counter, tasks with
confirmation and results, capped customers) and inheritance (KPIs, status chart, new transfer, per-customer
outcomes with reasons). Guides see their own tasks and transfers and no forms."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import run, ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.domain.models import Role
from siyu.services import segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.wecom import inheritance, mass_send, tag_rules, tags
from siyu.services.wecom.config import client_for, get_config

MASS_STATUSES = ("sent", "queued", "unsent", "not_contact", "other_mass", "failed", "capped")
COLORS = {
    "sent": "#0f766e",
    "queued": "#0284c7",
    "unsent": "#94a3b8",
    "not_contact": "#d97706",
    "other_mass": "#a855f7",
    "failed": "#b91c1c",
    "capped": "#64748b",
    "waiting": "#0284c7",
    "done": "#0f766e",
    "refused": "#d97706",
    "limit": "#a855f7",
}


def mass_chart(sends: list[dict[str, Any]]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Stacked bars: recipients of each send by status (and the same numbers as a table)."""
    names = [s["name"] for s in sends]
    series = [
        {
            "name": tr(f"wops.st.{st}"),
            "type": "bar",
            "stack": "all",
            "itemStyle": {"color": COLORS[st]},
            "data": [int(s["totals"].get(st, 0)) for s in sends],
        }
        for st in MASS_STATUSES
    ]
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [s["name"] for s in series], "top": 0},
        "grid": {"left": 50, "right": 20, "top": 60, "bottom": 30},
        "xAxis": {"type": "category", "data": names},
        "yAxis": {"type": "value", "name": tr("wops.col.count")},
        "series": series,
    }
    rows = [
        {"name": s["name"], "status": tr(f"wops.st.{st}"), "count": int(s["totals"].get(st, 0))}
        for s in sends
        for st in MASS_STATUSES
        if s["totals"].get(st)
    ]
    return options, pd.DataFrame(rows, columns=["name", "status", "count"])


def transfer_chart(totals: dict[str, int]) -> tuple[dict[str, Any], pd.DataFrame]:
    """One bar per customer status over all transfers."""
    sts = list(inheritance.STATUSES)
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 50, "right": 20, "top": 20, "bottom": 30},
        "xAxis": {"type": "category", "data": [tr(f"wops.st.{s}") for s in sts]},
        "yAxis": {"type": "value", "name": tr("wops.col.count")},
        "series": [
            {
                "type": "bar",
                "data": [{"value": int(totals.get(s, 0)), "itemStyle": {"color": COLORS[s]}} for s in sts],
            }
        ],
    }
    frame_ = pd.DataFrame(
        [{"status": tr(f"wops.st.{s}"), "count": int(totals.get(s, 0))} for s in sts], columns=["status", "count"]
    )
    return options, frame_


def _stats(d: dict[str, Any]) -> str:
    return ", ".join(f"{tr(f'wops.st.{k}')} {v}" for k, v in sorted(d.items()) if v) or "-"


class OpsPage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.manager = user.role != Role.GUIDE
        self.send_id: str | None = None
        self.transfer_id: str | None = None
        self.segs = {s.id: s.name for s in segments.list_segments(ctx, user)}

    def _client(self) -> Any:
        return client_for(get_config(self.ctx, self.user.brand_id))

    # -- tags ----------------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def tags_view(self) -> None:
        rows = self.ctx.warehouse.fetch(
            "SELECT tag_id, name FROM tags WHERE brand_id = ? AND source = 'wecom' ORDER BY name", [self.user.brand_id]
        )
        kpi_card(tr("wops.tags.count"), len(rows), "kpi-tags", tr("wops.tags.limit"))
        data_table(
            pd.DataFrame(rows, columns=["tag_id", "name"]),
            [("tag_id", tr("wops.tags.id")), ("name", tr("wops.tags.name"))],
            "tags-table",
        )

    def tag_form(self) -> None:
        with ui.row().classes("items-end gap-3"):
            group = ui.input(tr("wops.tags.group"), value="siyu").props("dense data-testid=tag-group")
            name = ui.input(tr("wops.tags.name")).props("dense data-testid=tag-name")

            async def create() -> None:
                try:
                    made = await run.io_bound(
                        tags.create_tag,
                        self.ctx,
                        self.user,
                        self._client(),
                        str(name.value or ""),
                        str(group.value or ""),
                    )
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                if made is None:
                    return
                ui.notify(tr("wops.tags.created", name=made["name"]), type="positive")
                self.tags_view.refresh()
                self.rules_view.refresh()

            ui.button(tr("wops.tags.create"), on_click=create).props("icon=add data-testid=tag-create")

    @ui.refreshable_method
    def rules_view(self) -> None:
        ui.label(tr("wops.rules.title")).classes("text-lg")
        rules = tag_rules.list_rules(self.ctx, self.user)
        for r in rules:
            res = r["last_result"]
            with ui.row().classes("items-center gap-4").props(f"data-testid=rule-{r['id']}"):
                ui.label(f"{self.segs.get(r['segment_id'], r['segment_id'])} → {r['tag_name'] or r['tag_id']}")
                ui.label(f"{tr('wops.rules.marked')}: {res.get('members', 0) if res else 0}").props(
                    f"data-testid=rule-{r['id']}-members"
                )
                ui.label(f"{tr('wops.rules.at')}: {(r['refreshed_at'] or '-')[:19]}").classes("text-gray-500")
                if self.manager:

                    async def refresh(rule_id: int = r["id"]) -> None:
                        try:
                            out = await run.io_bound(tag_rules.refresh_rule, self.ctx, self.user, rule_id)
                        except SiyuError as exc:
                            ui.notify(exc.message, type="negative")
                            return
                        if out is not None:
                            res = out["result"]
                            ui.notify(tr("wops.rules.refreshed", marked=res["marked"], removed=res["removed"]))
                            self.rules_view.refresh()

                    ui.button(tr("wops.rules.refresh"), on_click=refresh).props(
                        f"flat dense icon=refresh data-testid=rule-{r['id']}-refresh"
                    )
        if not self.manager:
            return
        with ui.row().classes("items-end gap-3"):
            seg = ui.select(self.segs, label=tr("wops.rules.segment")).props("dense data-testid=rule-segment")
            seg.classes("w-56")
            new = ui.input(tr("wops.rules.new_tag")).props("dense data-testid=rule-tag-name")

            async def create() -> None:
                try:
                    await run.io_bound(
                        tag_rules.create_rule, self.ctx, self.user, str(seg.value or ""), "", str(new.value or "")
                    )
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                self.rules_view.refresh()
                self.tags_view.refresh()

            ui.button(tr("wops.rules.create"), on_click=create).props("icon=add data-testid=rule-create")

    # -- mass sends ----------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def mass_view(self) -> None:
        sends = mass_send.list_sends(self.ctx, self.user, 100)
        total = {st: sum(s["totals"].get(st, 0) for s in sends) for st in MASS_STATUSES}
        with ui.row().classes("gap-3"):
            kpi_card(tr("wops.mass.kpi.sends"), len(sends), "kpi-sends")
            kpi_card(tr("wops.mass.kpi.sent"), total["sent"], "kpi-mass-sent")
            kpi_card(tr("wops.mass.kpi.waiting"), total["queued"], "kpi-mass-waiting")
            kpi_card(tr("wops.mass.kpi.capped"), total["capped"], "kpi-mass-capped")
        if sends:
            options, table = mass_chart(list(reversed(sends)))
            chart_block(
                tr("wops.mass.chart"),
                options,
                table,
                [("name", tr("wops.col.name")), ("status", tr("wops.col.status")), ("count", tr("wops.col.count"))],
                "mass-chart",
                height="280px",
            )
        with ui.column().classes("w-full gap-1").props("data-testid=mass-list"):
            for s in sends:
                with ui.row().classes("items-center gap-4"):
                    ui.button(s["name"], on_click=lambda sid=s["id"]: self._pick_send(sid)).props(
                        f"flat dense no-caps data-testid=send-{s['id']}"
                    )
                    ui.label(f"{s['recipients']} · {_stats(s['totals'])}").classes("text-sm text-gray-600")

    def _pick_send(self, send_id: str) -> None:
        self.send_id = send_id
        self.send_detail.refresh()

    @ui.refreshable_method
    def send_detail(self) -> None:
        if self.send_id is None:
            return
        s = mass_send.get(self.ctx, self.user, self.send_id)
        with ui.card().classes("w-full").props("flat bordered data-testid=send-detail"):
            ui.label(f"{s['name']} · {s['id']}").classes("text-lg")
            ui.label(s["content"]).classes("text-sm text-gray-600 whitespace-pre-wrap")
            if self.manager:

                async def refresh() -> None:
                    try:
                        await run.io_bound(mass_send.refresh, self.ctx, self.user, str(self.send_id))
                    except SiyuError as exc:
                        ui.notify(exc.message, type="negative")
                        return
                    self.send_detail.refresh()
                    self.mass_view.refresh()

                ui.button(tr("wops.mass.refresh"), on_click=refresh).props("icon=refresh data-testid=send-refresh")
            ui.label(tr("wops.mass.tasks"))
            tasks = pd.DataFrame(
                [
                    {
                        "guide": t["guide_id"],
                        "targets": t["targets"],
                        "status": t["status"],
                        "confirmed": tr("wops.yes") if t["confirmed"] else tr("wops.no"),
                        "stats": _stats(t["stats"]),
                        "error": t["error"] or "",
                    }
                    for t in s["tasks"]
                ]
            )
            data_table(
                tasks,
                [
                    ("guide", tr("wops.col.guide")),
                    ("targets", tr("wops.col.targets")),
                    ("status", tr("wops.col.status")),
                    ("confirmed", tr("wops.col.confirmed")),
                    ("stats", tr("wops.col.stats")),
                    ("error", tr("wops.col.error")),
                ],
                "tasks-table",
            )
            if s["capped_sample"]:
                ui.label(tr("wops.mass.capped"))
                data_table(
                    pd.DataFrame(s["capped_sample"]),
                    [("customer_id", tr("wops.col.customer")), ("guide_id", tr("wops.col.guide"))],
                    "capped-table",
                )

    def mass_form(self) -> None:
        with ui.expansion(tr("wops.mass.new"), icon="campaign").classes("w-full").props("data-testid=mass-new"):
            with ui.row().classes("items-end gap-3"):
                seg = ui.select(self.segs, label=tr("wops.rules.segment")).props("dense data-testid=mass-segment")
                seg.classes("w-56")
                name = ui.input(tr("wops.mass.name")).props("dense data-testid=mass-name")
            content = ui.textarea(tr("wops.mass.content")).props("outlined autogrow data-testid=mass-content")
            content.classes("w-full")
            counter = ui.label(tr("wops.mass.bytes", n=0)).classes("text-xs text-gray-500")
            counter.props("data-testid=mass-bytes")
            content.on_value_change(
                lambda e: counter.set_text(tr("wops.mass.bytes", n=len(str(e.value or "").encode())))
            )

            async def create() -> None:
                try:
                    out = await run.io_bound(
                        mass_send.create,
                        self.ctx,
                        self.user,
                        str(seg.value or ""),
                        str(content.value or ""),
                        str(name.value or ""),
                    )
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                if out is None:
                    return
                ui.notify(tr("wops.mass.created", id=out["id"]), type="positive")
                self.send_id = out["id"]
                self.mass_view.refresh()
                self.send_detail.refresh()

            ui.button(tr("wops.mass.create"), on_click=create).props("icon=send data-testid=mass-create")

    # -- inheritance ---------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def transfers_view(self) -> None:
        rows = inheritance.list_transfers(self.ctx, self.user, 100)
        totals = inheritance.counts(rows)
        with ui.row().classes("gap-3"):
            kpi_card(tr("wops.tr.kpi.waiting"), totals["waiting"], "kpi-tr-waiting")
            kpi_card(tr("wops.tr.kpi.done"), totals["done"], "kpi-tr-done")
            kpi_card(tr("wops.tr.kpi.failed"), totals["failed"] + totals["refused"] + totals["limit"], "kpi-tr-failed")
        options, table = transfer_chart(dict(totals))
        chart_block(
            tr("wops.tr.chart"),
            options,
            table,
            [("status", tr("wops.col.status")), ("count", tr("wops.col.count"))],
            "transfer-chart",
            height="240px",
        )
        with ui.column().classes("w-full gap-1").props("data-testid=transfer-list"):
            for t in rows:
                with ui.row().classes("items-center gap-4"):
                    ui.button(
                        f"{t['handover_guide_id']} → {t['takeover_guide_id']}",
                        on_click=lambda tid=t["id"]: self._pick_transfer(tid),
                    ).props(f"flat dense no-caps data-testid=transfer-{t['id']}")
                    ui.label(f"{t['customers']} · {_stats(t['totals'])}").classes("text-sm text-gray-600")

    def _pick_transfer(self, transfer_id: str) -> None:
        self.transfer_id = transfer_id
        self.transfer_detail.refresh()

    @ui.refreshable_method
    def transfer_detail(self) -> None:
        if self.transfer_id is None:
            return
        t = inheritance.get(self.ctx, self.user, self.transfer_id)
        with ui.card().classes("w-full").props("flat bordered data-testid=transfer-detail"):
            label = f"{t['handover_guide_id']} → {t['takeover_guide_id']}"
            ui.label(label + (f" · {tr('wops.tr.resigned')}" if t["resigned"] else "")).classes("text-lg")
            if self.manager:

                async def refresh() -> None:
                    try:
                        await run.io_bound(inheritance.refresh, self.ctx, self.user, str(self.transfer_id))
                    except SiyuError as exc:
                        ui.notify(exc.message, type="negative")
                        return
                    self.transfer_detail.refresh()
                    self.transfers_view.refresh()

                ui.button(tr("wops.tr.refresh"), on_click=refresh).props("icon=refresh data-testid=transfer-refresh")
            ui.label(tr("wops.tr.customers"))
            data_table(
                pd.DataFrame(
                    [
                        {
                            "customer": c["customer_id"] or c["external_userid"],
                            "status": tr(f"wops.st.{c['status']}"),
                            "reason": c["reason"],
                            "takeover_at": c["takeover_at"],
                        }
                        for c in t["customer_rows"]
                    ]
                ),
                [
                    ("customer", tr("wops.col.customer")),
                    ("status", tr("wops.col.status")),
                    ("reason", tr("wops.col.reason")),
                    ("takeover_at", tr("wops.col.takeover_at")),
                ],
                "transfer-customers",
            )

    def transfer_form(self) -> None:
        guides = {
            str(g): f"{g} {n}"
            for g, n in self.ctx.warehouse.fetch(
                "SELECT guide_id, name FROM guides WHERE brand_id = ? AND coalesce(wecom_userid, '') <> '' ORDER BY 1",
                [self.user.brand_id],
            )
        }
        with ui.expansion(tr("wops.tr.new"), icon="swap_horiz").classes("w-full").props("data-testid=transfer-new"):
            with ui.row().classes("items-end gap-3"):
                hand = ui.select(guides, label=tr("wops.col.handover")).props("dense data-testid=tr-handover")
                take = ui.select(guides, label=tr("wops.col.takeover")).props("dense data-testid=tr-takeover")
                seg = ui.select({"": tr("wops.tr.segment_all"), **self.segs}, value="", label=tr("wops.rules.segment"))
                seg.props("dense data-testid=tr-segment")
                for w in (hand, take, seg):
                    w.classes("w-48")
                resigned = ui.checkbox(tr("wops.tr.resigned")).props("data-testid=tr-resigned")

            async def start() -> None:
                try:
                    out = await run.io_bound(
                        inheritance.start,
                        self.ctx,
                        self.user,
                        str(hand.value or ""),
                        str(take.value or ""),
                        str(seg.value) or None,
                        bool(resigned.value),
                    )
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                if out is None:
                    return
                ui.notify(tr("wops.tr.started", id=out["id"]), type="positive")
                self.transfer_id = out["id"]
                self.transfers_view.refresh()
                self.transfer_detail.refresh()

            ui.button(tr("wops.tr.start"), on_click=start).props("icon=swap_horiz data-testid=tr-start")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/wecom/ops")
    def wecom_ops_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        ctx = context()
        with frame(user, "wops.title", "nav.wecom_ops"):
            ui.label(tr("wops.title")).classes("text-2xl").props("data-testid=wops-title")
            ui.label(tr("wops.guide_note") if user.role == Role.GUIDE else tr("wops.intro")).classes(
                "text-sm text-gray-500"
            )
            p = OpsPage(ctx, user)
            with ui.tabs().classes("w-full") as tabs:
                t_tags = ui.tab("tags", tr("wops.tab.tags")).props("data-testid=tab-tags")
                t_mass = ui.tab("mass", tr("wops.tab.mass")).props("data-testid=tab-mass")
                t_tr = ui.tab("transfers", tr("wops.tab.transfers")).props("data-testid=tab-transfers")
            with ui.tab_panels(tabs, value=t_mass).classes("w-full"):
                with ui.tab_panel(t_tags):
                    p.tags_view()
                    if p.manager:
                        p.tag_form()
                    p.rules_view()
                with ui.tab_panel(t_mass):
                    if p.manager:
                        p.mass_form()
                    p.mass_view()
                    p.send_detail()
                with ui.tab_panel(t_tr):
                    if p.manager:
                        p.transfer_form()
                    p.transfers_view()
                    p.transfer_detail()
