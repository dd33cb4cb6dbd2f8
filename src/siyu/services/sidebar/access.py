"""Who is using the sidebar: a guide, established by WeCom OAuth or by a signed link, kept in a signed session.

- Inside WeCom: the page redirects to WeCom's OAuth page (``authorize_url``); WeCom comes back with a single-use
  ``code``; ``auth/getuserinfo`` turns it into the member's userid; the guide is the brand's ``guides`` row with
  that ``wecom_userid`` (inactive guides are refused).
- Outside WeCom: a signed link (``link_token``, made by an operator or a notification; 7 days by default) names
  the guide and, optionally, the customer to open.

The session (a signed value, 12 hours) names the brand and guide.  A guide acts as a ``User`` of role guide:
their console user when one exists, otherwise one made from the guides row (so every guide can use the sidebar
without a password).  Everything they read is scoped by ``siyu.services.customers.guide_scope``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from siyu.connectors.wecom.errors import WeComError
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError, Unauthorized
from siyu.services.sidebar.config import get_sidebar_config, jssdk_for
from siyu.stores.state.models import UserRow

SESSION_MAX_AGE = 12 * 3600
LINK_MAX_AGE = 7 * 86400
INVALID_CODE = 40029  # WeCom: invalid code (wrong, expired after 5 minutes, or used)


@dataclass(frozen=True)
class GuideSession:
    brand_id: str
    guide_id: str
    userid: str = ""  # the WeCom member (empty when opened by a link)


def _ser(ctx: Context, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.settings.secret_key, salt=salt)


def session_value(ctx: Context, sess: GuideSession) -> str:
    return str(_ser(ctx, "siyu-sidebar").dumps({"b": sess.brand_id, "g": sess.guide_id, "u": sess.userid}))


def read_session(ctx: Context, brand_id: str, value: str | None) -> GuideSession | None:
    """The session in a cookie value, or None (missing, forged, expired or for another brand)."""
    if not value:
        return None
    try:
        d = _ser(ctx, "siyu-sidebar").loads(value, max_age=SESSION_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(d, dict) or d.get("b") != brand_id:
        return None
    return GuideSession(str(d["b"]), str(d["g"]), str(d.get("u") or ""))


def link_token(ctx: Context, brand_id: str, guide_id: str, customer_id: str = "") -> str:
    """A signed token for ``/sidebar/<brand>/link?t=...`` opening the sidebar as ``guide_id`` (on a customer)."""
    _guide_row(ctx, brand_id, guide_id)
    return str(_ser(ctx, "siyu-sidebar-link").dumps({"b": brand_id, "g": guide_id, "c": customer_id}))


def read_link(ctx: Context, brand_id: str, token: str, max_age: int = LINK_MAX_AGE) -> tuple[GuideSession, str]:
    """(session, customer_id) of a link token; Unauthorized when forged or expired."""
    try:
        d = _ser(ctx, "siyu-sidebar-link").loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise Unauthorized("this sidebar link has expired; ask for a new one", "t") from exc
    except BadSignature as exc:
        raise Unauthorized("this sidebar link is not valid", "t") from exc
    if not isinstance(d, dict) or d.get("b") != brand_id:
        raise Unauthorized("this sidebar link is for another brand", "t")
    _guide_row(ctx, brand_id, str(d["g"]))
    return GuideSession(brand_id, str(d["g"])), str(d.get("c") or "")


def _guide_row(ctx: Context, brand_id: str, guide_id: str) -> tuple[str, str, bool]:
    rows = ctx.warehouse.fetch(
        "SELECT name, coalesce(wecom_userid, ''), coalesce(active, TRUE) FROM guides "
        "WHERE brand_id = ? AND guide_id = ?",
        [brand_id, guide_id],
    )
    if not rows:
        raise Forbidden(f"guide {guide_id!r} is not a guide of brand {brand_id!r}", "guide_id")
    name, userid, active = rows[0]
    if not active:
        raise Forbidden(f"guide {guide_id!r} is inactive", "guide_id")
    return str(name), str(userid), bool(active)


def authorize_url(ctx: Context, brand_id: str, redirect_uri: str, state: str) -> str:
    """WeCom's OAuth page for the sidebar app (silent ``snsapi_base``), coming back to ``redirect_uri``."""
    _sdk, side, corp = jssdk_for(ctx, brand_id)
    query = urlencode(
        {
            "appid": corp,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": side.agent_id,
        }
    )
    return f"{side.oauth_base.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"


def login_with_code(ctx: Context, brand_id: str, code: str) -> GuideSession:
    """The guide behind an OAuth ``code`` (Forbidden for a non-member or a member who is not a guide)."""
    if not code or len(code) > 512:
        raise SiyuError("code is missing; open the sidebar from WeCom", "code")
    sdk, _side, _corp = jssdk_for(ctx, brand_id)
    try:
        who = sdk.user_info(code)
    except WeComError as exc:
        if exc.errcode != INVALID_CODE:
            raise
        raise Unauthorized("this WeCom code is invalid, expired or used; open the sidebar again", "code") from exc
    if not who.userid:
        raise Forbidden("only members of the company can open the sidebar", "code")
    rows = ctx.warehouse.fetch(
        "SELECT guide_id FROM guides WHERE brand_id = ? AND wecom_userid = ? AND coalesce(active, TRUE) "
        "ORDER BY guide_id LIMIT 1",
        [brand_id, who.userid],
    )
    if not rows:
        raise Forbidden(f"WeCom member {who.userid!r} is not an active guide of this brand", "userid")
    return GuideSession(brand_id, str(rows[0][0]), who.userid)


def guide_user(ctx: Context, sess: GuideSession) -> User:
    """The user the guide acts as (their console user when one exists)."""
    name, _userid, _active = _guide_row(ctx, sess.brand_id, sess.guide_id)
    with ctx.sessions() as s:
        row = s.scalar(
            select(UserRow).where(
                UserRow.brand_id == sess.brand_id,
                UserRow.guide_id == sess.guide_id,
                UserRow.role == Role.GUIDE.value,
                UserRow.active.is_(True),
            )
        )
    if row is not None:
        return User(row.id, row.brand_id, row.username, row.display_name, Role.GUIDE, row.guide_id, row.language)
    return User(0, sess.brand_id, f"guide:{sess.guide_id}", name, Role.GUIDE, sess.guide_id, "zh")


def sidebar_configured(ctx: Context, brand_id: str) -> bool:
    try:
        get_sidebar_config(ctx, brand_id)
    except SiyuError:
        return False
    return True
