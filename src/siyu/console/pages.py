"""Console pages: login, customer list (AG Grid, server-side paging), customer 360 (personal data masked; a reveal
button for those allowed, audited)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from siyu import i18n
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, sign_in, tr, url
from siyu.display import display_value
from siyu.domain.models import Role
from siyu.domain.pii import mask_record
from siyu.services import auth as auth_service
from siyu.services import customers as customer_service
from siyu.services import pii as pii_service
from siyu.services.clv import predictions as clv_predictions
from siyu.services.errors import NotFound, SiyuError

PAGER_PROPS = "max-pages=9 boundary-numbers"  # show at most 9 page buttons, plus first and last


def _code_label(prefix: str, code: object) -> str:
    """The translated label of a code (``prefix.code`` in siyu.i18n), or the code itself when unknown."""
    if code is None or code == "":
        return ""
    key = f"{prefix}.{code}"
    return tr(key) if i18n.has(key) else str(code)


PAGE_SIZE = 20
EVENTS_LIMIT = 10


def _table(columns: list[tuple[str, str]], rows: list[dict[str, Any]], testid: str) -> None:
    """A read-only ui.table; columns are (field, translation key)."""
    if not rows:
        ui.label(tr("c360.none")).classes("text-gray-500")
        return
    ui.table(
        columns=[{"name": f, "label": tr(k), "field": f, "align": "left"} for f, k in columns],
        rows=[{f: display_value(r.get(f), f) for f, _ in columns} for r in rows],  # money fields as money
        row_key=columns[0][0],
    ).classes("w-full").props(f"flat dense bordered data-testid={testid}")


def _clv_card(ctx: Any, user: Any, customer_id: str) -> None:
    """The customer's CLV prediction (from the latest fit), or a note that there is none."""
    ui.label(tr("clv.c360.title")).classes("text-lg font-bold mt-2")
    try:
        pred = clv_predictions.customer(ctx, user, customer_id)
    except NotFound:
        ui.label(tr("clv.c360.none")).classes("text-gray-500 text-sm").props("data-testid=clv-none")
        return
    with ui.column().classes("gap-0").props("data-testid=clv"):
        for key, field, fmt in (
            ("clv.c360.p_alive", "p_alive", "{:.1%}"),
            ("clv.c360.purchases", "expected_purchases", "{:.2f}"),
            ("clv.c360.spend", "expected_spend", "¥{:,.2f}"),
            ("clv.c360.clv", "clv", "¥{:,.2f}"),
        ):
            with ui.row().classes("gap-2"):
                ui.label(tr(key) + ":").classes("text-gray-500")
                ui.label(fmt.format(float(pred[field]))).props(f"data-testid=clv-{field}")


def _reveal_button(ctx: Any, user: Any, cid: str, labels: dict[str, ui.label], show_identities: Any) -> None:
    """The masked note and, for users who may reveal, a button showing the clear profile and identifiers (each
    click is an audit-log entry)."""
    ui.label(tr("pii.masked_note")).classes("text-gray-500 text-xs").props("data-testid=pii-note")
    if not pii_service.may_reveal(ctx, user):
        return

    def reveal() -> None:
        try:
            got = pii_service.reveal(ctx, user, cid, "console customer 360")
        except SiyuError as exc:
            ui.notify(exc.message, type="warning")
            return
        for field in pii_service.PROFILE_FIELDS:
            labels[field].text = display_value(got["profile"].get(field))
        view = customer_service.get_customer_360(ctx, user, cid, 1, 1)
        show_identities(view.identities)
        button.visible = False
        ui.notify(tr("pii.revealed"), type="info")

    button = ui.button(tr("pii.reveal"), icon="visibility", on_click=reveal).props("flat dense data-testid=reveal")


