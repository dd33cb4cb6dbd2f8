"""Campaign pages: the campaign (/m/c/{id}), start (POST /m/c/{id}/join), the sharer's progress (/m/s/{token}),
the reward pool choice, the help page and button (/m/h/{token}), the carrier QR and the poster PNG."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from siyu import i18n
from siyu.api.hot_routes import HotRoute
from siyu.domain.campaign import rules
from siyu.errors import NotFound, SiyuError
from siyu.public import poster_data
from siyu.public.pages import campaign_view, guarded, guarded_async, read_form, render, with_lang
from siyu.public.visitor import Visitor, check_csrf, csrf_token, limit_page, limit_post
from siyu.services import campaigns as C
from siyu.services.campaigns.attribution import join_guide
from siyu.services.campaigns.definitions import cached_row, definition_of
from siyu.services.campaigns.participation import Sharer, remember_sharer, sharer_of
from siyu.services.campaigns.people import Person, person
from siyu.services.context import Context
from siyu.stores.state.campaign_models import (
    CampaignGiftRow,
    CampaignParticipantRow,
    CampaignRow,
    CampaignTeamMemberRow,
)

router = APIRouter(tags=["public pages"], include_in_schema=False)


def campaign_row(ctx: Context, campaign_id: str) -> CampaignRow:
    """A campaign that is (or was) public: pilot, live or ended — drafts are not found."""
    with ctx.sessions() as s:
        row = s.get(CampaignRow, campaign_id[:64])
    if row is None or row.status == "draft":
        raise NotFound("campaign not found", "campaign_id")
    return row


def platform_of(request: Request) -> str:
    """wechat / wecom / h5 from the User-Agent."""
    ua = request.headers.get("user-agent", "")
    if "wxwork" in ua:
        return "wecom"
    return "wechat" if "MicroMessenger" in ua else "h5"


def who_is(ctx: Context, v: Visitor, brand_id: str) -> Person | None:
    """The signed-in visitor as a person of ``brand_id``: OneID's customer kept at sign-in, else asked now (someone
    unknown at sign-in may have become a customer since, e.g. by starting to share)."""
    known = v.person_of(brand_id)
    if known is not None and known.customer_id is not None:
        return known
    ident = v.of(brand_id)
    return person(ctx, brand_id, ident) if ident is not None else None


def mine(ctx: Context, v: Visitor, row: CampaignRow) -> CampaignParticipantRow | None:
    """The visitor's participant in the campaign (None when they have not joined or are not signed in)."""
    who = who_is(ctx, v, row.brand_id)
    if who is None:
        return None
    keys = list(who.keys)
    with ctx.sessions() as s:
        return s.scalar(
            select(CampaignParticipantRow).where(
                CampaignParticipantRow.campaign_id == row.id, CampaignParticipantRow.person_key.in_(keys)
            )
        )


def is_owner(ctx: Context, v: Visitor, p: CampaignParticipantRow) -> bool:
    ident = v.of(p.brand_id)
    if ident is None:
        return False
    if (ident.type, ident.value) == (p.id_type, p.id_value):
        return True
    who = who_is(ctx, v, p.brand_id)
    return who is not None and p.person_key in who.keys


def my_link(ctx: Context, p: CampaignParticipantRow, kind: str, lang: str) -> str:
    """Where a participant's own page is: progress (assist), their team (group-buy) or their gift."""
    if kind == "group_buy":
        with ctx.sessions() as s:
            team = s.scalar(
                select(CampaignTeamMemberRow.team_id)
                .where(CampaignTeamMemberRow.participant_id == p.id)
                .order_by(CampaignTeamMemberRow.id.desc())
            )
        return with_lang(f"/m/t/{team}", lang) if team else ""
    if kind == "gift":
        with ctx.sessions() as s:
            gift = s.scalar(
                select(CampaignGiftRow.token)
                .where(CampaignGiftRow.giver_id == p.id)
                .order_by(CampaignGiftRow.created_at.desc())
            )
        return with_lang(f"/m/g/{gift}", lang) if gift else ""
    return with_lang(f"/m/s/{p.token}", lang)


def _variant_for(ctx: Context, v: Visitor, row: CampaignRow, p: CampaignParticipantRow | None) -> str | None:
    if p is not None:
        return p.variant
    cd = definition_of(row)
    who = who_is(ctx, v, row.brand_id)
    key = who.key if who is not None else f"d:{v.device}"
    return rules.assign_variant(cd.variants, key, row.id)


