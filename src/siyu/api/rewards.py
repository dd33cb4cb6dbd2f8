"""Rewards, points and engagement over HTTP.

``/api/rewards``: the catalogue (CRUD, stock top-up, codes), manual grants, grants list, claw-back, coupon
redemption, the physical-gift fulfilment list (address, shipping) and cost per source. ``/api/points``: a
customer's balance and ledger, earn / spend, expiry. ``/api/engagement``: lottery / check-in / quiz activities
(operators can draw, check in and answer on a customer's behalf, e.g. to test), member tier scheme and
recomputation. Changes need an admin or operator; a guide reads only their own customers' grants, points and
tiers (someone else's customer answers 404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.pii import PiiMode, masked_page
from siyu.api.validation import MAX_ID
from siyu.domain.models import Role
from siyu.services import engagement, pii, rewards
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.customers import guide_scope, resolve_customer
from siyu.services.errors import Forbidden, NotFound
from siyu.services.metrics import fetch_arrow
from siyu.services.rewards import points

router = APIRouter(tags=["rewards"])
MAX_CODES_BODY = 100_000


def _editor(user: User = Depends(current_user)) -> User:
    if user.role not in (Role.ADMIN, Role.OPERATOR):
        raise Forbidden("rewards, points and activities are changed by an admin or operator; guides may read", "role")
    return user


def _scope_ids(ctx: Context, user: User) -> set[str] | None:
    """The customer ids a guide may see (None = the whole brand)."""
    scope = guide_scope(ctx, user)
    if scope is None:
        return None
    return {r["customer_id"] for r in fetch_arrow(ctx, scope).to_pylist()}


def _own_grant(ctx: Context, user: User, grant_id: str) -> dict[str, Any]:
    g = rewards.get_grant(ctx, user.brand_id, grant_id)
    ids = _scope_ids(ctx, user)
    if ids is not None and g["customer_id"] not in ids:
        raise NotFound(f"grant {grant_id!r} not found (or not one of your customers')", "grant_id")
    return g


# ---- bodies ---------------------------------------------------------------------------------------------------


class RewardBody(BaseModel):
    id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    config: dict[str, Any] = Field(default_factory=dict)
    unit_cost: float = 0
    stock: int | None = None
    budget: float | None = None
    valid_until: datetime | None = None
    return_stock_on_clawback: bool = True


class TopUp(BaseModel):
    amount: int


class Codes(BaseModel):
    codes: list[str] = Field(min_length=1, max_length=MAX_CODES_BODY)


class GrantBody(BaseModel):
    customer_id: str = Field(min_length=1, max_length=128)
    source: str = Field(default="manual", min_length=1, max_length=64)
    source_ref: str = Field(default="", max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=200)


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class AddressBody(BaseModel):
    address: dict[str, Any]


class ShipBody(BaseModel):
    carrier: str = Field(max_length=64)
    tracking_no: str = Field(max_length=64)


class RedeemBody(BaseModel):
    code: str | None = Field(default=None, max_length=200)
    grant_id: str | None = Field(default=None, max_length=40)
    order_id: str = Field(min_length=1, max_length=128)
    order_amount: float = Field(default=0, ge=0)


class PointsBody(BaseModel):
    points: int
    source: str = Field(default="manual", min_length=1, max_length=64)
    ref: str = Field(default="", max_length=200)
    key: str | None = Field(default=None, max_length=200)
    note: str = Field(default="", max_length=500)
    valid_days: int | None = 365


class ActivityBody(BaseModel):
    id: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    config: dict[str, Any]
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class StatusBody(BaseModel):
    status: str = Field(max_length=16)


class CustomerBody(BaseModel):
    customer_id: str = Field(min_length=1, max_length=128)


class MakeUpBody(CustomerBody):
    day: str = Field(max_length=10)


class AnswersBody(CustomerBody):
    answers: dict[str, int] = Field(max_length=50)


class RecomputeBody(BaseModel):
    customer_ids: list[str] | None = Field(default=None, max_length=10_000)


# ---- rewards -------------------------------------------------------------------------------------------------


@router.get("/api/rewards")
def list_rewards(
    kind: str | None = None,
    status: str | None = None,
    limit: int = 100,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The brand's rewards (stock left, cost spent, granted), newest first."""
    return {"items": rewards.list_rewards(ctx, user.brand_id, kind, status, limit)}