def register() -> None:
    """Register the pages on NiceGUI (once per process)."""

    @ui.page("/")
    def index() -> RedirectResponse:
        return RedirectResponse(url("/customers" if current_user() else "/login"))

    @ui.page("/login")
    def login_page(request: Request) -> RedirectResponse | None:
        if current_user() is not None:
            return RedirectResponse(url("/customers"))
        ui.page_title(f"{tr('login.title')} · {tr('app.title')}")
        client = request.client.host if request.client else ""

        def submit() -> None:
            try:
                user = auth_service.login(context(), username.value.strip(), password.value, "console:" + client)
            except SiyuError as exc:
                error.text = tr("login.failed") if exc.status_code == 401 else exc.message
                error.visible = True
                return
            sign_in(user)
            ui.navigate.to("/customers")

        with ui.card().classes("absolute-center w-80"):
            ui.label(f"私域 siyu · {tr('login.title')}").classes("text-xl font-bold")
            username = ui.input(tr("login.username")).classes("w-full").props("data-testid=username")
            password = (
                ui.input(tr("login.password"), password=True, password_toggle_button=True)
                .classes("w-full")
                .props("data-testid=password")
                .on("keydown.enter", submit)
            )
            error = ui.label("").classes("text-red-600")
            error.visible = False
            ui.button(tr("login.submit"), on_click=submit).classes("w-full").props("data-testid=login")
        return None

    @ui.page("/customers")
    def customers_page() -> RedirectResponse | None:
        user = current_user()
        if user is None:
            return login_redirect()
        state: dict[str, Any] = {"q": "", "page": 1}
        with frame(user, "customers.title", "nav.customers"):
            ui.label(tr("customers.title")).classes("text-2xl")
            if user.role == Role.GUIDE:
                ui.label(tr("customers.guide_scope")).classes("text-gray-600")
            with ui.row().classes("items-center w-full"):
                box = (
                    ui.input(placeholder=tr("customers.search"))
                    .classes("w-96")
                    .props("clearable outlined dense data-testid=search")
                )
                ui.button(tr("customers.search_button"), icon="search", on_click=lambda: search(1))
            total_label = ui.label("").props("data-testid=total")
            grid = ui.aggrid(
                {
                    "columnDefs": [
                        {"headerName": tr("col." + f), "field": f, "flex": 1}
                        for f in ("name", "phone", "customer_id", "email", "city", "updated_at")
                    ],
                    "rowData": [],
                    "rowSelection": {"mode": "singleRow"},
                    "overlayNoRowsTemplate": tr("customers.empty"),
                }
            ).classes("w-full h-[560px]")
            pager = ui.pagination(1, 1, direction_links=True, on_change=lambda e: search(int(e.value)))
            pager.props(PAGER_PROPS)

            def search(page: int) -> None:
                state["q"] = box.value or ""
                state["page"] = page
                try:
                    result = customer_service.search_customers(context(), user, state["q"], page, PAGE_SIZE)
                except SiyuError as exc:
                    ui.notify(exc.message, type="warning")
                    return
                grid.options["rowData"] = [
                    mask_record({**c.__dict__, "updated_at": display_value(c.updated_at)}) for c in result.items
                ]
                grid.update()
                total_label.text = tr("customers.total", total=result.total)
                pager.max = max(1, -(-result.total // PAGE_SIZE))
                if pager.value != page:
                    pager.value = page

            box.on("keydown.enter", lambda: search(1))
            grid.on("cellClicked", lambda e: ui.navigate.to(f"/customers/{e.args['data']['customer_id']}"))
            search(1)
        return None

    @ui.page("/customers/{customer_id}")
    def customer_page(customer_id: str) -> RedirectResponse | None:
        user = current_user()
        if user is None:
            return login_redirect()
        ctx = context()
        try:
            cid = customer_service.resolve_customer(ctx, user, customer_id)
        except NotFound:
            with frame(user, "c360.title", "nav.customers"):
                ui.link(f"← {tr('c360.back')}", "/customers")
                ui.label(tr("c360.not_found")).classes("text-red-600 text-lg").props("data-testid=not-found")
            return None
        if cid != customer_id:
            return RedirectResponse(url(f"/customers/{cid}"))
        with frame(user, "c360.title", "nav.customers"):
            ui.link(f"← {tr('c360.back')}", "/customers")
            view = customer_service.get_customer_360(ctx, user, cid, 1, EVENTS_LIMIT)
            # masked, but the values as they are (datetimes, not the API's ISO strings: display_value formats them)
            masked = pii_service.masked_360(
                {
                    "profile": view.profile,
                    "identities": view.identities,
                    "relations": view.relations,
                    "merges": view.merges,
                }
            )
            p = {**masked["profile"], "gender": _code_label("gender", masked["profile"].get("gender")) or None}
            ui.label(f"{tr('c360.title')} · {p.get('name') or cid}").classes("text-2xl").props("data-testid=c360-title")
            labels: dict[str, ui.label] = {}
            with ui.row().classes("w-full gap-4 items-stretch"):
                with ui.card().classes("w-96").props("data-testid=profile"):
                    ui.label(tr("c360.profile")).classes("text-lg font-bold")
                    for key, field in (
                        ("col.customer_id", "customer_id"),
                        ("col.name", "name"),
                        ("col.phone", "phone"),
                        ("col.email", "email"),
                        ("c360.gender", "gender"),
                        ("c360.birthday", "birthday"),
                        ("col.city", "city"),
                        ("c360.created_at", "created_at"),
                        ("col.updated_at", "updated_at"),
                    ):
                        with ui.row().classes("gap-2"):
                            ui.label(tr(key) + ":").classes("text-gray-500 w-20")
                            labels[field] = ui.label(display_value(p.get(field))).props(f"data-testid=profile-{field}")
                    _reveal_button(ctx, user, cid, labels, lambda rows: show_identities(rows))
                    ui.label(tr("c360.tags")).classes("text-lg font-bold mt-2")
                    with ui.row().classes("gap-1"):
                        if not view.tags:
                            ui.label(tr("c360.none")).classes("text-gray-500")
                        for tag in view.tags:
                            ui.badge(str(tag["name"]), color="teal").props("data-testid=tag")
                    _clv_card(ctx, user, cid)
                with ui.card().classes("flex-1"):
                    ui.label(tr("c360.identities")).classes("text-lg font-bold")
                    ids_box = ui.column().classes("w-full")

                    def show_identities(rows: list[dict[str, Any]]) -> None:
                        ids_box.clear()
                        with ids_box:
                            _table(
                                [
                                    ("id_type", "col.id_type"),
                                    ("id_value", "col.id_value"),
                                    ("first_seen_at", "col.first_seen_at"),
                                    ("last_seen_at", "col.last_seen_at"),
                                ],
                                rows,
                                "identities",
                            )

                    show_identities(masked["identities"])
            with ui.card().classes("w-full"):
                ui.label(tr("c360.relations")).classes("text-lg font-bold")
                rels = [
                    {
                        **r,
                        "guide": r.get("guide_name") or r["guide_id"],
                        "state": tr("state." + str(r["state"])),
                        "add_way": _code_label("add_way", r.get("add_way")),
                        "lost_by": _code_label("lost_by", r.get("lost_by")),
                    }
                    for r in view.relations
                ]
                _table(
                    [
                        ("guide", "col.guide"),
                        ("state", "col.state"),
                        ("added_at", "col.added_at"),
                        ("add_way", "col.add_way"),
                        ("lost_at", "col.lost_at"),
                        ("lost_by", "col.lost_by"),
                    ],
                    rels,
                    "relations",
                )
            with ui.card().classes("w-full"):
                ui.label(tr("c360.orders")).classes("text-lg font-bold")
                _table(
                    [
                        ("order_id", "col.order_id"),
                        ("ordered_at", "col.ordered_at"),
                        ("amount", "col.amount"),
                        ("status", "col.status"),
                        ("lines_count", "col.lines_count"),
                    ],
                    [{**o, "status": _code_label("order_status", o.get("status"))} for o in view.orders],
                    "orders",
                )
            with ui.card().classes("w-full"):
                ui.label(tr("c360.events")).classes("text-lg font-bold")
                events_box = ui.column().classes("w-full")

                def show_events(page: int) -> None:
                    rows, total = customer_service.customer_events(ctx, user.brand_id, cid, page, EVENTS_LIMIT)
                    events_box.clear()
                    with events_box:
                        _table(
                            [
                                ("timestamp", "col.timestamp"),
                                ("type", "col.type"),
                                ("event", "col.event"),
                                ("message_id", "col.message_id"),
                            ],
                            [{**r, "event": r.get("event") or r.get("name") or ""} for r in rows],
                            "events",
                        )
                        if total > EVENTS_LIMIT:
                            ui.pagination(
                                1,
                                -(-total // EVENTS_LIMIT),
                                value=page,
                                direction_links=True,
                                on_change=lambda e: show_events(int(e.value)),
                            ).props(f"data-testid=events-pager {PAGER_PROPS}")

                show_events(1)
            with ui.card().classes("w-full"):
                ui.label(tr("c360.merges")).classes("text-lg font-bold")
                _table(
                    [
                        ("merged_at", "col.merged_at"),
                        ("absorbed_customer_id", "col.absorbed"),
                        ("customer_id", "col.customer_id"),
                        ("rule", "col.rule"),
                        ("id_value", "col.id_value"),
                        ("undone_at", "col.undone_at"),
                    ],
                    masked["merges"],
                    "merges",
                )
        return None
