"""Group-buy team page (/m/t/{team}: members, slots left, join) and gift claim page (/m/g/{token})."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu import i18n
from siyu.errors import NotFound, SiyuError
from siyu.public.campaign_pages import campaign_row, is_owner, mine, platform_of
from siyu.public.pages import campaign_view, guarded, local_time, read_form, render, utcnow, with_lang
from siyu.public.visitor import Visitor, check_csrf, csrf_token, limit_page, limit_post
from siyu.services import campaigns as C
from siyu.services.campaigns.definitions import definition_of
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignParticipantRow, CampaignTeamRow

router = APIRouter(tags=["public pages"], include_in_schema=False)


# ---- team -------------------------------------------------------------------------------------------------


def _team_page(request: Request, ctx: Context, v: Visitor, team_id: str, status: int = 200, **extra: Any) -> Response:
    with ctx.sessions() as s:
        t = s.get(CampaignTeamRow, team_id[:64])
    if t is None:
        raise NotFound("team not found", "team_id")
    row = campaign_row(ctx, t.campaign_id)
    cd = definition_of(row)
    team = C.get_team(ctx, row.brand_id, t.id)
    view = campaign_view(ctx, row, cd, v.lang, team["variant"])
    me = mine(ctx, v, row)
    in_team = me is not None and any(m["participant_id"] == me.id for m in team["member_list"])
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        v,
        "team.html",
        status,
        title=view["title"],
        c=view,
        team=team,
        me=me.id if me else "",
        in_team=in_team,
        deadline=local_time(team["deadline_at"]),
        signed_in=v.of(row.brand_id) is not None,
        csrf=csrf_token(ctx, v),
        action=with_lang(f"/m/t/{t.id}/join", v.lang),
        share_url=f"{base}/m/t/{t.id}",
        countdown=view["open"],
        data={"members": team["members"], "slots": team["slots_left"], "status": team["status"]},
        **extra,
    )


@router.get("/m/t/{team_id}")
def team_page(request: Request, team_id: str) -> Response:
    """A team: members, slots left, deadline and the join button."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        return _team_page(request, ctx, v, team_id)

    return guarded(request, go)


def _join_team(request: Request, team_id: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        with ctx.sessions() as s:
            t = s.get(CampaignTeamRow, team_id[:64])
        if t is None:
            raise NotFound("team not found", "team_id")
        ident = v.of(t.brand_id)
        if ident is None:
            raise SiyuError(i18n.t("m.sign_in", v.lang), "identity")
        try:
            team = C.join_team(ctx, t.brand_id, t.id, ident, platform=platform_of(request), region=v.region)
        except C.Refused as exc:
            msg = exc.en if v.lang == "en" else exc.message
            return _team_page(request, ctx, v, team_id, 409, message=msg, reason=exc.code, ok=False)
        done = team["status"] == "complete"
        msg = i18n.t("m.team_complete" if done else "m.in_team", v.lang)
        return _team_page(request, ctx, v, team_id, message=msg, reason="", ok=True)

    return guarded(request, go)


@router.post("/m/t/{team_id}/join")
async def team_join(request: Request, team_id: str) -> Response:
    """Join the team; the join that fills it completes the team and issues everyone's reward."""
    form = await read_form(request)
    return await run_in_threadpool(_join_team, request, team_id, form)


# ---- gift -------------------------------------------------------------------------------------------------


def _gift_page(request: Request, ctx: Context, v: Visitor, token: str, status: int = 200, **extra: Any) -> Response:
    gift = C.get_gift(ctx, token[:64])
    row = campaign_row(ctx, gift["campaign_id"])
    cd = definition_of(row)
    with ctx.sessions() as s:
        giver = s.get(CampaignParticipantRow, gift["giver_id"])
    if giver is None:
        raise NotFound("gift link not found", "token")
    view = campaign_view(ctx, row, cd, v.lang, giver.variant)
    expired = gift["status"] == "sent" and datetime.fromisoformat(gift["expires_at"]) <= utcnow()
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        v,
        "gift.html",
        status,
        title=view["title"],
        c=view,
        gift=gift,
        gift_state="expired" if expired else gift["status"],
        mine=is_owner(ctx, v, giver),
        reward_name=view["reward_names"].get(gift["reward_id"], gift["reward_id"]),
        expires=local_time(gift["expires_at"]),
        signed_in=v.of(row.brand_id) is not None,
        csrf=csrf_token(ctx, v),
        action=with_lang(f"/m/g/{token}/claim", v.lang),
        share_url=f"{base}/m/g/{token}",
        countdown=view["open"],
        data={"status": gift["status"]},
        **extra,
    )


@router.get("/m/g/{token}")
def gift_page(request: Request, token: str) -> Response:
    """A gift: what it is, its state, and the claim button (the giver sees the link to send)."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        return _gift_page(request, ctx, v, token)

    return guarded(request, go)


def _claim(request: Request, token: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        gift = C.get_gift(ctx, token[:64])
        row = campaign_row(ctx, gift["campaign_id"])
        ident = v.of(row.brand_id)
        if ident is None:
            raise SiyuError(i18n.t("m.sign_in", v.lang), "identity")
        try:
            C.claim_gift(ctx, row.brand_id, token[:64], ident, platform=platform_of(request), region=v.region)
        except C.Refused as exc:
            msg = exc.en if v.lang == "en" else exc.message
            return _gift_page(request, ctx, v, token, 409, message=msg, reason=exc.code, ok=False)
        return _gift_page(request, ctx, v, token, message=i18n.t("m.gift_claimed", v.lang), reason="", ok=True)

    return guarded(request, go)


@router.post("/m/g/{token}/claim")
async def gift_claim(request: Request, token: str) -> Response:
    """Claim the gift (the reward is granted to the friend)."""
    form = await read_form(request)
    return await run_in_threadpool(_claim, request, token, form)
