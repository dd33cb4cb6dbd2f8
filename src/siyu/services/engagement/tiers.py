"""Member tiers: the brand's scheme, recomputation from points earned (ledger) and spend (warehouse orders) in
the scheme's window, applying its downgrade rule; every change is kept with the tier before it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from siyu.analytics.base import customer_order_totals
from siyu.domain.engagement.tiers import TierScheme, next_tier, parse_scheme
from siyu.services.context import Context
from siyu.services.errors import NotFound
from siyu.stores.state.engagement_models import MemberTierRow, PointsEntryRow, TierSchemeRow
from siyu.stores.state.models import utcnow


def set_scheme(ctx: Context, brand_id: str, scheme: dict[str, Any]) -> dict[str, Any]:
    """Save the brand's tier scheme (validated; errors name the field)."""
    parsed = parse_scheme(scheme)
    with ctx.sessions() as s:
        row = s.get(TierSchemeRow, brand_id)
        if row is None:
            row = TierSchemeRow(brand_id=brand_id)
            s.add(row)
        row.scheme, row.updated_at = parsed.model_dump(mode="json"), utcnow()
        s.commit()
    return parsed.model_dump(mode="json")


def get_scheme(ctx: Context, brand_id: str) -> TierScheme | None:
    """The brand's tier scheme, or None when it has none."""
    with ctx.sessions() as s:
        row = s.get(TierSchemeRow, brand_id)
    return TierScheme.model_validate(row.scheme) if row else None


def _points_in_window(ctx: Context, brand_id: str, since: datetime) -> dict[str, int]:
    """Points earned since ``since`` per customer, minus reversals (claw-backs) in the same window."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(PointsEntryRow.customer_id, func.sum(PointsEntryRow.delta))
            .where(
                PointsEntryRow.brand_id == brand_id,
                PointsEntryRow.kind.in_(("earn", "reverse")),
                PointsEntryRow.created_at >= since,
            )
            .group_by(PointsEntryRow.customer_id)
        ).all()
    return {cid: max(0, int(n or 0)) for cid, n in rows}


def _spend_in_window(ctx: Context, brand_id: str, since: datetime, end: datetime) -> dict[str, float]:
    from siyu.services.metrics import fetch_arrow, tables

    totals = customer_order_totals(tables(ctx, brand_id), end, since)
    rows = fetch_arrow(ctx, totals.select("customer_id", "amount")).to_pylist()
    return {r["customer_id"]: float(r["amount"] or 0) for r in rows}


def recompute(
    ctx: Context, brand_id: str, customer_ids: list[str] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Recompute tiers (all known members, or ``customer_ids``): members with points or spend in the window and
    those who had a tier. Returns ``{members, upgraded, downgraded, changes: [{customer_id, from, to}]}``."""
    scheme = get_scheme(ctx, brand_id)
    if scheme is None:
        raise NotFound("this brand has no member tier scheme; set one first (PUT /api/engagement/tiers/scheme)")
    now = now or utcnow()
    since = now - timedelta(days=scheme.window_days)
    pts = _points_in_window(ctx, brand_id, since) if scheme.basis in ("points", "either") else {}
    spend = _spend_in_window(ctx, brand_id, since, now) if scheme.basis in ("spend", "either") else {}
    keys = [t.key for t in scheme.tiers]
    changes: list[dict[str, Any]] = []
    up = down = 0
    with ctx.sessions() as s:
        current = {
            r.customer_id: r for r in s.scalars(select(MemberTierRow).where(MemberTierRow.brand_id == brand_id)).all()
        }
        people = set(customer_ids) if customer_ids is not None else set(pts) | set(spend) | set(current)
        for cid in sorted(people):
            p, m = pts.get(cid, 0), spend.get(cid, 0.0)
            row = current.get(cid)
            before = row.tier if row else None
            after = next_tier(scheme, before, p, m)
            if row is None:
                row = MemberTierRow(brand_id=brand_id, customer_id=cid, tier=after, previous="", changed_at=now)
                s.add(row)
            elif after != before:
                row.previous, row.tier, row.changed_at = before or "", after, now
            row.points_basis, row.spend_basis, row.computed_at = p, m, now
            if after != before:
                changes.append({"customer_id": cid, "from": before, "to": after})
                if before is not None and before in keys and keys.index(after) > keys.index(before):
                    up += 1
                elif before is not None and before in keys:
                    down += 1
        s.commit()
    return {"members": len(people), "upgraded": up, "downgraded": down, "changes": changes}


def tier_of(ctx: Context, brand_id: str, customer_id: str) -> dict[str, Any] | None:
    """The customer's tier as last computed (None when never computed)."""
    with ctx.sessions() as s:
        row = s.get(MemberTierRow, (brand_id, customer_id))
    if row is None:
        return None
    return {
        "customer_id": customer_id,
        "tier": row.tier,
        "previous": row.previous or None,
        "points_basis": row.points_basis,
        "spend_basis": row.spend_basis,
        "changed_at": row.changed_at.isoformat(),
        "computed_at": row.computed_at.isoformat(),
    }


def tier_counts(ctx: Context, brand_id: str) -> dict[str, int]:
    """Members per tier."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(MemberTierRow.tier, func.count())
            .where(MemberTierRow.brand_id == brand_id)
            .group_by(MemberTierRow.tier)
        ).all()
    return {t: int(n) for t, n in rows}