# ---- campaign page and start ------------------------------------------------------------------------------


def _campaign_page(
    request: Request, ctx: Context, v: Visitor, campaign_id: str, status: int = 200, g: str = "", **extra: Any
) -> Response:
    row = campaign_row(ctx, campaign_id)
    cd = definition_of(row)
    p = mine(ctx, v, row)
    variant = _variant_for(ctx, v, row, p)
    channel = request.query_params.get("ch", "")[:64]
    C.record_visit(ctx, row.id, variant=variant or "", channel=channel, page="campaign")
    view = campaign_view(ctx, row, cd, v.lang, variant)
    return render(
        request,
        v,
        "campaign.html",
        status,
        title=view["title"],
        c=view,
        mine=my_link(ctx, p, cd.kind, v.lang) if p else "",
        poster_url=f"/m/poster/{p.token}.png" if p is not None and cd.kind == "assist" else "",
        signed_in=v.of(row.brand_id) is not None,
        csrf=csrf_token(ctx, v),
        action=with_lang(f"/m/c/{row.id}/join", v.lang),
        from_token=request.query_params.get("from", "")[:64],
        guide_sig=(g or request.query_params.get("g", ""))[:300],  # a guide's promotion link (attribution)
        channel=channel,
        countdown=view["open"],
        data={"kind": cd.kind, "open": int(view["open"])},
        **extra,
    )


@router.get("/m/c/{campaign_id}")
def campaign_page(request: Request, campaign_id: str) -> Response:
    """The campaign: title, copy of the visitor's variant, rules, countdown and the start button."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        return _campaign_page(request, ctx, v, campaign_id)

    return guarded(request, go)


def _start(request: Request, campaign_id: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        row = campaign_row(ctx, campaign_id)
        ident = v.of(row.brand_id)
        if ident is None:
            raise SiyuError(i18n.t("m.sign_in", v.lang), "identity")
        cd = definition_of(row)
        sharer_token = form.get("from", "")[:64] or None
        guide, _ = join_guide(ctx, row.brand_id, row.id, ident, g=form.get("g", "")[:300], sharer_token=sharer_token)
        kw: dict[str, Any] = {
            "sharer_token": sharer_token,
            "channel": form.get("ch", "")[:64],
            "platform": platform_of(request),
            "region": v.region,
            "guide_id": guide,
        }
        try:
            if cd.kind == "group_buy":
                team = C.start_team(ctx, row.brand_id, row.id, ident, **kw)
                target = f"/m/t/{team['id']}"
            elif cd.kind == "gift":
                gift = C.send_gift(ctx, row.brand_id, row.id, ident, **kw)
                target = f"/m/g/{gift['token']}"
            else:
                p = C.join(ctx, row.brand_id, row.id, ident, **kw)
                target = f"/m/s/{p['token']}"
        except C.Refused as exc:
            msg = exc.en if v.lang == "en" else exc.message
            return _campaign_page(request, ctx, v, campaign_id, 409, form.get("g", ""), message=msg, reason=exc.code)
        return RedirectResponse(with_lang(target, v.lang), status_code=303)

    return guarded(request, go)


@router.post("/m/c/{campaign_id}/join")
async def campaign_start(request: Request, campaign_id: str) -> Response:
    """Start: join an assist (→ progress page), open a team (→ team page) or create a gift (→ gift page)."""
    form = await read_form(request)
    return await run_in_threadpool(_start, request, campaign_id, form)


# ---- the sharer's progress ---------------------------------------------------------------------------------


def _owned(ctx: Context, v: Visitor, token: str) -> tuple[CampaignParticipantRow, CampaignRow] | None:
    p = C.by_token(ctx, token[:64])
    row = campaign_row(ctx, p.campaign_id)
    return (p, row) if is_owner(ctx, v, p) else None


@router.get("/m/s/{token}")
def share_page(request: Request, token: str) -> Response:
    """The sharer's own page: counted / pending helps, next tier, tiers, rewards, pool choice, poster, link.
    Anyone else opening it is sent to the help page of the same link."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        owned = _owned(ctx, v, token)
        if owned is None:
            return RedirectResponse(with_lang(f"/m/h/{token}", v.lang), status_code=303)
        p, row = owned
        cd = definition_of(row)
        view = campaign_view(ctx, row, cd, v.lang, p.variant)
        prog = C.progress(ctx, row.brand_id, p.id)
        names = view["reward_names"]
        tiers = cd.tiers(p.variant)
        nxt = prog["next_tier"]
        if nxt is not None:
            t = tiers[nxt["index"]]
            label = t.name or (
                names.get(t.reward_id or "", "") if t.reward_id else " / ".join(names[r] for r in t.pool)
            )
            nxt = {"helps_needed": nxt["helps_needed"], "name": label}
        top = tiers[-1].threshold if tiers else 1
        choices = [
            {"index": t["index"], "options": [{"id": r, "name": names.get(r, r)} for r in t["pool"]]}
            for t in prog["tiers"]
            if t["pool"] and t["reached"] and not t["chosen"]
        ]
        base = str(request.base_url).rstrip("/")
        return render(
            request,
            v,
            "share.html",
            title=view["title"],
            c=view,
            p=prog,
            pct=min(100, round(100 * prog["helps_counted"] / max(1, top))),
            nxt=nxt,
            tiers=[
                {"text": line, "reached": t["reached"]} for line, t in zip(view["rules"], prog["tiers"], strict=False)
            ],
            choices=choices,
            rewards=[{**r, "name": names.get(r["reward_id"], r["reward_id"])} for r in prog["rewards"]],
            csrf=csrf_token(ctx, v),
            choose_action=with_lang(f"/m/s/{token}/choose", v.lang),
            poster_url=f"/m/poster/{token}.png",
            share_url=f"{base}/m/h/{token}",
            countdown=view["open"],
            data={"counted": prog["helps_counted"], "pending": prog["helps_pending"]},
        )

    return guarded(request, go)


