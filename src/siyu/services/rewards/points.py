"""The points ledger: earn (a lot with an expiry date), spend (FIFO over lots, earliest expiry first), expire,
reverse. The balance is the sum of the ledger; every entry carries its source and ref.

Concurrency: every write first updates the customer's ``points_accounts`` row (a conditional UPDATE for
debits), which takes the write lock (SQLite) / the row lock (PostgreSQL) before anything is read, so two
spends never both see the same balance and the balance never goes negative.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.domain.engagement.points import Lot, take_fifo
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.journeys.entries import insert_ignore
from siyu.stores.state.engagement_models import PointsAccountRow, PointsEntryRow
from siyu.stores.state.models import utcnow

MAX_POINTS = 10_000_000
MAX_PAGE = 500


class InsufficientPoints(Conflict):
    """A debit larger than the balance."""


def _check(points: int, source: str, ref: str) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= MAX_POINTS:
        raise SiyuError(f"points must be a whole number between 1 and {MAX_POINTS} (got {points!r})", "points")
    if not source or len(source) > 64:
        raise SiyuError("source: say where the points come from / go to (1-64 characters)", "source")
    if len(ref) > 200:
        raise SiyuError("ref: at most 200 characters", "ref")


def entry_dict(row: PointsEntryRow) -> dict[str, Any]:
    """A ledger entry as JSON."""
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "kind": row.kind,
        "delta": row.delta,
        "remaining": row.remaining if row.kind == "earn" else None,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "lots": row.lots,
        "source": row.source,
        "ref": row.ref,
        "key": row.key,
        "note": row.note,
        "created_at": row.created_at.isoformat(),
    }


def _lock_account(s: Session, brand_id: str, customer_id: str, now: datetime) -> PointsAccountRow:
    """Take the account's lock (first statement of the transaction) and return it, creating it if needed."""
    row = {"brand_id": brand_id, "customer_id": customer_id, "balance": 0, "earned_total": 0, "updated_at": now}
    insert_ignore(s, PointsAccountRow.__table__, [row])  # type: ignore[arg-type]
    s.execute(
        update(PointsAccountRow)
        .where(PointsAccountRow.brand_id == brand_id, PointsAccountRow.customer_id == customer_id)
        .values(updated_at=now)
    )
    acc = s.get(PointsAccountRow, (brand_id, customer_id), populate_existing=True)
    assert acc is not None
    return acc


def _expire(s: Session, acc: PointsAccountRow, now: datetime) -> int:
    """Write an expire entry for each lot past its date with points left; returns the points expired."""
    lots = s.scalars(
        select(PointsEntryRow).where(
            PointsEntryRow.brand_id == acc.brand_id,
            PointsEntryRow.customer_id == acc.customer_id,
            PointsEntryRow.kind == "earn",
            PointsEntryRow.remaining > 0,
            PointsEntryRow.expires_at.is_not(None),
            PointsEntryRow.expires_at <= now,
        )
    ).all()
    total = 0
    for lot in lots:
        total += lot.remaining
        s.add(
            PointsEntryRow(
                brand_id=acc.brand_id,
                customer_id=acc.customer_id,
                kind="expire",
                delta=-lot.remaining,
                remaining=0,
                lots=[{"lot": lot.id, "points": lot.remaining}],
                source="expiry",
                ref=str(lot.id),
                created_at=now,
            )
        )
        lot.remaining = 0
    acc.balance -= total
    return total


