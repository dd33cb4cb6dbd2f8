"""Delivering journey side effects after their step committed, each by its step's idempotency key.

send → the channel's ``Sender`` (``siyu.services.journeys.senders``); tag / attribute → the warehouse (idempotent
writes: a tag row keyed by identifier and tag, an attribute set to a value); coupon → the ``coupon`` sender if a
coupon connector registered one, else a grant of the reward ``coupon`` names (``siyu.services.rewards``). A failed
send is retried on later ticks up to ``MAX_ATTEMPTS`` times with the same key, then marked failed. Worker processes
claim disjoint effects (status ``sending`` until a lease ends; a killed worker's claims are taken again after
``LEASE_SECONDS``).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, or_, select, update

from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys.senders import OutboundMessage, flush_senders, sender_for
from siyu.stores.state.journey_models import JourneyEffectRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
CLAIMED = "sending"  # taken by a worker until done_at (the lease's end)
LEASE_SECONDS = 30
WAREHOUSE_KINDS = ("tag", "attribute")  # effects written to the warehouse
_DELIVER = threading.Lock()  # one deliverer per process; processes claim disjoint effects (``_claim``)


def _tag_id(name: str) -> str:
    return "journey:" + name[:180]


def apply_tag(ctx: Context, brand_id: str, customer_id: str, tag: str, op: str, now: datetime) -> None:
    """Add (to one identifier of the customer) or remove (from all of them) a journey tag."""
    tag_id = _tag_id(tag)
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        if op == "remove":
            cur.execute(
                "DELETE FROM identifier_tags WHERE brand_id = ? AND tag_id IN (?, ?) AND (id_type, id_value) IN "
                "(SELECT id_type, id_value FROM identities WHERE brand_id = ? AND customer_id = ?)",
                [brand_id, tag_id, tag, brand_id, customer_id],
            )
            return
        cur.execute(
            "INSERT INTO tags (brand_id, tag_id, name, source, rule) VALUES (?, ?, ?, 'journey', NULL) "
            "ON CONFLICT DO NOTHING",
            [brand_id, tag_id, tag],
        )
        ident = cur.execute(
            "SELECT id_type, id_value FROM identities WHERE brand_id = ? AND customer_id = ? "
            "ORDER BY id_type = 'external_userid' DESC, id_type, id_value LIMIT 1",
            [brand_id, customer_id],
        ).fetchone()
        if ident is None:
            raise ValueError(f"customer {customer_id!r} has no identifier to tag")
        cur.execute(
            "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
            "VALUES (?, ?, ?, ?, 'journey', ?) ON CONFLICT DO NOTHING",
            [brand_id, ident[0], ident[1], tag_id, now],
        )


def apply_attribute(ctx: Context, brand_id: str, customer_id: str, field: str, value: Any, now: datetime) -> None:
    """Set ``traits.<key>`` of a customer (idempotent)."""
    patch = json.dumps({field.removeprefix("traits."): value}, ensure_ascii=False)
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.execute(
            "UPDATE customers SET traits = json_merge_patch(coalesce(traits, '{}'::JSON), ?::JSON), updated_at = ? "
            "WHERE brand_id = ? AND customer_id = ?",
            [patch, now, brand_id, customer_id],
        )


def _grant_coupon(ctx: Context, row: JourneyEffectRow) -> tuple[bool, str | None, bool]:
    """The coupon action through the rewards service: ``coupon`` is the reward id, the step's key the grant's
    idempotency key (a repeated delivery returns the first grant); an unavailable reward is a final failure; a
    name that is no reward of the catalogue is recorded only."""
    from siyu.services import rewards

    reward_id = str(row.payload.get("coupon", ""))
    try:
        known = rewards.get_reward(ctx, row.brand_id, reward_id)
    except SiyuError:  # not a reward id at all (a template's coupon name)
        known = None
    if known is None:
        return True, f"no reward {reward_id!r} in the catalogue: recorded only", False
    try:
        g = rewards.grant(
            ctx,
            row.brand_id,
            reward_id,
            row.customer_id,
            source="journey",
            source_ref=f"{row.journey_id}:{row.node_id}",
            idempotency_key=row.key,
        )
    except rewards.RewardUnavailable as err:
        return False, f"{err.reason}: {err.message}", True
    return True, f"grant {g.get('grant_id')}", False


def _deliver(ctx: Context, row: JourneyEffectRow, now: datetime) -> tuple[bool, str | None, bool]:
    p = row.payload
    if row.kind == "tag":
        apply_tag(ctx, row.brand_id, row.customer_id, p["tag"], p.get("op", "add"), now)
        return True, None, False
    if row.kind == "attribute":
        apply_attribute(ctx, row.brand_id, row.customer_id, p["field"], p.get("value"), now)
        return True, None, False
    channel = row.channel or row.kind
    sender = sender_for(channel)
    if sender is None:
        if row.kind == "coupon":
            return _grant_coupon(ctx, row)
        return False, f"no sender registered for channel {channel!r}; configure its connector", False
    msg = OutboundMessage(
        key=row.key,
        brand_id=row.brand_id,
        journey_id=row.journey_id,
        node_id=row.node_id,
        customer_id=row.customer_id,
        channel=channel,
        template=str(p.get("template", p.get("coupon", ""))),
        content=str(p.get("content", "")),
    )
    res = sender.send(ctx, msg)
    return res.ok, res.error, res.final


def deliver_effects(ctx: Context, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Deliver pending effects (oldest first); returns counts by outcome."""
    now = now or utcnow()
    with _DELIVER:
        counts = _deliver_batch(ctx, now, limit)
        try:
            counts["flushed"] = flush_senders(ctx)  # batches (WeCom mass sends) go out once their step is done
        except Exception:  # a failing batch must not stop deliveries; the next call tries again
            log.exception("flushing journey send batches failed")
        return counts


