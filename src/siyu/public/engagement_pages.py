"""Lottery draw page (/m/l/{activity}) and daily check-in page (/m/k/{activity}) on ``siyu.services.engagement``.
The visitor's identity becomes a customer through OneID (recorded on first use) — draws and check-ins are per
customer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu import i18n
from siyu.errors import Conflict, NotFound, SiyuError, TooManyRequests
from siyu.public.pages import guarded, read_form, render, reward_names, with_lang
from siyu.public.visitor import Visitor, check_csrf, csrf_token, limit_page, limit_post
from siyu.services import engagement
from siyu.services.campaigns.people import identify
from siyu.services.context import Context

router = APIRouter(tags=["public pages"], include_in_schema=False)


def _activity(ctx: Context, activity_id: str, kind: str) -> Any:
    from siyu.stores.state.engagement_models import EngagementActivityRow

    with ctx.sessions() as s:
        row = s.get(EngagementActivityRow, activity_id[:64])
    if row is None or row.kind != kind:
        raise NotFound(f"{kind} not found", "activity_id")
    return row


def _customer(ctx: Context, v: Visitor, brand_id: str) -> str | None:
    ident = v.of(brand_id)
    if ident is None:
        return None
    return identify(ctx, brand_id, ident, f"public-engagement:{ident.type}:{ident.value}", now=True).customer_id


# ---- lottery ----------------------------------------------------------------------------------------------


def _lottery_page(
    request: Request, ctx: Context, v: Visitor, activity_id: str, status: int = 200, **extra: Any
) -> Response:
    row = _activity(ctx, activity_id, "lottery")
    prizes = [p["name"] for p in (row.config or {}).get("prizes", [])]
    extra.setdefault("draws_left", None)
    return render(
        request,
        v,
        "lottery.html",
        status,
        title=row.name,
        name=row.name,
        prizes=prizes,
        signed_in=v.of(row.brand_id) is not None,
        csrf=csrf_token(ctx, v),
        action=with_lang(f"/m/l/{row.id}/draw", v.lang),
        **extra,
    )


@router.get("/m/l/{activity_id}")
def lottery_page(request: Request, activity_id: str) -> Response:
    """The lottery: prizes and the draw button."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        return _lottery_page(request, ctx, v, activity_id)

    return guarded(request, go)


def _draw(request: Request, activity_id: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        row = _activity(ctx, activity_id, "lottery")
        customer = _customer(ctx, v, row.brand_id)
        if customer is None:
            raise SiyuError(i18n.t("m.sign_in", v.lang), "identity")
        try:
            out = engagement.draw(ctx, row.brand_id, row.id, customer)
        except TooManyRequests:
            return _lottery_page(request, ctx, v, activity_id, 429, message=i18n.t("m.draws_done", v.lang))
        except Conflict as exc:
            return _lottery_page(request, ctx, v, activity_id, 409, message=exc.message)
        if out["outcome"] == "won":
            text = i18n.t("m.won", v.lang, name=out["prize"]["name"])
        else:
            text = i18n.t("m.out_of_stock" if out["outcome"] == "out_of_stock" else "m.no_prize", v.lang)
        return _lottery_page(
            request,
            ctx,
            v,
            activity_id,
            result={"outcome": out["outcome"], "text": text},
            draws_left=out["draws_left"],
            data={"outcome": out["outcome"]},
        )

    return guarded(request, go)


@router.post("/m/l/{activity_id}/draw")
async def lottery_draw(request: Request, activity_id: str) -> Response:
    """Draw once (per-person daily limit; stock never oversold — ``siyu.services.rewards.grant``)."""
    form = await read_form(request)
    return await run_in_threadpool(_draw, request, activity_id, form)


# ---- check-in ---------------------------------------------------------------------------------------------


def _checkin_page(
    request: Request, ctx: Context, v: Visitor, activity_id: str, status: int = 200, **extra: Any
) -> Response:
    row = _activity(ctx, activity_id, "checkin")
    customer = _customer(ctx, v, row.brand_id)
    st = engagement.checkin_status(ctx, row.brand_id, row.id, customer) if customer else None
    nxt = st["next_reward"]["reward_id"] if st and st["next_reward"] else ""
    return render(
        request,
        v,
        "checkin.html",
        status,
        title=row.name,
        name=row.name,
        st=st,
        next_name=reward_names(ctx, row.brand_id, [nxt]).get(nxt, "") if nxt else "",
        csrf=csrf_token(ctx, v),
        action=with_lang(f"/m/k/{row.id}", v.lang),
        data={"streak": st["streak"] if st else 0, "today": int(bool(st and st["checked_in_today"]))},
        **extra,
    )


@router.get("/m/k/{activity_id}")
def checkin_page(request: Request, activity_id: str) -> Response:
    """Check-in: the streak, today's state, the next streak reward and the button."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        return _checkin_page(request, ctx, v, activity_id)

    return guarded(request, go)


def _check_in(request: Request, activity_id: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        row = _activity(ctx, activity_id, "checkin")
        customer = _customer(ctx, v, row.brand_id)
        if customer is None:
            raise SiyuError(i18n.t("m.sign_in", v.lang), "identity")
        try:
            engagement.check_in(ctx, row.brand_id, row.id, customer)
        except Conflict as exc:
            st = engagement.checkin_status(ctx, row.brand_id, row.id, customer)
            msg = i18n.t("m.checked_today", v.lang) if st["checked_in_today"] else exc.message
            return _checkin_page(request, ctx, v, activity_id, 409, message=msg, ok=False)
        return _checkin_page(request, ctx, v, activity_id, message=i18n.t("m.checked_today", v.lang), ok=True)

    return guarded(request, go)


@router.post("/m/k/{activity_id}")
async def checkin_post(request: Request, activity_id: str) -> Response:
    """Check in today (a second time the same day is refused with a clear message)."""
    form = await read_form(request)
    return await run_in_threadpool(_check_in, request, activity_id, form)
