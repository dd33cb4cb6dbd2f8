"""Group-buy teams (拼团 / 组队): start a team, join one, complete it (initiator and joiner rewards, 异化奖励).

A seat is taken by a conditional UPDATE (``members < size`` and open and before the deadline), so concurrent
joins never overfill a team; the join that fills it completes it and issues the rewards (idempotent keys)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.models import Identity
from siyu.errors import NotFound, SiyuError
from siyu.services.campaigns import payouts
from siyu.services.campaigns.definitions import definition_of, get_row, utcnow
from siyu.services.campaigns.participation import Refused, join
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignParticipantRow, CampaignTeamMemberRow, CampaignTeamRow


def team_dict(ctx: Context, t: CampaignTeamRow) -> dict[str, Any]:
    with ctx.sessions() as s:
        members = s.execute(
            select(CampaignTeamMemberRow.participant_id, CampaignTeamMemberRow.role, CampaignTeamMemberRow.joined_at)
            .where(CampaignTeamMemberRow.team_id == t.id)
            .order_by(CampaignTeamMemberRow.id)
        ).all()
    return {
        "id": t.id,
        "campaign_id": t.campaign_id,
        "leader_id": t.leader_id,
        "variant": t.variant,
        "size": t.size,
        "members": t.members,
        "slots_left": max(0, t.size - t.members),
        "status": t.status,
        "deadline_at": t.deadline_at.isoformat(),
        "completed_at": t.completed_at.isoformat() if t.completed_at else None,
        "member_list": [{"participant_id": p, "role": r, "joined_at": j.isoformat()} for p, r, j in members],
    }


def start_team(ctx: Context, brand_id: str, campaign_id: str, identity: Identity, **join_kw: Any) -> dict[str, Any]:
    """The initiator opens a team (they join the campaign first); returns the team (its id is the share link's)."""
    row = get_row(ctx, brand_id, campaign_id)
    cd = definition_of(row)
    if cd.kind != "group_buy" or cd.group_buy is None:
        raise SiyuError(f"campaign {campaign_id!r} is a {cd.kind} campaign, not group_buy", "campaign_id")
    p = join(ctx, brand_id, campaign_id, identity, **join_kw)
    now = join_kw.get("now") or utcnow()
    with ctx.sessions() as s:
        led = s.scalars(
            select(CampaignTeamRow).where(
                CampaignTeamRow.campaign_id == campaign_id, CampaignTeamRow.leader_id == p["id"]
            )
        ).all()
    open_ = [t for t in led if t.status == "open" and t.deadline_at > now]
    if open_:
        return team_dict(ctx, open_[0])
    if len(led) >= cd.group_buy.max_teams_per_person:
        raise Refused("already_in_team")
    t = CampaignTeamRow(
        id="tm_" + secrets.token_hex(6),
        brand_id=brand_id,
        campaign_id=campaign_id,
        leader_id=p["id"],
        variant=p["variant"],
        size=cd.team_size(p["variant"]),
        members=1,
        status="open",
        deadline_at=now + timedelta(hours=cd.group_buy.team_hours),
        created_at=now,
    )
    with ctx.sessions() as s, s.begin():
        s.add(t)
        s.flush()
        s.add(CampaignTeamMemberRow(team_id=t.id, campaign_id=campaign_id, participant_id=p["id"], role="initiator"))
    return team_dict(ctx, t)


def get_team(ctx: Context, brand_id: str, team_id: str) -> dict[str, Any]:
    """A team with its members and slots left."""
    with ctx.sessions() as s:
        t = s.get(CampaignTeamRow, team_id)
    if t is None or t.brand_id != brand_id:
        raise NotFound(f"team {team_id!r} not found", "team_id")
    return team_dict(ctx, t)


def join_team(
    ctx: Context, brand_id: str, team_id: str, identity: Identity, *, now: datetime | None = None, **join_kw: Any
) -> dict[str, Any]:
    """Join a team (the joiner joins the campaign with the leader as sharer). Refused: team_full, team_closed,
    already_in_team (a person is a joiner in one team per campaign; the leader cannot join their own team).
    Returns the team; when this join fills it, the team completes and everyone's reward is issued."""
    now = now or utcnow()
    with ctx.sessions() as s:
        t = s.get(CampaignTeamRow, team_id)
        if t is None or t.brand_id != brand_id:
            raise NotFound(f"team {team_id!r} not found", "team_id")
        leader = s.get(CampaignParticipantRow, t.leader_id)
    assert leader is not None
    if t.status != "open" or t.deadline_at <= now:
        raise Refused("team_closed")
    if t.members >= t.size:
        raise Refused("team_full")
    p = join(ctx, brand_id, t.campaign_id, identity, sharer_token=leader.token, now=now, **join_kw)
    with ctx.sessions() as s:
        mine = s.scalar(
            select(CampaignTeamMemberRow.id).where(
                CampaignTeamMemberRow.campaign_id == t.campaign_id, CampaignTeamMemberRow.participant_id == p["id"]
            )
        )
    if mine is not None:
        raise Refused("already_in_team" if p["id"] != t.leader_id else "self_help")
    try:
        with ctx.sessions() as s, s.begin():
            res = s.execute(
                update(CampaignTeamRow)
                .where(
                    CampaignTeamRow.id == team_id,
                    CampaignTeamRow.status == "open",
                    CampaignTeamRow.members < CampaignTeamRow.size,
                    CampaignTeamRow.deadline_at > now,
                )
                .values(members=CampaignTeamRow.members + 1)
            )
            if getattr(res, "rowcount", 0) != 1:
                raise Refused("team_full")
            s.add(
                CampaignTeamMemberRow(team_id=team_id, campaign_id=t.campaign_id, participant_id=p["id"], role="joiner")
            )
            s.flush()
            done = s.execute(
                update(CampaignTeamRow)
                .where(CampaignTeamRow.id == team_id, CampaignTeamRow.members >= CampaignTeamRow.size)
                .values(status="complete", completed_at=now)
            )
            completed = getattr(done, "rowcount", 0) == 1
    except IntegrityError:
        raise Refused("already_in_team") from None
    if completed:
        _pay(ctx, brand_id, team_id)
    return get_team(ctx, brand_id, team_id)


def _pay(ctx: Context, brand_id: str, team_id: str) -> None:
    with ctx.sessions() as s:
        t = s.get(CampaignTeamRow, team_id)
        assert t is not None
        members = s.execute(
            select(CampaignParticipantRow, CampaignTeamMemberRow.role)
            .join(CampaignTeamMemberRow, CampaignTeamMemberRow.participant_id == CampaignParticipantRow.id)
            .where(CampaignTeamMemberRow.team_id == team_id)
        ).all()
    cd = definition_of(get_row(ctx, brand_id, t.campaign_id))
    lead_reward, join_reward = cd.team_rewards(t.variant)
    for p, role in members:
        payouts.issue(
            ctx, brand_id, t.campaign_id, p, f"team:{team_id}", lead_reward if role == "initiator" else join_reward
        )


def expire_teams(ctx: Context, brand_id: str, now: datetime | None = None) -> int:
    """Close open teams past their deadline (status expired); returns how many."""
    now = now or utcnow()
    with ctx.sessions() as s, s.begin():
        res = s.execute(
            update(CampaignTeamRow)
            .where(
                CampaignTeamRow.brand_id == brand_id,
                CampaignTeamRow.status == "open",
                CampaignTeamRow.deadline_at <= now,
            )
            .values(status="expired")
        )
        return int(getattr(res, "rowcount", 0) or 0)