def _claim(ctx: Context, limit: int) -> tuple[list[JourneyEffectRow], datetime]:
    """Take pending effects (and those whose claim ran out: a killed worker's) for this worker: status
    ``sending`` with ``done_at`` = the lease's end (a random microsecond makes it this claim's token)."""
    real = utcnow()
    lease = (real + timedelta(seconds=LEASE_SECONDS)).replace(microsecond=random.randrange(1_000_000))
    E = JourneyEffectRow
    free = or_(E.status == "pending", and_(E.status == CLAIMED, E.done_at < real))
    q = select(E.key).where(free)
    if ctx.warehouse.read_only:  # a worker that cannot write the warehouse leaves tags / attributes to one that can
        q = q.where(E.kind.not_in(WAREHOUSE_KINDS))
    with ctx.sessions() as s, s.begin():
        keys = list(s.scalars(q.order_by(E.created_at).limit(limit)))
        if not keys:
            return [], lease
        s.execute(update(E).where(E.key.in_(keys), free).values(status=CLAIMED, done_at=lease))
    with ctx.sessions() as s:
        rows = list(s.scalars(select(E).where(E.key.in_(keys), E.status == CLAIMED, E.done_at == lease)))
        for r in rows:
            s.expunge(r)
    rows.sort(key=lambda r: (r.created_at, r.key))
    return rows, lease


def _deliver_batch(ctx: Context, now: datetime, limit: int) -> dict[str, int]:
    rows, lease = _claim(ctx, limit)
    counts = {"done": 0, "failed": 0, "retry": 0}
    results: list[dict[str, Any]] = []
    for row in rows:
        try:
            ok, error, final = _deliver(ctx, row, now)
        except Exception as exc:  # a failing effect must not stop the others
            log.exception("journey effect %s failed", row.key)
            ok, error, final = False, f"{type(exc).__name__}: {exc}", False
        attempts = row.attempts + 1
        status = "done" if ok else ("failed" if final or attempts >= MAX_ATTEMPTS else "pending")
        counts["done" if ok else ("failed" if status == "failed" else "retry")] += 1
        results.append(
            {"k": row.key, "a": attempts, "st": status, "err": error, "at": now if status != "pending" else None}
        )
    if results:  # one transaction for the batch; a row whose claim ran out and was taken by another is left alone
        t: Table = JourneyEffectRow.__table__  # type: ignore[assignment]
        stmt = (
            update(t)
            .where(t.c.key == bindparam("k"), t.c.status == CLAIMED, t.c.done_at == lease)
            .values(attempts=bindparam("a"), status=bindparam("st"), error=bindparam("err"), done_at=bindparam("at"))
        )
        with ctx.sessions() as s, s.begin():
            s.connection().execute(stmt, results)
    return counts
