"""Mass sends (群发) to a segment: one ``add_msg_template`` task per guide and chunk, the brand's daily cap first.

``create`` decides every recipient once and durably (state DB): the segment's current members who have an
active relation (one guide per customer: the most recent relation) are split by the brand's per-customer daily
marketing cap (``siyu.domain.contact_cap``, shared with SMS/email; ``messaging`` settings ``marketing_daily_cap``,
default 1/day) — capped customers are recorded and reported, never sent. The rest become tasks of ≤ 10,000
customers (group sends: ≤ 2,000 chats) per guide. ``dispatch`` calls ``add_msg_template`` for each task still
pending (re-running it sends nothing twice); ``refresh`` reads each task's confirmation (the guide must tap 发送
in WeCom) and per-recipient results (``get_groupmsg_task`` / ``get_groupmsg_send_result``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import CursorResult, func, insert, select, update

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError, WeComUnavailable
from siyu.domain.contact_cap import split_by_cap
from siyu.domain.models import Role
from siyu.services import audit, segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, NotFound, SiyuError
from siyu.services.messaging import cap_lock, marketing_cap
from siyu.services.messaging.outbox import marketing_counts
from siyu.services.wecom import audience
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.models import utcnow
from siyu.stores.state.wecom_ops_models import WeComMassRecipientRow, WeComMassSendRow, WeComMassTaskRow

MAX_CONTENT_BYTES = 4000
MAX_ATTACHMENTS = 9
SINGLE_CHUNK = 10_000  # add_msg_template: external_userid ≤ 10,000
GROUP_CHUNK = 2_000  # chat_id_list ≤ 2,000
MAX_RECIPIENTS = 200_000
HOLDING = ("queued", "sent", "unsent", "other_mass")  # statuses that count against the customer's daily cap
RESULT = {0: "queued", 1: "sent", 2: "not_contact", 3: "other_mass"}  # get_groupmsg_send_result status
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")


def _editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides confirm mass sends in WeCom; an operator or admin creates them", "role")


def check_content(content: str, attachments: list[dict[str, Any]]) -> None:
    """Text ≤ 4000 bytes (UTF-8, WeCom's limit), ≤ 9 attachments of a known type, and something to send."""
    size = len(content.encode())
    if size > MAX_CONTENT_BYTES:
        raise SiyuError(
            f"content is {size} bytes in UTF-8; WeCom allows at most {MAX_CONTENT_BYTES} bytes "
            "(about 1,333 Chinese characters): shorten the text",
            "content",
        )
    if len(attachments) > MAX_ATTACHMENTS:
        raise SiyuError(f"at most {MAX_ATTACHMENTS} attachments (got {len(attachments)})", "attachments")
    for i, a in enumerate(attachments):
        if not isinstance(a, dict) or a.get("msgtype") not in ATTACHMENT_TYPES:
            raise SiyuError(f"attachments[{i}].msgtype must be one of {', '.join(ATTACHMENT_TYPES)}", "attachments")
    if not content.strip() and not attachments:
        raise SiyuError("a mass send needs content or at least one attachment", "content")


def existing(ctx: Context, brand_id: str, key: str) -> str | None:
    with ctx.sessions() as s:
        return s.scalar(
            select(WeComMassSendRow.id).where(
                WeComMassSendRow.brand_id == brand_id, WeComMassSendRow.idempotency_key == key
            )
        )


def wecom_counts(ctx: Context, brand_id: str, day: str, customer_ids: list[str]) -> dict[str, int]:
    """WeCom mass sends each customer holds a cap slot for on ``day`` (for other channels' cap checks too)."""
    out: Counter[str] = Counter()
    with ctx.sessions() as s:
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            for cid, n in s.execute(
                select(WeComMassRecipientRow.customer_id, func.count())
                .where(
                    WeComMassRecipientRow.brand_id == brand_id,
                    WeComMassRecipientRow.cap_day == day,
                    WeComMassRecipientRow.status.in_(HOLDING),
                    WeComMassRecipientRow.customer_id.in_(chunk),
                )
                .group_by(WeComMassRecipientRow.customer_id)
            ).all():
                out[str(cid)] += int(n)
    return dict(out)


def _group_targets(ctx: Context, brand_id: str, segment_id: str) -> list[tuple[str, str, str]]:
    """(chat_id, guide_id, userid) of the guides' customer groups with at least one current segment member."""
    rows = (
        ctx.warehouse.cursor()
        .execute(
            "SELECT DISTINCT t.touchpoint_id, t.guide_id, g.wecom_userid FROM touchpoints t "
            "JOIN guides g ON g.brand_id = t.brand_id AND g.guide_id = t.guide_id "
            "JOIN group_members m ON m.brand_id = t.brand_id AND m.touchpoint_id = t.touchpoint_id "
            "AND m.left_at IS NULL "
            "JOIN identities i ON i.brand_id = m.brand_id AND i.id_type = m.id_type AND i.id_value = m.id_value "
            "JOIN segment_members s ON s.brand_id = i.brand_id AND s.customer_id = i.customer_id "
            "AND s.segment_id = $s AND s.exited_at IS NULL "
            "WHERE t.brand_id = $b AND t.kind = 'customer_group' AND coalesce(g.wecom_userid, '') <> '' "
            "ORDER BY 1",
            {"b": brand_id, "s": segment_id},
        )
        .fetchall()
    )
    return [(str(c), str(g), str(u)) for c, g, u in rows]


def latest_relation(rows: list[audience.Reach]) -> dict[str, audience.Reach]:
    """One relation per customer: the most recently added (the guide a mass send goes through)."""
    best: dict[str, audience.Reach] = {}
    for r in rows:
        cid = r.customer_id
        if cid and (cid not in best or (r.added_at or utcnow()) > (best[cid].added_at or utcnow())):
            best[cid] = r
    return best


def record(
    ctx: Context,
    brand: str,
    *,
    key: str,
    name: str,
    chat_type: str,
    content: str,
    attachments: list[dict[str, Any]],
    created_by: str,
    single: Sequence[audience.Reach] = (),
    groups: Sequence[tuple[str, str, str]] = (),
    segment_id: str = "",
) -> str:
    """Decide and record a send's recipients and tasks (not yet dispatched); returns the send id.

    ``single``: relations of the customers (chat_type single; one per customer, the latest, is used; the brand's
    daily cap splits them first); ``groups``: (chat_id, guide_id, userid) (chat_type group). The same ``key``
    returns the first send. Mass sends (``create``) and journey WeCom sends both record through here, so the cap
    is decided in one place."""
    found = existing(ctx, brand, key)
    if found is not None:
        return found
    # the cap is decided and recorded in one transaction holding the brand's cap lock (across processes)
    with ctx.sessions() as s, s.begin():
        cap_lock.hold(s, brand)
        found = existing(ctx, brand, key)
        if found is not None:
            return found
        cap = marketing_cap(ctx, brand)
        day = cap.day(utcnow()).isoformat()
        send_id = "ms_" + uuid.uuid4().hex[:20]
        send = WeComMassSendRow(
            id=send_id,
            brand_id=brand,
            name=name[:100],
            segment_id=segment_id,
            chat_type=chat_type,
            content=content,
            attachments=attachments,
            idempotency_key=key,
            cap_per_day=cap.per_day,
            cap_day=day,
            status="created",
            created_by=created_by,
        )
        recipients: list[dict[str, Any]] = []
        by_guide: dict[tuple[str, str], list[str]] = {}
        best: dict[str, audience.Reach] = {}
        if chat_type == "single":
            best = latest_relation(list(single))
            if len(best) > MAX_RECIPIENTS:
                raise SiyuError(f"{len(best)} recipients exceed {MAX_RECIPIENTS}; split the segment", "segment_id")
            split = split_by_cap(sorted(best), marketing_counts(ctx, brand, sorted(best), day), cap)
            for cid in split.capped:
                r = best[cid]
                recipients.append(dict(customer_id=cid, target=r.external_userid, guide_id=r.guide_id, status="capped"))
            for cid in split.allowed:
                by_guide.setdefault((best[cid].guide_id, best[cid].userid), []).append(cid)
            chunk_size = SINGLE_CHUNK
        else:
            for chat, guide, userid in groups:
                by_guide.setdefault((guide, userid), []).append(chat)
            chunk_size = GROUP_CHUNK
        s.add(send)
        s.flush()
        for (guide, userid), items in sorted(by_guide.items()):
            for n, start in enumerate(range(0, len(items), chunk_size)):
                part = items[start : start + chunk_size]
                task = WeComMassTaskRow(
                    send_id=send_id, guide_id=guide, userid=userid, chunk=n, targets=len(part), stats={}
                )
                s.add(task)
                s.flush()
                for item in part:
                    if chat_type == "single":
                        r = best[item]
                        recipients.append(
                            dict(customer_id=item, target=r.external_userid, guide_id=guide, task_id=task.id)
                        )
                    else:
                        recipients.append(dict(customer_id="", target=item, guide_id=guide, task_id=task.id))
        base = {"send_id": send_id, "brand_id": brand, "cap_day": day if chat_type == "single" else ""}
        if recipients:
            s.execute(
                insert(WeComMassRecipientRow),
                [{**base, "status": "queued", "task_id": None, **r} for r in recipients],
            )
    return send_id


def join_batch(
    ctx: Context, brand: str, *, key: str, name: str, content: str, reach: audience.Reach, created_by: str
) -> str:
    """Add one customer to the collecting single-chat send ``key`` (created on first use); returns the
    customer's recipient status there: ``queued`` (holds today's cap slot; sent by ``seal_batch``), ``capped``,
    or the status they already had (joining twice changes nothing)."""
    send_id = record(
        ctx, brand, key=key, name=name, chat_type="single", content=content, attachments=[], created_by=created_by
    )
    with ctx.sessions() as s, s.begin():
        cap_lock.hold(s, brand)
        had = s.scalar(
            select(WeComMassRecipientRow.status).where(
                WeComMassRecipientRow.send_id == send_id, WeComMassRecipientRow.target == reach.external_userid
            )
        )
        if had is not None:
            return str(had)
        cap = marketing_cap(ctx, brand)
        day = cap.day(utcnow()).isoformat()
        held = marketing_counts(ctx, brand, [reach.customer_id], day).get(reach.customer_id, 0)
        status = "queued" if cap.remaining(held) > 0 else "capped"
        s.execute(
            insert(WeComMassRecipientRow),
            [
                {
                    "send_id": send_id,
                    "brand_id": brand,
                    "customer_id": reach.customer_id,
                    "target": reach.external_userid,
                    "guide_id": reach.guide_id,
                    "task_id": None,
                    "cap_day": day,
                    "status": status,
                }
            ],
        )
        return status


def seal_batch(ctx: Context, brand: str, key: str) -> int:
    """Make WeCom tasks (per guide, ≤ 10,000 each) of the batch's recipients not yet in a task; returns how many
    tasks were made (``dispatch`` sends them)."""
    send_id = existing(ctx, brand, key)
    if send_id is None:
        return 0
    made = 0
    with ctx.sessions() as s, s.begin():
        cap_lock.hold(s, brand)  # one process at a time makes the batch's tasks
        loose = s.execute(
            select(WeComMassRecipientRow.id, WeComMassRecipientRow.guide_id)
            .where(
                WeComMassRecipientRow.send_id == send_id,
                WeComMassRecipientRow.task_id.is_(None),
                WeComMassRecipientRow.status == "queued",
            )
            .order_by(WeComMassRecipientRow.id)
        ).all()
        by_guide: dict[str, list[int]] = {}
        for rid, guide in loose:
            by_guide.setdefault(str(guide), []).append(int(rid))
        for guide, ids in sorted(by_guide.items()):
            userid = audience.guide_userid(ctx, brand, guide)
            last = s.scalar(
                select(func.max(WeComMassTaskRow.chunk)).where(
                    WeComMassTaskRow.send_id == send_id, WeComMassTaskRow.guide_id == guide
                )
            )
            for n, start in enumerate(range(0, len(ids), SINGLE_CHUNK), start=(-1 if last is None else last) + 1):
                part = ids[start : start + SINGLE_CHUNK]
                task = WeComMassTaskRow(
                    send_id=send_id, guide_id=guide, userid=userid, chunk=n, targets=len(part), stats={}
                )
                s.add(task)
                s.flush()
                s.execute(
                    update(WeComMassRecipientRow).where(WeComMassRecipientRow.id.in_(part)).values(task_id=task.id)
                )
                made += 1
    return made


def create(
    ctx: Context,
    user: User,
    segment_id: str,
    content: str,
    name: str = "",
    chat_type: str = "single",
    attachments: list[dict[str, Any]] | None = None,
    idempotency_key: str | None = None,
    dispatch_now: bool = True,
) -> dict[str, Any]:
    """Record a mass send to the segment's current members (cap applied first) and, by default, dispatch it.
    The same ``idempotency_key`` returns the first send."""
    _editor(user)
    attachments = list(attachments or [])
    check_content(content, attachments)
    if chat_type not in ("single", "group"):
        raise SiyuError(
            f"chat_type must be single (customers) or group (customer groups), not {chat_type!r}", "chat_type"
        )
    if len(name) > 100:
        raise SiyuError("name is at most 100 characters", "name")
    key = idempotency_key or uuid.uuid4().hex
    if len(key) > 200:
        raise SiyuError("idempotency_key is at most 200 characters", "idempotency_key")
    brand = user.brand_id
    found = existing(ctx, brand, key)
    if found is not None:
        return get(ctx, user, found)
    seg = segments.get_segment(ctx, user, segment_id)
    client_for(get_config(ctx, brand))  # the WeCom connection must be configured before anything is recorded
    audience.fresh_segment(ctx, brand, segment_id)
    single = audience.relations(ctx, brand, segment_id=segment_id) if chat_type == "single" else []
    groups = _group_targets(ctx, brand, segment_id) if chat_type == "group" else []
    send_id = record(
        ctx,
        brand,
        key=key,
        name=name or seg.name,
        chat_type=chat_type,
        content=content,
        attachments=attachments,
        created_by=user.username,
        single=single,
        groups=groups,
        segment_id=segment_id,
    )
    detail = {"segment_id": segment_id, "chat_type": chat_type, "name": name or seg.name}
    audit.record(ctx, brand, user, "mass_send.create", send_id, detail)
    if dispatch_now:
        dispatch(ctx, user, send_id)
    return get(ctx, user, send_id)


def _row(ctx: Context, brand_id: str, send_id: str) -> WeComMassSendRow:
    with ctx.sessions() as s:
        row = s.get(WeComMassSendRow, send_id)
        if row is None or row.brand_id != brand_id:
            raise NotFound(f"mass send {send_id!r} not found", "send_id")
        s.expunge(row)
        return row


def dispatch(ctx: Context, user: User, send_id: str, client: WeComClient | None = None) -> dict[str, int]:
    """Create the WeCom task of every pending chunk (one commit per task: a re-run skips created ones)."""
    _editor(user)
    send = _row(ctx, user.brand_id, send_id)
    client = client or client_for(get_config(ctx, user.brand_id))
    with ctx.sessions() as s:
        tasks = list(
            s.scalars(
                select(WeComMassTaskRow).where(
                    WeComMassTaskRow.send_id == send_id, WeComMassTaskRow.status.in_(("pending", "error"))
                )
            )
        )
        for t in tasks:
            s.expunge(t)
    done = Counter[str]()
    for t in tasks:
        with ctx.sessions() as s, s.begin():  # claim: one dispatcher per task, and a crash leaves it 'sending'
            claimed = s.execute(
                update(WeComMassTaskRow)
                .where(WeComMassTaskRow.id == t.id, WeComMassTaskRow.status.in_(("pending", "error")))
                .values(status="sending")
            )
            if not isinstance(claimed, CursorResult) or claimed.rowcount != 1:
                continue
            targets = list(
                s.scalars(
                    select(WeComMassRecipientRow.target).where(
                        WeComMassRecipientRow.task_id == t.id, WeComMassRecipientRow.status == "queued"
                    )
                )
            )
        try:
            single = send.chat_type == "single"
            out = client.add_msg_template(
                t.userid,
                external_userids=targets if single else (),
                content=send.content,
                attachments=send.attachments,
                chat_ids=() if single else targets,
            )
        except WeComError as err:
            # WeCom answered with an error: nothing was created, a re-run may try again. No answer at all: the
            # task may exist in WeCom, so it is never re-sent automatically (a person checks 群发 in WeCom).
            unknown = isinstance(err, WeComUnavailable)
            msg = f"outcome unknown, check WeCom before re-sending: {err.message}" if unknown else err.message
            with ctx.sessions() as s, s.begin():
                s.execute(
                    update(WeComMassTaskRow)
                    .where(WeComMassTaskRow.id == t.id)
                    .values(status="unknown" if unknown else "error", error=msg)
                )
            done["unknown" if unknown else "error"] += 1
            continue
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(WeComMassTaskRow)
                .where(WeComMassTaskRow.id == t.id)
                .values(status="created", msgid=out.msgid, error=None, stats={"failed": len(out.fail_list)})
            )
            if out.fail_list:
                s.execute(
                    update(WeComMassRecipientRow)
                    .where(WeComMassRecipientRow.task_id == t.id, WeComMassRecipientRow.target.in_(out.fail_list))
                    .values(status="failed")
                )
        done["created"] += 1
    with ctx.sessions() as s, s.begin():
        errors = s.scalar(
            select(func.count()).where(
                WeComMassTaskRow.send_id == send_id, WeComMassTaskRow.status.in_(("error", "unknown", "sending"))
            )
        )
        s.execute(
            update(WeComMassSendRow)
            .where(WeComMassSendRow.id == send_id)
            .values(status="partial" if errors else "dispatched")
        )
    if user.username != "journey":  # a journey's sends are configured (and published) by a person beforehand
        audit.record(ctx, user.brand_id, user, "mass_send.dispatch", send_id, {"dispatched": dict(done)})
    return dict(done)


