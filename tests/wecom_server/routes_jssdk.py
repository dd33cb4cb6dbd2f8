"""JS-SDK and OAuth: get_jsapi_ticket, ticket/get?type=agent_config, auth/getuserinfo, and the OAuth authorize
page (``/connect/oauth2/authorize``) the WeCom client opens for a web app — it redirects to ``redirect_uri`` with
a single-use ``code`` (valid 5 minutes) naming the member signed in to the simulated WeCom app
(``server.jssdk.member``; a non-member gets an ``openid``).

Limits as documented: tickets live 7200 s; per hour at most 400 company tickets per company and 100 per app
(the local server counts per kind, for one app) → 45009.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from tests.wecom_server.codes import need
from tests.wecom_server.params import text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

TICKET_TTL = 7200
CODE_TTL = 300
HOURLY = {"corp": 400, "agent": 100}


@dataclass
class JsSdkState:
    member: str | None = None  # who is signed in to the simulated WeCom app
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> {userid, openid, at, used}
    tickets: dict[str, tuple[str, float]] = field(default_factory=dict)  # ticket -> (kind, expiry)
    issued: dict[str, deque[float]] = field(default_factory=lambda: {"corp": deque(), "agent": deque()})
    authorize_calls: list[dict[str, str]] = field(default_factory=list)


def state(srv: WeComServer) -> JsSdkState:
    found = getattr(srv, "jssdk", None)
    if found is None:
        found = JsSdkState()
        srv.jssdk = found  # type: ignore[attr-defined]
    return found


def valid_ticket(srv: WeComServer, ticket: str, kind: str) -> bool:
    """Whether ``ticket`` was issued by this server for ``kind`` and has not expired (tests check signatures)."""
    got = state(srv).tickets.get(ticket)
    return got is not None and got[0] == kind and srv.now() < got[1]


def _ticket(srv: WeComServer, kind: str) -> dict[str, Any]:
    st = state(srv)
    now = srv.now()
    window = st.issued[kind]
    while window and window[0] <= now - 3600:
        window.popleft()
    need(len(window) < HOURLY[kind], 45009, f"{HOURLY[kind]} {kind} tickets per hour")
    window.append(now)
    tok = secrets.token_urlsafe(64)
    st.tickets[tok] = (kind, now + TICKET_TTL)
    return {"ticket": tok, "expires_in": TICKET_TTL}


def get_jsapi_ticket(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    return _ticket(srv, "corp")


def ticket_get(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    need(q.get("type") == "agent_config", 40058, "type must be agent_config")
    return _ticket(srv, "agent")


def issue_code(srv: WeComServer, userid: str | None) -> str:
    """A fresh OAuth code for ``userid`` (a member) or, when None, for a visitor who is not a member."""
    code = secrets.token_urlsafe(24)
    who = {"userid": userid} if userid else {"openid": "o" + secrets.token_hex(12)}
    state(srv).codes[code] = {**who, "at": srv.now(), "used": False}
    return code


def getuserinfo(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    code = text(q, "code", 512, required=True)
    got = state(srv).codes.get(code)
    need(got is not None and not got["used"] and srv.now() - got["at"] <= CODE_TTL, 40029, "invalid code")
    assert got is not None
    got["used"] = True
    if got.get("userid"):
        need(got["userid"] in srv.company.members, 60111, str(got["userid"]))
        return {"userid": got["userid"], "user_ticket": secrets.token_urlsafe(32)}
    return {"openid": got["openid"]}


def mount(app: FastAPI, srv: WeComServer) -> None:
    """Add the OAuth authorize page (outside ``/cgi-bin``) to the server's app."""

    @app.get("/connect/oauth2/authorize")
    def authorize(request: Request) -> Response:
        return redirect_with_code(srv, dict(request.query_params))


def redirect_with_code(srv: WeComServer, query: dict[str, str]) -> Response:
    """The authorize page's answer: 302 to ``redirect_uri?code=...&state=...`` (or a plain error page)."""
    st = state(srv)
    st.authorize_calls.append(dict(query))
    if query.get("appid") != srv.company.corpid:
        return PlainTextResponse("invalid appid", status_code=400)
    uri = query.get("redirect_uri", "")
    if urlsplit(uri).scheme not in ("http", "https") or query.get("response_type") != "code":
        return PlainTextResponse("invalid redirect_uri or response_type", status_code=400)
    if query.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
        return PlainTextResponse("invalid scope", status_code=400)
    code = issue_code(srv, st.member)
    sep = "&" if "?" in uri else "?"
    return RedirectResponse(uri + sep + urlencode({"code": code, "state": query.get("state", "")}), status_code=302)
