"""The sidebar H5 app under ``/sidebar/{brand}/...``: pages (server-rendered, phone layout) and their JSON API.

Pages: ``/`` (entry: WeCom OAuth, then the current chat's customer via ``getCurExternalContact``; outside WeCom
a search of the guide's customers), ``/link?t=`` (signed link), ``/ext/{external_userid}``, ``/c/{customer_id}``,
``/g/{chat_id}`` (a customer group, from ``getCurExternalChat``).
API (session cookie + ``X-CSRF-Token`` on POSTs): ``/api/jssdk?url=`` (signed ``wx.config`` / ``wx.agentConfig``
arguments), ``/api/customer/{id}``, ``/api/group/{chat_id}``, ``/api/customer/{id}/tags`` (POST: add/remove
WeCom corp tags), ``/api/customer/{id}/notes`` (POST: a follow-up note), ``/api/scripts``,
``/api/scripts/folders``, ``/api/scripts/{id}/prepare`` (POST: the ``sendChatMessage`` argument and a one-time
token), ``/api/scripts/confirm`` (POST: the callback's ``err_msg``; ``sendChatMessage:ok`` counts the use).
A guide opening someone else's customer gets 403 (also for ids that do not exist: no probing).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from siyu.api.deps import get_ctx
from siyu.api.validation import MAX_ID, RowId
from siyu.domain.scripts import chat_message
from siyu.i18n import normalize_language
from siyu.i18n import t as translate
from siyu.services import customers, pii, scripts
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, NotFound, SiyuError, Unauthorized
from siyu.services.rate_limit import check_rate
from siyu.services.sidebar import access, sends, view
from siyu.services.sidebar.config import jssdk_for
from siyu.services.wecom import tags as tag_service
from siyu.services.wecom.config import client_for, get_config
from siyu.sidebar.render import render

router = APIRouter(prefix="/sidebar/{brand_id}", tags=["sidebar"], include_in_schema=True)
COOKIE = "siyu_sidebar"
LANG_COOKIE = "siyu_sidebar_lang"
JS_APIS = ["getContext", "getCurExternalContact", "getCurExternalChat", "sendChatMessage"]
READ_RATE, READ_BURST = 10.0, 60
WRITE_RATE, WRITE_BURST = 2.0, 20
ENTRY_RATE, ENTRY_BURST = 1.0, 30  # sign-ins per client address (a shop behind one NAT: 30 at once, then 1/s)


def _lang(request: Request) -> str:
    return normalize_language(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh")


def _csrf(ctx: Context, cookie: str) -> str:
    return hmac.new(ctx.settings.secret_key.encode(), b"sidebar-csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def _session(request: Request, brand_id: str, ctx: Context) -> access.GuideSession | None:
    return access.read_session(ctx, brand_id, request.cookies.get(COOKIE))


def _user(request: Request, brand_id: str, ctx: Context, write: bool = False) -> User:
    """The guide of the session (401 without one); POSTs need the page's CSRF token; rate-limited per guide."""
    sess = _session(request, brand_id, ctx)
    if sess is None:
        raise Unauthorized("no sidebar session; open the sidebar from WeCom or a sidebar link")
    if write and not hmac.compare_digest(
        request.headers.get("x-csrf-token", ""), _csrf(ctx, request.cookies.get(COOKIE, ""))
    ):
        raise Forbidden("missing or wrong X-CSRF-Token; reload the sidebar", "csrf")
    rate, burst = (WRITE_RATE, WRITE_BURST) if write else (READ_RATE, READ_BURST)
    check_rate(ctx, "sidebar_write" if write else "sidebar_read", rate, burst, f"{brand_id}:{sess.guide_id}")
    return access.guide_user(ctx, sess)


def _per_address(request: Request, ctx: Context, bucket: str, brand_id: str) -> None:
    """Sign-ins (OAuth codes, signed links) limited per client address: 429 past ENTRY_RATE/s."""
    ip = request.client.host if request.client else ""
    check_rate(ctx, bucket, ENTRY_RATE, ENTRY_BURST, f"{brand_id}:{ip}")


def _own(ctx: Context, user: User, customer_id: str) -> str:
    """The customer's current id if the user may see them; 403 otherwise (same answer for unknown ids)."""
    try:
        return customers.resolve_customer(ctx, user, customer_id)
    except NotFound as exc:
        raise Forbidden(f"customer {customer_id!r} is not one of your customers", "customer_id") from exc


