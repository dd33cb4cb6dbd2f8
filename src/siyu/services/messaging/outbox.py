"""The messaging outbox: one ``send`` use case over SMS, email and webhooks, delivered by the background queue.

A send is acknowledged once its row is committed (``status = queued``); the Huey consumer (and, as a safety net,
the ``messaging.outbox`` schedule) delivers it. A worker *claims* a row with one conditional UPDATE
(queued/failed → sending), so two workers never send the same message. Outcomes:

* sent — the vendor's id is kept (Alibaba BizId, SMTP Message-ID, webhook delivery id);
* failed — a retryable error: tried again at ``next_attempt_at`` (30 s × 2^(attempt-1), or the vendor's wait);
* dead — a final error, retries used up, or an answer lost mid-send (the vendor may have sent it: never
  retried automatically). Dead letters are listed and can be re-sent (``resend``).

A row left ``sending`` by a killed worker is recovered after ``STUCK_AFTER`` seconds: webhooks are re-delivered
with the same ``X-Siyu-Delivery`` id (receivers de-duplicate on it), SMS/email become dead letters (their vendors
cannot de-duplicate, so a person decides). Idempotency keys make a repeated request return the first message.
Marketing messages take a slot of the brand's daily cap per customer (``siyu.domain.contact_cap``).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.contact_cap import CapSplit, check_purpose, split_by_cap
from siyu.domain.identity import IdentifierError, normalize_phone
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound, SiyuError
from siyu.services.messaging import cap_lock, providers
from siyu.stores.state.messaging_models import OutboxRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)

CHANNELS: tuple[str, ...] = ("sms", "email", "webhook")
STATUSES: tuple[str, ...] = ("queued", "sending", "sent", "failed", "dead")
MAX_ATTEMPTS = 5
BASE_DELAY = 30.0  # seconds before the first retry; doubles each attempt
STUCK_AFTER = 300.0  # seconds a row may stay 'sending' before recovery
MAX_PARAMS = 30
MAX_PARAM_CHARS = 500
MAX_EMAIL_CHARS = 256 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_TEMPLATE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
TARGET = "siyu.services.messaging.outbox:deliver"


class CapReached(Conflict):
    """The customer already got the brand's daily number of marketing messages."""


@dataclass
class SendRequest:
    """What to send. SMS: ``template`` + ``params`` (+ ``sign_name``); email: ``subject`` + ``text`` (+ ``html``);
    webhook: ``topic`` + ``payload``. ``recipient`` may be left out when ``customer_id`` is given (their phone or
    email is used)."""

    channel: str
    recipient: str | None = None
    customer_id: str | None = None
    purpose: str = "transactional"
    template: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    sign_name: str | None = None
    subject: str = ""
    text: str = ""
    html: str | None = None
    topic: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


def as_dict(row: OutboxRow) -> dict[str, Any]:
    """The API view of a message."""

    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {
        "id": row.id,
        "channel": row.channel,
        "purpose": row.purpose,
        "recipient": row.recipient,
        "customer_id": row.customer_id,
        "template": row.template,
        "content": row.content,
        "idempotency_key": row.idempotency_key,
        "status": row.status,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "error_code": row.error_code,
        "error": row.error,
        "vendor_id": row.vendor_id,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "sent_at": iso(row.sent_at),
    }


# ---------------------------------------------------------------- validation


def _customer_contact(ctx: Context, user: User, customer_id: str) -> tuple[str, str | None, str | None]:
    """(current customer id, phone, email) of a customer the user may see."""
    from siyu.services.customers import _table, resolve_customer

    cid = resolve_customer(ctx, user, customer_id)
    cust = _table(ctx, "customers")
    rows = cust.filter(cust.brand_id == user.brand_id, cust.customer_id == cid).select("phone", "email")
    rec = rows.to_pyarrow().to_pylist()
    phone, email = (rec[0]["phone"], rec[0]["email"]) if rec else (None, None)
    return cid, phone, email


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except IdentifierError as exc:
        raise SiyuError(str(exc), "recipient") from exc