def _choose(request: Request, token: str, form: dict[str, str]) -> Response:
    def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        owned = _owned(ctx, v, token)
        if owned is None:
            raise NotFound("not your page", "token")
        p, row = owned
        try:
            tier = int(form.get("tier", ""))
        except ValueError:
            raise SiyuError("pick a tier", "tier") from None
        C.choose_reward(ctx, row.brand_id, p.id, tier, form.get("reward_id", "")[:64])
        return RedirectResponse(with_lang(f"/m/s/{token}", v.lang), status_code=303)

    return guarded(request, go)


@router.post("/m/s/{token}/choose")
async def share_choose(request: Request, token: str) -> Response:
    """The sharer picks a reward of a reached pool tier (奖励池)."""
    form = await read_form(request)
    return await run_in_threadpool(_choose, request, token, form)


# ---- help --------------------------------------------------------------------------------------------------


def _help_page(
    request: Request,
    ctx: Context,
    v: Visitor,
    token: str,
    result: dict[str, Any] | None = None,
    known: tuple[CampaignParticipantRow | Sharer, CampaignRow] | None = None,
) -> Response:
    if known is None:
        found = C.by_token(ctx, token[:64])
        remember_sharer(ctx, found)  # the help POSTs after this view find it cached
        known = (found, campaign_row(ctx, found.campaign_id))
    sharer, row = known
    cd = definition_of(row)
    view = campaign_view(ctx, row, cd, v.lang, sharer.variant)
    prog = (result or {}).get("progress") or {"helps_counted": sharer.helps_counted}
    counted = int(prog["helps_counted"])
    tiers = cd.tiers(sharer.variant)
    nxt = rules.next_tier(tiers, counted)
    target = tiers[nxt[0]].threshold if nxt else (tiers[-1].threshold if tiers else counted)
    shown = None
    carrier = None
    data: dict[str, Any] = {"counted": counted}
    if result is not None:
        msg = result["message_en"] if v.lang == "en" else result["message_zh"]
        shown = {"state": result["state"], "reason": result["reason"] or "", "message": msg}
        data |= {"state": result["state"], "reason": result["reason"] or ""}
        if result["state"] == "pending_carrier":
            qr = f"/m/cq/{row.id}.png" if cd.carrier.kind == "wecom_guide" else ""
            text = i18n.t("m.carrier_scan", v.lang) if qr else view["carrier_text"]
            carrier = {"kind": cd.carrier.kind, "qr": qr, "text": text}
    else:
        C.record_visit(ctx, row.id, variant=sharer.variant or "", channel=sharer.channel, page="help")
    return render(
        request,
        v,
        "help.html",
        fresh=("counted", "target", "pct", "csrf", "action", "join_url"),
        title=view["title"],
        c=view,
        result=shown,
        carrier=carrier,
        counted=counted,
        target=target,
        pct=min(100, round(100 * counted / max(1, target))),
        signed_in=v.of(row.brand_id) is not None,
        csrf=csrf_token(ctx, v) if result is None else "",  # the answer page has no form
        action=with_lang(f"/m/h/{token}", v.lang),
        join_url=with_lang(f"/m/c/{row.id}?from={token}", v.lang),
        countdown=view["open"],
        data=data,
    )


