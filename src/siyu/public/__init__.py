"""Public mobile pages (/m/...): light server-rendered HTML (jinja2, inline CSS, no external assets) for the
people a campaign reaches — the campaign, the sharer's progress, the help button, the carrier step, teams,
gifts, lottery and check-in — plus the poster PNGs. Documented in ``docs/campaigns.md``.

``router`` is mounted by ``siyu.api.routers``. Visitors are identified by a signed session set from a signed
link token (``/m/auth?t=...``, see ``siyu.public.visitor``); every page and POST is rate-limited and every POST
carries a CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from siyu.public import campaign_pages, engagement_pages, lead_form, team_gift_pages
from siyu.public.pages import guarded
from siyu.public.visitor import Visitor, limit_page, read_link_token, start_session
from siyu.services.context import Context

router = APIRouter(include_in_schema=False)


def _auth(request: Request) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        payload = read_link_token(ctx, request.query_params.get("t", "")[:2048])
        nxt = request.query_params.get("next", "")
        if not nxt.startswith("/m/") or "//" in nxt or "\\" in nxt:
            nxt = "/m/"
        response = RedirectResponse(nxt, status_code=303)
        start_session(ctx, response, payload)
        if v.new_device:
            from siyu.public.visitor import keep_device

            keep_device(response, v)
        return response

    return guarded(request, go)


@router.get("/m/auth")
async def auth(request: Request) -> Response:
    """Sign the visitor in from a signed link token (``t``) and go on to ``next`` (a /m/ path)."""
    return await run_in_threadpool(_auth, request)


router.include_router(campaign_pages.router)
router.include_router(team_gift_pages.router)
router.include_router(engagement_pages.router)
router.include_router(lead_form.router)  # /m/{brand}/form/{form_id}: leads into the customer pool

__all__ = ["router"]