def _content(req: SendRequest) -> tuple[str, dict[str, Any]]:
    """(template, content) of a request, checked."""
    if req.channel == "sms":
        if not _TEMPLATE.match(req.template or ""):
            raise SiyuError("template must be the vendor's template code, e.g. SMS_71390007", "template")
        if not isinstance(req.params, dict) or len(req.params) > MAX_PARAMS:
            raise SiyuError(f"params must be an object of at most {MAX_PARAMS} template variables", "params")
        params = {str(k): str(v) for k, v in req.params.items()}
        if any(len(v) > MAX_PARAM_CHARS for v in params.values()):
            raise SiyuError(f"a template variable is longer than {MAX_PARAM_CHARS} characters", "params")
        content: dict[str, Any] = {"params": params}
        if req.sign_name:
            content["sign_name"] = req.sign_name[:100]
        return req.template, content
    if req.channel == "email":
        subject = (req.subject or "").strip()
        if not subject or len(subject) > 200 or "\n" in subject:
            raise SiyuError("subject is required: one line of at most 200 characters", "subject")
        if not req.text.strip():
            raise SiyuError("text is required (the plain-text body; html is optional)", "text")
        if len(req.text) + len(req.html or "") > MAX_EMAIL_CHARS:
            raise SiyuError(f"the body is too long (text + html at most {MAX_EMAIL_CHARS} characters)", "text")
        return subject, {"text": req.text, **({"html": req.html} if req.html else {})}
    from siyu.services.brand_webhooks import TOPICS

    if req.topic not in TOPICS:
        raise SiyuError(f"topic {req.topic!r} is not known; one of {', '.join(TOPICS)}", "topic")
    if not isinstance(req.payload, dict):
        raise SiyuError("payload must be a JSON object", "payload")
    if len(json.dumps(req.payload, default=str).encode()) > MAX_PAYLOAD_BYTES:
        raise SiyuError(f"payload is larger than {MAX_PAYLOAD_BYTES // 1024} KB", "payload")
    return req.topic, {"payload": req.payload}


def _check_provider(ctx: Context, brand_id: str, channel: str) -> None:
    if channel == "sms":
        providers.sms_provider(ctx, brand_id)
    elif channel == "email":
        providers.smtp_settings(ctx, brand_id)


def _recipient(ctx: Context, user: User, req: SendRequest) -> tuple[str, str | None]:
    """(normalised recipient, customer id) — guides only to their own customers' own phone / email."""
    if req.channel == "webhook":
        if user.role == Role.GUIDE:
            raise Forbidden("guides cannot send webhooks", "channel")
        return req.topic, None
    cid = phone = email = None
    if req.customer_id:
        cid, phone, email = _customer_contact(ctx, user, req.customer_id)
    elif user.role == Role.GUIDE:
        raise SiyuError("guides send to their own customers: give customer_id", "customer_id")
    known = phone if req.channel == "sms" else email
    raw = (req.recipient or "").strip() or known
    if not raw:
        what = "phone" if req.channel == "sms" else "email"
        raise SiyuError(f"recipient is required (the customer has no {what} on file)", "recipient")
    if req.channel == "sms":
        value = _phone(raw)
    else:
        value = raw.lower()
        if not _EMAIL.match(value):
            raise SiyuError(f"recipient {raw!r} is not an email address", "recipient")
    if user.role == Role.GUIDE and known is not None and value != (known if req.channel == "sms" else known.lower()):
        raise Forbidden("guides may send only to the customer's own phone / email on file", "recipient")
    return value, cid


# ---------------------------------------------------------------- the use case


def _fingerprint(row: OutboxRow) -> tuple[str, str, str, str]:
    return row.channel, row.recipient, row.template, json.dumps(row.content, sort_keys=True, default=str)


def _existing(ctx: Context, brand_id: str, key: str) -> OutboxRow | None:
    with ctx.sessions() as s:
        return s.scalars(
            select(OutboxRow).where(OutboxRow.brand_id == brand_id, OutboxRow.idempotency_key == key)
        ).first()


def _taken_slots(ctx: Context, brand_id: str, cap_key: str, day: str) -> list[int]:
    with ctx.sessions() as s:
        return [
            int(v or 0)
            for v in s.scalars(
                select(OutboxRow.cap_slot).where(
                    OutboxRow.brand_id == brand_id,
                    OutboxRow.cap_key == cap_key,
                    OutboxRow.cap_day == day,
                    OutboxRow.cap_slot.is_not(None),
                )
            )
        ]


