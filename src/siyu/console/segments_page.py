"""Console page ``/segments``: the segment list with counts, a builder (form with AND/OR groups + JSON editor) with
a live count, the members of a saved segment with exports, and the lookalike panel (lift on a held-out split)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.console.widgets import chart_block, data_table, download_button, how_computed, kpi_card
from siyu.display import local_text
from siyu.domain.models import Role
from siyu.domain.segment_def import AIPL_STAGES, CLV_FIELDS, CUSTOMER_FIELDS, LIFECYCLE_STAGES, RFM_CLASSES
from siyu.services import audit
from siyu.services import lookalike as lookalike_service
from siyu.services import segments as service
from siyu.services.brands import User
from siyu.services.errors import SiyuError
from siyu.services.exports import hash_pii
from siyu.services.pii import mask_frame

DEBOUNCE_SECONDS = 0.35
FORM_KINDS: tuple[str, ...] = (
    "orders",
    "event",
    "trait",
    "channel",
    "guide",
    "store",
    "tag",
    "identity",
    "rfm",
    "aipl",
    "lifecycle",
    "clv",
)
NUMBER_OPS: tuple[str, ...] = ("gte", "gt", "eq", "lte", "lt")
TRAIT_OPS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "contains", "starts_with", "gt", "lt", "exists", "not_exists")
ORDER_MEASURES: tuple[str, ...] = ("count", "sum", "avg", "max", "last_days_ago", "first_days_ago")
ID_TYPES: tuple[str, ...] = ("phone", "unionid", "external_userid", "member_id", "openid", "email", "user_id")
LIST_KEY = {"channel": "channels", "guide": "guides", "store": "stores", "tag": "tags"}
CHOICE_KEY = {"rfm": "classes", "aipl": "stages", "lifecycle": "stages"}


def default_leaf(kind: str) -> dict[str, Any]:
    """A starting condition of each form kind."""
    leaves: dict[str, dict[str, Any]] = {
        "orders": {"kind": "orders", "op": "gte", "value": 1},
        "event": {"kind": "event", "event": "Message Clicked", "window_days": 7, "op": "gte", "value": 2},
        "trait": {"kind": "trait", "field": "city", "op": "eq", "value": "上海"},
        "channel": {"kind": "channel", "channels": ["ch_store"]},
        "guide": {"kind": "guide", "guides": ["g01"]},
        "store": {"kind": "store", "stores": ["st_sh"]},
        "tag": {"kind": "tag", "tags": ["VIP"]},
        "identity": {"kind": "identity", "id_type": "external_userid"},
        "rfm": {"kind": "rfm", "classes": ["important_value"]},
        "aipl": {"kind": "aipl", "stages": ["P", "L"]},
        "lifecycle": {"kind": "lifecycle", "stages": ["old_repurchased"]},
        "clv": {"kind": "clv", "field": "p_alive", "op": "lt", "value": 0.3},
    }
    return dict(leaves[kind])


def to_definition(state: dict[str, Any]) -> dict[str, Any]:
    """The JSON definition of the form: top-level match over groups, each a match over (possibly negated) rows."""
    groups = []
    for g in state["groups"]:
        rows = [{"kind": "not", "condition": r["cond"]} if r["negate"] else r["cond"] for r in g["rows"]]
        if rows:
            groups.append(rows[0] if len(rows) == 1 else {"kind": g["match"], "conditions": rows})
    if len(groups) == 1:
        return groups[0]
    return {"kind": state["match"], "conditions": groups}


def from_definition(d: Any) -> dict[str, Any] | None:
    """The form state of a definition, or None when it nests deeper than the form shows (edit it as JSON)."""

    def row(x: Any) -> dict[str, Any] | None:
        neg = isinstance(x, dict) and x.get("kind") == "not"
        inner = x.get("condition") if neg else x
        if not isinstance(inner, dict) or inner.get("kind") not in FORM_KINDS:
            return None
        return {"negate": neg, "cond": dict(inner)}

    def group(x: Any) -> dict[str, Any] | None:
        if isinstance(x, dict) and x.get("kind") in ("and", "or"):
            rows = [row(c) for c in x.get("conditions", [])]
            if any(r is None for r in rows):
                return None
            return {"match": x["kind"], "rows": rows}
        r = row(x)
        return None if r is None else {"match": "and", "rows": [r]}

    if not isinstance(d, dict):
        return None
    if d.get("kind") in ("and", "or"):
        one = group(d)
        if one is not None:
            return {"match": "and", "groups": [one]}
        groups = [group(c) for c in d.get("conditions", [])]
        if all(g is not None for g in groups) and groups:
            return {"match": d["kind"], "groups": groups}
        return None
    g = group(d)
    return None if g is None else {"match": "and", "groups": [g]}


def _csv(value: Any) -> list[str]:
    return [v.strip() for v in str(value or "").replace("，", ",").split(",") if v.strip()]


def _num(value: Any, default: float = 0) -> int | float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return int(f) if f.is_integer() else f


class SegmentsPage:
    """State and rendering of the segments page for one user."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.ctx = context()
        self.editor = user.role != Role.GUIDE
        self.state: dict[str, Any] = {"match": "and", "groups": [{"match": "and", "rows": []}]}
        self.state["groups"][0]["rows"].append({"negate": False, "cond": default_leaf("orders")})
        self.selected: str | None = None
        self.dirty_at: float | None = time.monotonic()
        self.busy = False
        self.json_edited = False  # the JSON was typed in (not written by the form): show it in the form
        self._writing_json = False
        self.json_text: Any = None
        self.form_box: Any = None
        self.count_label: Any = None
        self.count_note: Any = None
        self.sample_box: Any = None
        self.list_box: Any = None
        self.detail_box: Any = None
        self.name_input: Any = None
        self.choices = self._choices()

    def _choices(self) -> dict[str, list[str]]:
        t = service.tables(self.ctx, self.user.brand_id)
        out: dict[str, list[str]] = {}
        for key, expr in (
            ("channel", t.channels.select(v=t.channels.channel_id)),
            ("guide", t.guides.select(v=t.guides.guide_id)),
            ("store", t.stores.select(v=t.stores.store_id)),
            ("event", t.events.filter(t.events.type == "track").select(v=t.events.event).distinct()),
        ):
            try:
                out[key] = sorted(str(v) for v in expr.to_pandas()["v"] if v is not None)
            except Exception:  # an empty brand: free text
                out[key] = []
        return out

    # --- page ------------------------------------------------------------------------------------------

    def build(self) -> None:
        ui.label(tr("segments.title")).classes("text-2xl").props("data-testid=segments-title")
        if self.user.role == Role.GUIDE:
            ui.label(tr("segments.guide_scope")).classes("text-gray-600")
        with ui.card().classes("w-full").props("flat bordered"):
            with ui.row().classes("items-center justify-between w-full"):
                ui.label(tr("segments.list")).classes("text-lg font-bold")
                if self.editor:
                    ui.button(tr("segments.refresh_all"), on_click=self.refresh_all).props(
                        "dense flat icon=refresh data-testid=segments-refresh-all"
                    )
            self.list_box = ui.column().classes("w-full")
        with ui.card().classes("w-full").props("flat bordered data-testid=segment-builder"):
            ui.label(tr("segments.builder")).classes("text-lg font-bold")
            with ui.row().classes("items-end gap-4 w-full"):
                with ui.column().classes("gap-0"):
                    ui.label(tr("segments.live_count")).classes("text-xs text-gray-500")
                    self.count_label = ui.label("…").classes("text-3xl font-bold").props("data-testid=live-count")
                self.count_note = ui.label("").classes("text-xs text-gray-500").props("data-testid=live-note")
            with ui.tabs().props("dense align=left") as tabs:
                t_form = ui.tab(tr("segments.form")).props("data-testid=tab-form")
                t_json = ui.tab(tr("segments.json")).props("data-testid=tab-json")
            with ui.tab_panels(tabs, value=t_form).classes("w-full"):
                with ui.tab_panel(t_form):
                    self.form_box = ui.column().classes("w-full gap-2")
                with ui.tab_panel(t_json):
                    ui.label(tr("segments.json_help")).classes("text-xs text-gray-500")
                    self.json_text = (
                        ui.textarea(on_change=self.on_json)
                        .props("outlined autogrow data-testid=segment-json input-style='font-family: monospace'")
                        .classes("w-full")
                    )
            if self.editor:
                with ui.row().classes("items-end gap-2"):
                    self.name_input = ui.input(tr("segments.name")).props("dense data-testid=segment-name")
                    ui.button(tr("segments.save_new"), on_click=self.save_new).props("icon=save data-testid=save")
                    ui.button(tr("segments.save_version"), on_click=self.save_version).props(
                        "flat icon=history data-testid=save-version"
                    )
            self.sample_box = ui.column().classes("w-full")
            how_computed("segments.members", "segments.live_count")
        self.detail_box = ui.column().classes("w-full gap-4")
        self.render_form()
        self.render_list()
        ui.timer(0.1, self.poll)

    # --- list --------------------------------------------------------------------------------------------

    def render_list(self) -> None:
        self.list_box.clear()
        items = service.list_segments(self.ctx, self.user)
        with self.list_box:
            if not items:
                ui.label(tr("segments.none")).classes("text-gray-500")
                return
            rows = [
                {
                    "id": s.id,
                    "name": s.name,
                    "members": s.member_count if s.member_count is not None else "—",
                    "version": s.version,
                    "refreshed_at": local_text(s.refreshed_at),
                }
                for s in items
            ]
            cols = [
                ("name", tr("segments.col.name")),
                ("members", tr("segments.col.members")),
                ("version", tr("segments.col.version")),
                ("refreshed_at", tr("segments.col.refreshed_at")),
                ("id", "ID"),
            ]
            table = ui.table(
                columns=[{"name": f, "label": label, "field": f, "align": "left"} for f, label in cols],
                rows=rows,
                row_key="id",
                pagination=10,
            )
            table.classes("w-full").props("flat dense bordered data-testid=segments-table")

            def pick(ev: Any) -> None:
                row = ev.args[1] if isinstance(ev.args, list) and len(ev.args) > 1 else {}
                if isinstance(row, dict) and row.get("id"):
                    self.open_segment(str(row["id"]))

            table.on("rowClick", pick)

    def refresh_all(self) -> None:
        try:
            done = service.refresh_brand(self.ctx, self.user.brand_id)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("segments.refreshed", n=len(done)), type="positive")
        self.render_list()
        if self.selected:
            self.open_segment(self.selected)

    # --- builder -----------------------------------------------------------------------------------------

    def changed(self, re_render: bool = False) -> None:
        """The form changed: mirror it into the JSON editor and schedule the live count."""
        if re_render:
            self.render_form()
        self._set_json(to_definition(self.state))
        self.json_edited = False
        self.dirty_at = time.monotonic()

    def _set_json(self, definition: Any) -> None:
        self._writing_json = True
        try:
            self.json_text.set_value(json.dumps(definition, ensure_ascii=False, indent=2))
        finally:
            self._writing_json = False

    def on_json(self, _ev: Any = None) -> None:
        if not self._writing_json:
            self.json_edited = True
        self.dirty_at = time.monotonic()

    def current_definition(self) -> Any:
        try:
            return json.loads(str(self.json_text.value or ""))
        except ValueError as exc:
            raise SiyuError(tr("segments.bad_json", error=str(exc)), "definition") from None

    async def poll(self) -> None:
        if self.dirty_at is None or self.busy or time.monotonic() - self.dirty_at < DEBOUNCE_SECONDS:
            return
        self.dirty_at = None
        self.busy = True
        try:
            if not self.json_text.value:
                self._set_json(to_definition(self.state))
            definition = self.current_definition()
            found = await run.io_bound(service.preview, self.ctx, self.user, definition, None, 10)
        except SiyuError as exc:
            self.count_label.set_text("—")
            self.count_note.set_text(exc.message)
            self.count_note.classes(replace="text-xs text-red-600")
            return
        finally:
            self.busy = False
        if found is None:  # the app is shutting down
            return
        result: dict[str, Any] = found
        self.count_label.set_text(f"{result['count']:,}")
        self.count_note.set_text(tr("segments.count_note", as_of=result["as_of"], ms=result["elapsed_ms"]))
        self.count_note.classes(replace="text-xs text-gray-500")
        self.sample_box.clear()
        with self.sample_box:
            data_table(
                mask_frame(pd.DataFrame(result["sample"], columns=["customer_id", "name", "phone", "city"])),
                [(c, tr(f"col.{c}")) for c in ("customer_id", "name", "phone", "city")],
                "live-sample",
            )
        if self.json_edited:  # JSON typed in: show it in the form too when the form can hold it
            self.json_edited = False
            form = from_definition(definition)
            if form is not None and form != self.state:
                self.state = form
                self.render_form()

    def render_form(self) -> None:
        self.form_box.clear()
        with self.form_box:
            with ui.row().classes("items-center gap-2"):
                ui.label(tr("segments.match_groups"))
                self._match_select(self.state, "match", "match-top")
            for gi, group in enumerate(self.state["groups"]):
                with ui.card().classes("w-full").props(f"flat bordered data-testid=group-{gi}"):
                    with ui.row().classes("items-center gap-2"):
                        ui.label(tr("segments.group", n=gi + 1)).classes("font-bold")
                        self._match_select(group, "match", f"match-{gi}")
                        ui.button(icon="delete", on_click=lambda gi=gi: self.remove_group(gi)).props(
                            f"flat dense round data-testid=remove-group-{gi}"
                        )
                    for ri, row in enumerate(group["rows"]):
                        self.render_row(gi, ri, row)
                    ui.button(tr("segments.add_condition"), on_click=lambda gi=gi: self.add_row(gi)).props(
                        f"flat dense icon=add data-testid=add-condition-{gi}"
                    )
            ui.button(tr("segments.add_group"), on_click=self.add_group).props(
                "flat dense icon=library_add data-testid=add-group"
            )

    def _match_select(self, target: dict[str, Any], key: str, testid: str) -> None:
        def set_match(ev: Any) -> None:
            target[key] = ev.value
            self.changed()

        ui.select(
            {"and": tr("segments.match.and"), "or": tr("segments.match.or")}, value=target[key], on_change=set_match
        ).props(f"dense data-testid={testid}").classes("w-40")

    def add_group(self) -> None:
        self.state["groups"].append({"match": "and", "rows": [{"negate": False, "cond": default_leaf("orders")}]})
        self.changed(re_render=True)

    def remove_group(self, gi: int) -> None:
        if len(self.state["groups"]) > 1:
            self.state["groups"].pop(gi)
            self.changed(re_render=True)

    def add_row(self, gi: int) -> None:
        self.state["groups"][gi]["rows"].append({"negate": False, "cond": default_leaf("event")})
        self.changed(re_render=True)

    def remove_row(self, gi: int, ri: int) -> None:
        rows = self.state["groups"][gi]["rows"]
        if len(rows) > 1 or len(self.state["groups"]) > 1:
            rows.pop(ri)
            if not rows:
                self.state["groups"].pop(gi)
            self.changed(re_render=True)

    def render_row(self, gi: int, ri: int, row: dict[str, Any]) -> None:
        cond = row["cond"]
        tid = f"cond-{gi}-{ri}"
        kind = cond["kind"]

        def set_kind(ev: Any) -> None:
            row["cond"] = default_leaf(str(ev.value))
            self.changed(re_render=True)

        def setter(key: str, convert: Any = None) -> Any:
            def apply(ev: Any) -> None:
                value = convert(ev.value) if convert else ev.value
                if value in (None, "", []):
                    cond.pop(key, None)
                else:
                    cond[key] = value
                self.changed()

            return apply

        with ui.row().classes("items-end gap-2 w-full").props(f"data-testid={tid}"):
            ui.checkbox(tr("segments.not"), value=row["negate"], on_change=lambda e: self._negate(row, e.value)).props(
                f"dense data-testid={tid}-not"
            )
            ui.select({k: tr(f"segments.kind.{k}") for k in FORM_KINDS}, value=kind, on_change=set_kind).props(
                f"dense data-testid={tid}-kind"
            ).classes("w-36")
            if kind == "orders":
                ui.select(
                    {m: tr(f"segments.measure.{m}") for m in ORDER_MEASURES},
                    value=cond.get("measure", "count"),
                    on_change=setter("measure"),
                ).props(f"dense data-testid={tid}-measure").classes("w-36")
                self._window(cond, setter, tid)
                self._compare(cond, setter, tid)
            elif kind == "event":
                ui.select(
                    self.choices.get("event") or [cond.get("event", "")],
                    value=cond.get("event"),
                    with_input=True,
                    new_value_mode="add-unique",
                    on_change=setter("event"),
                    label=tr("segments.event"),
                ).props(f"dense data-testid={tid}-event").classes("w-48")
                self._window(cond, setter, tid)
                self._compare(cond, setter, tid)
            elif kind == "trait":
                ui.select(
                    [
                        *CUSTOMER_FIELDS,
                        *(["traits." + cond["field"].removeprefix("traits.")] if "." in cond["field"] else []),
                    ],
                    value=cond["field"],
                    with_input=True,
                    new_value_mode="add-unique",
                    on_change=setter("field"),
                    label=tr("segments.field"),
                ).props(f"dense data-testid={tid}-field").classes("w-36")
                ui.select(
                    {o: tr(f"segments.op.{o}") for o in TRAIT_OPS},
                    value=cond.get("op", "eq"),
                    on_change=self._trait_op(cond),
                ).props(f"dense data-testid={tid}-op").classes("w-32")
                shown = cond.get("value")
                ui.input(
                    tr("segments.value"),
                    value=", ".join(map(str, shown))
                    if isinstance(shown, list)
                    else ("" if shown is None else str(shown)),
                    on_change=self._trait_value(cond),
                ).props(f"dense data-testid={tid}-value").classes("w-48")
            elif kind in LIST_KEY:
                key = LIST_KEY[kind]
                options = self.choices.get(kind) or []
                current = list(cond.get(key, []))
                ui.select(
                    sorted(set(options) | set(current)),
                    value=current,
                    multiple=True,
                    with_input=True,
                    new_value_mode="add-unique",
                    on_change=setter(key, list),
                    label=tr(f"segments.kind.{kind}"),
                ).props(f"dense use-chips data-testid={tid}-values").classes("min-w-60")
            elif kind == "clv":
                ui.select(
                    {f: tr(f"segments.clv.{f}") for f in CLV_FIELDS}, value=cond["field"], on_change=setter("field")
                ).props(f"dense data-testid={tid}-clv-field").classes("w-44")
                self._compare(cond, setter, tid)
            elif kind == "identity":
                ui.select(
                    list(dict.fromkeys([*ID_TYPES, cond["id_type"]])),
                    value=cond["id_type"],
                    on_change=setter("id_type"),
                ).props(f"dense data-testid={tid}-id-type").classes("w-44")
            elif kind in CHOICE_KEY:
                key = CHOICE_KEY[kind]
                codes = {"rfm": RFM_CLASSES, "aipl": AIPL_STAGES, "lifecycle": LIFECYCLE_STAGES}[kind]
                prefix = {"rfm": "value.class.", "aipl": "value.stage.", "lifecycle": "value.life."}[kind]
                ui.select(
                    {c: tr(prefix + c) for c in codes},
                    value=list(cond.get(key, [])),
                    multiple=True,
                    on_change=setter(key, list),
                ).props(f"dense use-chips data-testid={tid}-values").classes("min-w-72")
            ui.button(icon="close", on_click=lambda: self.remove_row(gi, ri)).props(
                f"flat dense round data-testid={tid}-remove"
            )

    def _negate(self, row: dict[str, Any], value: bool) -> None:
        row["negate"] = bool(value)
        self.changed()

    def _window(self, cond: dict[str, Any], setter: Any, tid: str) -> None:
        ui.number(
            tr("segments.window_days"),
            value=cond.get("window_days"),
            min=1,
            format="%d",
            on_change=setter("window_days", lambda v: int(v) if v else None),
        ).props(f"dense data-testid={tid}-window").classes("w-28")

    def _compare(self, cond: dict[str, Any], setter: Any, tid: str) -> None:
        ui.select(
            {o: tr(f"segments.op.{o}") for o in NUMBER_OPS}, value=cond.get("op", "gte"), on_change=setter("op")
        ).props(f"dense data-testid={tid}-op").classes("w-24")
        ui.number(tr("segments.value"), value=cond.get("value", 1), on_change=setter("value", _num)).props(
            f"dense data-testid={tid}-value"
        ).classes("w-28")

    def _trait_op(self, cond: dict[str, Any]) -> Any:
        def apply(ev: Any) -> None:
            cond["op"] = ev.value
            if ev.value in ("exists", "not_exists"):
                cond.pop("value", None)
            elif ev.value in ("in", "not_in"):
                cond["value"] = _csv(cond.get("value")) or ["上海"]
            elif isinstance(cond.get("value"), list):
                cond["value"] = cond["value"][0]
            self.changed(re_render=True)

        return apply

    def _trait_value(self, cond: dict[str, Any]) -> Any:
        def apply(ev: Any) -> None:
            if cond.get("op") in ("in", "not_in"):
                cond["value"] = _csv(ev.value)
            elif cond.get("op") in ("gt", "lt") and CUSTOMER_FIELDS.get(cond["field"]) is None:
                cond["value"] = _num(ev.value)
            else:
                cond["value"] = str(ev.value or "")
            self.changed()

        return apply

    # --- saving ------------------------------------------------------------------------------------------

    def save_new(self) -> None:
        try:
            info = service.create_segment(
                self.ctx, self.user, str(self.name_input.value or ""), self.current_definition()
            )
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("segments.saved", name=info.name, n=info.member_count or 0), type="positive")
        self.render_list()
        self.open_segment(info.id)

    def save_version(self) -> None:
        if not self.selected:
            ui.notify(tr("segments.pick_first"), type="warning")
            return
        try:
            info = service.update_segment(
                self.ctx,
                self.user,
                self.selected,
                name=str(self.name_input.value or "") or None,
                definition=self.current_definition(),
            )
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(tr("segments.saved_version", name=info.name, version=info.version), type="positive")
        self.render_list()
        self.open_segment(info.id)

    # --- a saved segment: members, exports, lookalike ---------------------------------------------------

    def _audit_export(self, target: str) -> Callable[[str], None]:
        def record(fmt: str) -> None:
            detail = {"format": fmt, "pii": "hashed", "via": "console"}
            audit.record(self.ctx, self.user.brand_id, self.user, "export", target, detail)

        return record

    def open_segment(self, segment_id: str) -> None:
        try:
            info = service.get_segment(self.ctx, self.user, segment_id)
            frame_ = service.members_frame(self.ctx, self.user, segment_id)
        except SiyuError as exc:
            ui.notify(exc.message, type="negative")
            return
        self.selected = segment_id
        if self.name_input is not None:
            self.name_input.set_value(info.name)
        self._set_json(info.definition)
        self.json_edited = True  # show the saved definition in the form
        self.dirty_at = time.monotonic()
        self.detail_box.clear()
        with self.detail_box, ui.card().classes("w-full").props("flat bordered data-testid=segment-detail"):
            with ui.row().classes("items-center gap-3"):
                ui.label(f"{info.name} · v{info.version}").classes("text-lg font-bold")
                kpi_card(tr("segments.col.members"), len(frame_), "segment-members-count")
            ui.label(tr("segments.members")).classes("font-bold")
            shown = mask_frame(frame_.assign(entered_at=frame_["entered_at"].astype(str)))
            data_table(
                shown,
                [(c, tr(f"segments.col.{c}") if c == "entered_at" else tr(f"col.{c}")) for c in service.MEMBER_COLUMNS],
                "segment-members",
            )
            # the console's export hashes phones / emails and is audited, like GET /api/segments/{id}/export
            audited = self._audit_export(f"segment:{segment_id}")
            download_button(hash_pii(frame_), f"segment-{segment_id}", "segment-members", audited)
            ui.separator()
            ui.label(tr("segments.lookalike")).classes("font-bold")
            ui.label(tr("segments.lookalike_help")).classes("text-xs text-gray-500")
            box = ui.column().classes("w-full")
            ui.button(tr("segments.lookalike_run"), on_click=lambda: self.render_lookalike(box, segment_id)).props(
                "icon=auto_awesome data-testid=lookalike-run"
            )

    async def render_lookalike(self, box: Any, segment_id: str) -> None:
        box.clear()
        with box:
            ui.spinner()
        try:
            got = await run.io_bound(lookalike_service.lookalike, self.ctx, self.user, segment_id, 200)
        except SiyuError as exc:
            box.clear()
            with box:
                ui.label(exc.message).classes("text-red-600")
            return
        box.clear()
        if got is None:
            return
        r: lookalike_service.LookalikeResult = got
        with box:
            with ui.row().classes("gap-3"):
                kpi_card(tr("segments.lift"), f"{r.lift:.2f}", "lookalike-lift", tr("segments.lift_hint"))
                kpi_card(tr("segments.hidden_found"), f"{r.found_in_top_decile} / {r.hidden}", "lookalike-found")
                kpi_card(tr("segments.seed_size"), r.seed_size, "lookalike-seed")
                kpi_card(tr("segments.scored"), r.scored, "lookalike-scored")
            feats = pd.DataFrame(r.features[:15])
            chart_block(
                tr("segments.features"),
                {
                    "tooltip": {"trigger": "axis"},
                    "grid": {"left": 220, "right": 30, "top": 10, "bottom": 30},
                    "xAxis": {"type": "value"},
                    "yAxis": {"type": "category", "data": list(feats["feature"])[::-1]},
                    "series": [
                        {
                            "type": "bar",
                            "data": [float(w) for w in feats["weight"]][::-1],
                            "itemStyle": {"color": "#0f766e"},
                        }
                    ],
                },
                feats,
                [("feature", tr("segments.col.feature")), ("weight", tr("segments.col.weight"))],
                "lookalike-features",
                ("segments.lookalike_lift",),
                height="420px",
            )
            people = mask_frame(pd.DataFrame(r.customers, columns=["customer_id", "score", "name", "city"]))
            ui.label(tr("segments.lookalike_top")).classes("font-bold")
            data_table(
                people,
                [
                    ("customer_id", tr("col.customer_id")),
                    ("score", tr("segments.col.score")),
                    ("name", tr("col.name")),
                    ("city", tr("col.city")),
                ],
                "lookalike-customers",
            )
            download_button(
                people, f"lookalike-{segment_id}", "lookalike", self._audit_export(f"lookalike:{segment_id}")
            )


def register() -> None:
    """Register the segments page on NiceGUI."""

    @ui.page("/segments")
    def segments_page() -> RedirectResponse | None:
        user = current_user()
        if user is None:
            return login_redirect()
        with frame(user, "segments.title", "nav.segments"):
            SegmentsPage(user).build()
        return None
