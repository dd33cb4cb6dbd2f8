"""Receiving WeCom callbacks: verify (signature, timestamp window, receiveid), decrypt, store durably, queue.

``receive`` answers within milliseconds: it stores the decrypted event in ``wecom_callbacks`` (unique dedupe key,
so WeCom's retries are stored once) and queues ``processing.process_pending`` on Huey.  Forged, stale or
malformed callbacks are refused (``Rejected``), logged and recorded in ``wecom_rejections``; nothing is applied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from siyu.connectors.wecom.crypto import WeComCryptoError
from siyu.domain.wecom_events import WeComEventError, parse_event
from siyu.errors import SiyuError, TooManyRequests
from siyu.services.context import Context
from siyu.services.rate_limit import context_bucket
from siyu.services.wecom.config import get_config
from siyu.stores.state.wecom_models import WeComCallbackRow, WeComRejectionRow

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
CALLBACK_RATE, CALLBACK_BURST = 200.0, 1000  # callbacks per second per brand (WeCom retries a 429 later)
REJECT_RATE, REJECT_BURST = 10.0, 100  # rejection rows per second per brand (a flood of forgeries is only logged)
PROCESS_TARGET = "siyu.services.wecom.processing:process_pending"


class TooManyCallbacks(TooManyRequests):
    """More callbacks than a brand's limit (HTTP 429: WeCom retries)."""


def admit(ctx: Context, brand_id: str) -> None:
    """The callback endpoint's limit: CALLBACK_RATE per second per brand (burst CALLBACK_BURST)."""
    wait = context_bucket(ctx, "wecom_callback_bucket", CALLBACK_RATE, CALLBACK_BURST).take(brand_id)
    if wait > 0:
        raise TooManyCallbacks(f"more than {CALLBACK_RATE:g} callbacks/s for brand {brand_id}; retry in {wait:.1f} s")


class Rejected(SiyuError):
    """A callback refused: ``reason`` is a short code (signature, stale, receiveid, padding, malformed, ...)."""

    status_code = 403

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"callback rejected ({reason}): {detail}", field=reason)
        self.reason = reason


@dataclass(frozen=True)
class Received:
    """An accepted callback: its row id, and whether it was a duplicate (stored before, not applied again)."""

    callback_id: int
    duplicate: bool


def reject(ctx: Context, brand_id: str, reason: str, detail: str, remote: str = "") -> Rejected:
    """Log and record a refused callback; returns the exception to raise."""
    log.warning("WeCom callback for brand %s rejected (%s): %s [from %s]", brand_id, reason, detail, remote)
    if context_bucket(ctx, "wecom_reject_bucket", REJECT_RATE, REJECT_BURST).take(brand_id) > 0:
        return Rejected(reason, detail)  # a flood: logged, not recorded row by row
    with ctx.sessions() as s, s.begin():
        s.add(WeComRejectionRow(brand_id=brand_id[:64], reason=reason[:32], detail=detail[:2000], remote=remote[:64]))
    return Rejected(reason, detail)


def _check_time(ctx: Context, brand_id: str, timestamp: str, window: int, now: float, remote: str) -> None:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise reject(ctx, brand_id, "timestamp", f"timestamp {timestamp!r} is not a number", remote) from None
    if abs(now - ts) > window:
        detail = f"timestamp {ts} is {int(now - ts)} s from now (window ±{window} s): replayed or clock skew"
        raise reject(ctx, brand_id, "stale", detail, remote)


def verify_url(
    ctx: Context, brand_id: str, msg_signature: str, timestamp: str, nonce: str, echostr: str, remote: str = ""
) -> str:
    """URL verification (GET): the plaintext of ``echostr`` to answer bare."""
    admit(ctx, brand_id)
    cfg = get_config(ctx, brand_id)
    _check_time(ctx, brand_id, timestamp, cfg.replay_window_seconds, time.time(), remote)
    try:
        # a '+' of the base64 echostr sent unescaped arrives as a space (base64 has no spaces)
        return cfg.crypt().verify_url(msg_signature, timestamp, nonce, echostr.replace(" ", "+"))
    except WeComCryptoError as err:
        raise reject(ctx, brand_id, err.reason, err.message, remote) from err


def receive(
    ctx: Context,
    brand_id: str,
    msg_signature: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    remote: str = "",
    now: float | None = None,
    enqueue: bool = True,
) -> Received:
    """Verify, decrypt, parse and store one POSTed callback, then queue its processing."""
    admit(ctx, brand_id)
    cfg = get_config(ctx, brand_id)
    if len(body) > MAX_BODY:
        raise reject(ctx, brand_id, "size", f"body of {len(body)} bytes exceeds {MAX_BODY}", remote)
    _check_time(ctx, brand_id, timestamp, cfg.replay_window_seconds, time.time() if now is None else now, remote)
    try:
        xml = cfg.crypt().decrypt_msg(body, msg_signature, timestamp, nonce)
        event = parse_event(xml)
    except WeComCryptoError as err:
        raise reject(ctx, brand_id, err.reason, err.message, remote) from err
    except WeComEventError as err:
        raise reject(ctx, brand_id, "malformed", err.message, remote) from err
    f = event.fields
    row = WeComCallbackRow(
        brand_id=brand_id,
        dedupe_key=event.dedupe_key()[:400],
        event=event.event[:64],
        change_type=event.change_type[:64],
        create_time=event.create_time,
        user_id=f.get("UserID", "")[:128],
        external_user_id=f.get("ExternalUserID", "")[:128],
        xml=xml.decode("utf-8", "replace"),
        status="pending",
        attempts=0,
    )
    try:
        with ctx.sessions() as s, s.begin():
            s.add(row)
            s.flush()
            callback_id = row.id
    except IntegrityError:
        with ctx.sessions() as s:
            dup, dup_status = s.execute(
                select(WeComCallbackRow.id, WeComCallbackRow.status).filter_by(
                    brand_id=brand_id, dedupe_key=row.dedupe_key
                )
            ).one()
        detail = f"same event as callback #{dup} ({row.dedupe_key}); answered success, not applied again"
        reject(ctx, brand_id, "duplicate", detail, remote)
        if enqueue and dup_status != "done":  # WeCom's retry nudges an unfinished row (its task may be lost)
            _enqueue(ctx, brand_id)
        return Received(int(dup), True)
    if enqueue:
        _enqueue(ctx, brand_id)
    return Received(callback_id, False)


def _enqueue(ctx: Context, brand_id: str) -> None:
    from siyu.workers.tasks import enqueue_call

    enqueue_call(ctx, PROCESS_TARGET, brand_id)