def _held_by_wecom(ctx: Context, brand_id: str, customer_id: str | None, day: str) -> int:
    """Marketing messages WeCom mass sends hold for this customer on ``day`` (they count against the same cap)."""
    if not customer_id:
        return 0
    from siyu.services.wecom.mass_send import wecom_counts  # the WeCom side imports this module

    return wecom_counts(ctx, brand_id, day, [customer_id]).get(customer_id, 0)


def _insert(ctx: Context, row: OutboxRow, status: str = "queued") -> tuple[OutboxRow, bool]:
    """Insert ``row`` (taking a cap slot when marketing); the existing row when its idempotency key is taken."""
    row.status = status
    for _ in range(50):
        try:
            with ctx.sessions() as s, s.begin():
                if row.purpose == "marketing" and status == "queued":
                    cap_lock.hold(s, row.brand_id)  # count and claim atomically across processes
                    _claim_slot(ctx, row, "send tomorrow, or raise the cap if the brand allows more")
                s.add(row)
            return row, True
        except IntegrityError:
            existing = _existing(ctx, row.brand_id, row.idempotency_key)
            if existing is not None:
                return existing, False
            row = _clone(row)  # a concurrent send took the cap slot: take the next one
    raise Conflict("too many concurrent sends to this customer; try again", "customer_id")


def _claim_slot(ctx: Context, row: OutboxRow, advice: str) -> None:
    """Give ``row`` the first free cap slot of today (call with the brand's cap lock held), or raise CapReached."""
    cap = providers.marketing_cap(ctx, row.brand_id)
    row.cap_key = row.customer_id or row.recipient
    row.cap_day = cap.day(utcnow()).isoformat()
    held = _held_by_wecom(ctx, row.brand_id, row.customer_id, row.cap_day)
    row.cap_slot = cap.slot(_taken_slots(ctx, row.brand_id, row.cap_key, row.cap_day), held)
    if row.cap_slot is None:
        raise CapReached(
            f"{row.cap_key} already received {cap.per_day} marketing message(s) today (the brand's cap is "
            f"{cap.per_day}/day); {advice}",
            "purpose",
        )


def _clone(row: OutboxRow) -> OutboxRow:
    cols = [c.key for c in OutboxRow.__table__.columns]
    return OutboxRow(**{c: getattr(row, c) for c in cols})


def _queue(ctx: Context, message_id: str) -> None:
    """Hand the message to the background queue; if that fails the schedule still finds it (status queued)."""
    try:
        from siyu.workers.tasks import enqueue_call

        enqueue_call(ctx, TARGET, message_id)
    except Exception:
        log.exception("could not queue message %s; the messaging.outbox schedule will send it", message_id)


def send(ctx: Context, user: User, req: SendRequest, queue: bool = True) -> tuple[dict[str, Any], bool]:
    """Accept a message into the outbox (durably) and queue its delivery. Returns (message, created): a repeated
    idempotency key returns the first message with ``created = False`` (and never sends again)."""
    if req.channel not in CHANNELS:
        raise SiyuError(f"channel {req.channel!r} is not known; one of {', '.join(CHANNELS)}", "channel")
    check_purpose(req.purpose)
    key = (req.idempotency_key or "").strip()
    if len(key) > 200:
        raise SiyuError("idempotency_key is longer than 200 characters", "idempotency_key")
    template, content = _content(req)
    recipient, cid = _recipient(ctx, user, req)
    row = OutboxRow(
        id=uuid.uuid4().hex,
        brand_id=user.brand_id,
        channel=req.channel,
        purpose=req.purpose,
        recipient=recipient,
        customer_id=cid,
        template=template,
        content=content,
        idempotency_key=key or f"auto:{uuid.uuid4().hex}",
        attempts=0,
        max_attempts=MAX_ATTEMPTS,
        created_by=user.username,
    )
    if key:
        existing = _existing(ctx, user.brand_id, key)
        if existing is not None:
            return _same_or_conflict(existing, row), False
    if req.channel == "webhook":
        from siyu.services.brand_webhooks import get_webhook

        if get_webhook(ctx, user.brand_id, req.topic) is None:
            raise SiyuError(f"no {req.topic} webhook is set for this brand; set one first", "topic")
    else:
        _check_provider(ctx, user.brand_id, req.channel)
    saved, created = _insert(ctx, row)
    if not created:
        return _same_or_conflict(saved, row), False
    if queue:
        _queue(ctx, saved.id)
    return as_dict(saved), True


