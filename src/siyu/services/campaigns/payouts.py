"""Rewards a campaign issues, through ``siyu.services.rewards``: one row per (campaign, participant, what,
generation) — the idempotency key, so a retry never issues twice — and the campaign budget reserved atomically
before the grant (a conditional UPDATE that never passes ``budget_cap``; released again if the grant fails).

Re-issue after a claw-back: a reward taken back (``clawed_back``, e.g. a tier the sharer fell below when a help
was revoked) is issued again when the participant qualifies again, as a new generation: key ``…:tier:0#2``
(then ``#3``, …), a new grant with its own idempotency key, budget reserved again. A claw-back that was refused
(the coupon was used) leaves the reward granted, so nothing is re-issued."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select, text, update
from sqlalchemy.exc import IntegrityError

from siyu.errors import Conflict
from siyu.services.campaigns.definitions import utcnow
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignParticipantRow, CampaignRewardRow, CampaignRow
from siyu.stores.state.driver_sql import Prepared, Savepoint

log = logging.getLogger(__name__)
EPS = 1e-9


def reward_key(campaign_id: str, participant_id: str, what: str, generation: int = 1) -> str:
    """The idempotency key of a campaign reward; generation 1 has no suffix, later ones ``#<n>``."""
    base = f"{campaign_id}:{participant_id}:{what}"
    return base if generation <= 1 else f"{base}#{generation}"


def generation_of(key: str) -> int:
    _head, sep, tail = key.rpartition("#")
    return int(tail) if sep and tail.isdigit() else 1


def _latest(ctx: Context, campaign_id: str, participant_id: str, what: str) -> CampaignRewardRow | None:
    with ctx.sessions() as s:
        return s.scalar(
            select(CampaignRewardRow)
            .where(
                CampaignRewardRow.campaign_id == campaign_id,
                CampaignRewardRow.participant_id == participant_id,
                CampaignRewardRow.what == what,
            )
            .order_by(CampaignRewardRow.id.desc())
            .limit(1)
        )


def reward_row_dict(r: CampaignRewardRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "campaign_id": r.campaign_id,
        "participant_id": r.participant_id,
        "customer_id": r.customer_id,
        "what": r.what,
        "reward_id": r.reward_id,
        "grant_id": r.grant_id,
        "status": r.status,
        "cost": r.cost,
        "detail": r.detail,
        "variant": r.variant,
        "guide_id": r.guide_id,
        "created_at": r.created_at.isoformat(),
    }


def _reserve(ctx: Context, campaign_id: str, cost: float) -> bool:
    if cost <= 0:
        return True
    with ctx.sessions() as s, s.begin():
        res = s.execute(
            update(CampaignRow)
            .where(
                CampaignRow.id == campaign_id,
                (CampaignRow.budget_cap.is_(None)) | (CampaignRow.budget_spent + cost <= CampaignRow.budget_cap + EPS),
            )
            .values(budget_spent=CampaignRow.budget_spent + cost)
        )
        return getattr(res, "rowcount", 0) == 1


def _release(ctx: Context, campaign_id: str, cost: float) -> None:
    if cost > 0:
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id)
                .values(budget_spent=CampaignRow.budget_spent - cost)
            )


