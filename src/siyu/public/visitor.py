"""Who is visiting a public page: a signed session bound to an identity, a device id cookie, the IP, CSRF tokens
and the per-visitor limits.

The identity comes from a signed link token (``/m/auth?t=...``) — what the WeChat OAuth callback (unionid /
openid) or a guide's welcome-message link (the contact's ``external_userid``) hands over in production; see
``docs/campaigns.md``. ``link_token`` makes one; ``/m/auth`` checks it (signature + age) and sets the session
cookie. POST forms carry a CSRF token derived from the session's random id.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from siyu.domain.models import Identity
from siyu.errors import Forbidden, SiyuError
from siyu.services.campaigns.people import Person
from siyu.services.context import Context
from siyu.services.rate_limit import check_rate

SESSION_COOKIE = "siyu_m"
DEVICE_COOKIE = "siyu_dev"
SESSION_DAYS = 30
PERSON_COOKIE_TTL = 3600  # seconds the OneID answer kept in the session at sign-in stands in for a lookup
LINK_TOKEN_MAX_AGE = 7 * 86400  # a link token older than this is refused (ask for a fresh link)
ID_TYPES = ("unionid", "openid", "wecom_external_userid", "external_userid", "phone")
_DEVICE = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _share(rate: float, burst: float) -> tuple[float, int]:
    """This process's part of a limit: ``SIYU_PUBLIC_PROCESSES`` processes serving /m/ (``siyu serve-public``
    sets it to its worker count) each allow 1/N of it, so together they allow about the limit."""
    n = max(1, int(_env("SIYU_PUBLIC_PROCESSES", 1)))
    return rate / n, max(1, round(burst / n))


@dataclass(frozen=True)
class Limits:
    """Token-bucket limits (per second, burst) — ``SIYU_PUBLIC_*`` environment variables override them."""

    page_ip: tuple[float, int] = _share(_env("SIYU_PUBLIC_PAGE_IP_RATE", 20), _env("SIYU_PUBLIC_PAGE_IP_BURST", 100))
    post_ip: tuple[float, int] = _share(_env("SIYU_PUBLIC_POST_IP_RATE", 10), _env("SIYU_PUBLIC_POST_IP_BURST", 60))
    post_device: tuple[float, int] = _share(1.0, 10)
    post_person: tuple[float, int] = _share(1.0, 10)


LIMITS = Limits()


def _serializers(ctx: Context) -> tuple[URLSafeTimedSerializer, URLSafeTimedSerializer, URLSafeSerializer]:
    got = ctx.extras.get("public_serializers")
    if got is None:
        key = ctx.settings.secret_key
        got = (
            URLSafeTimedSerializer(key, salt="siyu-m-link"),
            URLSafeTimedSerializer(key, salt="siyu-m-session"),
            URLSafeSerializer(key, salt="siyu-m-csrf"),
        )
        ctx.extras["public_serializers"] = got
    return got  # type: ignore[no-any-return]


def link_token(ctx: Context, brand_id: str, id_type: str, value: str, *, nickname: str = "", region: str = "") -> str:
    """A signed link token for ``/m/auth?t=`` naming a person of ``brand_id`` (valid for 7 days)."""
    if id_type not in ID_TYPES:
        raise SiyuError(f"id_type must be one of {', '.join(ID_TYPES)}", "id_type")
    payload = {"b": brand_id, "t": id_type, "v": value, "n": nickname[:32], "r": region[:20]}
    return str(_serializers(ctx)[0].dumps(payload))


def read_link_token(ctx: Context, token: str) -> dict[str, Any]:
    """The payload of a link token; ``Forbidden`` when forged, malformed or older than 7 days."""
    try:
        data = _serializers(ctx)[0].loads(token, max_age=LINK_TOKEN_MAX_AGE)
    except SignatureExpired:
        raise Forbidden("this link has expired; open the campaign again from WeChat", "t") from None
    except BadSignature:
        raise Forbidden("this link is not valid", "t") from None
    if not isinstance(data, dict) or data.get("t") not in ID_TYPES or not data.get("v") or not data.get("b"):
        raise Forbidden("this link is not valid", "t")
    return data


@dataclass(frozen=True)
class Visitor:
    """The person behind a request (``identity`` None: not signed in), their device, IP and language."""

    brand_id: str | None
    id_type: str | None
    id_value: str | None
    nickname: str
    region: str
    sid: str
    device: str
    ip: str
    lang: str
    new_device: bool
    customer_id: str | None = None  # OneID's answer at sign-in ("" in the cookie = not a customer then)
    resolved_at: float = 0.0  # when that answer was given (0: the session carries none)

    @functools.cached_property
    def identity(self) -> Identity | None:
        if not self.id_type or not self.id_value:
            return None
        from siyu.services.campaigns import parse_identity

        return parse_identity(self.id_type, self.id_value)

    def of(self, brand_id: str) -> Identity | None:
        """The identity when the session belongs to ``brand_id`` (an identity is per brand)."""
        return self.identity if self.brand_id == brand_id else None

    def person_of(self, brand_id: str) -> Person | None:
        """The person as OneID answered at sign-in, while that answer is younger than ``PERSON_COOKIE_TTL`` (the
        help path then needs no warehouse look-up; ``campaigns.tick`` links helps to customers OneID resolves
        later and revokes a person's second help). None: ask OneID (through the process's cache)."""
        ident = self.of(brand_id)
        if ident is None or not self.resolved_at or time.time() - self.resolved_at > PERSON_COOKIE_TTL:
            return None
        return Person(ident, self.customer_id)


VERIFIED_CACHE = 20_000  # signed strings (session cookies, CSRF tokens) whose signature this process checked


def _verified_cache(ctx: Context) -> dict[tuple[str, str], tuple[Any, float]]:
    return ctx.extras.setdefault("public_verified", {})  # type: ignore[no-any-return]


def _remember(ctx: Context, key: tuple[str, str], hit: tuple[Any, float]) -> None:
    """Keep ``hit`` under ``key`` (the cache starts over once it holds ``VERIFIED_CACHE`` entries)."""
    cache = _verified_cache(ctx)
    if len(cache) >= VERIFIED_CACHE:
        cache.clear()
    cache[key] = hit


def _verified(ctx: Context, kind: str, raw: str, max_age: int | None = None) -> Any:
    """The payload of the signed string ``raw`` (``kind``: "session" or "csrf"); ``BadSignature`` when forged or
    older than ``max_age`` seconds. A string checked once is remembered (with its signing time), so the page view
    and the POST that follows it verify the HMAC once: the same bytes, the same answer; the age is checked on
    every call."""
    hit = _verified_cache(ctx).get((kind, raw))
    if hit is None:
        if kind == "session":
            payload, signed = _serializers(ctx)[1].loads(raw, max_age=max_age, return_timestamp=True)
            hit = (payload, signed.timestamp())
        else:
            hit = (_serializers(ctx)[2].loads(raw), 0.0)
        _remember(ctx, (kind, raw), hit)
    elif max_age is not None and time.time() - hit[1] > max_age:
        raise SignatureExpired("signature expired")
    return hit[0]


def visitor(ctx: Context, request: Request) -> Visitor:
    """Read the session and device cookies of ``request`` (a forged or expired session counts as none)."""
    data: dict[str, Any] = {}
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            loaded = _verified(ctx, "session", raw, SESSION_DAYS * 86400)
            data = loaded if isinstance(loaded, dict) else {}
        except BadSignature:
            data = {}
    device = request.cookies.get(DEVICE_COOKIE, "")
    new_device = not _DEVICE.match(device)
    if new_device:
        device = secrets.token_urlsafe(12)
    lang = request.query_params.get("lang") or ""
    return Visitor(
        brand_id=data.get("b"),
        id_type=data.get("t"),
        id_value=data.get("v"),
        nickname=str(data.get("n") or ""),
        region=str(data.get("r") or ""),
        sid=str(data.get("s") or ""),
        device=device,
        ip=request.client.host if request.client else "",
        lang="en" if lang == "en" else "zh",
        new_device=new_device,
        customer_id=str(data.get("c") or "") or None,
        resolved_at=float(data["a"]) if isinstance(data.get("a"), int | float) else 0.0,
    )


def start_session(ctx: Context, response: Response, payload: dict[str, Any]) -> None:
    """Set the session cookie for the person of a checked link token (a fresh random session id), with OneID's
    answer for them now (customer id and time: see ``Visitor.person_of``)."""
    from siyu.services.campaigns import parse_identity
    from siyu.services.campaigns.people import person

    data = {k: payload.get(k, "") for k in ("b", "t", "v", "n", "r")} | {"s": secrets.token_urlsafe(9)}
    who = person(ctx, str(data["b"]), parse_identity(str(data["t"]), data["v"]))
    data |= {"c": who.customer_id or "", "a": int(time.time())}
    response.set_cookie(
        SESSION_COOKIE,
        _serializers(ctx)[1].dumps(data),
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        path="/m",
    )


def keep_device(response: Response, v: Visitor) -> None:
    """Set the device cookie when the visitor had none."""
    if v.new_device:
        response.set_cookie(DEVICE_COOKIE, v.device, max_age=2 * 365 * 86400, httponly=True, samesite="lax", path="/m")


def csrf_token(ctx: Context, v: Visitor) -> str:
    """The CSRF token of the visitor's session (empty without a session); remembered as verified (we signed it)."""
    if not v.sid:
        return ""
    made = _verified_cache(ctx).get(("csrf-of", v.sid))
    if made is None:
        made = (str(_serializers(ctx)[2].dumps(v.sid)), 0.0)
        _remember(ctx, ("csrf-of", v.sid), made)
        _remember(ctx, ("csrf", made[0]), (v.sid, 0.0))
    return str(made[0])