def _same_or_conflict(existing: OutboxRow, new: OutboxRow) -> dict[str, Any]:
    if _fingerprint(existing) != _fingerprint(new):
        raise Conflict(
            f"idempotency_key {existing.idempotency_key!r} was already used for a different message "
            f"({existing.id}); use a new key for a new message",
            "idempotency_key",
        )
    return as_dict(existing)


def enqueue_webhook(
    ctx: Context, brand_id: str, topic: str, payload: dict[str, Any], created_by: str = ""
) -> OutboxRow:
    """Queue a webhook delivery (``brand_webhooks.enqueue``)."""
    row = OutboxRow(
        id=uuid.uuid4().hex,
        brand_id=brand_id,
        channel="webhook",
        purpose="transactional",
        recipient=topic,
        template=topic,
        content={"payload": payload},
        idempotency_key=f"auto:{uuid.uuid4().hex}",
        attempts=0,
        max_attempts=MAX_ATTEMPTS,
        created_by=created_by,
    )
    saved, _ = _insert(ctx, row)
    _queue(ctx, saved.id)
    return saved


def record_dead_webhook(ctx: Context, brand_id: str, topic: str, payload: dict[str, Any], delivery: Any) -> OutboxRow:
    """Keep a webhook delivery that failed after its retries as a dead letter (its id = the delivery id)."""
    now = utcnow()
    row = OutboxRow(
        id=delivery.delivery_id,
        brand_id=brand_id,
        channel="webhook",
        purpose="transactional",
        recipient=topic,
        template=topic,
        content={"payload": payload},
        idempotency_key=f"webhook:{delivery.delivery_id}",
        attempts=delivery.attempts,
        max_attempts=delivery.attempts,
        error_code=str(delivery.status_code) if delivery.status_code else "connection",
        error=delivery.error,
        created_by="system",
        created_at=now,
        updated_at=now,
    )
    saved, _ = _insert(ctx, row, status="dead")
    return saved


# ---------------------------------------------------------------- delivery (the worker side)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    vendor_id: str | None = None
    code: str | None = None
    meaning: str = ""
    retryable: bool = False
    retry_after: float | None = None
    outcome_unknown: bool = False


def _claim(ctx: Context, message_id: str, now: datetime) -> OutboxRow | None:
    with ctx.sessions() as s:
        res = s.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == message_id,
                OutboxRow.status.in_(("queued", "failed")),
                (OutboxRow.next_attempt_at.is_(None)) | (OutboxRow.next_attempt_at <= now),
            )
            .values(status="sending", claimed_at=now, attempts=OutboxRow.attempts + 1, updated_at=now)
        )
        s.commit()
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return s.get(OutboxRow, message_id)


def _dispatch(ctx: Context, row: OutboxRow) -> Outcome:
    """Hand one message to its vendor."""
    try:
        if row.channel == "sms":
            provider, sign_name = providers.sms_provider(ctx, row.brand_id)
            r = provider.send(
                row.recipient,
                row.template,
                row.content.get("params") or {},
                row.content.get("sign_name") or sign_name,
                out_id=row.id,
            )
            return Outcome(r.ok, r.message_id, r.code, r.meaning, r.retryable, r.retry_after, r.outcome_unknown)
        if row.channel == "email":
            from siyu.connectors.email import send_email

            e = send_email(
                providers.smtp_settings(ctx, row.brand_id),
                row.recipient,
                row.template,
                row.content.get("text", ""),
                row.content.get("html"),
            )
            return Outcome(e.ok, e.message_id, e.code, e.meaning, e.retryable, e.retry_after, e.outcome_unknown)
        from siyu.connectors.webhooks import RETRY_STATUSES
        from siyu.services import brand_webhooks

        hook = brand_webhooks.get_webhook(ctx, row.brand_id, row.template)
        if hook is None:
            return Outcome(False, code="no_webhook", meaning=f"no {row.template} webhook is set for this brand")
        d = brand_webhooks.deliver_logged(
            ctx, row.brand_id, hook, row.content.get("payload") or {}, retries=0, delivery_id=row.id
        )
        if d.ok:
            return Outcome(True, d.delivery_id, str(d.status_code), "delivered")
        retry = d.status_code is None or d.status_code in RETRY_STATUSES
        return Outcome(False, code=str(d.status_code or "connection"), meaning=d.error or "", retryable=retry)
    except SiyuError as exc:  # settings removed after the message was accepted
        return Outcome(False, code="config", meaning=exc.message)


