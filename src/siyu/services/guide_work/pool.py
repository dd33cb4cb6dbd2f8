"""The customer pool (公海): leads without an owner, the rules that assign them to guides, claims, releases and
the automatic return of unworked leads — every move logged (who, when, why) in ``pool_moves``.

A lead's owner is its guide for the "a guide sees only their own customers" rule: ``owned_ids`` feeds
``siyu.services.customers.guide_scope``. Leads come from imports, forms and campaigns before the WeCom add
(``add``), or from every customer without an active relation (``add_unowned``). A lead with an active WeCom
relation is owned already and is not added.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
from sqlalchemy import func, select

from siyu.domain import guide_work as rules
from siyu.domain.brand_time import day_start_utc
from siyu.domain.identity import IdType
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound, SiyuError
from siyu.services.guide_work import settings as gw
from siyu.stores.state.guide_work_models import GuideWorkSettingsRow, PoolLeadRow, PoolMoveRow
from siyu.stores.state.models import BrandRow, utcnow

SOURCES = ("import", "form", "campaign", "manual", "returned")
MAX_BATCH = 10_000
MAX_PAGE_SIZE = 500


def _lead(r: PoolLeadRow) -> dict[str, Any]:
    return {
        "customer_id": r.customer_id,
        "owner_guide_id": r.owner_guide_id,
        "status": "owned" if r.owner_guide_id else "pool",
        "source": r.source,
        "source_ref": r.source_ref,
        "store_id": r.store_id,
        "region": r.region,
        "entered_at": r.entered_at.isoformat(),
        "assigned_at": r.assigned_at.isoformat() if r.assigned_at else None,
        "worked_at": r.worked_at.isoformat() if r.worked_at else None,
    }


def _move(r: PoolMoveRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "action": r.action,
        "from_guide_id": r.from_guide_id,
        "to_guide_id": r.to_guide_id,
        "rule": r.rule,
        "actor": r.actor,
        "reason": r.reason,
        "at": r.at.isoformat(),
    }


def _batch(ids: list[str], field: str = "customer_ids") -> list[str]:
    if not ids:
        raise SiyuError(f"{field} is empty; give at least one customer id", field)
    if len(ids) > MAX_BATCH:
        raise SiyuError(f"{field}: at most {MAX_BATCH} per call (got {len(ids)})", field)
    return list(dict.fromkeys(str(i) for i in ids))


def related(ctx: Context, brand_id: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` hold an active WeCom relation with some guide (owned through WeCom)."""
    rel, idt = ctx.warehouse.table("relations"), ctx.warehouse.table("identities")
    rel = rel.filter(rel.brand_id == brand_id, rel.state == "active")
    idt = idt.filter(idt.brand_id == brand_id, idt.id_type == IdType.EXTERNAL_USERID.value)
    out: set[str] = set()
    for i in range(0, len(ids), 1000):
        j = idt.filter(idt.customer_id.isin(ids[i : i + 1000]))
        q = j.semi_join(rel, j.id_value == rel.external_userid).select("customer_id").distinct()
        out |= {str(r["customer_id"]) for r in q.to_pyarrow().to_pylist()}
    return out


def add(
    ctx: Context,
    user: User,
    customer_ids: list[str],
    source: str = "import",
    store_id: str | None = None,
    region: str | None = None,
    reason: str = "",
    source_ref: str | None = None,
) -> dict[str, Any]:
    """Put leads in the pool (admins and operators). Unknown customers, leads already in the pool and customers
    with an active WeCom relation are reported and skipped; the rest land."""
    gw.require_manager(user, "add leads to the pool")
    return enter(ctx, user.brand_id, user.username, customer_ids, source, store_id, region, reason, source_ref)


