"""Console page /wecom/codes: channel codes (渠道活码) — the list, a form to create one (guides, caps, fallback,
welcome + gift, tagging, group rules), and for the chosen code its QR (preview and PNG/SVG download), attribution
state, stats (adds, losses by customer / guide, net: KPIs, a daily chart, per guide) and the latest adds with their
welcome, tag and invite outcome.  A guide sees the codes they are on and only their own adds."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from nicegui import run, ui

from siyu.console import wecom_simulate
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, data_url, kpi_card
from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom import channel_codes as svc

DAYS = 30


def daily_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of adds (up) and losses (down, by who ended them) per day, with the net as a line."""
    names = {k: tr(f"codes.col.{k}") for k in ("adds", "lost_customer", "lost_guide", "net")}
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": list(names.values())},
        "grid": {"left": 50, "right": 20, "bottom": 60},
        "xAxis": {"type": "category", "data": [d["day"][5:] for d in days]},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {"name": names["adds"], "type": "bar", "stack": "s", "data": [d["adds"] for d in days]},
            {
                "name": names["lost_customer"],
                "type": "bar",
                "stack": "s",
                "data": [-d["lost_customer"] for d in days],
            },
            {"name": names["lost_guide"], "type": "bar", "stack": "s", "data": [-d["lost_guide"] for d in days]},
            {"name": names["net"], "type": "line", "data": [d["net"] for d in days]},
        ],
    }