def _finish(ctx: Context, row: OutboxRow, out: Outcome, now: datetime) -> OutboxRow:
    with ctx.sessions() as s:
        r = s.get(OutboxRow, row.id)
        assert r is not None
        r.updated_at, r.claimed_at = now, None
        if out.ok:
            r.status, r.vendor_id, r.sent_at, r.error_code, r.error = "sent", out.vendor_id, now, None, None
        else:
            r.error_code, r.error = out.code, out.meaning
            if out.outcome_unknown:
                r.status = "dead"  # the vendor may have sent it: a person decides (keeps its cap slot)
            elif out.retryable and r.attempts < r.max_attempts:
                delay = max(out.retry_after or 0.0, BASE_DELAY * 2 ** (r.attempts - 1))
                r.status, r.next_attempt_at = "failed", now + timedelta(seconds=delay)
            else:
                r.status, r.cap_slot = "dead", None  # not delivered: the cap slot is free again
        s.commit()
        return r


def deliver(ctx: Context, message_id: str, now: datetime | None = None) -> str | None:
    """Send one message if it is due and nobody else holds it (the Huey task). Returns its new status."""
    now = now or utcnow()
    row = _claim(ctx, message_id, now)
    if row is None:
        return None
    out = _dispatch(ctx, row)
    return _finish(ctx, row, out, now).status


def recover_stuck(ctx: Context, now: datetime | None = None) -> int:
    """Rows a killed worker left 'sending': webhooks are retried (same delivery id), SMS/email become dead letters."""
    now = now or utcnow()
    limit = now - timedelta(seconds=STUCK_AFTER)
    with ctx.sessions() as s:
        rows = s.scalars(select(OutboxRow).where(OutboxRow.status == "sending", OutboxRow.claimed_at < limit)).all()
        for r in rows:
            r.updated_at, r.claimed_at = now, None
            if r.channel == "webhook":
                r.status, r.next_attempt_at = "failed", now
                r.error_code, r.error = "interrupted", "the worker stopped while delivering; delivered again"
            else:
                r.status, r.error_code = "dead", "interrupted"
                r.error = (
                    "the worker stopped while sending: the vendor may have sent it; check the vendor's records "
                    "(out id = this message id) before resending"
                )
        s.commit()
        return len(rows)