def check_csrf(ctx: Context, v: Visitor, token: str) -> None:
    """``Forbidden`` unless ``token`` was made for this session."""
    try:
        ok = bool(v.sid) and _verified(ctx, "csrf", token or "") == v.sid
    except BadSignature:
        ok = False
    if not ok:
        raise Forbidden("the form expired or did not come from this page; reload the page and try again", "csrf")


def device_csrf_token(ctx: Context, v: Visitor) -> str:
    """A CSRF token for pages without a sign-in (the lead form): bound to the visitor's device cookie."""
    return str(_serializers(ctx)[2].dumps("device:" + v.device))


def check_device_csrf(ctx: Context, v: Visitor, token: str) -> None:
    """``Forbidden`` unless ``token`` was made for this device (a new device has none yet)."""
    try:
        ok = not v.new_device and _serializers(ctx)[2].loads(token or "") == "device:" + v.device
    except BadSignature:
        ok = False
    if not ok:
        raise Forbidden("the form expired or did not come from this page; reload the page and try again", "csrf")


def limit_page(ctx: Context, v: Visitor) -> None:
    """The per-IP limit of page views (HTTP 429 past it)."""
    rate, burst = LIMITS.page_ip
    check_rate(ctx, "m_page_ip", rate, burst, v.ip, "page views from this network")


def limit_post(ctx: Context, v: Visitor) -> None:
    """The per-IP, per-device and per-person limits of form posts (HTTP 429 past them)."""
    rate, burst = LIMITS.post_ip
    check_rate(ctx, "m_post_ip", rate, burst, v.ip, "requests from this network")
    rate, burst = LIMITS.post_device
    check_rate(ctx, "m_post_device", rate, burst, v.device, "requests from this device")
    if v.id_value:
        rate, burst = LIMITS.post_person
        check_rate(ctx, "m_post_person", rate, burst, f"{v.brand_id}:{v.id_type}:{v.id_value}", "requests")
