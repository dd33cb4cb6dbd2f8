"""The public lead form (/m/{brand}/form/{form_id}): name, phone and consent; rate-limited per address and device
like every public page; the POST carries the page's CSRF token (bound to the device cookie: no sign-in needed); the
person becomes a customer through OneID and a lead of the customer pool (``siyu.services.guide_work.lead_forms``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu import i18n
from siyu.errors import SiyuError
from siyu.public.pages import guarded, read_form, render, with_lang
from siyu.public.visitor import Visitor, check_device_csrf, device_csrf_token, limit_page, limit_post
from siyu.services.context import Context
from siyu.services.guide_work import lead_forms

router = APIRouter(tags=["public pages"], include_in_schema=False)


def _page(
    request: Request, ctx: Context, v: Visitor, brand: str, form_id: str, status: int = 200, **extra: Any
) -> Response:
    form = lead_forms.get_form(ctx, brand, form_id)
    extra.setdefault("values", {"name": "", "phone": "", "consent": False})
    extra.setdefault("ok", False)
    extra.setdefault("field", "")
    return render(
        request,
        v,
        "lead_form.html",
        status,
        title=form["title"],
        csrf=device_csrf_token(ctx, v),
        name=form["title"],
        action=with_lang(f"/m/{brand}/form/{form_id}", v.lang),
        **extra,
    )


@router.get("/m/{brand}/form/{form_id}")
def lead_form_page(request: Request, brand: str, form_id: str) -> Response:
    """The form: name, phone, consent."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        return _page(request, ctx, v, brand, form_id)

    return guarded(request, go)


def _submit(request: Request, brand: str, form_id: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_device_csrf(ctx, v, form.get("csrf", ""))
        name, phone, consent = form.get("name", "")[:40], form.get("phone", "")[:20], form.get("consent") == "yes"
        values: dict[str, Any] = {"name": name, "phone": phone, "consent": consent}
        try:
            out = lead_forms.submit(ctx, brand, form_id, name, phone, consent, v.lang)
        except SiyuError as exc:
            if exc.status_code != 400:
                raise
            return _page(request, ctx, v, brand, form_id, 400, message=exc.message, field=exc.field, values=values)
        return _page(
            request,
            ctx,
            v,
            brand,
            form_id,
            message=i18n.t("lead_form.thanks", v.lang),
            ok=True,
            data={"lead": out["lead"]},
        )

    return guarded(request, go)


@router.post("/m/{brand}/form/{form_id}")
async def lead_form_post(request: Request, brand: str, form_id: str) -> Response:
    """Leave name, phone and consent: the person enters the customer pool (source form)."""
    form = await read_form(request)
    return await run_in_threadpool(_submit, request, brand, form_id, form)
