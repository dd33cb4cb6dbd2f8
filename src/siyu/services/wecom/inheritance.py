"""Inheritance (在职继承 / 离职继承): move a guide's customers (all, or a segment's) to another guide.

``start`` asks WeCom (``transfer_customer``, or ``resigned/transfer_customer`` for a guide who left) in chunks of
100 and records every customer's answer at once (one commit per chunk): accepted customers are ``waiting``
(WeCom moves them after 24 h), refused ones ``failed`` with the errcode's meaning (40128: transferred twice in 90
days already; 40129: a transfer is pending; 84061: not this guide's customer). ``refresh`` reads
``transfer_result``: done customers get their relations moved with the "Moved" convention of
docs/metrics-operations.md (old relation lost with ``lost_by = transfer``, new one with ``add_way = 202``, both at
the takeover time); status 3/4 and ``transfer_fail`` callbacks (``on_transfer_fail``) mark the customer
``refused`` (customer_refused) or ``limit`` (customer_limit_exceed).
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import CursorResult, func, insert, or_, select, update

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import describe
from siyu.domain import wecom_events as ev
from siyu.domain.models import Role
from siyu.services import audit, segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, NotFound, SiyuError
from siyu.services.wecom import audience
from siyu.services.wecom import relations as rel
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.models import utcnow
from siyu.stores.state.wecom_ops_models import WeComTransferCustomerRow, WeComTransferRow

CHUNK = 100  # transfer_customer: external_userid ≤ 100
MAX_CUSTOMERS = 100_000
AUDIT_CUSTOMERS = 200  # customer ids named in the audit entry of a transfer (the count is always exact)
STATUSES = ("waiting", "done", "refused", "limit", "failed")
FAIL_REASONS = {
    "customer_refused": ("refused", "客户拒绝了转接 / the customer refused the transfer"),
    "customer_limit_exceed": ("limit", "接替导购的客户数已达上限 / the takeover guide has reached the customer limit"),
}
RESULT = {  # transfer_result status → (our status, reason)
    1: ("done", ""),
    2: ("waiting", ""),
    3: FAIL_REASONS["customer_refused"],
    4: FAIL_REASONS["customer_limit_exceed"],
    5: ("failed", "WeCom has no record of this transfer (status 5)"),
}


def _reason(errcode: int) -> str:
    meaning, action = describe(errcode)
    return f"{errcode} {meaning} — {action}"


def _guide_userid(ctx: Context, brand_id: str, guide_id: str, field: str) -> str:
    userid = audience.guide_userid(ctx, brand_id, guide_id)
    if not userid:
        raise SiyuError(
            f"guide {guide_id!r} is unknown or has no wecom_userid; import the guide with their WeCom userid", field
        )
    return userid


def start(
    ctx: Context,
    user: User,
    handover_guide_id: str,
    takeover_guide_id: str,
    segment_id: str | None = None,
    resigned: bool = False,
    client: WeComClient | None = None,
) -> dict[str, Any]:
    """Ask WeCom to move the handover guide's customers (of ``segment_id`` when given) to the takeover guide."""
    if user.role == Role.GUIDE:
        raise Forbidden("only an operator or admin may move customers between guides", "role")
    brand = user.brand_id
    if handover_guide_id == takeover_guide_id:
        raise SiyuError("the takeover guide must differ from the handover guide", "takeover_guide_id")
    hand = _guide_userid(ctx, brand, handover_guide_id, "handover_guide_id")
    take = _guide_userid(ctx, brand, takeover_guide_id, "takeover_guide_id")
    if segment_id is not None:
        segments.get_segment(ctx, user, segment_id)
        audience.fresh_segment(ctx, brand, segment_id)
    client = client or client_for(get_config(ctx, brand))
    reach: dict[str, str] = {}
    for r in audience.relations(ctx, brand, segment_id=segment_id, guide_id=handover_guide_id):
        reach.setdefault(r.external_userid, r.customer_id)
    if not reach:
        raise SiyuError(
            f"guide {handover_guide_id!r} has no active customers"
            + (f" in segment {segment_id!r}" if segment_id else "")
            + "; nothing to move",
            "handover_guide_id",
        )
    if len(reach) > MAX_CUSTOMERS:
        raise SiyuError(f"{len(reach)} customers exceed {MAX_CUSTOMERS} per transfer; use segments", "segment_id")
    tid = "tr_" + uuid.uuid4().hex[:20]
    with ctx.sessions() as s, s.begin():
        s.add(
            WeComTransferRow(
                id=tid,
                brand_id=brand,
                handover_guide_id=handover_guide_id,
                handover_userid=hand,
                takeover_guide_id=takeover_guide_id,
                takeover_userid=take,
                resigned=resigned,
                segment_id=segment_id,
                created_by=user.username,
            )
        )
    exts = sorted(reach)
    for i in range(0, len(exts), CHUNK):
        chunk = exts[i : i + CHUNK]
        outcomes = {o.external_userid: o.errcode for o in client.transfer_customers(hand, take, chunk, resigned)}
        now = utcnow()
        with ctx.sessions() as s, s.begin():
            s.execute(
                insert(WeComTransferCustomerRow),
                [
                    {
                        "transfer_id": tid,
                        "brand_id": brand,
                        "external_userid": e,
                        "customer_id": reach[e],
                        "status": "waiting" if outcomes.get(e, -2) == 0 else "failed",
                        "errcode": outcomes.get(e, -2),
                        "reason": "" if outcomes.get(e, -2) == 0 else _reason(outcomes.get(e, -2)),
                        "updated_at": now,
                    }
                    for e in chunk
                ],
            )
    detail = {
        "handover_guide_id": handover_guide_id,
        "takeover_guide_id": takeover_guide_id,
        "segment_id": segment_id,
        "resigned": resigned,
        "customers": len(reach),
        "customer_ids": sorted(set(reach.values()))[:AUDIT_CUSTOMERS],
    }
    audit.record(ctx, brand, user, "transfer.start", tid, detail)
    return get(ctx, user, tid)


