"""Gifts (赠送 / 好友卡 / 赠一得一): a giver sends the campaign's reward to a friend through a claim link; the friend
claims it (the reward is granted to them); the giver's optional bonus is issued when the friend claims or — via
``siyu.services.rewards.on_redeem`` — redeems it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from siyu.domain.models import Identity
from siyu.errors import NotFound, SiyuError
from siyu.services.campaigns import payouts
from siyu.services.campaigns.definitions import definition_of, get_row, utcnow
from siyu.services.campaigns.participation import Refused, join
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignGiftRow, CampaignParticipantRow, CampaignRewardRow


def gift_dict(g: CampaignGiftRow) -> dict[str, Any]:
    return {
        "id": g.id,
        "campaign_id": g.campaign_id,
        "giver_id": g.giver_id,
        "token": g.token,
        "reward_id": g.reward_id,
        "status": g.status,
        "receiver_id": g.receiver_id,
        "grant_id": g.grant_id,
        "bonus_grant_id": g.bonus_grant_id,
        "expires_at": g.expires_at.isoformat(),
        "claimed_at": g.claimed_at.isoformat() if g.claimed_at else None,
        "redeemed_at": g.redeemed_at.isoformat() if g.redeemed_at else None,
    }


def send_gift(
    ctx: Context, brand_id: str, campaign_id: str, identity: Identity, *, now: datetime | None = None, **join_kw: Any
) -> dict[str, Any]:
    """The giver (joining the campaign if needed) creates a gift; returns it with its claim ``token``.
    Refused ``gift_limit`` past ``max_gifts_per_giver``."""
    now = now or utcnow()
    row = get_row(ctx, brand_id, campaign_id)
    cd = definition_of(row)
    if cd.kind != "gift" or cd.gift is None:
        raise SiyuError(f"campaign {campaign_id!r} is a {cd.kind} campaign, not gift", "campaign_id")
    p = join(ctx, brand_id, campaign_id, identity, now=now, **join_kw)
    with ctx.sessions() as s:
        sent = s.scalar(
            select(func.count()).where(CampaignGiftRow.campaign_id == campaign_id, CampaignGiftRow.giver_id == p["id"])
        )
    if int(sent or 0) >= cd.gift.max_gifts_per_giver:
        raise Refused("gift_limit")
    g = CampaignGiftRow(
        id="gf_" + secrets.token_hex(6),
        brand_id=brand_id,
        campaign_id=campaign_id,
        giver_id=p["id"],
        token=secrets.token_urlsafe(12),
        reward_id=cd.gift_reward(p["variant"]),
        status="sent",
        created_at=now,
        expires_at=now + timedelta(hours=cd.gift.claim_hours),
    )
    with ctx.sessions() as s, s.begin():
        s.add(g)
    return gift_dict(g)


def get_gift(ctx: Context, token: str) -> dict[str, Any]:
    """A gift by its claim token."""
    with ctx.sessions() as s:
        g = s.scalar(select(CampaignGiftRow).where(CampaignGiftRow.token == token))
    if g is None:
        raise NotFound("gift link not found", "token")
    return gift_dict(g)


def claim_gift(
    ctx: Context, brand_id: str, token: str, identity: Identity, *, now: datetime | None = None, **join_kw: Any
) -> dict[str, Any]:
    """The friend claims the gift: they join (sharer = giver, depth + 1), the reward is granted to them, the
    gift becomes ``claimed``; the giver's bonus is issued now if ``bonus_on`` is ``claim``. Refused:
    gift_claimed, gift_expired, own_gift. Claiming twice by the same friend returns the gift."""
    now = now or utcnow()
    with ctx.sessions() as s:
        g = s.scalar(select(CampaignGiftRow).where(CampaignGiftRow.token == token))
        giver = s.get(CampaignParticipantRow, g.giver_id) if g else None
    if g is None or g.brand_id != brand_id or giver is None:
        raise NotFound("gift link not found", "token")
    p = join(ctx, brand_id, g.campaign_id, identity, sharer_token=giver.token, now=now, **join_kw)
    if p["id"] == giver.id:
        raise Refused("own_gift")
    if g.status != "sent":
        if g.receiver_id == p["id"]:
            return gift_dict(g)
        raise Refused("gift_claimed")
    if g.expires_at <= now:
        raise Refused("gift_expired")
    with ctx.sessions() as s, s.begin():
        res = s.execute(
            update(CampaignGiftRow)
            .where(CampaignGiftRow.id == g.id, CampaignGiftRow.status == "sent")
            .values(status="claimed", receiver_id=p["id"], claimed_at=now)
        )
        if getattr(res, "rowcount", 0) != 1:
            raise Refused("gift_claimed")
        receiver = s.get(CampaignParticipantRow, p["id"])
    assert receiver is not None
    got = payouts.issue(ctx, brand_id, g.campaign_id, receiver, f"gift:{g.id}", g.reward_id)
    with ctx.sessions() as s, s.begin():
        s.execute(update(CampaignGiftRow).where(CampaignGiftRow.id == g.id).values(grant_id=got["grant_id"]))
    cd = definition_of(get_row(ctx, brand_id, g.campaign_id))
    assert cd.gift is not None
    if cd.gift.giver_bonus_reward_id and cd.gift.bonus_on == "claim":
        _bonus(ctx, brand_id, g.id)
    with ctx.sessions() as s:
        fresh = s.get(CampaignGiftRow, g.id)
    assert fresh is not None
    return gift_dict(fresh)


def _bonus(ctx: Context, brand_id: str, gift_id: str) -> None:
    with ctx.sessions() as s:
        g = s.get(CampaignGiftRow, gift_id)
        giver = s.get(CampaignParticipantRow, g.giver_id) if g else None
    if g is None or giver is None:
        return
    cd = definition_of(get_row(ctx, brand_id, g.campaign_id))
    if cd.gift is None or not cd.gift.giver_bonus_reward_id:
        return
    got = payouts.issue(ctx, brand_id, g.campaign_id, giver, f"bonus:{g.id}", cd.gift.giver_bonus_reward_id)
    with ctx.sessions() as s, s.begin():
        s.execute(update(CampaignGiftRow).where(CampaignGiftRow.id == g.id).values(bonus_grant_id=got["grant_id"]))


def on_redeemed(ctx: Context, grant: dict[str, Any]) -> None:
    """Rewards' redeem hook: a gifted coupon was used → the gift is ``redeemed`` and the giver's bonus (``bonus_on:
    redeem``) is issued. Other grants are ignored."""
    if grant.get("source") != "campaign" or not grant.get("grant_id"):
        return
    with ctx.sessions() as s:
        r = s.scalar(
            select(CampaignRewardRow).where(
                CampaignRewardRow.grant_id == grant["grant_id"], CampaignRewardRow.what.like("gift:%")
            )
        )
    if r is None:
        return
    gift_id = r.what.split(":", 1)[1]
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(CampaignGiftRow)
            .where(CampaignGiftRow.id == gift_id, CampaignGiftRow.status == "claimed")
            .values(status="redeemed", redeemed_at=utcnow())
        )
    cd = definition_of(get_row(ctx, r.brand_id, r.campaign_id))
    if cd.gift is not None and cd.gift.bonus_on == "redeem":
        _bonus(ctx, r.brand_id, gift_id)