def earn_in(
    s: Session,
    brand_id: str,
    customer_id: str,
    points: int,
    *,
    source: str,
    ref: str = "",
    valid_days: int | None = 365,
    key: str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> PointsEntryRow:
    """Credit a lot inside the caller's transaction (used by reward grants so both commit together)."""
    _check(points, source, ref)
    now = now or utcnow()
    acc = _lock_account(s, brand_id, customer_id, now)
    _expire(s, acc, now)
    row = PointsEntryRow(
        brand_id=brand_id,
        customer_id=customer_id,
        kind="earn",
        delta=points,
        remaining=points,
        expires_at=now + timedelta(days=valid_days) if valid_days else None,
        lots=[],
        source=source,
        ref=ref,
        key=key,
        note=note,
        created_at=now,
    )
    s.add(row)
    acc.balance += points
    acc.earned_total += points
    s.flush()
    return row


def debit_in(
    s: Session,
    brand_id: str,
    customer_id: str,
    points: int,
    *,
    kind: str,
    source: str,
    ref: str = "",
    key: str | None = None,
    note: str = "",
    first_lot: int | None = None,
    now: datetime | None = None,
) -> PointsEntryRow:
    """Debit (``kind`` spend | reverse) inside the caller's transaction: FIFO over the lots (``first_lot``
    taken first when given, e.g. the lot a reversed grant created). Raises InsufficientPoints."""
    _check(points, source, ref)
    now = now or utcnow()
    acc = _lock_account(s, brand_id, customer_id, now)
    _expire(s, acc, now)
    if acc.balance < points:
        raise InsufficientPoints(
            f"points: {customer_id} has {acc.balance} points, fewer than the {points} asked for", "points"
        )
    rows = s.scalars(
        select(PointsEntryRow).where(
            PointsEntryRow.brand_id == brand_id,
            PointsEntryRow.customer_id == customer_id,
            PointsEntryRow.kind == "earn",
            PointsEntryRow.remaining > 0,
        )
    ).all()
    by_id = {r.id: r for r in rows}
    lots = [Lot(r.id, r.remaining, r.expires_at) for r in rows]
    taken = take_fifo(lots, points, first=first_lot)
    for lot_id, n in taken:
        by_id[lot_id].remaining -= n
    row = PointsEntryRow(
        brand_id=brand_id,
        customer_id=customer_id,
        kind=kind,
        delta=-points,
        remaining=0,
        lots=[{"lot": lot_id, "points": n} for lot_id, n in taken],
        source=source,
        ref=ref,
        key=key,
        note=note,
        created_at=now,
    )
    s.add(row)
    acc.balance -= points
    s.flush()
    return row


def _by_key(ctx: Context, brand_id: str, key: str) -> PointsEntryRow | None:
    with ctx.sessions() as s:
        return s.scalars(
            select(PointsEntryRow).where(PointsEntryRow.brand_id == brand_id, PointsEntryRow.key == key)
        ).first()


def _write(ctx: Context, brand_id: str, key: str | None, fn: Any) -> dict[str, Any]:
    if key:
        if len(key) > 200:
            raise SiyuError("key: at most 200 characters", "key")
        found = _by_key(ctx, brand_id, key)
        if found is not None:
            return entry_dict(found)
    with ctx.sessions() as s:
        try:
            row = fn(s)
            s.commit()
        except IntegrityError:
            s.rollback()
            found = _by_key(ctx, brand_id, key) if key else None
            if found is None:
                raise
            return entry_dict(found)
        return entry_dict(row)


def earn(
    ctx: Context,
    brand_id: str,
    customer_id: str,
    points: int,
    *,
    source: str,
    ref: str = "",
    valid_days: int | None = 365,
    key: str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Credit ``points`` (a lot expiring ``valid_days`` later; None = never). Same ``key`` → same entry."""
    if valid_days is not None and not 1 <= valid_days <= 3650:
        raise SiyuError("valid_days must be between 1 and 3650 (or empty for points that never expire)", "valid_days")
    return _write(
        ctx,
        brand_id,
        key,
        lambda s: earn_in(
            s, brand_id, customer_id, points, source=source, ref=ref, valid_days=valid_days, key=key, note=note, now=now
        ),
    )


def spend(
    ctx: Context,
    brand_id: str,
    customer_id: str,
    points: int,
    *,
    source: str,
    ref: str = "",
    key: str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Debit ``points`` FIFO by lot; more than the balance raises InsufficientPoints (HTTP 409)."""
    return _write(
        ctx,
        brand_id,
        key,
        lambda s: debit_in(
            s, brand_id, customer_id, points, kind="spend", source=source, ref=ref, key=key, note=note, now=now
        ),
    )


def expire_due(ctx: Context, brand_id: str, now: datetime | None = None) -> int:
    """Expire every lot past its date for the brand (the scheduler's job; spends and balances expire lazily
    too). Returns the points expired."""
    now = now or utcnow()
    with ctx.sessions() as s:
        customers = s.scalars(
            select(PointsEntryRow.customer_id)
            .where(
                PointsEntryRow.brand_id == brand_id,
                PointsEntryRow.kind == "earn",
                PointsEntryRow.remaining > 0,
                PointsEntryRow.expires_at <= now,
            )
            .distinct()
        ).all()
    total = 0
    for cid in customers:
        with ctx.sessions() as s:
            acc = _lock_account(s, brand_id, cid, now)
            total += _expire(s, acc, now)
            s.commit()
    return total


def balance(ctx: Context, brand_id: str, customer_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The balance (sum of the ledger, with lots past their date expired first), points earned in total, and
    the points that expire within 30 days."""
    now = now or utcnow()
    with ctx.sessions() as s:
        exists = s.get(PointsAccountRow, (brand_id, customer_id))
        if exists is None:
            return {"customer_id": customer_id, "balance": 0, "earned_total": 0, "expiring_30d": 0}
        acc = _lock_account(s, brand_id, customer_id, now)
        _expire(s, acc, now)
        s.commit()
        expiring = s.scalar(
            select(func.coalesce(func.sum(PointsEntryRow.remaining), 0)).where(
                PointsEntryRow.brand_id == brand_id,
                PointsEntryRow.customer_id == customer_id,
                PointsEntryRow.kind == "earn",
                PointsEntryRow.remaining > 0,
                PointsEntryRow.expires_at <= now + timedelta(days=30),
            )
        )
        return {
            "customer_id": customer_id,
            "balance": acc.balance,
            "earned_total": acc.earned_total,
            "expiring_30d": int(expiring or 0),
        }


def ledger_sum(ctx: Context, brand_id: str, customer_id: str) -> int:
    """The sum of the customer's ledger entries (equals the account balance; for audits)."""
    with ctx.sessions() as s:
        total = s.scalar(
            select(func.coalesce(func.sum(PointsEntryRow.delta), 0)).where(
                PointsEntryRow.brand_id == brand_id, PointsEntryRow.customer_id == customer_id
            )
        )
        return int(total or 0)


def ledger(
    ctx: Context, brand_id: str, customer_id: str, limit: int = 100, before_id: int | None = None
) -> list[dict[str, Any]]:
    """The customer's ledger entries, newest first (page with ``before_id``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise SiyuError(f"limit must be between 1 and {MAX_PAGE}", "limit")
    q = select(PointsEntryRow).where(PointsEntryRow.brand_id == brand_id, PointsEntryRow.customer_id == customer_id)
    if before_id is not None:
        q = q.where(PointsEntryRow.id < before_id)
    with ctx.sessions() as s:
        return [entry_dict(r) for r in s.scalars(q.order_by(PointsEntryRow.id.desc()).limit(limit)).all()]


def get_entry(ctx: Context, brand_id: str, entry_id: int) -> dict[str, Any]:
    """One ledger entry."""
    with ctx.sessions() as s:
        row = s.get(PointsEntryRow, entry_id)
        if row is None or row.brand_id != brand_id:
            raise NotFound(f"points entry {entry_id} not found", "entry_id")
        return entry_dict(row)