def _row(ctx: Context, user: User, transfer_id: str) -> WeComTransferRow:
    with ctx.sessions() as s:
        row = s.get(WeComTransferRow, transfer_id)
        if row is None or row.brand_id != user.brand_id:
            raise NotFound(f"transfer {transfer_id!r} not found", "transfer_id")
        s.expunge(row)
    if user.role == Role.GUIDE and user.guide_id not in (row.handover_guide_id, row.takeover_guide_id):
        raise NotFound(f"transfer {transfer_id!r} not found", "transfer_id")
    return row


def refresh(ctx: Context, user: User, transfer_id: str, client: WeComClient | None = None) -> dict[str, Any]:
    """Read ``transfer_result``; move the relations of customers WeCom has moved."""
    if user.role == Role.GUIDE:
        raise Forbidden("only an operator or admin may refresh transfers", "role")
    t = _row(ctx, user, transfer_id)
    client = client or client_for(get_config(ctx, user.brand_id))
    results = {r.external_userid: r for r in client.transfer_result(t.handover_userid, t.takeover_userid)}
    now = utcnow()
    moved: list[tuple[str, Any]] = []
    with ctx.sessions() as s, s.begin():
        waiting = list(
            s.scalars(
                select(WeComTransferCustomerRow).where(
                    WeComTransferCustomerRow.transfer_id == transfer_id, WeComTransferCustomerRow.status == "waiting"
                )
            )
        )
        for c in waiting:
            r = results.get(c.external_userid)
            if r is None:
                continue
            status, reason = RESULT.get(r.status, ("failed", f"unknown transfer_result status {r.status}"))
            if status == "waiting":
                continue
            c.status, c.reason, c.updated_at = status, reason, now
            if status == "done":
                c.takeover_at = rel.utc(r.takeover_time) if r.takeover_time else now
                moved.append((c.external_userid, c.takeover_at))
        s.get(WeComTransferRow, transfer_id).refreshed_at = now  # type: ignore[union-attr]
    if moved:
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            for ext, at in moved:
                rel.lose_relation(cur, t.brand_id, t.handover_guide_id, ext, at, "transfer")
                rel.upsert_relation(
                    cur,
                    t.brand_id,
                    t.takeover_guide_id,
                    rel.NewRelation(ext, t.takeover_userid, at, 202, ""),
                    f"transfer:{transfer_id}",
                )
    return get(ctx, user, transfer_id)