def issue(
    ctx: Context, brand_id: str, campaign_id: str, participant: CampaignParticipantRow, what: str, reward_id: str
) -> dict[str, Any]:
    """Grant ``reward_id`` to the participant for ``what`` (``tier:<i>``, ``team``, ``gift``, ``bonus:<gift>``,
    ``helper``) once: the row keyed by campaign + participant + what is claimed first; a granted key returns
    the same row; a failed one (budget, stock, no customer id yet) may be retried; a clawed-back one is issued
    again as the next generation. Never raises for an unavailable reward: the row says ``failed`` and why."""
    from siyu.services.rewards import RewardUnavailable, get_reward, grant

    now = utcnow()
    row = _latest(ctx, campaign_id, participant.id, what)
    key = reward_key(campaign_id, participant.id, what)
    if row is not None and row.status == "clawed_back":  # qualifies again: the next generation
        key = reward_key(campaign_id, participant.id, what, generation_of(row.key) + 1)
        row = None
    if row is not None and row.status != "failed":
        return reward_row_dict(row)
    if row is None:
        row = CampaignRewardRow(
            brand_id=brand_id,
            campaign_id=campaign_id,
            participant_id=participant.id,
            customer_id=participant.customer_id or "",
            what=what,
            key=key,
            reward_id=reward_id,
            status="pending",
            cost=0.0,
            variant=participant.variant,
            guide_id=participant.guide_id,
            created_at=now,
            updated_at=now,
        )
        try:
            with ctx.sessions() as s, s.begin():
                s.add(row)
        except IntegrityError:  # another request claimed it
            with ctx.sessions() as s:
                other = s.scalar(select(CampaignRewardRow).where(CampaignRewardRow.key == key))
            assert other is not None
            return reward_row_dict(other)
    else:  # retry a failed one: claim it back
        with ctx.sessions() as s, s.begin():
            res = s.execute(
                update(CampaignRewardRow)
                .where(CampaignRewardRow.id == row.id, CampaignRewardRow.status == "failed")
                .values(status="pending", updated_at=now, customer_id=participant.customer_id or "")
            )
            if getattr(res, "rowcount", 0) != 1:
                return reward_row_dict(row)
    status, detail, grant_id, cost = "failed", "", None, 0.0
    if not participant.customer_id:
        detail = "the participant has no customer id yet (OneID); retried after resolution"
    else:
        reward = get_reward(ctx, brand_id, reward_id)
        unit = float(reward["unit_cost"] or 0) if reward else 0.0
        if reward is None:
            detail = f"reward {reward_id!r} does not exist"
        elif not _reserve(ctx, campaign_id, unit):
            detail = BUDGET_USED
        else:
            try:
                g = grant(
                    ctx,
                    brand_id,
                    reward_id,
                    participant.customer_id,
                    source="campaign",
                    source_ref=f"{campaign_id}:{participant.id}",
                    idempotency_key=key,
                )
                status, grant_id, cost = "granted", str(g["grant_id"]), float(g.get("cost") or unit)
                if abs(cost - unit) > EPS:
                    _release(ctx, campaign_id, unit - cost)
            except RewardUnavailable as err:
                _release(ctx, campaign_id, unit)
                detail = f"{err.reason}: {err.message}"
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(CampaignRewardRow)
            .where(CampaignRewardRow.id == row.id)
            .values(
                status=status,
                detail=detail,
                grant_id=grant_id,
                cost=cost,
                updated_at=utcnow(),
                customer_id=participant.customer_id or "",
            )
        )
        fresh = s.get(CampaignRewardRow, row.id, populate_existing=True)
    assert fresh is not None
    return reward_row_dict(fresh)


_CR: Table = CampaignRewardRow.__table__  # type: ignore[assignment]
_INSERT_REWARD = Prepared(_CR.insert())
_RESERVE = Prepared(
    text(
        "UPDATE campaigns SET budget_spent = budget_spent + :cost WHERE id = :c "
        "AND (budget_cap IS NULL OR budget_spent + :cost <= budget_cap + :eps)"
    )
)
BUDGET_USED = "budget: the campaign's reward budget is used up"


