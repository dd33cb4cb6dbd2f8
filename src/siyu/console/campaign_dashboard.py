"""Console page /campaigns/{id}: the live dashboard of a campaign — KPI cards, the funnel (visits → participants →
helpers → new customers), the invite-depth distribution, the daily trend, the A/B comparison of variants with
intervals and the always-valid p-value, figures by variant / channel / guide (auto-refreshed every few seconds);
the invite tree (depth-limited), the guide leaderboard against targets, and the physical-gift fulfilment list
(ship with a tracking number). Guides see their own participants' figures only and no buttons."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
from nicegui import run, ui

from siyu.console import campaign_charts as charts
from siyu.console.campaigns_page import lifecycle_buttons, status_badge
from siyu.console.funnel_chart import funnel
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, kpi_card
from siyu.display import local_text
from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services import campaigns_stats as stats
from siyu.services import pii
from siyu.services.brands import User
from siyu.services.campaigns import attribution, reports
from siyu.services.context import Context

REFRESH_SECONDS = 3.0
KPIS = (
    "visits",
    "participants",
    "helpers",
    "new_customers",
    "visit_participation",
    "participation",
    "invites_per_participant",
    "new_user_share",
    "k_factor",
    "completion_rate",
    "reward_cost",
    "cost_per_new_customer",
    "retention_7d",
    "retention_30d",
    "conversions",
    "gmv",
)
DIM_COLUMNS = (
    "participants",
    "helpers",
    "new_customers",
    "visits",
    "visit_participation",
    "invites_per_participant",
    "new_user_share",
    "k_factor",
    "completion_rate",
    "reward_cost",
    "retention_7d",
)


def _formatted(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{k: (charts.fmt(k, r.get(k)) if k in keys else r.get(k)) for k in r} for r in rows]


class Dashboard:
    def __init__(self, ctx: Context, user: User, campaign_id: str) -> None:
        self.ctx, self.user, self.campaign_id = ctx, user, campaign_id
        self.stats = stats.campaign_stats(ctx, user, campaign_id)
        self.last = self._key(self.stats)
        self.tree_depth = 3
        self.as_of: Any = None
        self.busy = False
        self.next_at = 0.0
        self.clear_addresses = False  # the fulfilment list shows addresses masked until revealed (audited)

    @staticmethod
    def _key(st: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in st.items() if k != "as_of"}, sort_keys=True, default=str)

    async def tick(self) -> None:
        """Re-read the figures (off the event loop); redraw only when something changed (else just the 'as of'
        time)."""
        if self.busy or time.monotonic() < self.next_at:
            return
        self.busy = True
        started = time.monotonic()
        try:
            st = await run.io_bound(
                stats.campaign_stats, self.ctx, self.user, self.campaign_id, max_age=REFRESH_SECONDS * 0.8
            )
        finally:
            self.busy = False
            # a large campaign whose figures take long to compute is polled less often (at most half the time)
            self.next_at = time.monotonic() + (time.monotonic() - started)
        if st is None:  # the app is shutting down
            return
        key = self._key(st)
        self.stats = st
        if key != self.last:
            self.last = key
            self.figures.refresh()
            self.header.refresh()
        self.as_of.set_text(tr("cp.auto", s=int(REFRESH_SECONDS), at=local_text(st["as_of"])))

    @ui.refreshable_method
    def header(self) -> None:
        c = self.stats["campaign"]
        with ui.row().classes("items-center gap-3"):
            ui.label(c["name"]).classes("text-2xl").props("data-testid=campaign-title")
            ui.label(tr(f"cp.kind.{c['kind']}")).classes("text-gray-600")
            status_badge(c["status"], "campaign-status")
            if self.user.role != Role.GUIDE and c["status"] != "ended":
                ui.button(tr("cp.edit"), on_click=lambda: ui.navigate.to(f"/campaigns/{self.campaign_id}/edit")).props(
                    "dense size=sm flat data-testid=campaign-edit"
                )
            lifecycle_buttons(self.ctx, self.user, c, self._changed)

    def _changed(self) -> None:
        self.stats = stats.campaign_stats(self.ctx, self.user, self.campaign_id)
        self.last = self._key(self.stats)
        self.header.refresh()
        self.figures.refresh()

    @ui.refreshable_method
    def figures(self) -> None:
        st = self.stats
        tot = st["totals"]
        with ui.row().classes("gap-3 flex-wrap").props("data-testid=campaign-kpis"):
            for k in KPIS:
                if k == "visits" and tot[k] is None:
                    continue
                kpi_card(tr(f"cp.m.{k}"), charts.fmt(k, tot[k]), f"kpi-{k}", hint=_hint(k, tot))
        names = {k: tr(f"cp.m.{k}") for k in ("visits", "participants", "helpers", "new_customers")}
        with ui.grid(columns=2).classes("w-full gap-4"):
            steps = [(names[f["step"]], f["value"]) for f in st["funnel"]]
            chart_block(
                tr("cp.funnel"),
                funnel(steps),
                pd.DataFrame([{"step": n, "value": v} for n, v in steps]),
                [("step", tr("cp.col.name")), ("value", tr("cp.m.participants"))],
                "campaign-funnel",
                metric_keys=(),
                height="300px",
            )
            chart_block(
                tr("cp.depth"),
                charts.depth(st["depth"], names["participants"], names["helpers"], tr("cp.depth.level")),
                pd.DataFrame(st["depth"], columns=["depth", "participants", "helpers"]),
                [
                    ("depth", tr("cp.depth.level")),
                    ("participants", names["participants"]),
                    ("helpers", names["helpers"]),
                ],
                "campaign-depth",
                height="300px",
            )
        daily_names = {**names, "new": names["new_customers"]}
        chart_block(
            tr("cp.daily"),
            charts.daily(st["daily"], daily_names),
            pd.DataFrame(st["daily"], columns=["day", "visits", "participants", "helpers", "new"]),
            [("day", tr("cp.day"))] + [(k, daily_names[k]) for k in ("visits", "participants", "helpers", "new")],
            "campaign-daily",
            height="280px",
        )
        self._ab(st["ab"])
        for dim in ("variant", "channel", "guide"):
            rows = st[f"by_{dim}"]
            if not rows:
                continue
            with ui.card().classes("w-full").props(f"flat bordered data-testid=by-{dim}"):
                ui.label(tr("cp.by", dim=tr(f"cp.dim.{dim}"))).classes("text-base font-bold")
                cols = [("key", tr(f"cp.dim.{dim}"))] + [(k, tr(f"cp.m.{k}")) for k in DIM_COLUMNS]
                data_table(pd.DataFrame(_formatted(rows, DIM_COLUMNS)), cols, f"by-{dim}-table")

    def _ab(self, ab: dict[str, Any]) -> None:
        if not ab["variants"]:
            ui.label(tr("cp.ab.none")).classes("text-gray-500").props("data-testid=ab-none")
            return
        rate, interval = tr("cp.ab.rate"), "95%"
        rows = [
            {
                "variant": a["variant"],
                "n": a["n"],
                "completed": a["completed"],
                "rate": charts.fmt("rate", a["rate"]),
                "low": charts.fmt("rate", a["ci95"][0]),
                "high": charts.fmt("rate", a["ci95"][1]),
            }
            for a in ab["variants"]
        ]
        cols = [
            ("variant", tr("cp.ab.variant")),
            ("n", tr("cp.ab.n")),
            ("completed", tr("cp.m.completed")),
            ("rate", rate),
            ("low", tr("cp.ab.low")),
            ("high", tr("cp.ab.high")),
        ]
        chart_block(
            tr("cp.ab"), charts.variants(ab["variants"], rate, interval), pd.DataFrame(rows), cols, "campaign-ab"
        )
        for c in ab["comparisons"]:
            p = f"{c['p_value']:.3f}"
            key = "cp.ab.verdict.sig" if c["significant"] else "cp.ab.verdict.early"
            ui.label(tr(key, variant=c["variant"], against=c["against"], p=p)).props(
                f"data-testid=ab-verdict-{c['variant']}"
            )

    def show_tab(self, name: str) -> None:
        """Re-read a tab's content when it is opened (the overview refreshes on its own timer)."""
        {"tree": self.tree, "leaderboard": self.leaderboard, "fulfilment": self.fulfilment}.get(
            name, self.figures
        ).refresh()

    # -- invite tree ---------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def tree(self) -> None:
        guide = (self.user.guide_id or "") if self.user.role == Role.GUIDE else None
        t = reports.tree(
            self.ctx, self.user.brand_id, self.campaign_id, max_depth=self.tree_depth, size=50, guide_id=guide
        )
        if not t["nodes"]:
            ui.label(tr("cp.tree.empty")).classes("text-gray-500").props("data-testid=tree-empty")
            return
        ui.label(tr("cp.tree.nodes", total=t["total"], shown=len(t["nodes"]))).props("data-testid=tree-count")
        height = max(320, min(1600, 28 * _leaves(t["nodes"])))
        ui.echart(charts.tree(t["nodes"], self.stats["campaign"]["name"])).style(f"height: {height}px").classes(
            "w-full"
        ).props("data-testid=tree-chart")

    # -- leaderboard ---------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def leaderboard(self) -> None:
        rows = stats.leaderboard(self.ctx, self.user, self.campaign_id)["items"]
        table_rows = [
            {
                "rank": r["rank"],
                "guide_id": r["guide_id"],
                **{
                    k: f"{charts.fmt(k, r[k])} / {charts.fmt(k, r['target_' + k])}"
                    if r[f"target_{k}"]
                    else charts.fmt(k, r[k])
                    for k in ("participants", "new_customers", "conversions", "gmv")
                },
                "progress": charts.fmt("rate", r["progress_new_customers"]),
            }
            for r in rows
        ]
        cols = [
            ("rank", tr("cp.lb.rank")),
            ("guide_id", tr("cp.lb.guide")),
            ("participants", tr("cp.m.participants")),
            ("new_customers", tr("cp.m.new_customers")),
            ("conversions", tr("cp.m.conversions")),
            ("gmv", tr("cp.m.gmv")),
            ("progress", tr("cp.lb.progress")),
        ]
        chart_block(
            tr("cp.lb.chart"),
            charts.leaderboard(rows, tr("cp.m.new_customers"), tr("cp.lb.target")),
            pd.DataFrame(table_rows, columns=[c for c, _ in cols]),
            cols,
            "leaderboard",
            height="280px",
        )
        self._guide_link([r["guide_id"] for r in rows])

    def _guide_link(self, guides: list[str]) -> None:
        """A guide's own promotion link of the campaign (joins through it are credited to the guide)."""
        if not guides:
            return
        chosen = {"guide": guides[0]}
        with ui.row().classes("items-end gap-3 w-full"):
            ui.select(guides, label=tr("cp.lb.guide")).bind_value(chosen, "guide").classes("w-40").props(
                "dense data-testid=guide-link-guide"
            )
            out = ui.input(tr("cp.lb.link")).props("readonly dense data-testid=guide-link").classes("grow")

            def make() -> None:
                try:
                    got = attribution.guide_link(self.ctx, self.user.brand_id, self.campaign_id, str(chosen["guide"]))
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                out.set_value(got["path"])

            ui.button(tr("cp.lb.make_link"), on_click=make).props("outline dense data-testid=guide-link-make")

    # -- fulfilment ----------------------------------------------------------------------------------------------
    @ui.refreshable_method
    def fulfilment(self) -> None:
        items = stats.fulfilment(self.ctx, self.user, self.campaign_id)["items"]
        if not items:
            ui.label(tr("cp.ff.empty")).classes("text-gray-500").props("data-testid=ff-empty")
            return
        if not self.clear_addresses:
            items = pii.masked_rows(self.ctx, self.user, items, False, "")
        if not self.clear_addresses and pii.may_reveal(self.ctx, self.user):
            ui.button(tr("pii.reveal"), icon="visibility", on_click=self._reveal_addresses).props(
                "flat dense data-testid=ff-reveal"
            )
        heads = ("grant", "reward", "customer", "status", "address", "carrier", "tracking", "")
        with ui.grid(columns=len(heads)).classes("w-full items-center gap-x-3 gap-y-2").props("data-testid=ff-table"):
            for h in heads:
                ui.label(tr(f"cp.ff.{h}") if h else "").classes("text-xs text-gray-500 font-bold")
            for x in items:
                gid = x["grant_id"]
                ui.label(gid[-10:]).classes("text-xs")
                ui.label(x["reward_id"])
                ui.label(x["customer_id"][-10:]).classes("text-xs")
                ui.label(tr(f"cp.ff.st.{x['status']}")).props(f"data-testid=ff-{gid}-status")
                a = x["address"] or {}
                ui.label(
                    " ".join(
                        str(a.get(k, "")) for k in ("name", "phone", "province", "city", "district", "detail")
                    ).strip()
                ).classes("text-sm").props(f"data-testid=ff-{gid}-address")
                if x["status"] == "to_ship" and self.user.role != Role.GUIDE:
                    carrier = ui.input(tr("cp.ff.carrier"), value="顺丰").props(f"dense data-testid=ff-{gid}-carrier")
                    tracking = ui.input(tr("cp.ff.tracking")).props(f"dense data-testid=ff-{gid}-tracking")
                    ui.button(
                        tr("cp.ff.ship"), on_click=lambda _, g=gid, c=carrier, t=tracking: self._ship(g, c, t)
                    ).props(f"dense size=sm color=teal-8 data-testid=ff-{gid}-ship")
                else:
                    ui.label(x["shipping_carrier"] or "")
                    ui.label(x["tracking_no"] or "").props(f"data-testid=ff-{gid}-tracking-no")
                    ui.label("")

    def _reveal_addresses(self) -> None:
        """Show the addresses in clear for this view (one pii.reveal audit entry for the list)."""
        items = stats.fulfilment(self.ctx, self.user, self.campaign_id)["items"]
        target = f"campaign:{self.campaign_id}:fulfilment"
        try:
            pii.masked_rows(self.ctx, self.user, items, True, target, "console: shipping")
        except SiyuError as exc:
            ui.notify(exc.message, type="warning")
            return
        self.clear_addresses = True
        self.fulfilment.refresh()

    def _ship(self, grant_id: str, carrier: Any, tracking: Any) -> None:
        try:
            g = stats.ship(
                self.ctx, self.user, self.campaign_id, grant_id, str(carrier.value or ""), str(tracking.value or "")
            )
        except SiyuError as exc:
            tracking.props(f'error error-message="{exc.message}"')
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("cp.ff.shipped", tracking=g["tracking_no"]), type="positive")
        self.fulfilment.refresh()