class CodesPage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.scope = (user.guide_id or "-") if user.role == Role.GUIDE else None
        self.selected: int | None = None

    # -- reference data --------------------------------------------------------------------------------------
    def _options(self, sql: str) -> dict[str, str]:
        rows = self.ctx.warehouse.fetch(sql, [self.user.brand_id])
        return {str(k): f"{n} ({k})" for k, n in rows}

    def header(self) -> None:
        ui.label(tr("codes.title")).classes("text-2xl").props("data-testid=codes-title")
        ui.label(tr("codes.intro")).classes("text-sm text-gray-600")

    # -- create form -----------------------------------------------------------------------------------------
    def form(self) -> None:
        if self.scope is not None:
            ui.label(tr("codes.manager_only")).classes("text-gray-500")
            return
        guides = self._options(
            "SELECT guide_id, name FROM guides WHERE brand_id = ? AND coalesce(wecom_userid, '') <> '' ORDER BY 1"
        )
        channels = self._options("SELECT channel_id, name FROM channels WHERE brand_id = ? ORDER BY 1")
        with (
            ui.expansion(tr("codes.new"), icon="qr_code_2")
            .classes("w-full")
            .props("data-testid=codes-new dense header-class=text-teal-800")
        ):
            with ui.row().classes("w-full items-end gap-3"):
                name = ui.input(tr("codes.name")).props("dense data-testid=code-name").classes("w-56")
                channel = ui.select(channels, label=tr("codes.channel")).props("dense data-testid=code-channel")
                channel.classes("w-56")
                campaign = ui.input(tr("codes.campaign")).props("dense data-testid=code-campaign").classes("w-40")
            with ui.row().classes("w-full items-end gap-3"):
                chosen = ui.select(guides, label=tr("codes.guides"), multiple=True).props(
                    "dense use-chips data-testid=code-guides"
                )
                chosen.classes("min-w-72")
                cap = ui.number(tr("codes.cap"), min=1, step=1, format="%d").props("dense data-testid=code-cap")
                cap.classes("w-56")
                fallback = ui.select({"": "—", **guides}, label=tr("codes.fallback"), value="").props(
                    "dense data-testid=code-fallback"
                )
                fallback.classes("w-56")
            welcome = ui.textarea(tr("codes.welcome"), value="{name}您好，我是{guide}，送您{coupon}").props(
                "outlined autogrow data-testid=code-welcome"
            )
            welcome.classes("w-full")
            with ui.row().classes("w-full items-end gap-3"):
                coupon_id = ui.input(tr("codes.coupon_id")).props("dense data-testid=code-coupon-id")
                coupon_title = ui.input(tr("codes.coupon_title")).props("dense data-testid=code-coupon-title")
                tag = ui.checkbox(tr("codes.tag"), value=True).props("data-testid=code-tag")
            rules = ui.textarea(tr("codes.rules"), value="[]").props("outlined autogrow data-testid=code-rules")
            rules.classes("w-full").props("input-style='font-family: monospace'")

            async def create() -> None:
                try:
                    group_rules = json.loads(str(rules.value or "[]"))
                except ValueError:
                    ui.notify(tr("codes.bad_json"), type="negative")
                    return
                c = int(cap.value) if cap.value else None
                w: dict[str, Any] = {"text": str(welcome.value or ""), "attachments": []}
                if coupon_id.value:
                    w["coupon"] = {"id": str(coupon_id.value), "title": str(coupon_title.value or "")}
                spec = svc.CodeSpec(
                    str(name.value or ""),
                    str(channel.value or ""),
                    [{"guide_id": g, "cap": c} for g in (chosen.value or [])],
                    str(campaign.value or ""),
                    str(fallback.value) or None,
                    w,
                    bool(tag.value),
                    group_rules,
                )
                try:
                    row = await run.io_bound(svc.create_code, self.ctx, self.user.brand_id, spec, self.user.username)
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                if row is None:  # the client went away meanwhile
                    return
                ui.notify(tr("codes.created", name=row["name"]), type="positive")
                self.selected = int(row["id"])
                self.codes_view.refresh()
                self.detail.refresh()

            ui.button(tr("codes.create"), on_click=create).props("icon=add data-testid=code-create")

    # -- list --------------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def codes_view(self) -> None:
        codes = svc.list_codes(self.ctx, self.user.brand_id, self.scope)
        if not codes:
            ui.label(tr("codes.none")).classes("text-gray-500").props("data-testid=codes-none")
            return
        if self.selected is None or self.selected not in {c["id"] for c in codes}:
            self.selected = int(codes[0]["id"])
        rows = [
            {
                "id": c["id"],
                "name": c["name"],
                "channel": c["channel_id"],
                "campaign": c["campaign"],
                "guides": ", ".join(g["guide_id"] + (f" ({g['cap']})" if g.get("cap") else "") for g in c["guides"])
                + (f" → {c['fallback']['guide_id']}" if c["fallback"] else ""),
                "showing": ", ".join(c["users"]),
            }
            for c in codes
        ]
        cols = ["id", "name", "channel", "campaign", "guides", "showing"]
        table = ui.table(
            columns=[{"name": k, "label": tr(f"codes.col.{k}"), "field": k, "align": "left"} for k in cols],
            rows=rows,
            row_key="id",
            pagination=10,
        )
        table.classes("w-full").props("flat dense bordered data-testid=codes-table")

        def pick(e: Any) -> None:
            self.selected = int(e.args[1]["id"])
            self.detail.refresh()

        table.on("rowClick", pick)

    # -- one code ------------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def detail(self) -> None:
        if self.selected is None:
            return
        try:
            code = svc.get_code(self.ctx, self.user.brand_id, self.selected, self.scope)
        except SiyuError:
            return
        st = svc.stats(self.ctx, self.user.brand_id, self.selected, self.scope, DAYS)
        with ui.card().classes("w-full").props(f"flat bordered data-testid=code-detail-{code['id']}"):
            ui.label(f"#{code['id']} · {code['name']}").classes("text-lg font-bold").props("data-testid=code-heading")
            with ui.row().classes("w-full gap-6 items-start"):
                self._qr(code)
                with ui.column().classes("gap-2 grow"):
                    ui.label(tr("codes.state", state=code["state"])).props("data-testid=code-state")
                    ui.label(
                        tr("codes.showing", users=", ".join(code["users"]), why=tr(f"codes.why.{code['rotation']}"))
                    ).props("data-testid=code-showing")
                    with ui.row().classes("gap-3"):
                        for k in ("adds", "lost_customer", "lost_guide", "net"):
                            kpi_card(tr(f"codes.kpi.{k}"), st[k], f"code-{k.replace('_', '-')}")
                    ui.label(tr("codes.scans_note")).classes("text-xs text-gray-500")
                    if self.scope is None:
                        ui.button(tr("codes.delete"), on_click=lambda: self._delete(code)).props(
                            "flat dense color=negative icon=delete data-testid=code-delete"
                        )
            if self.scope is None:
                wecom_simulate.controls(self.ctx, self.user.brand_id, code, self._after_sim)
        days = pd.DataFrame(st["days"])
        day_cols = [(k, tr(f"codes.col.{k}")) for k in ("day", "adds", "lost_customer", "lost_guide", "net")]
        chart_block(tr("codes.chart", days=DAYS), daily_chart(st["days"]), days, day_cols, "code-chart")
        guide_cols = [(k, tr(f"codes.col.{k}")) for k in ("guide", "adds", "lost_customer", "lost_guide", "net")]
        by_guide = pd.DataFrame([{**g, "guide": g["guide_id"]} for g in st["guides"]])
        ui.label(tr("codes.by_guide")).classes("text-base font-bold")
        data_table(by_guide, guide_cols, "code-guides-table")
        adds = pd.DataFrame(svc.adds_log(self.ctx, self.user.brand_id, code["id"], self.scope, 50))
        if not adds.empty:
            adds["customer"] = adds["external_userid"]
            adds["guide"] = adds["guide_id"]
            for k in ("welcome", "tag", "invite"):
                adds[k] = [tr(f"codes.s.{v}") for v in adds[k]]
        ui.label(tr("codes.adds")).classes("text-base font-bold")
        add_cols = [(k, tr(f"codes.col.{k}")) for k in ("day", "guide", "customer", "welcome", "tag", "invite")]
        data_table(adds, add_cols, "code-adds-table")

    def _qr(self, code: dict[str, Any]) -> None:
        if not code["qr_code"]:
            return
        png = svc.qr_image(self.ctx, self.user.brand_id, code["id"], "png", 6)
        with ui.column().classes("items-center gap-1"):
            ui.label(tr("codes.qr")).classes("text-xs text-gray-500")
            ui.image(data_url(png, "image/png")).classes("w-48 h-48").props("data-testid=code-qr")
            with ui.row().classes("gap-1"):
                for fmt in ("png", "svg"):
                    ui.button(
                        tr(f"codes.download_{fmt}"),
                        on_click=lambda f=fmt: ui.download(
                            svc.qr_image(self.ctx, self.user.brand_id, code["id"], f, 10),
                            f"channel-code-{code['id']}.{f}",
                            media_type=svc.QR_FORMATS[f],
                        ),
                    ).props(f"flat dense size=sm icon=download data-testid=code-qr-{fmt}")

    def _after_sim(self) -> None:
        self.codes_view.refresh()
        self.detail.refresh()

    async def _delete(self, code: dict[str, Any]) -> None:
        try:
            await run.io_bound(svc.delete_code, self.ctx, self.user.brand_id, int(code["id"]))
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("codes.deleted", name=code["name"]), type="positive")
        self.selected = None
        self.codes_view.refresh()
        self.detail.refresh()


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/wecom/codes")
    def codes_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "codes.title", "nav.wecom"):
            page = CodesPage(context(), user)
            page.header()
            page.form()
            ui.label(tr("codes.list")).classes("text-base font-bold")
            page.codes_view()
            page.detail()
        return None
