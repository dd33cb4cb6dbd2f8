"""Rendering the public pages: the jinja2 environment, the error page, form reading, the language, and the
campaign header every campaign page shares (title, countdown, rules in the visitor's language)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape

from siyu import i18n
from siyu.display import local_text
from siyu.domain.campaign.definition import CampaignDefinition
from siyu.domain.campaign.rules import utc_naive
from siyu.errors import Forbidden, NotFound, SiyuError, TooManyRequests
from siyu.public.visitor import Visitor, csrf_token, keep_device, visitor
from siyu.services.context import Context

log = logging.getLogger(__name__)
MAX_FORM_BYTES = 4096
_env = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def ctx_of(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def with_lang(path: str, lang: str) -> str:
    """``path`` keeping the visitor's language (``?lang=en``)."""
    if lang != "en":
        return path
    return path + ("&" if "?" in path else "?") + "lang=en"


def render(
    request: Request, v: Visitor, template: str, status: int = 200, /, fresh: tuple[str, ...] = (), **values: Any
) -> HTMLResponse:
    """A page of ``templates/name`` in the visitor's language (``tr`` = the catalogue in that language).

    ``fresh``: names of values that change from request to request (a count, a link with the sharer's token, the
    CSRF token). The page is then rendered once per set of the other values, with a placeholder for each fresh
    one, and the fresh values are escaped into that skeleton on every request (what autoescape would print): the
    same bytes, without running the template. A fresh value may only be printed or tested for truth by the
    template (a falsy one is rendered, not stamped); a ``data`` entry of the same name and value is fresh too. The
    other values are the skeleton's key by their ``repr``: plain data only (str, numbers, dicts, lists, dates)."""
    lang = v.lang
    other = "zh" if lang == "en" else "en"
    query = {k: val for k, val in request.query_params.items() if k != "lang"} | {"lang": other}
    values.setdefault("data", {})
    values.setdefault("countdown", False)
    values.setdefault("title", "")
    if "csrf" not in values:
        values["csrf"] = csrf_token(ctx_of(request), v)
    values["switch_url"] = f"{url_path(request)}?{urlencode(query)}"
    if fresh:
        html = _stamped(ctx_of(request), template, lang, values, ("switch_url", *fresh))
    else:
        html = _env.get_template(template).render(
            lang=lang, tr=_tr(lang), page=template.removesuffix(".html"), **values
        )
    response = HTMLResponse(html, status_code=status)
    keep_device(response, v)
    return response


def url_path(request: Request) -> str:
    """``request.url.path`` without building the whole URL (Starlette parses host, port and query for it)."""
    return str(request.scope["path"]).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _tr(lang: str) -> Callable[..., str]:
    return lambda key, **kw: i18n.t(key, lang, **kw)


_STAMP = re.compile("\ue000(\\w+)\ue001")
SKELETONS = 2_000  # rendered skeletons kept per process (the cache starts over past this)


def _shared_repr(ctx: Context, value: Any) -> Any:
    """A read-only mapping (a campaign view: one object shared by many pages) by its ``repr`` made once; other
    values as they are (``repr`` of the whole key follows)."""
    if type(value) is not MappingProxyType:
        return value
    memo: dict[int, tuple[Any, str]] = ctx.extras.setdefault("public_view_reprs", {})
    hit = memo.get(id(value))
    if hit is None or hit[0] is not value:  # the memo holds the object: its id is not reused meanwhile
        if len(memo) >= SKELETONS:
            memo.clear()
        hit = memo[id(value)] = (value, repr(dict(value)))
    return _Raw(hit[1])


class _Raw(str):
    """A string whose ``repr`` is itself (a precomputed repr inside a key)."""

    def __repr__(self) -> str:
        return str(self)


def _stamped(ctx: Context, template: str, lang: str, values: dict[str, Any], fresh: tuple[str, ...]) -> str:
    """``render``'s page from a cached skeleton (see ``render``)."""
    stamped = {name: values[name] for name in fresh if values.get(name)}
    fixed = {k: (f"\ue000{k}\ue001" if k in stamped else val) for k, val in values.items()}
    data = values["data"]
    fixed["data"] = {k: (f"\ue000{k}\ue001" if k in stamped and val == stamped[k] else val) for k, val in data.items()}
    key = (template, lang, repr(sorted((k, _shared_repr(ctx, val)) for k, val in fixed.items())))
    cache: dict[tuple[str, str, str], list[str]] = ctx.extras.setdefault("public_skeletons", {})
    parts = cache.get(key)
    if parts is None:
        page = template.removesuffix(".html")
        parts = _STAMP.split(_env.get_template(template).render(lang=lang, tr=_tr(lang), page=page, **fixed))
        if len(cache) >= SKELETONS:
            cache.clear()
        cache[key] = parts
    out = parts.copy()
    out[1::2] = [escape(str(stamped[name])) for name in parts[1::2]]
    return "".join(out)


def error_message(exc: SiyuError, lang: str) -> str:
    """What the visitor reads for an error (campaign refusals carry their own Chinese / English text)."""
    en = getattr(exc, "en", None)
    if en is not None:  # campaigns.Refused
        return str(en) if lang == "en" else exc.message
    if isinstance(exc, TooManyRequests):
        return i18n.t("m.too_many", lang)
    if isinstance(exc, Forbidden):
        return i18n.t("m.csrf" if exc.field == "csrf" else "m.link_invalid", lang)
    if isinstance(exc, NotFound):
        return i18n.t("m.not_found", lang)
    return f"{i18n.t('m.error_generic', lang)}: {exc.message}"


