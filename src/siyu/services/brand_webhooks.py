"""Per-brand webhook settings (URL + signing secret per topic, kept in the brand's settings) and the delivery log.

Settings live in ``brands.settings["webhooks"][topic] = {"url": ..., "secret": ...}``; every delivery (after its
retries) is logged in the state table ``webhook_deliveries``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select

from siyu.connectors import webhooks as connector
from siyu.services import secrets as sealing
from siyu.services.brands import get_brand
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.stores.state.models import BrandRow
from siyu.stores.state.webhooks import WebhookDeliveryRow

TOPICS: tuple[str, ...] = ("anomalies",)


@dataclass(frozen=True)
class Webhook:
    """Where a brand's notifications of one topic go, and the secret they are signed with."""

    topic: str
    url: str
    secret: str


def _check_topic(topic: str) -> None:
    if topic not in TOPICS:
        raise SiyuError(f"topic {topic!r} is not known; one of {', '.join(TOPICS)}", "topic")


def set_webhook(ctx: Context, brand_id: str, topic: str, url: str, secret: str | None = None) -> Webhook:
    """Store the webhook of ``topic``; a new random secret is made when none is given (shown once to the caller)."""
    _check_topic(topic)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SiyuError(f"url {url!r} is not an http(s) URL; send e.g. https://example.com/hooks/siyu", "url")
    if secret is not None and len(secret) < 16:
        raise SiyuError("secret must have at least 16 characters (or leave it out to generate one)", "secret")
    secret = secret or secrets.token_hex(32)
    get_brand(ctx, brand_id)
    with ctx.sessions() as s:
        row = s.get(BrandRow, brand_id)
        assert row is not None
        settings = dict(row.settings or {})
        hooks = dict(settings.get("webhooks") or {})
        hooks[topic] = {"url": url, "secret": sealing.seal(ctx, secret)}
        settings["webhooks"] = hooks
        row.settings = settings  # a new dict, so the JSON column is written
        s.commit()
    return Webhook(topic, url, secret)


def get_webhook(ctx: Context, brand_id: str, topic: str) -> Webhook | None:
    """The webhook of ``topic``, or None when the brand has none."""
    _check_topic(topic)
    hook = (get_brand(ctx, brand_id).settings or {}).get("webhooks", {}).get(topic)
    if not hook or not hook.get("url"):
        return None
    if sealing.has_plain(hook, ("secret",)):  # stored before encryption at rest: encrypt it now
        sealing.reseal_all(ctx)
    return Webhook(topic, str(hook["url"]), sealing.open_value(ctx, str(hook["secret"]), f"webhooks.{topic}.secret"))


def remove_webhook(ctx: Context, brand_id: str, topic: str) -> None:
    """Forget the webhook of ``topic``."""
    _check_topic(topic)
    with ctx.sessions() as s:
        row = s.get(BrandRow, brand_id)
        if row is None:
            return
        settings = dict(row.settings or {})
        hooks = dict(settings.get("webhooks") or {})
        hooks.pop(topic, None)
        settings["webhooks"] = hooks
        row.settings = settings
        s.commit()


def deliver_logged(
    ctx: Context, brand_id: str, hook: Webhook, payload: dict[str, Any], **options: Any
) -> connector.Delivery:
    """POST ``payload`` to ``hook`` (with the connector's retries) and log the delivery in ``webhook_deliveries``."""
    result = connector.deliver(hook.url, payload, hook.secret, hook.topic, **options)
    with ctx.sessions() as s:
        s.add(
            WebhookDeliveryRow(
                brand_id=brand_id,
                topic=hook.topic,
                url=hook.url,
                delivery_id=result.delivery_id,
                attempts=result.attempts,
                status_code=result.status_code,
                ok=result.ok,
                error=result.error,
                body_sha256=result.body_sha256,
            )
        )
        s.commit()
    return result


def send(ctx: Context, brand_id: str, topic: str, payload: dict[str, Any], **options: Any) -> connector.Delivery | None:
    """Deliver ``payload`` to the brand's webhook of ``topic`` now (None when none is set) and log the delivery.

    A delivery that fails after its retries is kept as a dead letter in the messaging outbox (listed by
    ``siyu messaging dead-letters``; ``resend`` delivers it again with the same ``X-Siyu-Delivery`` id)."""
    hook = get_webhook(ctx, brand_id, topic)
    if hook is None:
        return None
    result = deliver_logged(ctx, brand_id, hook, payload, **options)
    if not result.ok:
        from siyu.services.messaging import outbox

        outbox.record_dead_webhook(ctx, brand_id, topic, payload, result)
    return result


def enqueue(ctx: Context, brand_id: str, topic: str, payload: dict[str, Any], created_by: str = "") -> str:
    """Queue ``payload`` for the brand's webhook of ``topic`` without waiting (the outbox delivers it on the
    background queue, retrying with backoff; exhausted deliveries become dead letters). Returns the message id."""
    _check_topic(topic)
    if get_webhook(ctx, brand_id, topic) is None:
        raise SiyuError(f"no {topic} webhook is set for this brand; set one first", "topic")
    from siyu.services.messaging import outbox

    return outbox.enqueue_webhook(ctx, brand_id, topic, payload, created_by).id


def deliveries(ctx: Context, brand_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The brand's latest deliveries, newest first."""
    with ctx.sessions() as s:
        rows = s.scalars(
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.brand_id == brand_id)
            .order_by(WebhookDeliveryRow.id.desc())
            .limit(limit)
        ).all()
    return [
        {
            "delivery_id": r.delivery_id,
            "topic": r.topic,
            "url": r.url,
            "attempts": r.attempts,
            "status_code": r.status_code,
            "ok": r.ok,
            "error": r.error,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
