"""WeCom JS-SDK: the company's and the app's jsapi_tickets, the signatures of ``wx.config`` / ``wx.agentConfig``,
and OAuth's ``auth/getuserinfo`` (code → member userid).

Tickets come from ``/cgi-bin/get_jsapi_ticket`` (company) and ``/cgi-bin/ticket/get?type=agent_config`` (app),
through ``Transport`` (token cache, retries, one token refresh, rate limiting).  WeCom allows few ticket calls
(per hour 400 per company, 100 per app), so tickets are cached per process like access tokens: 7200 s, refreshed
5 minutes before they expire.  The signature (附录1 JS-SDK使用权限签名算法) is sha1 over
``jsapi_ticket=...&noncestr=...&timestamp=...&url=...`` with raw (not URL-escaped) values and the URL without
its ``#`` fragment.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from siyu.connectors.wecom.tokens import TokenCache
from siyu.connectors.wecom.transport import Transport

CORP_TICKET = "corp"
AGENT_TICKET = "agent"
JSAPI_PATH = "/cgi-bin/get_jsapi_ticket"
AGENT_PATH = "/cgi-bin/ticket/get"
USERINFO_PATH = "/cgi-bin/auth/getuserinfo"

_TICKETS: dict[tuple[str, str], TokenCache] = {}
_lock = threading.Lock()


def signature(jsapi_ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The JS-SDK signature: sha1 of ``jsapi_ticket=T&noncestr=N&timestamp=S&url=U`` (U without ``#...``)."""
    url = url.split("#", 1)[0]
    raw = f"jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(raw.encode()).hexdigest()  # sha1: what WeCom specifies


def ticket_cache(base_url: str, kind: str) -> TokenCache:
    """The process's cache of one kind of ticket (``corp`` / ``agent``) for one WeCom endpoint."""
    with _lock:
        cache = _TICKETS.get((base_url, kind))
        if cache is None:
            cache = _TICKETS[(base_url, kind)] = TokenCache()
        return cache


@dataclass(frozen=True)
class UserIdentity:
    """Who opened an OAuth link: a member (``userid``) or not (``openid``, and ``external_userid`` for a customer)."""

    userid: str = ""
    openid: str = ""
    external_userid: str = ""


class JsSdk:
    """Tickets and signed configurations for one app (``agent_id``) of a company, over its ``Transport``."""

    def __init__(self, transport: Transport, agent_id: str, clock: Any = time.time) -> None:
        self.t = transport
        self.agent_id = agent_id
        self.clock = clock
        self.corp_tickets = ticket_cache(transport.base, CORP_TICKET)
        self.agent_tickets = ticket_cache(transport.base, AGENT_TICKET)

    def close(self) -> None:
        self.t.close()

    def _fetch(self, api: str, path: str, query: dict[str, Any]) -> tuple[str, int]:
        out = self.t.call(api, query=query, path=path)
        return str(out["ticket"]), int(out.get("expires_in", 7200))

    def corp_ticket(self) -> str:
        """The company's jsapi_ticket (for ``wx.config``), cached."""
        return self.corp_tickets.get(
            self.t.corpid, self.t.secret, lambda _c, _s: self._fetch("get_jsapi_ticket", JSAPI_PATH, {})
        )

    def agent_ticket(self) -> str:
        """The app's jsapi_ticket (for ``wx.agentConfig``), cached."""
        return self.agent_tickets.get(
            self.t.corpid,
            self.t.secret,
            lambda _c, _s: self._fetch("ticket/get", AGENT_PATH, {"type": "agent_config"}),
        )

    def _signed(self, ticket: str, url: str) -> dict[str, Any]:
        nonce = secrets.token_urlsafe(12)
        ts = int(self.clock())
        return {"timestamp": ts, "nonceStr": nonce, "signature": signature(ticket, nonce, ts, url)}

    def config(self, url: str, js_api_list: list[str]) -> dict[str, Any]:
        """Arguments of ``wx.config`` for the page at ``url``."""
        return {"beta": True, "appId": self.t.corpid, **self._signed(self.corp_ticket(), url), "jsApiList": js_api_list}

    def agent_config(self, url: str, js_api_list: list[str]) -> dict[str, Any]:
        """Arguments of ``wx.agentConfig`` for the page at ``url``."""
        return {
            "corpid": self.t.corpid,
            "agentid": self.agent_id,
            **self._signed(self.agent_ticket(), url),
            "jsApiList": js_api_list,
        }

    def user_info(self, code: str) -> UserIdentity:
        """The visitor of an OAuth redirect (``code`` is single-use, valid 5 minutes)."""
        out = self.t.call("auth/getuserinfo", query={"code": code}, path=USERINFO_PATH)
        return UserIdentity(
            userid=str(out.get("userid") or out.get("UserId") or ""),
            openid=str(out.get("openid") or out.get("OpenId") or ""),
            external_userid=str(out.get("external_userid") or ""),
        )