def on_transfer_fail(ctx: Context, brand_id: str, event: ev.TransferFailed) -> str:
    """A ``transfer_fail`` callback: the waiting customer's transfer is marked refused / limit with the reason."""
    status, reason = FAIL_REASONS.get(event.fail_reason, ("failed", f"transfer failed: {event.fail_reason}"))
    with ctx.sessions() as s, s.begin():
        ids = [
            tid
            for (tid,) in s.execute(
                select(WeComTransferRow.id).where(
                    WeComTransferRow.brand_id == brand_id,
                    or_(
                        WeComTransferRow.takeover_userid == event.user_id,
                        WeComTransferRow.handover_userid == event.user_id,
                    ),
                )
            ).all()
        ]
        if not ids:
            return "transfer_fail for a transfer siyu did not start; recorded only"
        res = s.execute(
            update(WeComTransferCustomerRow)
            .where(
                WeComTransferCustomerRow.transfer_id.in_(ids),
                WeComTransferCustomerRow.external_userid == event.external_user_id,
                WeComTransferCustomerRow.status == "waiting",
            )
            .values(status=status, reason=reason, updated_at=utcnow())
        )
        n = res.rowcount if isinstance(res, CursorResult) else 0
    return f"transfer of {event.external_user_id} {status}: {event.fail_reason} ({n} row(s))"


def _public(row: WeComTransferRow, totals: dict[str, int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "handover_guide_id": row.handover_guide_id,
        "takeover_guide_id": row.takeover_guide_id,
        "resigned": row.resigned,
        "segment_id": row.segment_id,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "refreshed_at": row.refreshed_at.isoformat() if row.refreshed_at else None,
        "customers": sum(totals.values()),
        "totals": {st: totals.get(st, 0) for st in STATUSES},
    }


def _totals(ctx: Context, ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {i: {} for i in ids}
    with ctx.sessions() as s:
        for tid, st, n in s.execute(
            select(WeComTransferCustomerRow.transfer_id, WeComTransferCustomerRow.status, func.count())
            .where(WeComTransferCustomerRow.transfer_id.in_(ids))
            .group_by(WeComTransferCustomerRow.transfer_id, WeComTransferCustomerRow.status)
        ).all():
            out[str(tid)][str(st)] = int(n)
    return out


def get(ctx: Context, user: User, transfer_id: str, status: str | None = None, limit: int = 500) -> dict[str, Any]:
    """A transfer with totals by status and its customers (``status`` filter; at most ``limit``, ≤ 2,000)."""
    if status is not None and status not in STATUSES:
        raise SiyuError(f"status must be one of {', '.join(STATUSES)}", "status")
    if not 1 <= limit <= 2000:
        raise SiyuError("limit must be 1..2000", "limit")
    row = _row(ctx, user, transfer_id)
    with ctx.sessions() as s:
        q = select(WeComTransferCustomerRow).where(WeComTransferCustomerRow.transfer_id == transfer_id)
        if status is not None:
            q = q.where(WeComTransferCustomerRow.status == status)
        customers = [
            {
                "external_userid": c.external_userid,
                "customer_id": c.customer_id,
                "status": c.status,
                "errcode": c.errcode,
                "reason": c.reason,
                "takeover_at": c.takeover_at.isoformat() if c.takeover_at else None,
            }
            for c in s.scalars(q.order_by(WeComTransferCustomerRow.external_userid).limit(limit))
        ]
    return {**_public(row, _totals(ctx, [transfer_id])[transfer_id]), "customer_rows": customers}


def list_transfers(ctx: Context, user: User, limit: int = 100) -> list[dict[str, Any]]:
    """Recent transfers (newest first) with totals; a guide sees the ones they hand over or take over."""
    if not 1 <= limit <= 500:
        raise SiyuError("limit must be 1..500", "limit")
    with ctx.sessions() as s:
        q = select(WeComTransferRow).where(WeComTransferRow.brand_id == user.brand_id)
        if user.role == Role.GUIDE:
            q = q.where(
                or_(
                    WeComTransferRow.handover_guide_id == user.guide_id,
                    WeComTransferRow.takeover_guide_id == user.guide_id,
                )
            )
        rows = list(s.scalars(q.order_by(WeComTransferRow.created_at.desc()).limit(limit)))
        for r in rows:
            s.expunge(r)
    totals = _totals(ctx, [r.id for r in rows])
    return [_public(r, totals[r.id]) for r in rows]


def counts(rows: list[dict[str, Any]]) -> Counter[str]:
    """Customers by status over transfers (for charts)."""
    out: Counter[str] = Counter()
    for r in rows:
        out.update(r["totals"])
    return out
