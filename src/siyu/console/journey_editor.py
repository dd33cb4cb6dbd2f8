"""Console page /journeys/{id}: the flow editor. The journey is drawn as an ECharts ``graph`` laid out top-down by
depth from the start node (colour by node kind; each label carries the node's live counts from the stats), a side
panel edits the selected node (fields of its kind), adds / removes nodes and edges, a form holds the trigger,
re-entry, guards and goal, and a JSON tab the whole definition. "Validate" marks each problem on the node it names;
"Save" stores a new draft version, "Publish" makes it live. Experiments show each arm's conversion with its 95 %
interval and the always-valid decision. Guides see the diagram and figures only."""

from __future__ import annotations

import copy
import json
from collections import defaultdict, deque
from typing import Any

import pandas as pd
from nicegui import ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import data_table, kpi_card
from siyu.domain.journey import JourneyError
from siyu.domain.journey.definition import CHANNELS, NODE_KINDS
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys import definitions as service
from siyu.services.journeys.stats import journey_stats

KIND_COLORS = {
    "wait": "#0284c7",
    "wait_event": "#6366f1",
    "wait_segment": "#8b5cf6",
    "condition": "#d97706",
    "split": "#ca8a04",
    "experiment": "#db2777",
    "action": "#0f766e",
    "exit": "#64748b",
}
ERROR_COLOR = "#dc2626"
# (field, input type, choices) per node kind and per action type; json fields are edited as JSON text
Spec = tuple[tuple[str, str, tuple[str, ...]], ...]
NODE_FIELDS: dict[str, Spec] = {
    "wait": (
        ("mode", "select", ("duration", "time_of_day", "until_date")),
        ("minutes", "int", ()),
        ("at", "text", ()),
        ("weekdays", "json", ()),
        ("use_active_hours", "bool", ()),
        ("until", "text", ()),
    ),
    "wait_event": (("event", "text", ()), ("where", "json", ()), ("timeout_minutes", "int", ())),
    "wait_segment": (("condition", "json", ()), ("check_minutes", "int", ()), ("timeout_minutes", "int", ())),
    "condition": (("branches", "json", ()),),
    "split": (("arms", "json", ()),),
    "experiment": (("arms", "json", ()), ("holdout_percent", "float", ()), ("alpha", "float", ())),
    "action": (),
    "exit": (),
}
ACTION_FIELDS: dict[str, Spec] = {
    "send": (("channel", "select", CHANNELS), ("content", "textarea", ()), ("template", "text", ())),
    "task": (
        ("task_kind", "select", ("call", "message", "visit")),
        ("title", "text", ()),
        ("script", "textarea", ()),
        ("due_hours", "float", ()),
    ),
    "tag": (("op", "select", ("add", "remove")), ("tag", "text", ())),
    "attribute": (("field", "text", ()), ("value", "text", ())),
    "coupon": (("coupon", "text", ()), ("amount", "float", ())),
    "start_journey": (("journey_id", "text", ()),),
}
TRIGGER_FIELDS: dict[str, Spec] = {
    "event": (("event", "text", ()), ("where", "json", ())),
    "segment": (("segment_id", "text", ()), ("on", "select", ("entry", "exit")), ("include_current", "bool", ())),
    "date": (("field", "text", ()), ("offset_days", "int", ()), ("annual", "bool", ())),
    "cadence": (("every_days", "int", ()), ("start", "text", ()), ("segment_id", "text", ())),
    "manual": (),
}
NEW_NODE: dict[str, dict[str, Any]] = {
    "wait": {"minutes": 1440},
    "wait_event": {"event": "Order Completed", "timeout_minutes": 1440},
    "wait_segment": {"condition": {"kind": "orders", "op": "gte", "value": 1}, "timeout_minutes": 1440},
    "condition": {"branches": [{"name": "yes", "condition": {"kind": "orders", "op": "gte", "value": 1}}]},
    "split": {"arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]},
    "experiment": {"arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]},
    "action": {"action": {"type": "task", "task_kind": "call", "title": "跟进", "due_hours": 24}},
    "exit": {},
}


def layout(d: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Top-down positions: depth = shortest distance from the start node (unreachable nodes in a last row)."""
    ids = [str(n.get("id")) for n in d.get("nodes", [])]
    out_edges: dict[str, list[str]] = defaultdict(list)
    for e in d.get("edges", []):
        out_edges[str(e.get("from"))].append(str(e.get("to")))
    depth: dict[str, int] = {}
    start = str(d.get("start"))
    if start in ids:
        depth[start] = 0
        queue = deque([start])
        while queue:
            n = queue.popleft()
            for m in out_edges[n]:
                if m in ids and m not in depth:
                    depth[m] = depth[n] + 1
                    queue.append(m)
    last = max(depth.values(), default=-1) + 1
    rows: dict[int, list[str]] = defaultdict(list)
    for i in ids:
        rows[depth.get(i, last)].append(i)
    pos: dict[str, tuple[float, float]] = {}
    for level, members in rows.items():
        for k, i in enumerate(members):
            pos[i] = ((k - (len(members) - 1) / 2) * 220.0, level * 120.0)
    return pos


def _safe(text: str) -> str:
    return text.replace("{", "(").replace("}", ")").replace("|", "/")


def node_line(node_id: str, stats: dict[str, Any] | None) -> str:
    """The counts line of a node label: '<id> · 进入 N · 等待 M'."""
    s = stats or {}
    return f"{node_id} · {tr('jr.entered')} {s.get('entered', 0)} · {tr('jr.waiting')} {s.get('waiting', 0)}"


def graph_options(d: dict[str, Any], stats: dict[str, dict[str, Any]], errors: list[dict[str, Any]]) -> dict[str, Any]:
    """ECharts options of the flow: nodes by depth, coloured by kind, counts and problems on the labels."""
    pos = layout(d)
    by_node: dict[str, list[str]] = defaultdict(list)
    for e in errors:
        if e.get("node_id"):
            by_node[str(e["node_id"])].append(f"{e.get('field')}: {e.get('message')}")
    data = []
    for n in d.get("nodes", []):
        nid, kind = str(n.get("id")), str(n.get("kind"))
        lines = [_safe(str(n.get("label") or tr(f"jr.kind.{kind}") if kind in NODE_KINDS else kind))]
        lines.append(node_line(nid, stats.get(nid)))
        item: dict[str, Any] = {
            "name": nid,
            "x": pos[nid][0],
            "y": pos[nid][1],
            "itemStyle": {"color": KIND_COLORS.get(kind, "#94a3b8")},
            "label": {"formatter": "\n".join(lines)},
        }
        if nid in by_node:
            item["itemStyle"].update({"borderColor": ERROR_COLOR, "borderWidth": 5})
            item["label"]["formatter"] += "\n⚠ " + _safe(by_node[nid][0])[:60]
            item["label"]["color"] = "#fff"
        data.append(item)
    links = [
        {
            "source": str(e.get("from")),
            "target": str(e.get("to")),
            "label": {"show": e.get("branch", "next") != "next", "formatter": _safe(str(e.get("branch", "")))},
        }
        for e in d.get("edges", [])
    ]
    return {
        "animation": False,
        "tooltip": {},
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": True,
                "symbol": "roundRect",
                "symbolSize": [240, 62],
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 9,
                "label": {"show": True, "color": "#fff", "fontSize": 11, "width": 230, "overflow": "truncate"},
                "edgeLabel": {"fontSize": 10, "color": "#334155"},
                "lineStyle": {"color": "#94a3b8", "width": 1.5},
                "data": data,
                "links": links,
            }
        ],
    }


def _to_value(kind: str, raw: Any) -> Any:
    """An input's value for the definition (a bad number / JSON is kept as text so validation names it)."""
    if kind == "bool":
        return bool(raw)
    if raw is None or raw == "":
        return None
    if kind in ("int", "float"):
        try:
            f = float(raw)
        except (TypeError, ValueError):
            return str(raw)
        return int(f) if kind == "int" and f == int(f) else f
    if kind == "json":
        try:
            return json.loads(str(raw))
        except ValueError:
            return str(raw)
    return raw


def _to_text(kind: str, value: Any) -> Any:
    if kind == "bool":
        return bool(value)
    if value is None:
        return ""
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def verdict_text(exp: dict[str, Any]) -> str:
    """'arm b wins by x pp', 'the comparator wins' or 'too early'."""
    v = exp["verdict"]
    if v["decision"] == "winner":
        lo, hi = v["interval"]
        return tr(
            "jr.exp.winner",
            arm=v["arm"],
            against=exp["comparator"],
            pp=f"{v['lift'] * 100:.1f}",
            low=f"{lo * 100:.1f}",
            high=f"{hi * 100:.1f}",
        )
    if v["decision"] == "comparator_wins":
        return tr("jr.exp.comparator", arm=exp["comparator"])
    return tr("jr.exp.too_early")


class Editor:
    def __init__(self, ctx: Context, user: User, journey_id: str) -> None:
        self.ctx, self.user, self.id = ctx, user, journey_id
        self.info = service.get_journey(ctx, user, journey_id)
        self.d: dict[str, Any] = copy.deepcopy(self.info.definition)
        self.errors: list[dict[str, Any]] = []
        self.editor = user.role != Role.GUIDE
        self.selected: str | None = str(self.d.get("start"))
        self.inputs: dict[str, tuple[str, Any]] = {}
        self.settings_inputs: dict[str, tuple[str, Any]] = {}
        self.stats = journey_stats(ctx, user, journey_id)

    # -- diagram and figures ---------------------------------------------------------------------------------
    def _node_stats(self) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in self.stats["nodes"]}

    def redraw(self) -> None:
        self.chart.options.clear()
        self.chart.options.update(graph_options(self.d, self._node_stats(), self.errors))
        self.chart.update()
        self.json_box.value = json.dumps(self.d, ensure_ascii=False, indent=2)
        self.error_list.refresh()

    def reload_stats(self) -> None:
        self.stats = journey_stats(self.ctx, self.user, self.id)
        self.redraw()
        self.figures.refresh()

    def diagram(self) -> None:
        with ui.card().classes("w-full").props("flat bordered data-testid=flow"):
            ui.label(tr("jr.flow")).classes("text-base font-bold")
            self.chart = (
                ui.echart(graph_options(self.d, self._node_stats(), self.errors), renderer="svg")
                .style("height: 560px")
                .classes("w-full")
                .props("data-testid=flow-chart")
            )
            self.chart.on_point_click(self._clicked)
            with ui.row().classes("gap-3 text-xs"):
                for kind in NODE_KINDS:
                    ui.label(tr(f"jr.kind.{kind}")).style(
                        f"background:{KIND_COLORS[kind]};color:#fff;padding:1px 6px;border-radius:4px"
                    )
            self.error_list()

    def _clicked(self, e: Any) -> None:
        if e.data_type == "node" or e.name in self._ids():
            self.select(str(e.name))

    @ui.refreshable_method
    def error_list(self) -> None:
        if not self.errors:
            return
        with ui.column().classes("gap-1").props("data-testid=errors"):
            ui.label(tr("jr.errors", n=len(self.errors))).classes("text-red-700 font-bold")
            by_node: dict[str, list[str]] = defaultdict(list)
            for e in self.errors:
                by_node[str(e.get("node_id") or "journey")].append(f"{e.get('field')}: {e.get('message')}")
            for nid, msgs in by_node.items():
                ui.label(f"⚠ {nid} — " + "; ".join(msgs)).classes("text-red-700 text-sm").props(
                    f"data-testid=node-error-{nid}"
                )

    @ui.refreshable_method
    def figures(self) -> None:
        st = self.stats
        with ui.row().classes("gap-3"):
            kpi_card(tr("jr.col.entries"), st["entries"], "kpi-entries")
            kpi_card(tr("jr.col.active"), st["active"], "kpi-active")
            kpi_card(tr("jr.col.exited"), st["exited"], "kpi-exited")
            kpi_card(tr("jr.goal_reached"), st["goal_reached"], "kpi-goal")
            kpi_card(tr("jr.goal_value"), round(float(st["goal_value"]), 2), "kpi-goal-value")
        rows = [
            {
                "node": n["id"],
                "kind": tr(f"jr.kind.{n['kind']}") if n["kind"] in NODE_KINDS else n["kind"],
                "entered": n["entered"],
                "waiting": n["waiting"],
                "passed": ", ".join(f"{k} {v}" for k, v in sorted(n["passed"].items())),
                "effects": ", ".join(f"{k} {v}" for k, v in sorted(n["effects"].items())),
            }
            for n in st["nodes"]
        ]
        cols = [(c, tr(f"jr.col.{c}")) for c in ("node", "kind", "entered", "waiting", "passed", "effects")]
        data_table(pd.DataFrame(rows, columns=[c for c, _ in cols]), cols, "node-stats")
        for exp in st["experiments"]:
            nid = exp["node_id"]
            with ui.card().classes("w-full").props(f"flat bordered data-testid=exp-{nid}"):
                ui.label(tr("jr.exp.title", node=nid, alpha=exp["alpha"])).classes("font-bold")
                arms = [
                    {
                        "arm": a["arm"],
                        "customers": a["customers"],
                        "conversions": a["conversions"],
                        "rate": None if a["rate"] is None else f"{a['rate'] * 100:.1f}%",
                        "ci95": f"{a['ci95'][0] * 100:.1f}% – {a['ci95'][1] * 100:.1f}%",
                        "revenue": round(a["revenue"], 2),
                    }
                    for a in exp["arms"]
                ]
                acols = [(c, tr(f"jr.exp.{c}")) for c in ("arm", "customers", "conversions", "rate", "ci95", "revenue")]
                data_table(pd.DataFrame(arms, columns=[c for c, _ in acols]), acols, f"exp-{nid}-arms")
                ui.label(verdict_text(exp)).classes("text-lg font-bold text-teal-800").props(
                    f"data-testid=exp-{nid}-verdict"
                )

    # -- side panel: the selected node ---------------------------------------------------------------------
    def _ids(self) -> list[str]:
        return [str(n.get("id")) for n in self.d.get("nodes", [])]

    def _node(self, nid: str | None) -> dict[str, Any] | None:
        return next((n for n in self.d.get("nodes", []) if str(n.get("id")) == nid), None)

    def select(self, nid: str | None) -> None:
        self.selected = nid
        self.node_panel.refresh()

    def _field(
        self, store: dict[str, tuple[str, Any]], key: str, kind: str, choices: tuple[str, ...], value: Any
    ) -> Any:
        """One input of a spec (select, checkbox, text area or text) registered in ``store`` under ``key``."""
        label = tr(f"jr.f.{key}")
        tid = f"data-testid=nf-{key}"
        el: Any
        if kind == "select":
            el = ui.select(list(choices), label=label, value=value if value in choices else None).props(tid)
        elif kind == "bool":
            el = ui.checkbox(label, value=bool(value)).props(tid)
        elif kind in ("textarea", "json"):
            el = ui.textarea(label, value=_to_text(kind, value)).classes("w-full").props(f"{tid} autogrow dense")
        else:
            el = ui.input(label, value=_to_text(kind, value)).classes("w-full").props(f"{tid} dense")
        if not self.editor:
            el.props("readonly")
        store[key] = (kind, el)
        return el

    @ui.refreshable_method
    def node_panel(self) -> None:
        self.inputs = {}
        ids = self._ids()
        ui.select(
            ids,
            label=tr("jr.node"),
            value=self.selected if self.selected in ids else None,
            on_change=lambda e: self.select(e.value),
        ).classes("w-full").props("data-testid=node-select")
        node = self._node(self.selected)
        if node is None:
            return
        kind = str(node.get("kind"))
        ui.label(tr(f"jr.kind.{kind}") if kind in NODE_KINDS else kind).style(
            f"background:{KIND_COLORS.get(kind, '#94a3b8')};color:#fff;padding:2px 8px;border-radius:4px"
        )
        mine = [e for e in self.errors if e.get("node_id") == node.get("id")]
        for e in mine:
            ui.label(f"⚠ {e.get('field')}: {e.get('message')}").classes("text-red-700 text-sm").props(
                "data-testid=panel-error"
            )
        self._field(self.inputs, "label", "text", (), node.get("label", ""))
        for key, fkind, choices in NODE_FIELDS.get(kind, ()):
            self._field(self.inputs, key, fkind, choices, node.get(key))
        if kind == "action":
            action = node.get("action") or {}
            atype = str(action.get("type", "task"))

            def change_type(e: Any) -> None:
                node["action"] = {"type": e.value, **{}}
                self.node_panel.refresh()

            sel = ui.select(list(ACTION_FIELDS), label=tr("jr.f.type"), value=atype, on_change=change_type)
            sel.props("data-testid=nf-type" + (" readonly" if not self.editor else ""))
            for key, fkind, choices in ACTION_FIELDS.get(atype, ()):
                self._field(self.inputs, "action." + key, fkind, choices, action.get(key))
        if self.editor:
            with ui.row().classes("gap-2"):
                ui.button(tr("jr.apply"), on_click=self.apply_node).props("color=teal-8 dense data-testid=node-apply")
                ui.button(tr("jr.remove_node"), on_click=self.remove_node).props(
                    "color=red-8 outline dense data-testid=node-remove"
                )

    def apply_node(self) -> None:
        node = self._node(self.selected)
        if node is None:
            return
        for key, (kind, el) in self.inputs.items():
            value = _to_value(kind, el.value)
            target = node
            if key.startswith("action."):
                target = node.setdefault("action", {"type": "task"})
                key = key.removeprefix("action.")
            if value is None or (key == "label" and value == ""):
                target.pop(key, None)
            else:
                target[key] = value
        self.redraw()
        ui.notify(tr("jr.applied"), type="info")

    def remove_node(self) -> None:
        nid = self.selected
        self.d["nodes"] = [n for n in self.d.get("nodes", []) if str(n.get("id")) != nid]
        self.d["edges"] = [e for e in self.d.get("edges", []) if nid not in (e.get("from"), e.get("to"))]
        self.select(None)
        self.edges_panel.refresh()
        self.redraw()

    def add_panel(self) -> None:
        with ui.row().classes("items-end gap-2"):
            kind = ui.select(list(NODE_KINDS), label=tr("jr.f.kind"), value="wait").props("data-testid=add-kind")
            nid = ui.input(tr("jr.f.id")).props("dense data-testid=add-id")

            def add() -> None:
                new_id = str(nid.value or "").strip()
                if not new_id or new_id in self._ids():
                    ui.notify(tr("jr.bad_id"), type="warning")
                    return
                self.d.setdefault("nodes", []).append(
                    {"id": new_id, "kind": kind.value, **copy.deepcopy(NEW_NODE[str(kind.value)])}
                )
                self.select(new_id)
                self.edges_panel.refresh()
                self.redraw()

            ui.button(tr("jr.add_node"), on_click=add).props("dense data-testid=add-node")

    @ui.refreshable_method
    def edges_panel(self) -> None:
        ids = self._ids()
        for i, e in enumerate(self.d.get("edges", [])):
            with ui.row().classes("items-center gap-1 text-sm"):
                ui.label(f"{e.get('from')} —{e.get('branch', 'next')}→ {e.get('to')}").props(f"data-testid=edge-{i}")
                if self.editor:
                    ui.button(icon="close", on_click=lambda _, k=i: self.remove_edge(k)).props(
                        f"flat dense size=xs data-testid=edge-{i}-remove"
                    )
        if not self.editor:
            return
        with ui.row().classes("items-end gap-1"):
            src = ui.select(ids, label=tr("jr.f.from")).classes("w-28").props("dense data-testid=edge-from")
            branch = ui.input(tr("jr.f.branch"), value="next").classes("w-24").props("dense data-testid=edge-branch")
            dst = ui.select(ids, label=tr("jr.f.to")).classes("w-28").props("dense data-testid=edge-to")

            def add() -> None:
                if not src.value or not dst.value:
                    return
                self.d.setdefault("edges", []).append(
                    {"from": src.value, "to": dst.value, "branch": str(branch.value or "next")}
                )
                self.edges_panel.refresh()
                self.redraw()

            ui.button(tr("jr.add_edge"), on_click=add).props("dense data-testid=edge-add")

    def remove_edge(self, index: int) -> None:
        del self.d["edges"][index]
        self.edges_panel.refresh()
        self.redraw()

    # -- trigger, re-entry, guards, goal -----------------------------------------------------------------------
    @ui.refreshable_method
    def settings_panel(self) -> None:
        self.settings_inputs = {}
        trig = self.d.get("trigger") or {"kind": "manual"}
        tkind = str(trig.get("kind", "manual"))

        def change_kind(e: Any) -> None:
            self.d["trigger"] = {"kind": e.value}
            self.settings_panel.refresh()

        ui.select(list(TRIGGER_FIELDS), label=tr("jr.f.trigger"), value=tkind, on_change=change_kind).props(
            "data-testid=nf-trigger" + (" readonly" if not self.editor else "")
        )
        for key, kind, choices in TRIGGER_FIELDS.get(tkind, ()):
            self._field(self.settings_inputs, "trigger." + key, kind, choices, trig.get(key))
        re = self.d.get("reentry") or {}
        g = self.d.get("guards") or {}
        goal = self.d.get("goal") or {}
        cap, quiet = g.get("frequency_cap") or {}, g.get("quiet_hours") or {}
        s = self.settings_inputs
        with ui.row().classes("gap-2 w-full"):
            self._field(s, "reentry.mode", "select", ("once", "after_exit", "after_days"), re.get("mode", "once"))
            self._field(s, "reentry.days", "int", (), re.get("days"))
        with ui.row().classes("gap-2 w-full"):
            self._field(s, "cap.max", "int", (), cap.get("max"))
            self._field(s, "cap.per_days", "int", (), cap.get("per_days"))
        with ui.row().classes("gap-2 w-full"):
            self._field(s, "quiet.start", "text", (), quiet.get("start"))
            self._field(s, "quiet.end", "text", (), quiet.get("end"))
        self._field(s, "guards.respect_suppression", "bool", (), g.get("respect_suppression", True))
        self._field(s, "caps.wecom_mass", "int", (), (g.get("channel_daily_caps") or {}).get("wecom_mass"))
        with ui.row().classes("gap-2 w-full"):
            self._field(s, "goal.event", "text", (), goal.get("event"))
            self._field(s, "goal.exit_on_goal", "bool", (), goal.get("exit_on_goal", True))
        if self.editor:
            ui.button(tr("jr.apply"), on_click=self.apply_settings).props(
                "color=teal-8 dense data-testid=settings-apply"
            )

    def apply_settings(self) -> None:
        v = {k: _to_value(kind, el.value) for k, (kind, el) in self.settings_inputs.items()}
        trig: dict[str, Any] = {"kind": (self.d.get("trigger") or {}).get("kind", "manual")}
        for k, val in v.items():
            if k.startswith("trigger.") and val is not None:
                trig[k.removeprefix("trigger.")] = val
        self.d["trigger"] = trig
        self.d["reentry"] = {"mode": v["reentry.mode"] or "once"}
        if v["reentry.days"] is not None:
            self.d["reentry"]["days"] = v["reentry.days"]
        guards: dict[str, Any] = dict(self.d.get("guards") or {})
        guards.pop("frequency_cap", None)
        guards.pop("quiet_hours", None)
        if v["cap.max"] is not None or v["cap.per_days"] is not None:
            guards["frequency_cap"] = {"max": v["cap.max"], "per_days": v["cap.per_days"]}
        if v["quiet.start"] or v["quiet.end"]:
            guards["quiet_hours"] = {"start": v["quiet.start"], "end": v["quiet.end"]}
        guards["respect_suppression"] = bool(v["guards.respect_suppression"])
        caps = dict(guards.get("channel_daily_caps") or {})
        caps.pop("wecom_mass", None)
        if v["caps.wecom_mass"] is not None:
            caps["wecom_mass"] = v["caps.wecom_mass"]
        guards["channel_daily_caps"] = caps
        self.d["guards"] = guards
        if v["goal.event"]:
            self.d["goal"] = {
                **(self.d.get("goal") or {}),
                "event": v["goal.event"],
                "exit_on_goal": v["goal.exit_on_goal"],
            }
        else:
            self.d.pop("goal", None)
        self.redraw()
        ui.notify(tr("jr.applied"), type="info")

    # -- JSON, validate, save, publish -------------------------------------------------------------------------
    def json_panel(self) -> None:
        self.json_box = (
            ui.textarea(value=json.dumps(self.d, ensure_ascii=False, indent=2))
            .classes("w-full font-mono text-xs")
            .props("outlined rows=24 data-testid=json-box" + (" readonly" if not self.editor else ""))
        )
        if self.editor:

            def apply_json() -> None:
                try:
                    d = json.loads(self.json_box.value or "")
                except ValueError as exc:
                    ui.notify(tr("jr.bad_json", error=str(exc)), type="negative")
                    return
                if not isinstance(d, dict):
                    ui.notify(tr("jr.bad_json", error="not an object"), type="negative")
                    return
                self.d = d
                self.node_panel.refresh()
                self.edges_panel.refresh()
                self.settings_panel.refresh()
                self.redraw()

            ui.button(tr("jr.apply_json"), on_click=apply_json).props("dense data-testid=json-apply")

    def validate(self) -> bool:
        try:
            service.validate(self.d)
        except JourneyError as exc:
            self.errors = list(exc.errors)
            self.redraw()
            self.node_panel.refresh()
            ui.notify(tr("jr.invalid", n=len(self.errors)), type="negative")
            return False
        self.errors = []
        self.redraw()
        self.node_panel.refresh()
        ui.notify(tr("jr.valid"), type="positive")
        return True

    def save(self) -> bool:
        if not self.validate():
            return False
        try:
            self.info = service.update_journey(self.ctx, self.user, self.id, definition=self.d)
        except JourneyError as exc:
            self.errors = list(exc.errors)
            self.redraw()
            return False
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return False
        ui.notify(tr("jr.saved", version=self.info.version), type="positive")
        self.header.refresh()
        return True

    def publish(self) -> None:
        if self.d != self.info.definition and not self.save():
            return
        try:
            self.info = service.publish(self.ctx, self.user, self.id)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("jr.done.publish"), type="positive")
        self.header.refresh()

    def lifecycle(self, status: str) -> None:
        try:
            self.info = service.set_status(self.ctx, self.user, self.id, status)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        self.header.refresh()

    @ui.refreshable_method
    def header(self) -> None:
        i = self.info
        with ui.row().classes("items-center gap-3"):
            ui.label(i.name).classes("text-2xl").props("data-testid=journey-title")
            ui.badge(tr(f"jr.status.{i.status}")).props("data-testid=journey-status")
            pub = f" · {tr('jr.published')} v{i.published_version}" if i.published_version else ""
            ui.label(f"v{i.version}{pub}").props("data-testid=journey-version")
            if self.editor:
                ui.button(tr("jr.validate"), on_click=self.validate).props("outline dense data-testid=validate")
                ui.button(tr("jr.save"), on_click=self.save).props("dense color=teal-8 data-testid=save")
                ui.button(tr("jr.publish"), on_click=self.publish).props("dense color=teal-8 data-testid=publish")
                if i.status == "active":
                    ui.button(tr("jr.pause"), on_click=lambda: self.lifecycle("paused")).props("dense outline")
                if i.status == "paused":
                    ui.button(tr("jr.resume"), on_click=lambda: self.lifecycle("active")).props("dense outline")
            ui.button(tr("jr.refresh"), on_click=self.reload_stats).props(
                "flat dense icon=refresh data-testid=stats-refresh"
            )


def register() -> None:
    """Add the page to NiceGUI."""

    @ui.page("/journeys/{journey_id}")
    def journey_page(journey_id: str) -> Any:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "jr.editor", "nav.journeys"):
            try:
                ed = Editor(context(), user, journey_id)
            except SiyuError as exc:
                ui.label(exc.message).classes("text-red-700")
                return None
            ui.link(tr("jr.back"), "/journeys")
            ed.header()
            with ui.row().classes("w-full no-wrap items-start gap-4"):
                with ui.column().classes("grow gap-4").style("min-width: 0"):
                    with ui.tabs().props("dense align=left") as tabs:
                        flow_tab = ui.tab(tr("jr.tab.flow")).props("data-testid=tab-flow")
                        json_tab = ui.tab(tr("jr.tab.json")).props("data-testid=tab-json")
                    with ui.tab_panels(tabs, value=flow_tab).classes("w-full"):
                        with ui.tab_panel(flow_tab):
                            ed.diagram()
                        with ui.tab_panel(json_tab):
                            ed.json_panel()
                    ed.figures()
                with ui.column().classes("w-96 gap-2 shrink-0"):
                    with ui.card().classes("w-full").props("flat bordered data-testid=node-panel"):
                        ui.label(tr("jr.node_panel")).classes("font-bold")
                        ed.node_panel()
                    if ed.editor:
                        with ui.card().classes("w-full").props("flat bordered"):
                            ui.label(tr("jr.add_node")).classes("font-bold")
                            ed.add_panel()
                    with ui.card().classes("w-full").props("flat bordered data-testid=edges-panel"):
                        ui.label(tr("jr.edges")).classes("font-bold")
                        ed.edges_panel()
                    with (
                        ui.expansion(tr("jr.settings"), icon="tune")
                        .classes("w-full")
                        .props("dense data-testid=settings")
                    ):
                        ed.settings_panel()
            ui.timer(30, ed.reload_stats)
        return None