def refresh(ctx: Context, user: User, send_id: str, client: WeComClient | None = None) -> dict[str, Any]:
    """Read each task's confirmation and, once confirmed, its per-recipient results from WeCom."""
    _editor(user)
    _row(ctx, user.brand_id, send_id)
    client = client or client_for(get_config(ctx, user.brand_id))
    with ctx.sessions() as s:
        tasks = [
            (t.id, t.msgid, t.userid)
            for t in s.scalars(
                select(WeComMassTaskRow).where(WeComMassTaskRow.send_id == send_id, WeComMassTaskRow.msgid != "")
            )
        ]
    for task_id, msgid, userid in tasks:
        members = {str(m.get("userid")): m for m in client.get_groupmsg_task(msgid)}
        m = members.get(userid) or {}
        confirmed = int(m.get("status", 0)) == 2
        results: dict[str, int] = {}
        if confirmed:
            for r in client.get_groupmsg_send_result(msgid, userid):
                results[str(r.get("external_userid") or r.get("chat_id"))] = int(r.get("status", 0))
        with ctx.sessions() as s, s.begin():
            by_status: dict[str, list[str]] = {}
            for target, st in results.items():
                by_status.setdefault(RESULT.get(st, "queued"), []).append(target)
            for status, targets in by_status.items():
                for i in range(0, len(targets), 500):
                    s.execute(
                        update(WeComMassRecipientRow)
                        .where(
                            WeComMassRecipientRow.task_id == task_id,
                            WeComMassRecipientRow.status != "failed",
                            WeComMassRecipientRow.target.in_(targets[i : i + 500]),
                        )
                        .values(status="unsent" if status == "queued" else status)
                    )
            counts = dict(
                s.execute(
                    select(WeComMassRecipientRow.status, func.count())
                    .where(WeComMassRecipientRow.task_id == task_id)
                    .group_by(WeComMassRecipientRow.status)
                ).all()
            )
            s.execute(
                update(WeComMassTaskRow)
                .where(WeComMassTaskRow.id == task_id)
                .values(
                    confirm=2 if confirmed else 0,
                    confirmed_at=utcnow() if confirmed else None,
                    stats={str(k): int(v) for k, v in counts.items()},
                )
            )
    with ctx.sessions() as s, s.begin():
        s.execute(update(WeComMassSendRow).where(WeComMassSendRow.id == send_id).values(refreshed_at=utcnow()))
    return get(ctx, user, send_id)


