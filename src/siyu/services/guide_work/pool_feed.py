"""Leads enter the customer pool (公海) by themselves, and leave it when the customer adds a guide on WeCom.

* imports: every customer of a customers import without an active WeCom relation (source ``import``, the job id);
* forms: a public lead form (``siyu.public.lead_form``) — the person OneID resolves to (source ``form``, form id);
* campaigns: helpers still waiting for the carrier action (not yet added a guide) (source ``campaign``, its id).

``settle`` moves a lead whose customer now has an active WeCom relation to the guide of that relation (the
owner, when the owner is one of the customer's guides), logged as ``wecom_add``; such a lead is owned through
WeCom and never returns to the pool. Source and source reference stay for attribution. Everything is idempotent:
one lead per customer.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from siyu.domain.identity import IdType
from siyu.services.context import Context
from siyu.services.guide_work import pool
from siyu.stores.state.campaign_models import CampaignHelpRow
from siyu.stores.state.guide_work_models import PoolLeadRow, PoolMoveRow
from siyu.stores.state.models import BrandRow, utcnow

log = logging.getLogger(__name__)


def customers_of(ctx: Context, brand_id: str, identifiers: list[tuple[str, str]]) -> list[str]:
    """Customer ids OneID resolved these (id_type, id_value) pairs to (unresolved pairs are left out)."""
    if not identifiers:
        return []
    out: list[str] = []
    for i in range(0, len(identifiers), 1000):
        chunk = identifiers[i : i + 1000]
        where = " OR ".join("(id_type = ? AND id_value = ?)" for _ in chunk)
        args: list[Any] = [brand_id] + [v for pair in chunk for v in pair]
        rows = ctx.warehouse.fetch(
            f"SELECT DISTINCT customer_id FROM identities WHERE brand_id = ? AND ({where})", args
        )
        out += [str(r[0]) for r in rows]
    return sorted(set(out))


def from_import(ctx: Context, brand_id: str, job_id: str, identifiers: list[tuple[str, str]]) -> dict[str, Any]:
    """After a customers import (identities resolved): its customers without a WeCom relation become leads."""
    ids = customers_of(ctx, brand_id, identifiers)
    if not ids:
        return {"added": 0, "skipped": []}
    got: dict[str, Any] = {"added": 0, "skipped": []}
    for i in range(0, len(ids), pool.MAX_BATCH):
        part = pool.enter(ctx, brand_id, "import", ids[i : i + pool.MAX_BATCH], "import", source_ref=job_id)
        got["added"] += part["added"]
        got["skipped"] += part["skipped"]
    return got


def from_campaigns(ctx: Context, brand_id: str) -> int:
    """Helpers waiting for the carrier action (pending_carrier: not yet added the guide) become leads of their
    campaign (the first campaign they helped in). Returns leads added."""
    H = PoolLeadRow
    with ctx.sessions() as s:
        helps = s.execute(
            select(
                CampaignHelpRow.campaign_id,
                CampaignHelpRow.helper_customer_id,
                CampaignHelpRow.helper_id_type,
                CampaignHelpRow.helper_id_value,
            )
            .where(CampaignHelpRow.brand_id == brand_id, CampaignHelpRow.state == "pending_carrier")
            .order_by(CampaignHelpRow.id)
        ).all()
        have = set(s.scalars(select(H.customer_id).where(H.brand_id == brand_id)))
    by_campaign: dict[str, list[str]] = {}
    seen: set[str] = set(have)
    for campaign_id, cid, id_type, id_value in helps:
        ids = [str(cid)] if cid else customers_of(ctx, brand_id, [(str(id_type), str(id_value))])
        for c in ids:
            if c not in seen:
                seen.add(c)
                by_campaign.setdefault(str(campaign_id), []).append(c)
    added = 0
    for campaign_id, ids in by_campaign.items():
        added += pool.enter(ctx, brand_id, "campaign", ids, "campaign", source_ref=campaign_id)["added"]
    return added


def settle(ctx: Context, brand_id: str, since: datetime | None = None) -> int:
    """Leads whose customer has an active WeCom relation leave the pool owned by that relation's guide (kept when
    the owner is one of the customer's guides); each logged once as ``wecom_add``. With ``since`` only customers
    with a relation added from then on are looked at (the callback hook). Returns leads settled."""
    recent = added_since(ctx, brand_id, since) if since is not None else None
    if recent is not None and not recent:
        return 0
    with ctx.sessions() as s:
        q = select(PoolLeadRow).where(PoolLeadRow.brand_id == brand_id)
        m = select(PoolMoveRow.customer_id).where(PoolMoveRow.brand_id == brand_id, PoolMoveRow.action == "wecom_add")
        if recent is not None:
            q = q.where(PoolLeadRow.customer_id.in_(sorted(recent)))
            m = m.where(PoolMoveRow.customer_id.in_(sorted(recent)))
        leads = {r.customer_id: r.owner_guide_id for r in s.scalars(q)}
        done = set(s.scalars(m))
    if not leads:
        return 0
    guides = related_guides(ctx, brand_id, sorted(leads))
    now = utcnow()
    n = 0
    with ctx.sessions() as s, s.begin():
        for cid, gs in guides.items():
            owner = leads[cid]
            if owner in gs and cid in done:
                continue
            r = s.get(PoolLeadRow, (brand_id, cid))
            if r is None:
                continue
            new = owner if owner in gs else gs[0]
            why = f"added {new} on WeCom"
            s.add(pool._log(brand_id, cid, "wecom_add", r.owner_guide_id, new, None, "wecom", why, now))
            if r.owner_guide_id != new:
                r.owner_guide_id, r.assigned_at = new, now
            r.worked_at = now
            n += 1
    return n


def added_since(ctx: Context, brand_id: str, since: datetime) -> set[str]:
    """Customers with an active WeCom relation added at or after ``since`` (naive UTC)."""
    rows = ctx.warehouse.fetch(
        "SELECT DISTINCT i.customer_id FROM relations r JOIN identities i ON i.brand_id = r.brand_id "
        "AND i.id_type = 'external_userid' AND i.id_value = r.external_userid "
        "WHERE r.brand_id = ? AND r.state = 'active' AND r.added_at >= ?",
        [brand_id, since],
    )
    return {str(r[0]) for r in rows}


def related_guides(ctx: Context, brand_id: str, customer_ids: list[str]) -> dict[str, list[str]]:
    """customer_id → guides of their active WeCom relations, the latest added first."""
    rel, idt = ctx.warehouse.table("relations"), ctx.warehouse.table("identities")
    rel = rel.filter(rel.brand_id == brand_id, rel.state == "active")
    idt = idt.filter(idt.brand_id == brand_id, idt.id_type == IdType.EXTERNAL_USERID.value)
    out: dict[str, list[str]] = {}
    for i in range(0, len(customer_ids), 1000):
        j = idt.filter(idt.customer_id.isin(customer_ids[i : i + 1000]))
        q = j.join(rel, j.id_value == rel.external_userid).select(j.customer_id, rel.guide_id, rel.added_at)
        rows = q.order_by([q.customer_id, q.added_at.desc(), q.guide_id]).to_pyarrow().to_pylist()
        for r in rows:
            gs = out.setdefault(str(r["customer_id"]), [])
            if str(r["guide_id"]) not in gs:
                gs.append(str(r["guide_id"]))
    return out


def run_all(ctx: Context) -> dict[str, dict[str, int]]:
    """The scheduled part (``guide_work.daily``): campaign helpers into the pool, then settle every brand's leads
    with a WeCom relation. One brand's failure is logged."""
    with ctx.sessions() as s:
        brands = list(s.scalars(select(BrandRow.id)))
    out: dict[str, dict[str, int]] = {}
    for b in brands:
        try:
            got = {"campaign": from_campaigns(ctx, b), "settled": settle(ctx, b)}
            if any(got.values()):
                out[b] = got
        except Exception:
            log.exception("feeding / settling the customer pool of brand %s failed", b)
    return out


def settle_quietly(ctx: Context, brand_id: str, since: datetime | None = None) -> None:
    """``settle`` for hooks (WeCom callbacks: relations added in the last day; the contact sync: all): a failure
    is logged, never raised."""
    try:
        settle(ctx, brand_id, since)
    except Exception:
        log.exception("settling the customer pool of brand %s failed", brand_id)