@router.get("/m/h/{token}")
def help_page(request: Request, token: str) -> Response:
    """A friend's help page: the sharer's progress and the help button (the sharer is sent to their own page)."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        owned = _owned(ctx, v, token)
        if owned is not None:
            return RedirectResponse(with_lang(f"/m/s/{token}", v.lang), status_code=303)
        return _help_page(request, ctx, v, token)

    return guarded(request, go)


@router.post("/m/h/{token}")
async def help_post(request: Request, token: str) -> Response:
    """Help (助力): the answer page says counted, the carrier step still to do, or why it was refused.

    The hot path of a burst: it runs on the event loop (no worker thread per request) and awaits the group-commit
    writer; its reads are in-process caches (sharer, campaign row, the person kept in the session at sign-in)."""
    form = await read_form(request)

    async def go(ctx: Context, v: Visitor) -> Response:
        limit_post(ctx, v)
        check_csrf(ctx, v, form.get("csrf", ""))
        sharer = sharer_of(ctx, token[:64])  # cached sharer and campaign row, no ORM objects
        if sharer is None:
            raise NotFound("share link not found; ask your friend for a new one", "token")
        row = cached_row(ctx, sharer.brand_id, sharer.campaign_id)
        if row.status == "draft":
            raise NotFound("campaign not found", "campaign_id")
        ident = v.of(sharer.brand_id)
        if ident is None:
            raise SiyuError(i18n.t("m.sign_in", v.lang), "identity")
        result = await C.help_async(
            ctx,
            sharer.brand_id,
            sharer.campaign_id,
            sharer.token,
            ident,
            device_id=v.device,
            ip=v.ip,
            region=v.region,
            platform=platform_of(request),
            who=v.person_of(sharer.brand_id),
        )
        return _help_page(request, ctx, v, token, result, (sharer, row))

    return await guarded_async(request, go)


# the burst's endpoints, dispatched ahead of the router (siyu.api.hot_routes)
HOT_ROUTES = (
    HotRoute("POST", "/m/h/{token}", help_post),
    HotRoute("GET", "/m/h/{token}", help_page),
)


# ---- images -----------------------------------------------------------------------------------------------


@router.get("/m/cq/{campaign_id}.png")
def carrier_qr(request: Request, campaign_id: str) -> Response:
    """The campaign's channel code QR (the ``wecom_guide`` carrier): scanning it adds the guide."""
    from siyu.services.wecom.channel_codes import qr_image

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        row = campaign_row(ctx, campaign_id)
        cd = definition_of(row)
        if cd.carrier.kind != "wecom_guide" or cd.carrier.channel_code_id is None:
            raise NotFound("this campaign has no channel code", "campaign_id")
        cache: dict[tuple[str, int], bytes] = ctx.extras.setdefault("public_carrier_qr", {})
        key = (row.id, cd.carrier.channel_code_id)
        png = cache.get(key)
        if png is None:
            png = cache[key] = qr_image(ctx, row.brand_id, cd.carrier.channel_code_id, "png", 8)
        return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=300"})

    return guarded(request, go)


@router.get("/m/poster/{token}.png")
def poster(request: Request, token: str) -> Response:
    """The participant's poster (the owner's nickname on it when the owner asks)."""

    def go(ctx: Context, v: Visitor) -> Response:
        limit_page(ctx, v)
        p = C.by_token(ctx, token[:64])
        row = campaign_row(ctx, p.campaign_id)
        cd = definition_of(row)
        view = campaign_view(ctx, row, cd, "zh", p.variant)
        nickname = v.nickname if is_owner(ctx, v, p) else ""
        help_url = f"{str(request.base_url).rstrip('/')}/m/h/{p.token}"
        png = poster_data.poster_png(ctx, row, cd, p, view, help_url, nickname)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})

    return guarded(request, go)