def _totals(ctx: Context, send_ids: list[str], guide_id: str | None = None) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {sid: {} for sid in send_ids}
    with ctx.sessions() as s:
        q = (
            select(WeComMassRecipientRow.send_id, WeComMassRecipientRow.status, func.count())
            .where(WeComMassRecipientRow.send_id.in_(send_ids))
            .group_by(WeComMassRecipientRow.send_id, WeComMassRecipientRow.status)
        )
        if guide_id is not None:
            q = q.where(WeComMassRecipientRow.guide_id == guide_id)
        for sid, st, n in s.execute(q).all():
            out[str(sid)][str(st)] = int(n)
    return out


def _public(row: WeComMassSendRow, totals: dict[str, int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "segment_id": row.segment_id,
        "chat_type": row.chat_type,
        "content": row.content,
        "status": row.status,
        "cap_per_day": row.cap_per_day,
        "cap_day": row.cap_day,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "refreshed_at": row.refreshed_at.isoformat() if row.refreshed_at else None,
        "recipients": sum(totals.values()),
        "totals": totals,
    }


def get(ctx: Context, user: User, send_id: str) -> dict[str, Any]:
    """A send with its tasks (confirmation, stats, errors), totals by recipient status and the capped customers.
    A guide sees only their own tasks and recipients."""
    row = _row(ctx, user.brand_id, send_id)
    mine = user.guide_id if user.role == Role.GUIDE else None
    if user.role == Role.GUIDE and mine is None:
        raise Forbidden("this guide login is not bound to a guide", "role")
    with ctx.sessions() as s:
        q = (
            select(WeComMassTaskRow)
            .where(WeComMassTaskRow.send_id == send_id)
            .order_by(WeComMassTaskRow.guide_id, WeComMassTaskRow.chunk)
        )
        if mine is not None:
            q = q.where(WeComMassTaskRow.guide_id == mine)
        tasks = [
            {
                "id": t.id,
                "guide_id": t.guide_id,
                "userid": t.userid,
                "chunk": t.chunk,
                "targets": t.targets,
                "status": t.status,
                "msgid": t.msgid,
                "confirmed": t.confirm == 2,
                "confirmed_at": t.confirmed_at.isoformat() if t.confirmed_at else None,
                "stats": t.stats or {},
                "error": t.error,
            }
            for t in s.scalars(q)
        ]
        cq = (
            select(WeComMassRecipientRow.customer_id, WeComMassRecipientRow.guide_id)
            .where(WeComMassRecipientRow.send_id == send_id, WeComMassRecipientRow.status == "capped")
            .order_by(WeComMassRecipientRow.customer_id)
            .limit(200)
        )
        if mine is not None:
            cq = cq.where(WeComMassRecipientRow.guide_id == mine)
        capped = [{"customer_id": c, "guide_id": g} for c, g in s.execute(cq).all()]
    out = _public(row, _totals(ctx, [send_id], mine)[send_id])
    return {**out, "tasks": tasks, "capped_sample": capped}


def list_sends(ctx: Context, user: User, limit: int = 100) -> list[dict[str, Any]]:
    """Recent mass sends (newest first) with totals by recipient status (a guide: their own recipients)."""
    if not 1 <= limit <= 500:
        raise SiyuError("limit must be 1..500", "limit")
    mine = user.guide_id if user.role == Role.GUIDE else None
    with ctx.sessions() as s:
        rows = list(
            s.scalars(
                select(WeComMassSendRow)
                .where(WeComMassSendRow.brand_id == user.brand_id)
                .order_by(WeComMassSendRow.created_at.desc(), WeComMassSendRow.id)
                .limit(limit)
            )
        )
        for r in rows:
            s.expunge(r)
    totals = _totals(ctx, [r.id for r in rows], mine)
    return [_public(r, totals[r.id]) for r in rows]