def error_page(request: Request, v: Visitor, exc: SiyuError) -> Response:
    """The error page of a ``SiyuError`` in the visitor's language (its HTTP status, the reason for machines)."""
    data = {"reason": getattr(exc, "code", "") or exc.field or ""}
    return render(request, v, "error.html", exc.status_code, message=error_message(exc, v.lang), data=data, back="")


def guarded(request: Request, fn: Callable[[Context, Visitor], Response]) -> Response:
    """Run a page handler; a ``SiyuError`` becomes the error page in the visitor's language (its HTTP status)."""
    ctx = ctx_of(request)
    v = visitor(ctx, request)
    try:
        return fn(ctx, v)
    except SiyuError as exc:
        return error_page(request, v, exc)


async def guarded_async(request: Request, fn: Callable[[Context, Visitor], Awaitable[Response]]) -> Response:
    """``guarded`` for a coroutine handler (runs on the event loop: its blocking work must be short)."""
    ctx = ctx_of(request)
    v = visitor(ctx, request)
    try:
        return await fn(ctx, v)
    except SiyuError as exc:
        return error_page(request, v, exc)


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (at most 4 KB); each field's first value."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: vals[0] for k, vals in parsed.items() if vals}


# ---- the campaign header --------------------------------------------------------------------------------


def reward_names(ctx: Context, brand_id: str, ids: list[str]) -> dict[str, str]:
    """Reward id → name (the id itself when unknown); names are kept for 30 s (pages ask on every view)."""
    from siyu.services.rewards import get_reward

    cache: dict[tuple[str, str], tuple[float, str]] = ctx.extras.setdefault("public_reward_names", {})
    now = time.monotonic()
    out: dict[str, str] = {}
    for rid in ids:
        if not rid or rid in out:
            continue
        hit = cache.get((brand_id, rid))
        if hit is None or now - hit[0] > 30:
            r = get_reward(ctx, brand_id, rid)
            hit = cache[(brand_id, rid)] = (now, str(r["name"]) if r else rid)
            if len(cache) > 10_000:
                cache.clear()
        out[rid] = hit[1]
    return out


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def campaign_view(
    ctx: Context, row: Any, cd: CampaignDefinition, lang: str, variant: str | None, now: datetime | None = None
) -> Mapping[str, Any]:
    """Title, copy, countdown parts, rules (localised) and status flags of a campaign for a visitor's variant.
    Pages ask on every view (a burst of helps renders it thousands of times a second): the view is kept per
    campaign version, status, language, variant and minute (the countdown's resolution), read-only (one object
    shared by every page of that minute)."""
    now = now or utcnow()
    key = (row.id, getattr(row, "version", 0), row.status, lang, variant, now.replace(second=0, microsecond=0))
    cache: dict[Any, Mapping[str, Any]] = ctx.extras.setdefault("public_campaign_views", {})
    hit = cache.get(key)
    if hit is None or hit["_inside"] != (hit["starts_at"] <= now < hit["ends_at"]):  # crossed the start or end
        made = _campaign_view(ctx, row, cd, lang, variant, now)
        made["_inside"] = made["starts_at"] <= now < made["ends_at"]
        if len(cache) > 2_000:
            cache.clear()
        hit = cache[key] = MappingProxyType(made)
    return hit


def _campaign_view(
    ctx: Context, row: Any, cd: CampaignDefinition, lang: str, variant: str | None, now: datetime
) -> dict[str, Any]:
    v = cd.variant(variant)
    start, end = utc_naive(cd.starts_at, cd.timezone), utc_naive(cd.ends_at, cd.timezone)
    left = max(0, int((end - now).total_seconds()))
    names = reward_names(ctx, row.brand_id, cd.reward_ids())
    rules: list[str] = []
    if cd.kind == "assist":
        for t in cd.tiers(variant):
            if t.reward_id:
                rules.append(i18n.t("m.tier", lang, n=t.threshold, reward=t.name or names.get(t.reward_id, "")))
            else:
                rewards = " / ".join(names.get(r, r) for r in t.pool)
                rules.append(i18n.t("m.tier_pool", lang, n=t.threshold, rewards=rewards))
    elif cd.kind == "group_buy" and cd.group_buy:
        lead, join = cd.team_rewards(variant)
        rules.append(
            i18n.t(
                "m.team_rule",
                lang,
                n=cd.team_size(variant),
                h=cd.group_buy.team_hours,
                lead=names.get(lead, lead),
                join=names.get(join, join),
            )
        )
    elif cd.kind == "gift" and cd.gift:
        rid = cd.gift_reward(variant)
        rules.append(i18n.t("m.gift_rule", lang, reward=names.get(rid, rid)))
    opened = row.status in ("live", "pilot") and start <= now < end
    return {
        "id": row.id,
        "kind": cd.kind,
        "title": (v.title if v and v.title else "") or cd.title or cd.name,
        "copy_text": v.copy_text if v and v.copy_text else "",
        "description": cd.description,
        "rules": rules,
        "carrier_kind": cd.carrier.kind,
        "carrier_text": i18n.t(f"m.carrier.{cd.carrier.kind}", lang),
        "open": opened,
        "ended": row.status == "ended" or now >= end,
        "not_started": now < start,
        "starts_local": local_text(start),
        "ends_iso": end.replace(tzinfo=UTC).isoformat(),
        "starts_at": start,
        "ends_at": end,
        "left_d": left // 86400,
        "left_hh": f"{left % 86400 // 3600:02d}",
        "left_mm": f"{left % 3600 // 60:02d}",
        "reward_names": names,
    }


def local_time(at: datetime | str) -> str:
    """A naive-UTC time (or its ISO text) as Asia/Shanghai ``YYYY-MM-DD HH:MM``."""
    return local_text(at)
