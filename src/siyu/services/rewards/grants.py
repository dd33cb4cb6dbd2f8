"""Granting rewards: the atomic stock decrement, idempotency, claw-back, coupon redemption (with ``on_redeem``
hooks), physical-gift fulfilment (address, shipping) and the cost per source for campaign ROI.

Never oversells: the first statement of a grant's transaction is the conditional
``UPDATE rewards SET stock_left = stock_left - 1 ... WHERE stock_left > 0 AND status = 'active' AND <budget
holds> AND <not expired>``; when it changes no row the reward is unavailable, and the code claim / points lot /
grant row are written in the same transaction. A unique key on ``(brand_id, idempotency_key)`` makes a retry
return the first grant (a racing duplicate rolls back, decrement included).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.domain.rewards import check_redeem, expiry, generate_code, parse_address
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.rewards import points as points_ledger
from siyu.services.rewards.catalog import uses_code_list
from siyu.stores.state.engagement_models import PointsEntryRow, RewardCodeRow, RewardGrantRow, RewardRow
from siyu.stores.state.models import utcnow

MAX_PAGE = 500
COST_EPS = 1e-9


class RewardUnavailable(Conflict):
    """The reward cannot be granted now; ``reason`` is out_of_stock | budget | inactive | expired | not_found."""

    def __init__(self, reward_id: str, reason: str, message: str) -> None:
        super().__init__(message, "reward_id")
        self.reward_id = reward_id
        self.reason = reason


RedeemHook = Callable[[Context, dict[str, Any]], None]
_redeem_hooks: list[RedeemHook] = []


def on_redeem(hook: RedeemHook) -> RedeemHook:
    """Register ``hook(ctx, grant_dict)`` to run after a coupon is redeemed (after the commit; a failing hook
    is logged, never undoes the redemption). Usable as a decorator. The grant dict carries ``source``,
    ``source_ref``, ``customer_id`` and ``order_id`` — e.g. the campaign core pays the giver's bonus when a gifted
    coupon is used."""
    if hook not in _redeem_hooks:
        _redeem_hooks.append(hook)
    return hook


def remove_redeem_hook(hook: RedeemHook) -> None:
    """Unregister a hook added with ``on_redeem``."""
    if hook in _redeem_hooks:
        _redeem_hooks.remove(hook)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def grant_dict(row: RewardGrantRow, now: datetime | None = None) -> dict[str, Any]:
    """A grant as JSON; an unused coupon past its date shows ``status`` expired."""
    status = row.status
    if status == "issued" and row.expires_at is not None and row.expires_at <= (now or utcnow()):
        status = "expired"
    return {
        "id": row.id,
        "grant_id": row.id,
        "reward_id": row.reward_id,
        "kind": row.kind,
        "customer_id": row.customer_id,
        "status": status,
        "cost": row.cost,
        "code": row.code or None,
        "value": row.value,
        "expires_at": _iso(row.expires_at),
        "source": row.source,
        "source_ref": row.source_ref,
        "idempotency_key": row.idempotency_key,
        "address": row.address,
        "shipping_carrier": row.shipping_carrier,
        "tracking_no": row.tracking_no,
        "order_id": row.order_id,
        "reason": row.reason,
        "created_at": _iso(row.created_at),
        "redeemed_at": _iso(row.redeemed_at),
        "shipped_at": _iso(row.shipped_at),
        "clawed_back_at": _iso(row.clawed_back_at),
    }


def _by_key(ctx: Context, brand_id: str, key: str) -> RewardGrantRow | None:
    with ctx.sessions() as s:
        return s.scalars(
            select(RewardGrantRow).where(RewardGrantRow.brand_id == brand_id, RewardGrantRow.idempotency_key == key)
        ).first()


def _same(row: RewardGrantRow, reward_id: str, customer_id: str) -> dict[str, Any]:
    if row.reward_id != reward_id or row.customer_id != customer_id:
        raise Conflict(
            f"idempotency_key {row.idempotency_key!r} was already used for reward {row.reward_id!r} to "
            f"{row.customer_id!r}; use a new key for another grant",
            "idempotency_key",
        )
    return grant_dict(row)


def _why(s: Session, brand_id: str, reward_id: str, now: datetime) -> RewardUnavailable:
    return why_unavailable(s.get(RewardRow, reward_id, populate_existing=True), brand_id, reward_id, now)


def why_unavailable(row: Any, brand_id: str, reward_id: str, now: datetime) -> RewardUnavailable:
    """Why the conditional stock decrement changed no row, from the reward as it is now (an ORM row or a Core row
    with the same column names; None = not found)."""
    if row is None or row.brand_id != brand_id or row.status == "deleted":
        return RewardUnavailable(reward_id, "not_found", f"reward {reward_id!r} does not exist")
    name = f"reward {reward_id!r} ({row.name})"
    if row.status != "active":
        return RewardUnavailable(reward_id, "inactive", f"{name} is not active; activate it to grant it")
    if row.valid_until is not None and row.valid_until <= now:
        return RewardUnavailable(reward_id, "expired", f"{name} expired on {row.valid_until:%Y-%m-%d %H:%M} UTC")
    if row.stock_left is not None and row.stock_left <= 0:
        return RewardUnavailable(reward_id, "out_of_stock", f"{name} is out of stock; top up its stock")
    if row.budget is not None and row.cost_spent + row.unit_cost > row.budget + COST_EPS:
        return RewardUnavailable(
            reward_id, "budget", f"{name} has used its budget ({row.cost_spent:g} of {row.budget:g}); raise it"
        )
    return RewardUnavailable(reward_id, "out_of_stock", f"{name} has no code left to hand out; add codes")


def _claim_code(s: Session, reward_id: str, grant_id: str) -> str | None:
    """Take the next free code of the pool for this grant (None when the pool is empty)."""
    for _ in range(5):
        free = s.scalar(
            select(func.min(RewardCodeRow.id)).where(
                RewardCodeRow.reward_id == reward_id, RewardCodeRow.grant_id.is_(None)
            )
        )
        if free is None:
            return None
        res = s.execute(
            update(RewardCodeRow)
            .where(RewardCodeRow.id == free, RewardCodeRow.grant_id.is_(None))
            .values(grant_id=grant_id)
        )
        if getattr(res, "rowcount", 0) == 1:
            return s.scalar(select(RewardCodeRow.code).where(RewardCodeRow.id == free))
    return None


def grant(
    ctx: Context,
    brand_id: str,
    reward_id: str,
    customer_id: str,
    *,
    source: str,
    source_ref: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Issue one unit of a reward to a customer; returns the grant (``grant_id``, ``reward_id``, ``status``,
    ``cost``, ``code``, ``value``, ``expires_at``).

    Atomic and never oversells; the same ``idempotency_key`` returns the same grant without a second decrement.
    Raises RewardUnavailable (HTTP 409) naming the reward and why: out of stock, budget, inactive, expired.
    Status after the grant: coupon / points / virtual ``issued``, physical ``awaiting_address``."""
    for name, given, limit in (
        ("customer_id", customer_id, 128),
        ("source", source, 64),
        ("idempotency_key", idempotency_key, 200),
    ):
        if not given or len(given) > limit:
            raise SiyuError(f"{name} must be 1-{limit} characters", name)
    if len(source_ref or "") > 200:
        raise SiyuError("source_ref: at most 200 characters", "source_ref")
    found = _by_key(ctx, brand_id, idempotency_key)
    if found is not None:
        return _same(found, reward_id, customer_id)
    now = now or utcnow()
    gid = "gr_" + secrets.token_hex(8)
    with ctx.sessions() as s:
        res = s.execute(
            update(RewardRow)
            .where(
                RewardRow.id == reward_id,
                RewardRow.brand_id == brand_id,
                RewardRow.status == "active",
                or_(RewardRow.stock_left.is_(None), RewardRow.stock_left > 0),
                or_(
                    RewardRow.budget.is_(None),
                    RewardRow.cost_spent + RewardRow.unit_cost <= RewardRow.budget + COST_EPS,
                ),
                or_(RewardRow.valid_until.is_(None), RewardRow.valid_until > now),
            )
            .values(
                stock_left=RewardRow.stock_left - 1,
                cost_spent=RewardRow.cost_spent + RewardRow.unit_cost,
                granted=RewardRow.granted + 1,
                updated_at=now,
            )
        )
        if getattr(res, "rowcount", 0) != 1:
            err = _why(s, brand_id, reward_id, now)
            s.rollback()
            raise err
        reward = s.get(RewardRow, reward_id, populate_existing=True)
        assert reward is not None
        config = dict(reward.config or {})
        code = ""
        value: dict[str, Any] = {}
        status = "issued"
        if uses_code_list(reward):
            claimed = _claim_code(s, reward_id, gid)
            if claimed is None:
                s.rollback()
                raise RewardUnavailable(
                    reward_id, "out_of_stock", f"reward {reward_id!r} ({reward.name}) has no code left; add codes"
                )
            code = claimed
        elif reward.kind == "coupon":
            code = generate_code(str(config.get("code_prefix") or "C"))
        if reward.kind == "coupon":
            value = {"face_value": config.get("face_value"), "min_spend": config.get("min_spend", 0)}
        elif reward.kind == "virtual":
            value = {"link": config.get("link", "")}
        elif reward.kind == "physical":
            status = "awaiting_address"
            value = {"sku": config.get("sku", ""), "description": config.get("description", "")}
        elif reward.kind == "points":
            pts = int(config["points"])
            lot = points_ledger.earn_in(
                s,
                brand_id,
                customer_id,
                pts,
                source=f"reward:{source}"[:64],
                ref=gid,
                valid_days=int(config.get("valid_days") or 365),
                now=now,
            )
            value = {"points": pts, "lot": lot.id}
        row = RewardGrantRow(
            id=gid,
            brand_id=brand_id,
            reward_id=reward_id,
            kind=reward.kind,
            customer_id=customer_id,
            source=source,
            source_ref=source_ref or "",
            idempotency_key=idempotency_key,
            status=status,
            cost=reward.unit_cost,
            code=code,
            value=value,
            expires_at=expiry(reward.kind, config, now),
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            again = _by_key(ctx, brand_id, idempotency_key)
            if again is None:
                raise
            return _same(again, reward_id, customer_id)
        return grant_dict(row, now)


def _grant_row(s: Session, brand_id: str, grant_id: str) -> RewardGrantRow:
    row = s.get(RewardGrantRow, grant_id, populate_existing=True)
    if row is None or row.brand_id != brand_id:
        raise NotFound(f"grant {grant_id!r} not found", "grant_id")
    return row


def get_grant(ctx: Context, brand_id: str, grant_id: str) -> dict[str, Any]:
    """One grant, or NotFound."""
    with ctx.sessions() as s:
        return grant_dict(_grant_row(s, brand_id, grant_id))


CLAWABLE = ("issued", "awaiting_address", "to_ship")


def claw_back(ctx: Context, brand_id: str, grant_id: str, reason: str, now: datetime | None = None) -> dict[str, Any]:
    """Take a grant back: an unused coupon / virtual code is voided, points are reversed (from the balance; if
    they were spent already this fails), a physical gift not shipped yet is cancelled. Stock (and the cost) is
    returned unless the reward hands out codes from a list (a voided code is never reissued). A redeemed
    coupon or a shipped gift cannot be clawed back (Conflict). Clawing back twice returns the same result."""
    if not reason or len(reason) > 500:
        raise SiyuError("reason: say why (1-500 characters)", "reason")
    now = now or utcnow()
    with ctx.sessions() as s:
        row = _grant_row(s, brand_id, grant_id)
        if row.status == "clawed_back":
            return grant_dict(row, now)
        if row.status not in CLAWABLE:
            what = {"redeemed": "a coupon already used", "shipped": "a gift already shipped"}.get(
                row.status, row.status
            )
            raise Conflict(f"grant {grant_id!r} cannot be clawed back: it is {what}", "grant_id")
        res = s.execute(
            update(RewardGrantRow)
            .where(RewardGrantRow.id == grant_id, RewardGrantRow.status == row.status)
            .values(status="clawed_back", reason=reason, clawed_back_at=now, updated_at=now)
        )
        if getattr(res, "rowcount", 0) != 1:
            s.rollback()
            again = get_grant(ctx, brand_id, grant_id)
            if again["status"] == "clawed_back":
                return again
            raise Conflict(f"grant {grant_id!r} cannot be clawed back: it is {again['status']} now", "grant_id")
        if row.kind == "points":
            pts = int(row.value.get("points") or 0)
            try:
                points_ledger.debit_in(
                    s,
                    brand_id,
                    row.customer_id,
                    pts,
                    kind="reverse",
                    source="clawback",
                    ref=grant_id,
                    note=reason[:200],
                    first_lot=row.value.get("lot"),
                    now=now,
                )
            except SiyuError as exc:
                s.rollback()
                raise Conflict(
                    f"grant {grant_id!r} cannot be clawed back: {exc.message} (the points were spent)", "grant_id"
                ) from None
        reward = s.get(RewardRow, row.reward_id)
        if reward is not None:
            values: dict[str, Any] = {"cost_spent": RewardRow.cost_spent - row.cost, "updated_at": now}
            if reward.return_stock and reward.stock_left is not None:
                values["stock_left"] = RewardRow.stock_left + 1
            s.execute(update(RewardRow).where(RewardRow.id == row.reward_id).values(**values))
        s.commit()
        return grant_dict(_grant_row(s, brand_id, grant_id), now)


def redeem(
    ctx: Context,
    brand_id: str,
    *,
    order_id: str,
    code: str | None = None,
    grant_id: str | None = None,
    order_amount: float = 0.0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Use a coupon (by ``code`` or ``grant_id``) on an order; checks it is issued, not expired and that the
    order reaches its minimum spend. Runs the ``on_redeem`` hooks after the commit. Redeeming again with the
    same order id returns the grant; with another order it is a Conflict."""
    if not order_id or len(order_id) > 128:
        raise SiyuError("order_id must be 1-128 characters", "order_id")
    now = now or utcnow()
    with ctx.sessions() as s:
        q = select(RewardGrantRow).where(RewardGrantRow.brand_id == brand_id, RewardGrantRow.kind == "coupon")
        if grant_id:
            q = q.where(RewardGrantRow.id == grant_id)
        elif code:
            q = q.where(RewardGrantRow.code == code)
        else:
            raise SiyuError("give the coupon's code or grant_id", "code")
        row = s.scalars(q.order_by(RewardGrantRow.created_at.desc())).first()
        if row is None:
            raise NotFound(f"coupon {code or grant_id!r} not found", "code" if code else "grant_id")
        if row.status == "redeemed":
            if row.order_id == order_id:
                return grant_dict(row, now)
            raise Conflict(f"coupon {row.code} was already used on order {row.order_id}", "code")
        if row.status != "issued":
            raise Conflict(f"coupon {row.code} cannot be used: it is {row.status}", "code")
        if row.expires_at is not None and row.expires_at <= now:
            raise Conflict(f"coupon {row.code} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC", "code")
        check_redeem(row.value, order_amount)
        res = s.execute(
            update(RewardGrantRow)
            .where(RewardGrantRow.id == row.id, RewardGrantRow.status == "issued")
            .values(status="redeemed", order_id=order_id, redeemed_at=now, updated_at=now)
        )
        if getattr(res, "rowcount", 0) != 1:
            s.rollback()
            raise Conflict(f"coupon {row.code} was used or clawed back at the same moment; look at it again", "code")
        s.commit()
        out = grant_dict(_grant_row(s, brand_id, row.id), now)
    for hook in list(_redeem_hooks):
        try:
            hook(ctx, out)
        except Exception:  # a hook's failure must not undo the redemption
            logging.getLogger(__name__).exception("on_redeem hook %r failed for grant %s", hook, out["grant_id"])
    return out


def set_address(ctx: Context, brand_id: str, grant_id: str, address: dict[str, Any]) -> dict[str, Any]:
    """Record (or correct) the shipping address of a physical gift not shipped yet → status to_ship."""
    addr = parse_address(address)
    now = utcnow()
    with ctx.sessions() as s:
        row = _grant_row(s, brand_id, grant_id)
        if row.kind != "physical":
            raise Conflict(f"grant {grant_id!r} is a {row.kind}, not a physical gift; it needs no address", "grant_id")
        if row.status not in ("awaiting_address", "to_ship"):
            raise Conflict(f"grant {grant_id!r} is {row.status}; its address can no longer change", "grant_id")
        res = s.execute(
            update(RewardGrantRow)
            .where(RewardGrantRow.id == grant_id, RewardGrantRow.status.in_(("awaiting_address", "to_ship")))
            .values(address=addr.model_dump(), status="to_ship", updated_at=now)
        )
        if getattr(res, "rowcount", 0) != 1:
            s.rollback()
            raise Conflict(f"grant {grant_id!r} changed at the same moment; look at it again", "grant_id")
        s.commit()
        return grant_dict(_grant_row(s, brand_id, grant_id))


def mark_shipped(ctx: Context, brand_id: str, grant_id: str, carrier: str, tracking_no: str) -> dict[str, Any]:
    """A physical gift with an address was shipped: carrier + tracking number → status shipped."""
    if not carrier or len(carrier) > 64:
        raise SiyuError("carrier: the courier's name (1-64 characters), e.g. 顺丰", "carrier")
    if not tracking_no or len(tracking_no) > 64 or not tracking_no.replace("-", "").isalnum():
        raise SiyuError("tracking_no: the tracking number (letters and digits, up to 64)", "tracking_no")
    now = utcnow()
    with ctx.sessions() as s:
        row = _grant_row(s, brand_id, grant_id)
        if row.kind != "physical":
            raise Conflict(f"grant {grant_id!r} is a {row.kind}, not a physical gift", "grant_id")
        if row.status == "awaiting_address":
            raise Conflict(f"grant {grant_id!r} has no address yet; it cannot be shipped", "grant_id")
        if row.status != "to_ship":
            raise Conflict(f"grant {grant_id!r} is {row.status}; only a gift to ship can be shipped", "grant_id")
        res = s.execute(
            update(RewardGrantRow)
            .where(RewardGrantRow.id == grant_id, RewardGrantRow.status == "to_ship")
            .values(status="shipped", shipping_carrier=carrier, tracking_no=tracking_no, shipped_at=now, updated_at=now)
        )
        if getattr(res, "rowcount", 0) != 1:
            s.rollback()
            raise Conflict(f"grant {grant_id!r} changed at the same moment; look at it again", "grant_id")
        s.commit()
        return grant_dict(_grant_row(s, brand_id, grant_id))


def list_grants(
    ctx: Context,
    brand_id: str,
    *,
    reward_id: str | None = None,
    customer_id: str | None = None,
    customer_ids: set[str] | None = None,
    kind: str | None = None,
    status: str | None = None,
    source: str | None = None,
    source_ref: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Grants, newest first, filtered; ``customer_ids`` restricts to a set (a guide's customers). The
    fulfilment list is ``kind='physical'`` with status awaiting_address / to_ship / shipped."""
    if not 1 <= limit <= MAX_PAGE:
        raise SiyuError(f"limit must be between 1 and {MAX_PAGE}", "limit")
    if offset < 0:
        raise SiyuError("offset must be 0 or more", "offset")
    q = select(RewardGrantRow).where(RewardGrantRow.brand_id == brand_id)
    for col, val in (
        (RewardGrantRow.reward_id, reward_id),
        (RewardGrantRow.customer_id, customer_id),
        (RewardGrantRow.kind, kind),
        (RewardGrantRow.status, status),
        (RewardGrantRow.source, source),
        (RewardGrantRow.source_ref, source_ref),
    ):
        if val:
            q = q.where(col == val)
    if customer_ids is not None:
        q = q.where(RewardGrantRow.customer_id.in_(sorted(customer_ids)))
    with ctx.sessions() as s:
        total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = s.scalars(q.order_by(RewardGrantRow.created_at.desc(), RewardGrantRow.id).limit(limit).offset(offset))
        return {"items": [grant_dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def reward_cost(ctx: Context, brand_id: str, source: str, source_ref: str | None = None) -> float:
    """Total cost of the grants made for a source (and ref), clawed-back grants excluded — for campaign ROI.
    A ref matches itself and its sub-refs: ``campaign1`` counts ``campaign1:participant7`` too."""
    q = select(func.coalesce(func.sum(RewardGrantRow.cost), 0.0)).where(
        RewardGrantRow.brand_id == brand_id,
        RewardGrantRow.source == source,
        RewardGrantRow.status != "clawed_back",
    )
    if source_ref is not None:
        escaped = source_ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(
            or_(RewardGrantRow.source_ref == source_ref, RewardGrantRow.source_ref.like(escaped + ":%", escape="\\"))
        )
    with ctx.sessions() as s:
        return float(s.scalar(q) or 0.0)


def points_lot_of(ctx: Context, brand_id: str, grant_id: str) -> dict[str, Any] | None:
    """The points lot a points grant created (None for other kinds)."""
    with ctx.sessions() as s:
        row = _grant_row(s, brand_id, grant_id)
        lot = row.value.get("lot") if row.kind == "points" else None
        entry = s.get(PointsEntryRow, lot) if lot else None
        return points_ledger.entry_dict(entry) if entry is not None else None
