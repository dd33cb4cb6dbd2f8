"""Console page /pool (公海): leads in the pool and owned, open leads per guide as a chart, the move log.
Admins and operators fill the pool (customers without a WeCom relation) and assign it by a rule; a guide claims
leads (daily limit) and sees their own."""

from __future__ import annotations

from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.domain import guide_work as rules
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.guide_work import pool

LEAD_COLS = ("customer_id", "owner_guide_id", "source", "store_id", "region", "entered_at", "assigned_at")
MOVE_COLS = ("at", "customer_id", "action", "from_guide_id", "to_guide_id", "rule", "actor", "reason")


class PoolPage:
    def __init__(self, ctx: Context, user: User) -> None:
        self.ctx, self.user = ctx, user
        self.manager = user.role != Role.GUIDE

    def _run(self, fn: Any, done: str) -> None:
        try:
            out = fn()
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr(done, **out) if isinstance(out, dict) else tr(done), type="positive")
        self.body.refresh()

    def actions(self) -> None:
        with ui.card().classes("w-full").props("flat bordered"), ui.row().classes("items-end gap-3"):
            if self.manager:
                ui.button(
                    tr("gw.pool.add_unowned"),
                    on_click=lambda: self._run(self._add_unowned, "gw.pool.added"),
                ).props("outline data-testid=pool-add-unowned")
                rule = (
                    ui.select(
                        {r: tr(f"gw.rule.{r}") for r in rules.RULES}, label=tr("gw.pool.rule"), value="round_robin"
                    )
                    .classes("w-44")
                    .props("data-testid=pool-rule")
                )
                ui.button(
                    tr("gw.pool.assign"),
                    on_click=lambda: self._run(
                        lambda: pool.assign(self.ctx, self.user, str(rule.value)), "gw.pool.assigned"
                    ),
                ).props("color=teal-8 data-testid=pool-assign")
            else:
                ids = ui.input(tr("gw.pool.claim_ids")).classes("w-96").props("data-testid=pool-claim-ids")
                ui.button(
                    tr("gw.pool.claim"),
                    on_click=lambda: self._run(
                        lambda: pool.claim(
                            self.ctx, self.user, [i.strip() for i in str(ids.value or "").split(",") if i.strip()]
                        ),
                        "gw.pool.claimed",
                    ),
                ).props("color=teal-8 data-testid=pool-claim")

    def _add_unowned(self) -> dict[str, Any]:
        out = pool.add_unowned(self.ctx, self.user)
        return {**out, "skipped_count": len(out["skipped"])}

    @ui.refreshable_method
    def body(self) -> None:
        free = pool.list_leads(self.ctx, self.user, "pool", None, 1, pool.MAX_PAGE_SIZE)
        owned = pool.list_leads(self.ctx, self.user, "owned", None, 1, pool.MAX_PAGE_SIZE)
        with ui.row().classes("gap-3"):
            kpi_card(tr("gw.pool.in_pool"), free["total"], "pool-in")
            kpi_card(tr("gw.pool.owned" if self.manager else "gw.pool.mine"), owned["total"], "pool-owned")
        loads = pd.DataFrame(sorted(free["loads"].items()), columns=["guide_id", "leads"])
        if self.manager:
            options: dict[str, Any] = {
                "animation": False,
                "tooltip": {"trigger": "axis"},
                "grid": {"left": 50, "right": 20, "top": 20, "bottom": 40},
                "xAxis": {"type": "category", "data": list(loads["guide_id"])},
                "yAxis": {"type": "value", "name": tr("gw.pool.leads")},
                "series": [
                    {"type": "bar", "itemStyle": {"color": "#0f766e"}, "data": [int(v) for v in loads["leads"]]}
                ],
            }
            cols = [("guide_id", tr("gw.pool.col.owner_guide_id")), ("leads", tr("gw.pool.leads"))]
            chart_block(tr("gw.pool.loads"), options, loads, cols, "pool-loads", height="240px")
        ui.label(tr("gw.pool.in_pool")).classes("text-lg font-bold")
        lead_cols = [(c, tr(f"gw.pool.col.{c}")) for c in LEAD_COLS]
        data_table(pd.DataFrame(free["items"], columns=list(LEAD_COLS)), lead_cols, "pool-leads")
        ui.label(tr("gw.pool.owned" if self.manager else "gw.pool.mine")).classes("text-lg font-bold")
        data_table(pd.DataFrame(owned["items"], columns=list(LEAD_COLS)), lead_cols, "pool-owned-leads")
        ui.label(tr("gw.pool.moves")).classes("text-lg font-bold")
        moves = pd.DataFrame(pool.moves(self.ctx, self.user, None, 200), columns=list(MOVE_COLS))
        moves["action"] = [tr(f"gw.move.{a}") for a in moves["action"]]
        data_table(moves, [(c, tr(f"gw.pool.col.{c}")) for c in MOVE_COLS], "pool-moves")


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/pool")
    def pool_page() -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "gw.pool.title", "gw.nav.pool"):
            ui.label(tr("gw.pool.title")).classes("text-2xl").props("data-testid=pool-title")
            ui.label(tr("gw.pool.intro_guide" if user.role == Role.GUIDE else "gw.pool.intro")).classes("text-gray-600")
            page = PoolPage(context(), user)
            page.actions()
            page.body()
        return None