def _against(key: str, row: dict[str, Any]) -> str:
    """``actual / target`` (just the actual without a target)."""
    target = row[f"target_{key}"]
    actual = charts.fmt(key, row[key])
    return f"{actual} / {charts.fmt(key, target)}" if target else actual


def _hint(key: str, tot: dict[str, Any]) -> str | None:
    if key in ("retention_7d", "retention_30d"):
        return f"{tot[key + '_retained']} / {tot[key + '_eligible']}"
    return None


def _leaves(nodes: list[dict[str, Any]]) -> int:
    return sum(_leaves(n["children"]) if n.get("children") else 1 for n in nodes)


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/campaigns/{campaign_id}")
    def campaign_page(campaign_id: str) -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "cp.title", "nav.fission"):
            try:
                page = Dashboard(context(), user, campaign_id)
            except SiyuError as exc:
                ui.label(exc.message).classes("text-negative").props("data-testid=campaign-error")
                return None
            page.header()
            with ui.tabs(on_change=lambda e: page.show_tab(str(e.value))).props("dense align=left") as tabs:
                overview = ui.tab("overview", tr("cp.tab.overview")).props("data-testid=tab-overview")
                tree = ui.tab("tree", tr("cp.tab.tree")).props("data-testid=tab-tree")
                board = ui.tab("leaderboard", tr("cp.tab.leaderboard")).props("data-testid=tab-leaderboard")
                ff = ui.tab("fulfilment", tr("cp.tab.fulfilment")).props("data-testid=tab-fulfilment")
            with ui.tab_panels(tabs, value=overview, animated=False).classes("w-full"):
                with ui.tab_panel(overview):
                    page.as_of = (
                        ui.label(tr("cp.auto", s=int(REFRESH_SECONDS), at=local_text(page.stats["as_of"])))
                        .classes("text-xs text-gray-500")
                        .props("data-testid=campaign-as-of")
                    )
                    page.figures()
                with ui.tab_panel(tree):

                    def depth(e: Any) -> None:
                        page.tree_depth = int(e.value)
                        page.tree.refresh()

                    ui.select(
                        {1: "1", 2: "2", 3: "3", 5: "5", 10: "10"}, value=3, label=tr("cp.tree.depth"), on_change=depth
                    ).classes("w-40").props("data-testid=tree-depth")
                    page.tree()
                with ui.tab_panel(board):
                    page.leaderboard()
                with ui.tab_panel(ff):
                    page.fulfilment()
            ui.timer(REFRESH_SECONDS, page.tick)
        return None