def process_due(ctx: Context, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """The schedule's job: recover stuck rows, then send every queued or due message (oldest first)."""
    now = now or utcnow()
    counts = {"recovered": recover_stuck(ctx, now)}
    with ctx.sessions() as s:
        ids = s.scalars(
            select(OutboxRow.id)
            .where(
                OutboxRow.status.in_(("queued", "failed")),
                (OutboxRow.next_attempt_at.is_(None)) | (OutboxRow.next_attempt_at <= now),
            )
            .order_by(OutboxRow.created_at)
            .limit(limit)
        ).all()
    for mid in ids:
        status = deliver(ctx, mid, now)
        if status:
            counts[status] = counts.get(status, 0) + 1
    return counts


# ---------------------------------------------------------------- reading and re-sending


def list_messages(
    ctx: Context,
    user: User,
    status: str | None = None,
    channel: str | None = None,
    purpose: str | None = None,
    customer_id: str | None = None,
    recipient: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The outbox, newest first, with filters; a guide sees only the messages they sent."""
    if status and status not in STATUSES:
        raise SiyuError(f"status {status!r} is not known; one of {', '.join(STATUSES)}", "status")
    if channel and channel not in CHANNELS:
        raise SiyuError(f"channel {channel!r} is not known; one of {', '.join(CHANNELS)}", "channel")
    if purpose:
        check_purpose(purpose)
    if not 1 <= limit <= 500:
        raise SiyuError("limit must be between 1 and 500", "limit")
    if offset < 0:
        raise SiyuError("offset must be 0 or more", "offset")
    conds = [OutboxRow.brand_id == user.brand_id]
    if user.role == Role.GUIDE:
        conds.append(OutboxRow.created_by == user.username)
    if status:
        conds.append(OutboxRow.status == status)
    if channel:
        conds.append(OutboxRow.channel == channel)
    if purpose:
        conds.append(OutboxRow.purpose == purpose)
    if customer_id:
        conds.append(OutboxRow.customer_id == customer_id)
    if recipient:
        conds.append(
            OutboxRow.recipient
            == (_phone(recipient) if recipient.strip().lstrip("+").isdigit() else recipient.strip().lower())
        )
    with ctx.sessions() as s:
        total = s.scalar(select(func.count()).select_from(OutboxRow).where(*conds)) or 0
        rows = s.scalars(
            select(OutboxRow)
            .where(*conds)
            .order_by(OutboxRow.created_at.desc(), OutboxRow.id)
            .limit(limit)
            .offset(offset)
        ).all()
        by_status = dict(
            s.execute(
                select(OutboxRow.status, func.count())
                .where(*conds[: 2 if user.role == Role.GUIDE else 1])
                .group_by(OutboxRow.status)
            ).all()
        )
    return {
        "items": [as_dict(r) for r in rows],
        "total": int(total),
        "limit": limit,
        "offset": offset,
        "by_status": {st: int(by_status.get(st, 0)) for st in STATUSES},
    }


def get_message(ctx: Context, user: User, message_id: str) -> dict[str, Any]:
    """One message (a guide: only their own)."""
    with ctx.sessions() as s:
        row = s.get(OutboxRow, message_id)
    if row is None or row.brand_id != user.brand_id or (user.role == Role.GUIDE and row.created_by != user.username):
        raise NotFound(f"message {message_id!r} not found", "id")
    return as_dict(row)


def resend(ctx: Context, user: User, message_id: str, queue: bool = True) -> dict[str, Any]:
    """Queue a dead letter again (attempts start over; a marketing message needs a free cap slot today)."""
    if user.role == Role.GUIDE:
        raise Forbidden("guides cannot re-send dead letters; ask an operator", "role")
    get_message(ctx, user, message_id)
    with ctx.sessions() as s:
        cap_lock.hold(s, user.brand_id)  # a marketing re-send claims a cap slot (atomically across processes)
        row = s.get(OutboxRow, message_id)
        assert row is not None
        if row.status != "dead":
            raise Conflict(f"message {message_id} is {row.status}, not dead; only dead letters can be re-sent", "id")
        if row.purpose == "marketing" and row.cap_slot is None:
            _claim_slot(ctx, row, "re-send tomorrow")
        now = utcnow()
        row.status, row.attempts, row.next_attempt_at, row.updated_at = "queued", 0, None, now
        row.max_attempts = max(row.max_attempts, MAX_ATTEMPTS)
        s.commit()
    if queue:
        _queue(ctx, message_id)
    return get_message(ctx, user, message_id)


def sent_today(ctx: Context, brand_id: str, customer_ids: list[str], day: str | None = None) -> dict[str, int]:
    """Outbox marketing messages each customer holds a cap slot for on ``day`` (default today)."""
    day = day or providers.marketing_cap(ctx, brand_id).day(utcnow()).isoformat()
    out: dict[str, int] = {}
    with ctx.sessions() as s:
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            for key, n in s.execute(
                select(OutboxRow.cap_key, func.count())
                .where(
                    OutboxRow.brand_id == brand_id,
                    OutboxRow.cap_day == day,
                    OutboxRow.cap_slot.is_not(None),
                    OutboxRow.cap_key.in_(chunk),
                )
                .group_by(OutboxRow.cap_key)
            ).all():
                out[str(key)] = int(n)
    return out


def marketing_counts(ctx: Context, brand_id: str, customer_ids: list[str], day: str | None = None) -> dict[str, int]:
    """Marketing messages each customer has on ``day`` (default today) over every channel: outbox cap slots
    (SMS/email/webhook) plus WeCom mass sends — the counts the daily cap is checked against."""
    from siyu.services.wecom.mass_send import wecom_counts  # the WeCom side imports this module

    day = day or providers.marketing_cap(ctx, brand_id).day(utcnow()).isoformat()
    out = Counter(sent_today(ctx, brand_id, customer_ids, day))
    out.update(wecom_counts(ctx, brand_id, day, customer_ids))
    return dict(out)


def cap_split(ctx: Context, brand_id: str, customer_ids: list[str]) -> CapSplit:
    """Customers a marketing mass send may still reach today under the brand's cap, and those capped
    (``contact_cap.split_by_cap`` over ``marketing_counts``)."""
    counts = marketing_counts(ctx, brand_id, customer_ids)
    return split_by_cap(customer_ids, counts, providers.marketing_cap(ctx, brand_id))
