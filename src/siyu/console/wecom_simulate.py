"""The demo's simulated customer on /wecom/codes: "模拟客户扫码" / "模拟删除" buttons for a code, shown only when
the brand's WeCom is the local WeCom server (``siyu.services.wecom.simulator.is_local``), and the outcome read from
siyu's records (welcome with its filled text, tag, attribution to channel and guide)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import run, ui

from siyu.console.session import tr
from siyu.errors import SiyuError
from siyu.services.context import Context
from siyu.services.wecom import simulator

_last: dict[tuple[str, int], dict[str, Any]] = {}  # (brand, code) → the latest simulated outcome, per process


def controls(ctx: Context, brand_id: str, code: dict[str, Any], refresh: Callable[[], None]) -> None:
    """The buttons and the latest outcome of code ``code`` (nothing for a real WeCom or a deleted code)."""
    if code["status"] != "active" or not simulator.is_local(ctx, brand_id):
        return
    key = (brand_id, int(code["id"]))

    async def act(kind: str) -> None:
        try:
            if kind == "scan":
                out = await run.io_bound(simulator.scan, ctx, brand_id, key[1])
            else:
                prev = _last[key]
                out = await run.io_bound(simulator.delete, ctx, brand_id, key[1], prev["external_userid"])
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        if out is None:  # the client went away meanwhile
            return
        _last[key] = {**out.as_dict(), "kind": kind}
        refresh()

    with ui.card().classes("w-full bg-amber-50").props("flat bordered data-testid=sim-panel"):
        ui.label(tr("sim.hint")).classes("text-xs text-gray-600")
        with ui.row().classes("gap-2"):
            ui.button(tr("sim.scan"), on_click=lambda: act("scan")).props(
                "dense icon=qr_code_scanner data-testid=sim-scan"
            )
            if key in _last and _last[key]["kind"] == "scan":
                ui.button(tr("sim.delete"), on_click=lambda: act("delete")).props(
                    "dense flat color=negative icon=person_remove data-testid=sim-delete"
                )
        if key in _last:
            _result(_last[key])


def _result(o: dict[str, Any]) -> None:
    with ui.column().classes("gap-0").props("data-testid=sim-result"):
        ui.label(tr("sim.result")).classes("text-sm font-bold")
        if o["kind"] == "delete":
            ui.label(tr("sim.deleted", ext=o["external_userid"], guide=o["guide_id"], lost_by=o["lost_by"] or "—"))
            return
        ui.label(tr("sim.customer", ext=o["external_userid"], guide=o["guide_id"], userid=o["userid"])).props(
            "data-testid=sim-customer"
        )
        ui.label(tr("sim.welcome", status=tr(f"codes.s.{o['welcome']}"))).props("data-testid=sim-welcome")
        if o["welcome_text"]:
            ui.label(tr("sim.text", text=o["welcome_text"])).props("data-testid=sim-text")
        tags = ", ".join(o["tags"])
        ui.label(tr("sim.tag", status=tr(f"codes.s.{o['tag']}"), tags=tags)).props("data-testid=sim-tag")
        ui.label(tr("sim.attributed", channel=o["channel_id"] or "—", guide=o["guide_id"])).props(
            "data-testid=sim-attributed"
        )
        if not o["done"]:
            ui.label(tr("sim.pending")).classes("text-xs text-gray-500")