def issue_first_in(
    con: Connection,
    brand_id: str,
    campaign_id: str,
    participant: Any,
    what: str,
    reward_id: str,
    now: datetime,
) -> bool:
    """``issue`` for the help writer's batch, in ``con``'s transaction with prebuilt Core statements (on SQLite
    straight on ``sqlite3``, see ``driver_sql``): the first generation of ``what`` for a participant with a
    customer id, as a reward with generated codes (coupon, virtual, physical). Grant, budget reservation and the
    campaign's reward row (granted, or failed with the reason) are written together in a savepoint. Returns
    False — nothing written — when ``issue`` must do it: no customer id yet, the key already has a row (granted,
    failed or clawed back), a code-list or points reward. ``participant`` needs ``id``,
    ``customer_id``, ``variant``, ``guide_id``."""
    from siyu.services.rewards import RewardUnavailable
    from siyu.services.rewards.grants_core import NeedsFullGrant, grant_in

    if not participant.customer_id:
        return False
    key = reward_key(campaign_id, participant.id, what)
    row = {
        "brand_id": brand_id,
        "campaign_id": campaign_id,
        "participant_id": participant.id,
        "customer_id": participant.customer_id,
        "what": what,
        "key": key,
        "reward_id": reward_id,
        "grant_id": None,
        "status": "failed",
        "cost": 0.0,
        "detail": "",
        "variant": participant.variant,
        "guide_id": participant.guide_id,
        "created_at": now,
        "updated_at": now,
    }
    sp = Savepoint(con, "payout")
    try:
        g = grant_in(
            con,
            brand_id,
            reward_id,
            participant.customer_id,
            source="campaign",
            source_ref=f"{campaign_id}:{participant.id}",
            idempotency_key=key,
            now=now,
        )
        cost = float(g["cost"])
        if cost > 0 and _RESERVE.rowcount(con, {"c": campaign_id, "cost": cost, "eps": EPS}) != 1:
            sp.rollback()
            row["detail"] = BUDGET_USED
        else:
            row |= {"status": "granted", "grant_id": g["grant_id"], "cost": cost}
            _INSERT_REWARD.rowcount(con, row)
            sp.commit()
            return True
    except RewardUnavailable as err:
        sp.rollback()
        row["detail"] = f"{err.reason}: {err.message}"
    except (NeedsFullGrant, IntegrityError):
        sp.rollback()
        return False
    sp = Savepoint(con, "payout")  # the failed row (a failed one may be retried by ``issue``)
    try:
        _INSERT_REWARD.rowcount(con, row)
        sp.commit()
    except IntegrityError:
        sp.rollback()
        return False
    return True


def claw_back(ctx: Context, brand_id: str, reward_row_id: int, reason: str, policy: str) -> dict[str, Any]:
    """Take a campaign reward back per ``policy`` (``none``: keep; ``unused``: only if not used; ``always``: try
    and record a refusal). Releases the budget it used."""
    from siyu.services.rewards import claw_back as rewards_claw_back

    with ctx.sessions() as s:
        row = s.get(CampaignRewardRow, reward_row_id)
    if row is None or row.status != "granted" or not row.grant_id or policy == "none":
        return reward_row_dict(row) if row else {}
    try:
        rewards_claw_back(ctx, brand_id, row.grant_id, reason)
    except Conflict as err:  # used already: cannot be taken back
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(CampaignRewardRow)
                .where(CampaignRewardRow.id == row.id)
                .values(detail=f"claw-back refused ({reason}): {err.message}", updated_at=utcnow())
            )
        return reward_row_dict(row)
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(CampaignRewardRow)
            .where(CampaignRewardRow.id == row.id, CampaignRewardRow.status == "granted")
            .values(status="clawed_back", detail=reason, updated_at=utcnow())
        )
    _release(ctx, row.campaign_id, row.cost)
    with ctx.sessions() as s:
        fresh = s.get(CampaignRewardRow, row.id)
    assert fresh is not None
    return reward_row_dict(fresh)


def rewards_of(ctx: Context, campaign_id: str, participant_id: str) -> list[dict[str, Any]]:
    """The rewards a participant got (or failed to get) in a campaign."""
    with ctx.sessions() as s:
        rows = s.scalars(
            select(CampaignRewardRow)
            .where(CampaignRewardRow.campaign_id == campaign_id, CampaignRewardRow.participant_id == participant_id)
            .order_by(CampaignRewardRow.id)
        ).all()
    return [reward_row_dict(r) for r in rows]