def enter(
    ctx: Context,
    brand_id: str,
    actor: str,
    customer_ids: list[str],
    source: str,
    store_id: str | None = None,
    region: str | None = None,
    reason: str = "",
    source_ref: str | None = None,
) -> dict[str, Any]:
    """Leads enter the pool (``add``, and imports, forms and campaigns by themselves with ``actor`` naming the
    feed): idempotent — one lead per customer; unknown customers, customers with a lead already and customers with
    an active WeCom relation are reported and skipped. ``source_ref`` (batch, form or campaign id) is kept."""
    if source not in SOURCES:
        raise SiyuError(f"source {source!r} is not known; use one of {', '.join(SOURCES)}", "source")
    ids = _batch(customer_ids)
    known = gw.existing_customers(ctx, brand_id, ids)
    owned = related(ctx, brand_id, sorted(known))
    skipped: list[dict[str, str]] = [{"customer_id": i, "reason": "unknown customer"} for i in ids if i not in known]
    skipped += [{"customer_id": i, "reason": "has an active WeCom relation"} for i in ids if i in owned]
    now = utcnow()
    added = 0
    why = reason or f"source {source}" + (f" {source_ref}" if source_ref else "")
    with ctx.sessions() as s, s.begin():
        existing = set(
            s.scalars(
                select(PoolLeadRow.customer_id).where(
                    PoolLeadRow.brand_id == brand_id, PoolLeadRow.customer_id.in_(sorted(known))
                )
            )
        )
        for i in ids:
            if i not in known or i in owned:
                continue
            if i in existing:
                skipped.append({"customer_id": i, "reason": "already in the pool"})
                continue
            s.add(
                PoolLeadRow(
                    brand_id=brand_id,
                    customer_id=i,
                    source=source,
                    source_ref=str(source_ref)[:128] if source_ref else None,
                    store_id=store_id,
                    region=region,
                    entered_at=now,
                )
            )
            s.add(_log(brand_id, i, "add", None, None, None, actor, why, now))
            added += 1
    return {"added": added, "skipped": skipped}


def add_unowned(ctx: Context, user: User, source: str = "import", limit: int = MAX_BATCH) -> dict[str, Any]:
    """Put every customer without an active WeCom relation (and not yet in the pool) into it, up to ``limit``."""
    gw.require_manager(user, "add leads to the pool")
    c, rel, idt = (ctx.warehouse.table(n) for n in ("customers", "relations", "identities"))
    rel = rel.filter(rel.brand_id == user.brand_id, rel.state == "active")
    idt = idt.filter(idt.brand_id == user.brand_id, idt.id_type == IdType.EXTERNAL_USERID.value)
    owned = idt.semi_join(rel, idt.id_value == rel.external_userid).select("customer_id")
    c = c.filter(c.brand_id == user.brand_id)
    free = c.anti_join(owned, c.customer_id == owned.customer_id).select("customer_id")
    with ctx.sessions() as s:
        have = list(s.scalars(select(PoolLeadRow.customer_id).where(PoolLeadRow.brand_id == user.brand_id)))
    if have:
        known = ibis.memtable({"customer_id": have})
        free = free.anti_join(known, free.customer_id == known.customer_id)
    ids = [str(r["customer_id"]) for r in free.order_by("customer_id").limit(limit).to_pyarrow().to_pylist()]
    if not ids:
        return {"added": 0, "skipped": []}
    return add(ctx, user, ids, source, reason="no active WeCom relation")


def _log(
    brand: str,
    cid: str,
    action: str,
    src: str | None,
    dst: str | None,
    rule: str | None,
    actor: str,
    reason: str,
    at: datetime,
) -> PoolMoveRow:
    return PoolMoveRow(
        brand_id=brand,
        customer_id=cid,
        action=action,
        from_guide_id=src,
        to_guide_id=dst,
        rule=rule,
        actor=actor,
        reason=reason,
        at=at,
    )


def loads(ctx: Context, brand_id: str) -> dict[str, int]:
    """Open (owned) leads per guide."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(PoolLeadRow.owner_guide_id, func.count())
            .where(PoolLeadRow.brand_id == brand_id, PoolLeadRow.owner_guide_id.is_not(None))
            .group_by(PoolLeadRow.owner_guide_id)
        ).all()
    return {str(g): int(n) for g, n in rows}


def assign(
    ctx: Context,
    user: User,
    rule: str,
    customer_ids: list[str] | None = None,
    guide_ids: list[str] | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Assign pool leads (all, or ``customer_ids``) to guides (all active, or ``guide_ids``) by ``rule``
    (round_robin | store | region | load); leads no guide fits stay in the pool and are reported."""
    gw.require_manager(user, "assign leads")
    if rule not in rules.RULES:
        raise SiyuError(f"rule {rule!r} is not known; use one of {', '.join(rules.RULES)}", "rule")
    brand = user.brand_id
    known = gw.guide_map(ctx, brand)
    if guide_ids:
        bad = [g for g in guide_ids if g not in known]
        if bad:
            raise SiyuError(f"guide_ids: {bad} are not active guides of this brand", "guide_ids")
    chosen = [known[g] for g in (guide_ids or sorted(known))]
    if not chosen:
        raise SiyuError("the brand has no active guide to assign leads to", "guide_ids")
    load = loads(ctx, brand)
    slots = [rules.GuideSlot(g.guide_id, g.store_id, g.region, load.get(g.guide_id, 0)) for g in chosen]
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        q = select(PoolLeadRow).where(PoolLeadRow.brand_id == brand, PoolLeadRow.owner_guide_id.is_(None))
        if customer_ids is not None:
            q = q.where(PoolLeadRow.customer_id.in_(_batch(customer_ids)))
        leads = list(s.scalars(q.order_by(PoolLeadRow.entered_at, PoolLeadRow.customer_id).limit(MAX_BATCH)))
        conf = s.get(GuideWorkSettingsRow, brand)
        cursor = conf.rr_cursor if conf else 0
        plan, cursor = rules.assign(
            rule, [rules.Lead(r.customer_id, r.store_id, r.region) for r in leads], slots, cursor
        )
        for r in leads:
            g = plan.get(r.customer_id)
            if g is None:
                continue
            r.owner_guide_id, r.assigned_at, r.worked_at = g, now, None
            s.add(_log(brand, r.customer_id, "assign", None, g, rule, user.username, reason or f"rule {rule}", now))
        if rule == "round_robin":
            if conf is None:
                conf = GuideWorkSettingsRow(
                    brand_id=brand,
                    stages=list(rules.DEFAULT_STAGES),
                    claim_limit=20,
                    return_days=7,
                    moment_windows=list(rules.DEFAULT_WINDOWS),
                )
                s.add(conf)
            conf.rr_cursor = cursor
        missing = sorted(set(customer_ids or []) - {r.customer_id for r in leads})
    unassigned = [r.customer_id for r in leads if r.customer_id not in plan]
    return {
        "assigned": len(plan),
        "by_guide": rules.loads_after(plan, [rules.GuideSlot(g.guide_id) for g in slots]),
        "unassigned": unassigned,
        "not_in_pool": missing,
    }