def _with_session(resp: Response, ctx: Context, sess: access.GuideSession, secure: bool) -> Response:
    resp.set_cookie(
        COOKIE,
        access.session_value(ctx, sess),
        max_age=access.SESSION_MAX_AGE,
        httponly=True,
        secure=secure,
        samesite="none" if secure else "lax",  # inside WeCom the page is embedded; https allows SameSite=None
    )
    return resp


def _page_error(request: Request, key: str, status: int) -> HTMLResponse:
    lang = _lang(request)
    return HTMLResponse(render("message.html", lang=lang, t=lambda k, **v: translate(k, lang, **v), key=key), status)


# -- pages -----------------------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse, response_model=None)
def entry(brand_id: str, request: Request, code: str = "", ctx: Context = Depends(get_ctx)) -> Response:
    """The sidebar's entry: signs the guide in (WeCom OAuth) and finds the customer of the current chat."""
    secure = request.url.scheme == "https"
    back = str(request.url.remove_query_params(["code", "state"]))
    if code:
        _per_address(request, ctx, "sidebar_oauth", brand_id)  # each code costs a WeCom call
        return _with_session(RedirectResponse(back, 302), ctx, access.login_with_code(ctx, brand_id, code), secure)
    sess = _session(request, brand_id, ctx)
    if sess is None:
        if not access.sidebar_configured(ctx, brand_id):
            return _page_error(request, "sidebar.not_configured", 404)
        return RedirectResponse(access.authorize_url(ctx, brand_id, back, "sidebar"), 302)
    user = access.guide_user(ctx, sess)
    q = request.query_params.get("q", "").strip()[:50]
    found = customers.search_customers(ctx, user, q, 1, 20).items if q else []
    return _html(request, ctx, "home.html", brand_id, user, q=q, found=found)


@router.get("/link", response_model=None)
def link(brand_id: str, request: Request, t: str = "", ctx: Context = Depends(get_ctx)) -> Response:
    """A signed link (``?t=``): starts a session as its guide and opens its customer."""
    _per_address(request, ctx, "sidebar_link", brand_id)
    sess, customer_id = access.read_link(ctx, brand_id, t)
    target = f"/sidebar/{brand_id}/c/{customer_id}" if customer_id else f"/sidebar/{brand_id}/"
    return _with_session(RedirectResponse(target, 302), ctx, sess, request.url.scheme == "https")


@router.get("/ext/{external_userid}", response_model=None)
def by_external_userid(
    brand_id: str, external_userid: str, request: Request, ctx: Context = Depends(get_ctx)
) -> Response:
    """The customer of a chat (the external_userid ``getCurExternalContact`` gave)."""
    user = _user(request, brand_id, ctx)
    rows = ctx.warehouse.fetch(
        "SELECT customer_id FROM identities WHERE brand_id = ? AND id_type = 'external_userid' AND id_value = ?",
        [brand_id, external_userid[:128]],
    )
    if not rows:
        raise Forbidden(f"external_userid {external_userid!r} is not one of your customers", "external_userid")
    cid = _own(ctx, user, str(rows[0][0]))
    return RedirectResponse(f"/sidebar/{brand_id}/c/{cid}", 302)