@router.post("/api/rewards", status_code=201)
def create_reward(body: RewardBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Create a reward (coupon / points / physical / virtual); errors name the field (``config.face_value``)."""
    data = body.model_dump(exclude_none=True)
    data.setdefault("stock", None)
    return rewards.create_reward(ctx, user.brand_id, data, created_by=user.username)


@router.get("/api/rewards/grants")
def list_grants(
    reward_id: str | None = None,
    customer_id: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    source: str | None = None,
    source_ref: str | None = None,
    limit: int = 100,
    offset: int = 0,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Grants, newest first (a guide sees their own customers' only); shipping addresses masked."""
    found = rewards.list_grants(
        ctx,
        user.brand_id,
        reward_id=reward_id,
        customer_id=customer_id,
        customer_ids=_scope_ids(ctx, user),
        kind=kind,
        status=status,
        source=source,
        source_ref=source_ref,
        limit=limit,
        offset=offset,
    )
    return {**found, "items": pii.masked_rows(ctx, user, found["items"], False, "grants")}


@router.get("/api/rewards/fulfilment")
def fulfilment(
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    pii_mode: PiiMode = "masked",
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Physical gifts to fulfil: awaiting_address → to_ship → shipped (filter with ``status``). Addresses are
    masked; ``pii=clear`` (admins; operators when the brand allows; guides for their own customers) is audited."""
    found = rewards.list_grants(
        ctx,
        user.brand_id,
        kind="physical",
        status=status,
        customer_ids=_scope_ids(ctx, user),
        limit=limit,
        offset=offset,
    )
    return masked_page(ctx, user, found, pii_mode, "fulfilment")


@router.get("/api/rewards/cost")
def cost(
    source: str, source_ref: str | None = None, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Reward cost of a source (e.g. a campaign) for ROI; clawed-back grants excluded."""
    return {
        "source": source,
        "source_ref": source_ref,
        "cost": rewards.reward_cost(ctx, user.brand_id, source, source_ref),
    }


@router.post("/api/rewards/redeem")
def redeem(body: RedeemBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Use a coupon on an order (checks status, expiry and minimum spend)."""
    return rewards.redeem(
        ctx,
        user.brand_id,
        code=body.code,
        grant_id=body.grant_id,
        order_id=body.order_id,
        order_amount=body.order_amount,
    )


@router.get("/api/rewards/grants/{grant_id}")
def show_grant(grant_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One grant (its shipping address masked)."""
    return pii.masked_rows(ctx, user, [_own_grant(ctx, user, grant_id)], False, "grant")[0]


@router.post("/api/rewards/grants/{grant_id}/claw-back")
def claw_back(
    grant_id: str, body: Reason, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Take a grant back (unused coupon voided, points reversed, unshipped gift cancelled)."""
    return rewards.claw_back(ctx, user.brand_id, grant_id, body.reason)


@router.post("/api/rewards/grants/{grant_id}/address")
def set_address(
    grant_id: str, body: AddressBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Record the shipping address of a physical gift (a guide may do it for their own customer)."""
    _own_grant(ctx, user, grant_id)
    return rewards.set_address(ctx, user.brand_id, grant_id, body.address)


@router.post("/api/rewards/grants/{grant_id}/ship")
def ship(
    grant_id: str, body: ShipBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Mark a physical gift shipped with the courier and tracking number."""
    return rewards.mark_shipped(ctx, user.brand_id, grant_id, body.carrier, body.tracking_no)


@router.get("/api/rewards/{reward_id}")
def show_reward(reward_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One reward."""
    return rewards.require_reward(ctx, user.brand_id, reward_id)


@router.patch("/api/rewards/{reward_id}")
def update_reward(
    reward_id: str, changes: dict[str, Any], user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Change name, unit_cost, budget, valid_until, status (active / inactive) or config."""
    return rewards.update_reward(ctx, user.brand_id, reward_id, changes)


@router.delete("/api/rewards/{reward_id}", status_code=204)
def delete_reward(reward_id: str, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)) -> None:
    """Hide a reward (its grants stay)."""
    rewards.delete_reward(ctx, user.brand_id, reward_id)


@router.post("/api/rewards/{reward_id}/top-up")
def top_up(
    reward_id: str, body: TopUp, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Add stock."""
    return rewards.top_up(ctx, user.brand_id, reward_id, body.amount)


@router.post("/api/rewards/{reward_id}/codes")
def add_codes(
    reward_id: str, body: Codes, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Add codes to a code-list reward (stock grows with them)."""
    return rewards.add_codes(ctx, user.brand_id, reward_id, body.codes)


@router.post("/api/rewards/{reward_id}/grant", status_code=201)
def grant(
    reward_id: str, body: GrantBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Grant one unit to a customer (idempotent on ``idempotency_key``); 409 when out of stock / budget."""
    cid = resolve_customer(ctx, user, body.customer_id)
    return rewards.grant(
        ctx,
        user.brand_id,
        reward_id,
        cid,
        source=body.source,
        source_ref=body.source_ref,
        idempotency_key=body.idempotency_key,
    )


# ---- points --------------------------------------------------------------------------------------------------


@router.post("/api/points/expire")
def expire(user: User = Depends(_editor), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Expire every lot past its date now (the scheduler does it too)."""
    return {"expired": points.expire_due(ctx, user.brand_id)}


@router.get("/api/points/{customer_id}")
def balance(customer_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The customer's balance, points earned and points expiring within 30 days."""
    cid = resolve_customer(ctx, user, customer_id)
    return points.balance(ctx, user.brand_id, cid)


@router.get("/api/points/{customer_id}/ledger")
def ledger(
    customer_id: str,
    limit: int = 100,
    before_id: int | None = Query(None, le=MAX_ID),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The customer's ledger, newest first (every entry with its source and ref)."""
    cid = resolve_customer(ctx, user, customer_id)
    return {"items": points.ledger(ctx, user.brand_id, cid, limit, before_id)}


@router.post("/api/points/{customer_id}/earn", status_code=201)
def earn(
    customer_id: str, body: PointsBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Credit points (a lot expiring ``valid_days`` later)."""
    cid = resolve_customer(ctx, user, customer_id)
    return points.earn(
        ctx,
        user.brand_id,
        cid,
        body.points,
        source=body.source,
        ref=body.ref,
        valid_days=body.valid_days,
        key=body.key,
        note=body.note,
    )


@router.post("/api/points/{customer_id}/spend", status_code=201)
def spend(
    customer_id: str, body: PointsBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Debit points FIFO by lot; 409 when the balance is short."""
    cid = resolve_customer(ctx, user, customer_id)
    return points.spend(
        ctx, user.brand_id, cid, body.points, source=body.source, ref=body.ref, key=body.key, note=body.note
    )


# ---- engagement ----------------------------------------------------------------------------------------------


@router.get("/api/engagement/activities")
def list_activities(
    kind: str | None = None, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Lotteries, check-ins and quizzes."""
    return {"items": engagement.list_activities(ctx, user.brand_id, kind)}


@router.post("/api/engagement/activities", status_code=201)
def create_activity(
    body: ActivityBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Create a lottery / check-in / quiz (its rewards must exist)."""
    return engagement.create_activity(
        ctx,
        user.brand_id,
        body.kind,
        body.name,
        body.config,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        activity_id=body.id,
        created_by=user.username,
    )


@router.get("/api/engagement/activities/{activity_id}")
def show_activity(
    activity_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """One activity (with its full config)."""
    return engagement.get_activity(ctx, user.brand_id, activity_id)


@router.post("/api/engagement/activities/{activity_id}/status")
def activity_status(
    activity_id: str, body: StatusBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Pause / resume (active) / end."""
    return engagement.set_status(ctx, user.brand_id, activity_id, body.status)


@router.get("/api/engagement/activities/{activity_id}/stats")
def lottery_stats(activity_id: str, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """A lottery's draws by outcome and prize, configured odds next to observed shares."""
    return engagement.lottery_stats(ctx, user.brand_id, activity_id)


@router.post("/api/engagement/activities/{activity_id}/draw")
def draw(
    activity_id: str, body: CustomerBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Draw for a customer (429 past the daily limit)."""
    cid = resolve_customer(ctx, user, body.customer_id)
    return engagement.draw(ctx, user.brand_id, activity_id, cid)


@router.post("/api/engagement/activities/{activity_id}/checkin")
def check_in(
    activity_id: str, body: CustomerBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Check a customer in today (409 when already checked in)."""
    cid = resolve_customer(ctx, user, body.customer_id)
    return engagement.check_in(ctx, user.brand_id, activity_id, cid)


@router.post("/api/engagement/activities/{activity_id}/makeup")
def make_up(
    activity_id: str, body: MakeUpBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Fill a missed day with a make-up card."""
    cid = resolve_customer(ctx, user, body.customer_id)
    return engagement.make_up(ctx, user.brand_id, activity_id, cid, body.day)


@router.get("/api/engagement/activities/{activity_id}/checkin/{customer_id}")
def checkin_status(
    activity_id: str, customer_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """A customer's streak and this month's check-ins."""
    cid = resolve_customer(ctx, user, customer_id)
    return engagement.checkin_status(ctx, user.brand_id, activity_id, cid)


@router.get("/api/engagement/activities/{activity_id}/quiz")
def quiz(activity_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The quiz as a participant sees it (no answers)."""
    return engagement.quiz_questions(ctx, user.brand_id, activity_id)


@router.post("/api/engagement/activities/{activity_id}/answers")
def answers(
    activity_id: str, body: AnswersBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Submit a customer's answers (one attempt a day); points for each right answer."""
    cid = resolve_customer(ctx, user, body.customer_id)
    return engagement.submit(ctx, user.brand_id, activity_id, cid, body.answers)


@router.get("/api/engagement/tiers")
def tiers(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The tier scheme and members per tier."""
    scheme = engagement.get_scheme(ctx, user.brand_id)
    return {
        "scheme": scheme.model_dump(mode="json") if scheme else None,
        "counts": engagement.tier_counts(ctx, user.brand_id) if user.role != Role.GUIDE else None,
    }


@router.put("/api/engagement/tiers/scheme")
def set_scheme(
    scheme: dict[str, Any], user: User = Depends(_editor), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Save the member tier scheme."""
    return engagement.set_scheme(ctx, user.brand_id, scheme)


@router.post("/api/engagement/tiers/recompute")
def recompute(body: RecomputeBody, user: User = Depends(_editor), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Recompute member tiers now."""
    return engagement.recompute(ctx, user.brand_id, body.customer_ids)


@router.get("/api/engagement/tiers/{customer_id}")
def tier_of(customer_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """A customer's tier (404 when never computed)."""
    cid = resolve_customer(ctx, user, customer_id)
    found = engagement.tier_of(ctx, user.brand_id, cid)
    if found is None:
        raise NotFound(f"{customer_id} has no tier yet; recompute tiers", "customer_id")
    return found