def claim(ctx: Context, user: User, customer_ids: list[str], now: datetime | None = None) -> dict[str, Any]:
    """A guide takes leads from the pool, up to the brand's daily claim limit (brand-local day)."""
    if user.role != Role.GUIDE or not user.guide_id:
        raise Forbidden("only guides claim leads; admins and operators assign them", "role")
    ids = _batch(customer_ids)
    now = now or utcnow()
    limit = gw.get_settings(ctx, user.brand_id).claim_limit
    since = day_start_utc(gw.local_day(now))
    with ctx.sessions() as s, s.begin():
        used = int(
            s.scalar(
                select(func.count()).where(
                    PoolMoveRow.brand_id == user.brand_id,
                    PoolMoveRow.to_guide_id == user.guide_id,
                    PoolMoveRow.action == "claim",
                    PoolMoveRow.at >= since,
                )
            )
            or 0
        )
        rows = {
            r.customer_id: r
            for r in s.scalars(
                select(PoolLeadRow).where(PoolLeadRow.brand_id == user.brand_id, PoolLeadRow.customer_id.in_(ids))
            )
        }
        free = [i for i in ids if i in rows and rows[i].owner_guide_id is None]
        if used + len(free) > limit:
            raise SiyuError(
                f"claim limit: {limit} leads a day; you claimed {used} today and may claim {max(0, limit - used)} "
                "more — pick fewer",
                "customer_ids",
            )
        for i in free:
            r = rows[i]
            r.owner_guide_id, r.assigned_at, r.worked_at = user.guide_id, now, None
            s.add(_log(user.brand_id, i, "claim", None, user.guide_id, None, user.username, "claimed", now))
    skipped = [
        {"customer_id": i, "reason": "not in the pool" if i not in rows else "owned"} for i in ids if i not in free
    ]
    return {"claimed": len(free), "skipped": skipped, "claimed_today": used + len(free), "limit": limit}


def release(ctx: Context, user: User, customer_id: str, reason: str) -> dict[str, Any]:
    """Put an owned lead back in the pool (its guide or a manager), with a reason."""
    if not reason.strip() or len(reason) > 500:
        raise SiyuError("reason: say in 1..500 characters why the lead goes back to the pool", "reason")
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        r = s.get(PoolLeadRow, (user.brand_id, customer_id))
        mine = r is not None and (user.role != Role.GUIDE or r.owner_guide_id == user.guide_id)
        if r is None or not mine:
            raise NotFound(f"lead {customer_id!r} not found (or not yours)", "customer_id")
        if r.owner_guide_id is None:
            raise Conflict(f"lead {customer_id!r} is in the pool already", "customer_id")
        s.add(_log(user.brand_id, customer_id, "release", r.owner_guide_id, None, None, user.username, reason, now))
        r.owner_guide_id, r.assigned_at, r.worked_at, r.source = None, None, None, "returned"
        return _lead(r)