@router.get("/c/{customer_id}", response_class=HTMLResponse, response_model=None)
def customer_page(brand_id: str, customer_id: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """The customer's sidebar page (phone layout)."""
    if _session(request, brand_id, ctx) is None:
        return _page_error(request, "sidebar.login_needed", 401)
    user = _user(request, brand_id, ctx)
    try:
        cid = _own(ctx, user, customer_id)
    except Forbidden:
        return _page_error(request, "sidebar.forbidden", 403)
    data = view.customer_view(ctx, user, cid)
    library = scripts.search_scripts(ctx, user, page_size=50)
    hinted = scripts.search_scripts(ctx, user, data["next_actions"][0]["script_hint"], page_size=3)["items"]
    return _html(
        request,
        ctx,
        "customer.html",
        brand_id,
        user,
        c=data,
        corp_tags=view.corp_tags(ctx, brand_id),
        scripts=library["items"],
        hinted=hinted,
        scripts_total=library["total"],
        folders=scripts.list_folders(ctx, user),
    )


@router.get("/g/{chat_id}", response_class=HTMLResponse, response_model=None)
def group_page(brand_id: str, chat_id: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """A customer group's page (the sidebar opened in a group chat)."""
    if _session(request, brand_id, ctx) is None:
        return _page_error(request, "sidebar.login_needed", 401)
    user = _user(request, brand_id, ctx)
    try:
        data = view.group_view(ctx, user, chat_id)
    except Forbidden:
        return _page_error(request, "sidebar.forbidden_group", 403)
    library = scripts.search_scripts(ctx, user, page_size=50)
    return _html(
        request,
        ctx,
        "group.html",
        brand_id,
        user,
        g=data,
        scripts=library["items"],
        scripts_total=library["total"],
        folders=scripts.list_folders(ctx, user),
    )


def _html(request: Request, ctx: Context, name: str, brand_id: str, user: User, **values: Any) -> HTMLResponse:
    lang = _lang(request)
    cookie = request.cookies.get(COOKIE, "")
    sdk_urls: list[str] = []
    try:
        _sdk, side, _corp = jssdk_for(ctx, brand_id)
        sdk_urls = list(side.sdk_urls)
    except SiyuError:
        pass
    body = render(
        name,
        lang=lang,
        t=lambda k, **v: translate(k, lang, **v),
        brand_id=brand_id,
        guide=user.display_name,
        csrf=_csrf(ctx, cookie),
        sdk_urls=sdk_urls,
        **values,
    )
    resp = HTMLResponse(body)
    if request.query_params.get("lang"):
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return resp


# -- JSON API --------------------------------------------------------------------------------------------------
@router.get("/api/jssdk")
def jssdk(brand_id: str, url: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Signed arguments of ``wx.config`` and ``wx.agentConfig`` for a sidebar page ``url`` (without #...)."""
    _user(request, brand_id, ctx)
    parts = urlsplit(url)
    if parts.netloc != request.url.netloc or not parts.path.startswith(f"/sidebar/{brand_id}/") or len(url) > 1000:
        raise SiyuError("url must be a page of this sidebar (its location.href without #...)", "url")
    sdk, _side, _corp = jssdk_for(ctx, brand_id)
    return {"config": sdk.config(url, JS_APIS), "agent_config": sdk.agent_config(url, JS_APIS)}


@router.get("/api/customer/{customer_id}")
def customer_api(brand_id: str, customer_id: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The sidebar's view of a customer (403 when not the guide's)."""
    user = _user(request, brand_id, ctx)
    return view.customer_view(ctx, user, _own(ctx, user, customer_id))


@router.post("/api/customer/{customer_id}/reveal")
def reveal_api(brand_id: str, customer_id: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The customer's clear phone and name (the sidebar shows them masked); an audited ``pii.reveal``."""
    user = _user(request, brand_id, ctx, write=True)
    got = pii.reveal(ctx, user, _own(ctx, user, customer_id), "sidebar")
    return {"customer_id": got["customer_id"], "name": got["profile"].get("name"), "phone": got["profile"].get("phone")}


@router.get("/api/group/{chat_id}")
def group_api(brand_id: str, chat_id: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """A customer group the guide owns: name and members (403 for anyone else's group)."""
    return view.group_view(ctx, _user(request, brand_id, ctx), chat_id)


class TagChange(BaseModel):
    add: list[str] = Field(default_factory=list, max_length=20)
    remove: list[str] = Field(default_factory=list, max_length=20)


@router.post("/api/customer/{customer_id}/tags")
def edit_tags(
    brand_id: str, customer_id: str, body: TagChange, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Put / take WeCom corp tags on the customer through the guide's relation (WeCom first, then here)."""
    user = _user(request, brand_id, ctx, write=True)
    cid = _own(ctx, user, customer_id)
    known = {x["tag_id"] for x in view.corp_tags(ctx, brand_id)}
    bad = [x for x in body.add + body.remove if x not in known]
    if bad:
        raise SiyuError(
            f"tag {bad[0]!r} is not a WeCom corp tag of this brand", "add" if bad[0] in body.add else "remove"
        )
    exts = customers.get_customer_360(ctx, user, cid, 1, 1).relations
    mine = [r["external_userid"] for r in exts if r["state"] == "active" and r["guide_id"] == user.guide_id]
    if not mine:
        raise Forbidden("you have no active WeCom relation with this customer", "customer_id")
    client = client_for(get_config(ctx, brand_id))
    marked = 0
    for ext in sorted(set(mine)):
        marked += tag_service.mark_customer(ctx, user, client, ext, body.add, body.remove)
    return {"marked": marked, "tags": view.customer_view(ctx, user, cid)["tags"]}


class NoteBody(BaseModel):
    text: str = Field(max_length=2000)
    kind: str = Field(default="other", max_length=16)
    next_at: str | None = Field(default=None, max_length=32)
    stage: str | None = Field(default=None, max_length=64)


@router.post("/api/customer/{customer_id}/notes")
def add_note(
    brand_id: str, customer_id: str, body: NoteBody, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Add a note: a follow-up record (type ``other`` unless ``kind`` says call / visit / message; an optional next
    follow-up date opens a reminder; an optional sales stage moves the customer); returns the notes and stage."""
    user = _user(request, brand_id, ctx, write=True)
    cid = _own(ctx, user, customer_id)
    got = view.add_note(ctx, user, cid, body.text, body.kind, body.next_at, body.stage)
    return {"notes": got, "sales": view.sales(ctx, user, cid)}


@router.get("/api/scripts/folders")
def list_folders(brand_id: str, request: Request, ctx: Context = Depends(get_ctx)) -> list[dict[str, Any]]:
    """The library's folders (with how many items each holds)."""
    return scripts.list_folders(ctx, _user(request, brand_id, ctx))


@router.get("/api/scripts")
def list_scripts(
    brand_id: str,
    request: Request,
    q: str = "",
    folder_id: int | None = Query(None, le=MAX_ID),
    kind: str | None = None,
    page: int = 1,
    page_size: int = 50,
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Search the scripts library (most used first)."""
    user = _user(request, brand_id, ctx)
    return scripts.search_scripts(ctx, user, q, folder_id, kind, "popular", page, page_size)


class PrepareBody(BaseModel):
    customer_id: str = Field(default="", max_length=128)
    chat_id: str = Field(default="", max_length=128)
    channel: str = Field(default="sidebar", max_length=16)


@router.post("/api/scripts/{script_id}/prepare")
def prepare_send(
    brand_id: str, script_id: RowId, body: PrepareBody, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The ``sendChatMessage`` argument of an item for a customer (``customer_id``) or a group chat the guide
    owns (``chat_id``), names filled in, and the one-time ``token`` to confirm it with. Counts nothing."""
    user = _user(request, brand_id, ctx, write=True)
    if body.chat_id and not body.customer_id:
        view.group_of(ctx, user, body.chat_id)
        cid, name = "", translate("sidebar.group_name_fill", _lang(request))
    elif body.customer_id and not body.chat_id:
        cid = _own(ctx, user, body.customer_id)
        name = customers.get_customer_360(ctx, user, cid, 1, 1).profile.get("name") or ""
    else:
        raise SiyuError("give either customer_id (a chat with a customer) or chat_id (a group chat)", "customer_id")
    item = scripts.get_script(ctx, user, script_id)
    payload = dict(item["payload"])
    if item["kind"] in ("image", "file") and (item["has_file"] or payload.get("media_id")):
        sdk, _side, _corp = jssdk_for(ctx, brand_id)  # temporary media are shared by every app of the company
        payload["media_id"] = scripts.media_for(ctx, user, script_id, sdk.t)
    message = chat_message(item["kind"], item["title"], item["body"], payload, str(name), user.display_name)
    issued = sends.prepare(ctx, user, script_id, cid, body.chat_id, body.channel)
    return {"message": message, **issued, "use_count": item["use_count"]}


class ConfirmBody(BaseModel):
    token: str = Field(min_length=1, max_length=100)
    err_msg: str = Field(min_length=1, max_length=200)


@router.post("/api/scripts/confirm")
def confirm_send(brand_id: str, body: ConfirmBody, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """What ``sendChatMessage``'s callback said about a prepared send: only ``sendChatMessage:ok`` counts a use;
    a token confirms once (409 the second time)."""
    user = _user(request, brand_id, ctx, write=True)
    return sends.confirm(ctx, user, body.token, body.err_msg)