def return_unworked(ctx: Context, now: datetime | None = None) -> dict[str, int]:
    """The scheduled return: owned leads with no follow-up for the brand's ``return_days`` (counted from the
    assignment or the last follow-up) go back to the pool — not those whose customer has an active WeCom relation
    (owned through WeCom, ``pool_feed.settle``). Returns leads returned per brand."""
    now = now or utcnow()
    out: dict[str, int] = {}
    with ctx.sessions() as s:
        brands = list(s.scalars(select(BrandRow.id)))
    for b in brands:
        days = gw.get_settings(ctx, b).return_days
        cutoff = now - timedelta(days=days)
        with ctx.sessions() as s, s.begin():
            rows = s.scalars(
                select(PoolLeadRow).where(PoolLeadRow.brand_id == b, PoolLeadRow.owner_guide_id.is_not(None))
            ).all()
            due = [
                r
                for r in rows
                if max((x for x in (r.assigned_at, r.worked_at) if x is not None), default=r.entered_at) < cutoff
            ]
            wecom = related(ctx, b, sorted(r.customer_id for r in due)) if due else set()  # owned through WeCom
            n = 0
            for r in due:
                if r.customer_id in wecom:
                    continue
                why = f"no follow-up in {days} days"
                s.add(_log(b, r.customer_id, "return", r.owner_guide_id, None, None, "scheduler", why, now))
                r.owner_guide_id, r.assigned_at, r.worked_at, r.source = None, None, None, "returned"
                n += 1
            if n:
                out[b] = n
    return out


def list_leads(
    ctx: Context,
    user: User,
    status: str = "pool",
    guide_id: str | None = None,
    page: int = 1,
    page_size: int = 100,
) -> dict[str, Any]:
    """Leads by status (pool | owned | all). A guide sees the pool (to claim) and their own leads only."""
    if status not in ("pool", "owned", "all"):
        raise SiyuError("status must be pool, owned or all", "status")
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SiyuError(f"page ≥ 1 and page_size 1..{MAX_PAGE_SIZE}", "page_size")
    L = PoolLeadRow
    q = select(L).where(L.brand_id == user.brand_id)
    if user.role == Role.GUIDE:
        guide_id = user.guide_id or ""
        if status == "all":
            q = q.where((L.owner_guide_id.is_(None)) | (L.owner_guide_id == guide_id))
        elif status == "owned":
            q = q.where(L.owner_guide_id == guide_id)
    if status == "pool":
        q = q.where(L.owner_guide_id.is_(None))
    elif status == "owned" and user.role != Role.GUIDE:
        q = q.where(L.owner_guide_id.is_not(None))
        if guide_id:
            q = q.where(L.owner_guide_id == guide_id)
    with ctx.sessions() as s:
        total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = s.scalars(q.order_by(L.entered_at, L.customer_id).limit(page_size).offset((page - 1) * page_size))
        items = [_lead(r) for r in rows]
    return {"items": items, "total": total, "page": page, "page_size": page_size, "loads": loads(ctx, user.brand_id)}


def moves(ctx: Context, user: User, customer_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The move log, newest first (a guide: moves to or from them only)."""
    if not 1 <= limit <= 1000:
        raise SiyuError("limit must be 1..1000", "limit")
    M = PoolMoveRow
    q = select(M).where(M.brand_id == user.brand_id)
    if customer_id:
        q = q.where(M.customer_id == customer_id)
    if user.role == Role.GUIDE:
        g = user.guide_id or ""
        q = q.where((M.to_guide_id == g) | (M.from_guide_id == g))
    with ctx.sessions() as s:
        return [_move(r) for r in s.scalars(q.order_by(M.id.desc()).limit(limit))]


def owned_ids(ctx: Context, brand_id: str, guide_id: str) -> list[str]:
    """Customer ids of the pool leads a guide owns (for ``guide_scope``)."""
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(PoolLeadRow.customer_id).where(
                    PoolLeadRow.brand_id == brand_id, PoolLeadRow.owner_guide_id == guide_id
                )
            )
        )


def owner_of(ctx: Context, brand_id: str, customer_id: str) -> str | None:
    """The customer's guide: the pool lead's owner, else the guide of their latest active WeCom relation."""
    with ctx.sessions() as s:
        lead = s.get(PoolLeadRow, (brand_id, customer_id))
    if lead is not None and lead.owner_guide_id:
        return lead.owner_guide_id
    rel, idt = ctx.warehouse.table("relations"), ctx.warehouse.table("identities")
    idt = idt.filter(
        idt.brand_id == brand_id, idt.id_type == IdType.EXTERNAL_USERID.value, idt.customer_id == customer_id
    )
    rel = rel.filter(rel.brand_id == brand_id, rel.state == "active")
    j = rel.join(idt, rel.external_userid == idt.id_value)
    rows = j.order_by([j.added_at.desc(), j.guide_id]).select("guide_id").limit(1).to_pyarrow().to_pylist()
    return str(rows[0]["guide_id"]) if rows else None
